// RUN: not tracec-opt %s -p extract-step 2>&1 | filecheck %s

// The loop body uses the time index for something else than reading/writing rows.
module {
  func.func private @sequence(%v0: tensor<3xi32> {tracec.role = "state", tracec.name = "v"},
                              %xs: tensor<5x3xi32> {tracec.role = "input", tracec.name = "xs"})
      -> (tensor<3xi32> {tracec.role = "state", tracec.name = "v"}) {
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %r:3 = stablehlo.while(%a = %xs, %i = %c0, %v = %v0) : tensor<5x3xi32>, tensor<i32>, tensor<3xi32>
    cond {
      %n = stablehlo.constant dense<5> : tensor<i32>
      %p = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %t = stablehlo.broadcast_in_dim %i, dims = [] : (tensor<i32>) -> tensor<3xi32> loc("m.py":7:12)
      %nv = stablehlo.add %v, %t : tensor<3xi32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %a, %i2, %nv : tensor<5x3xi32>, tensor<i32>, tensor<3xi32>
    }
    return %r#2 : tensor<3xi32>
  }
}
// CHECK: m.py:7:12: error: the step uses the time index (the scan's counter) (op 'stablehlo.broadcast_in_dim')
