// RUN: not tracec-opt %s -p identify-recurrent-state,find-hidden-groups,find-param-relations 2>&1 | filecheck %s

// The relation's output is normalised across neurons before it reaches them.
module {
  func.func private @step(%w: tensor<2x3xf32> {tracec.role = "param", tracec.name = "w"},
                          %v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"}) {
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %y = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("m.py":6:8)
    %s = stablehlo.reduce(%y init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<4xf32> loc("m.py":7:12)
    %b = stablehlo.broadcast_in_dim %s, dims = [0] : (tensor<4xf32>) -> tensor<4x3xf32> loc("m.py":7:12)
    %n = stablehlo.subtract %y, %b : tensor<4x3xf32> loc("m.py":7:8)
    %0 = stablehlo.add %v, %n : tensor<4x3xf32> loc("m.py":8:8)
    return %0 : tensor<4x3xf32>
  }
}
// CHECK: m.py:7:12: error: non-element-wise coupling between parameter 'w' and the neurons it feeds, through stablehlo.reduce (op 'stablehlo.reduce')
