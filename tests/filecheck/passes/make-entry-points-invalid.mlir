// RUN: not tracec-opt %s -p make-entry-points 2>&1 | filecheck %s

// The step's arguments must be params, then state, then one input.
module {
  func.func private @step(%x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"},
                          %v: tensor<4x2xf32> {tracec.role = "state", tracec.name = "v"})
      -> (tensor<4x2xf32> {tracec.role = "state", tracec.name = "v"}) {
    %0 = stablehlo.add %v, %x : tensor<4x2xf32>
    return %0 : tensor<4x2xf32>
  }
}
// CHECK: error: make-entry-points: @step's arguments must be params, then state, then one input; got roles ['input', 'state']
