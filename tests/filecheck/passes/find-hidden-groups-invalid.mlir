// RUN: not tracec-opt %s -p identify-recurrent-state,find-hidden-groups 2>&1 | filecheck %s

// A reduction between the old and the new state couples neurons.
module {
  func.func private @step(%v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<4x3xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"}) {
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %s = stablehlo.reduce(%v init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32> loc("m.py":7:12)
    %b = stablehlo.broadcast_in_dim %s, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32> loc("m.py":7:12)
    %0 = stablehlo.add %b, %x : tensor<4x3xf32> loc("m.py":7:8)
    return %0 : tensor<4x3xf32>
  }
}
// CHECK: m.py:7:12: error: non-element-wise coupling between state 'v' and state 'v' through stablehlo.reduce (op 'stablehlo.reduce')
