// A tracec.scan as make-entry-points writes it: carry v, rows of xs, stacked output.
func.func @forward_sequence(%w: tensor<2x3xf32>, %v0: tensor<4x3xf32>, %xs: tensor<?x4x2xf32>) -> (tensor<4x3xf32>, tensor<?x4x3xf32>) {
  %r:2 = "tracec.scan"(%v0, %xs) <{operandSegmentSizes = array<i32: 1, 1>}> ({
  ^bb0(%v: tensor<4x3xf32>, %x: tensor<4x2xf32>):
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("model.py":5:8)
    %1 = stablehlo.add %v, %0 : tensor<4x3xf32> loc("model.py":6:8)
    "tracec.yield"(%1, %1) : (tensor<4x3xf32>, tensor<4x3xf32>) -> ()
  }) : (tensor<4x3xf32>, tensor<?x4x2xf32>) -> (tensor<4x3xf32>, tensor<?x4x3xf32>) loc("model.py":1:1)
  return %r#0, %r#1 : tensor<4x3xf32>, tensor<?x4x3xf32>
}
