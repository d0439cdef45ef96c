// v' = 0.9 v + x w ; output v' ; loss = sum((v' - target)^2). One hidden group {v},
// one dense relation (w), no readout.
module {
  func.func private @step(%w: tensor<2x3xf32> {tracec.role = "param", tracec.name = "w"},
                          %v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
          tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"}) {
    %tau = stablehlo.constant dense<0.9> : tensor<4x3xf32>
    %0 = stablehlo.multiply %tau, %v : tensor<4x3xf32> loc("m.py":5:8)
    %1 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("m.py":5:20)
    %2 = stablehlo.add %0, %1 : tensor<4x3xf32> loc("m.py":5:8)
    return %2, %2 : tensor<4x3xf32>, tensor<4x3xf32>
  }
  func.func private @loss(%o: tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"},
                          %t: tensor<4x3xf32> {tracec.role = "target", tracec.name = "target"})
      -> (tensor<f32> {tracec.role = "loss", tracec.name = "loss"}) {
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %d = stablehlo.subtract %o, %t : tensor<4x3xf32> loc("m.py":9:12)
    %s = stablehlo.multiply %d, %d : tensor<4x3xf32> loc("m.py":9:12)
    %r = stablehlo.reduce(%s init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<f32> loc("m.py":9:11)
    return %r : tensor<f32>
  }
}
