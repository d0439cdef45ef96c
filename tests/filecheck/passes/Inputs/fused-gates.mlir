// Fused gates: y = x w is [B, 2H] = [a | b], split by slices; v' = a ⊙ v + b. Column m
// of y feeds neuron m mod H (two columns per neuron), so the traces are [B, 2H]-wide
// and D and δ are spread over both halves. One element-wise bias c [2H] on the gates.
module {
  func.func private @step(%w: tensor<2x6xf32> {tracec.role = "param", tracec.name = "w"},
                          %c: tensor<6xf32> {tracec.role = "param", tracec.name = "c"},
                          %v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
          tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"}) {
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x6xf32>) -> tensor<4x6xf32> loc("g.py":7:8)
    %cb = stablehlo.broadcast_in_dim %c, dims = [1] : (tensor<6xf32>) -> tensor<4x6xf32> loc("g.py":7:8)
    %1 = stablehlo.add %0, %cb : tensor<4x6xf32> loc("g.py":7:8)
    %a = stablehlo.slice %1 [0:4, 0:3] : (tensor<4x6xf32>) -> tensor<4x3xf32> loc("g.py":8:8)
    %b = stablehlo.slice %1 [0:4, 3:6] : (tensor<4x6xf32>) -> tensor<4x3xf32> loc("g.py":8:11)
    %2 = stablehlo.multiply %a, %v : tensor<4x3xf32> loc("g.py":9:8)
    %3 = stablehlo.add %2, %b : tensor<4x3xf32> loc("g.py":9:8)
    return %3, %3 : tensor<4x3xf32>, tensor<4x3xf32>
  }
  func.func private @loss(%o: tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"},
                          %t: tensor<4x3xf32> {tracec.role = "target", tracec.name = "target"})
      -> (tensor<f32> {tracec.role = "loss", tracec.name = "loss"}) {
    %zero = stablehlo.constant dense<0.0> : tensor<f32>
    %d = stablehlo.subtract %o, %t : tensor<4x3xf32> loc("g.py":12:12)
    %s = stablehlo.multiply %d, %d : tensor<4x3xf32> loc("g.py":12:12)
    %r = stablehlo.reduce(%s init: %zero) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x3xf32>, tensor<f32>) -> tensor<f32> loc("g.py":12:11)
    return %r : tensor<f32>
  }
}
