func.func private @step(%v: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %c1 = stablehlo.constant dense<1> : tensor<i32>
  %c100 = stablehlo.constant dense<100> : tensor<i32>
  %r:2 = stablehlo.while(%i = %c0, %acc = %v) : tensor<i32>, tensor<4xf32>
    cond {
      %lt = stablehlo.compare LT, %i, %c100, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      %a = stablehlo.add %acc, %acc : tensor<4xf32>
      %n = stablehlo.add %i, %c1 : tensor<i32>
      stablehlo.return %n, %a : tensor<i32>, tensor<4xf32>
    }
  return %r#1 : tensor<4xf32>
}
