// A training scan as insert-optimizer and make-entry-points write it: a weight w, a
// counter k of steps since the last update, and a branch on "an update is due" that
// also reads the counter.
func.func @train_sequence(%w0: tensor<3xf32>, %k0: tensor<i32>, %xs: tensor<?x3xf32>) -> (tensor<3xf32>, tensor<i32>) {
  %r:2 = "tracec.scan"(%w0, %k0, %xs) <{operandSegmentSizes = array<i32: 2, 1>}> ({
  ^bb0(%w: tensor<3xf32>, %k: tensor<i32>, %x: tensor<3xf32>):
    %one = stablehlo.constant dense<1> : tensor<i32>
    %zero = stablehlo.constant dense<0> : tensor<i32>
    %every = stablehlo.constant dense<3> : tensor<i32>
    %kn = stablehlo.add %k, %one : tensor<i32>
    %due = stablehlo.compare GE, %kn, %every, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %kout = stablehlo.select %due, %zero, %kn : tensor<i1>, tensor<i32>
    %wn = "stablehlo.if"(%due) ({
      %kf = stablehlo.convert %kn : (tensor<i32>) -> tensor<f32>
      %kb = stablehlo.broadcast_in_dim %kf, dims = [] : (tensor<f32>) -> tensor<3xf32>
      %xk = stablehlo.multiply %x, %kb : tensor<3xf32>
      %s = stablehlo.subtract %w, %xk : tensor<3xf32>
      stablehlo.return %s : tensor<3xf32>
    }, {
      stablehlo.return %w : tensor<3xf32>
    }) : (tensor<i1>) -> tensor<3xf32>
    "tracec.yield"(%wn, %kout) : (tensor<3xf32>, tensor<i32>) -> ()
  }) : (tensor<3xf32>, tensor<i32>, tensor<?x3xf32>) -> (tensor<3xf32>, tensor<i32>) loc("model.py":1:1)
  return %r#0, %r#1 : tensor<3xf32>, tensor<i32>
}
