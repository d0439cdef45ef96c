// RUN: not tracec-opt %s -p identify-recurrent-state 2>&1 | filecheck %s

// A "state" computed from parameters and constants only.
module {
  func.func private @step(%w: tensor<3xf32> {tracec.role = "param", tracec.name = "w"},
                          %v: tensor<3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<3xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<3xf32> {tracec.role = "state", tracec.name = "v"}) {
    %0 = stablehlo.tanh %w : tensor<3xf32> loc("m.py":4:8)
    return %0 : tensor<3xf32>
  }
}
// CHECK: m.py:4:8: error: the new value of state 'v' depends on nothing: it is computed from constants and parameters only (op 'stablehlo.tanh')
