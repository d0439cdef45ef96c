// A training scan as insert-optimizer writes it with an update every K > 1 steps: a
// counter k of steps since the last update, an accumulated gradient g reset when an
// update is due, and the weight's update in a branch behind an optimization barrier.
func.func @train_sequence(%w0: tensor<3xf32>, %g0: tensor<3xf32>, %k0: tensor<i32>, %xs: tensor<?x3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<i32>) {
  %r:3 = "tracec.scan"(%w0, %g0, %k0, %xs) <{operandSegmentSizes = array<i32: 3, 1>}> ({
  ^bb0(%w: tensor<3xf32>, %g: tensor<3xf32>, %k: tensor<i32>, %x: tensor<3xf32>):
    %one = stablehlo.constant dense<1> : tensor<i32>
    %zero = stablehlo.constant dense<0> : tensor<i32>
    %every = stablehlo.constant dense<8> : tensor<i32>
    %kn = stablehlo.add %k, %one : tensor<i32>
    %due = stablehlo.compare GE, %kn, %every, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %kout = stablehlo.select %due, %zero, %kn : tensor<i1>, tensor<i32>
    %gx = stablehlo.multiply %x, %w : tensor<3xf32>
    %gn = stablehlo.add %g, %gx : tensor<3xf32>
    %dueb = stablehlo.broadcast_in_dim %due, dims = [] : (tensor<i1>) -> tensor<3xi1>
    %zeros = stablehlo.constant dense<0.0> : tensor<3xf32>
    %gout = stablehlo.select %dueb, %zeros, %gn : tensor<3xi1>, tensor<3xf32>
    %wn = "stablehlo.if"(%due) ({
      %s = stablehlo.subtract %w, %gn : tensor<3xf32>
      stablehlo.return %s : tensor<3xf32>
    }, {
      stablehlo.return %w : tensor<3xf32>
    }) : (tensor<i1>) -> tensor<3xf32>
    %wb = stablehlo.optimization_barrier %wn : tensor<3xf32>
    "tracec.yield"(%wb, %gout, %kout) : (tensor<3xf32>, tensor<3xf32>, tensor<i32>) -> ()
  }) : (tensor<3xf32>, tensor<3xf32>, tensor<i32>, tensor<?x3xf32>) -> (tensor<3xf32>, tensor<3xf32>, tensor<i32>) loc("model.py":1:1)
  return %r#0, %r#1, %r#2 : tensor<3xf32>, tensor<3xf32>, tensor<i32>
}
