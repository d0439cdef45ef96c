// A recurrent LIF keeping its spike in the carry (examples/zoo/lif_carry.py):
//   v' = 0.9 v + x w_in + z w_rec - z ;  z' = spike(v' - 1)
module {
  func.func private @step(%w_in: tensor<2x3xf32> {tracec.role = "param", tracec.name = "w_in"},
                          %w_rec: tensor<3x3xf32> {tracec.role = "param", tracec.name = "w_rec"},
                          %v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %z: tensor<4x3xf32> {tracec.role = "state", tracec.name = "z"},
                          %x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
          tensor<4x3xf32> {tracec.role = "state", tracec.name = "z"},
          tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"}) {
    %tau = stablehlo.constant dense<0.9> : tensor<4x3xf32>
    %one = stablehlo.constant dense<1.0> : tensor<4x3xf32>
    %0 = stablehlo.multiply %tau, %v : tensor<4x3xf32> loc("lif.py":10:8)
    %1 = stablehlo.dot_general %x, %w_in, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("lif.py":10:20)
    %2 = stablehlo.dot_general %z, %w_rec, contracting_dims = [1] x [0] : (tensor<4x3xf32>, tensor<3x3xf32>) -> tensor<4x3xf32> loc("lif.py":10:35)
    %3 = stablehlo.add %0, %1 : tensor<4x3xf32> loc("lif.py":10:8)
    %4 = stablehlo.add %3, %2 : tensor<4x3xf32> loc("lif.py":10:8)
    %5 = stablehlo.subtract %4, %z : tensor<4x3xf32> loc("lif.py":10:8)
    %6 = stablehlo.subtract %5, %one : tensor<4x3xf32> loc("lif.py":11:24)
    %7 = stablehlo.composite "tracec.spike" %6 {composite_attributes = {alpha = 4.0 : f64, surrogate = "sigmoid"}, decomposition = @tracec.spike} : (tensor<4x3xf32>) -> tensor<4x3xf32> loc("lif.py":11:8)
    return %5, %7, %5 : tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>
  }
  func.func private @tracec.spike(%a: tensor<4x3xf32>) -> tensor<4x3xf32> {
    return %a : tensor<4x3xf32>
  }
}
