// RUN: tracec-opt %s -p algebraic-simplify | filecheck %s

// A loss's per-sample sum then batch sum becomes one sum over both dimensions, at the
// outer sum's location; a chain of three folds to one; division by a splat constant
// becomes multiplication by the reciprocal rounded in f32 (1/9.49 = 0.105374083).
func.func public @main(%x: tensor<8x4xf32>, %y: tensor<2x3x4xf32>, %v: tensor<8xf32>, %s: tensor<f32>)
    -> (tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>, tensor<4xf32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>) {
  %zero = stablehlo.constant dense<0.0> : tensor<f32>
  %rows = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<8xf32>
  %total = stablehlo.reduce(%rows init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<8xf32>, tensor<f32>) -> tensor<f32> loc("model.py":7:4)
  %a = stablehlo.reduce(%y init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<2x3x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %b = stablehlo.reduce(%a init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<2x4xf32>, tensor<f32>) -> tensor<2xf32>
  %c = stablehlo.reduce(%b init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<2xf32>, tensor<f32>) -> tensor<f32>
  // The inner sum has another use, the outer one another init, a max: unchanged.
  %shared = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<8x4xf32>, tensor<f32>) -> tensor<8xf32>
  %cols = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %init = stablehlo.reduce(%cols init: %s) applies stablehlo.add across dimensions = [0] : (tensor<4xf32>, tensor<f32>) -> tensor<f32>
  %k = stablehlo.constant dense<9.49> : tensor<f32>
  %kb = stablehlo.broadcast_in_dim %k, dims = [] : (tensor<f32>) -> tensor<8xf32>
  %q = stablehlo.divide %v, %kb : tensor<8xf32> loc("model.py":9:8)
  // Zero, or a divisor that is not a constant: unchanged.
  %z = stablehlo.constant dense<0.0> : tensor<8xf32>
  %qz = stablehlo.divide %v, %z : tensor<8xf32>
  return %total, %c, %shared, %q, %cols, %init, %qz, %v : tensor<f32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>, tensor<4xf32>, tensor<f32>, tensor<8xf32>, tensor<8xf32>
}

// CHECK: ^bb0(%[[X:.*]]: tensor<8x4xf32>{{.*}}, %[[Y:.*]]: tensor<2x3x4xf32>{{.*}}, %[[V:.*]]: tensor<8xf32>
// CHECK: %[[TOTAL:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 0, 1>}>
// CHECK: }) : (tensor<8x4xf32>, tensor<f32>) -> tensor<f32> loc("model.py":7:4)
// CHECK: %[[C:.*]] = "stablehlo.reduce"(%[[Y]], %{{.*}}) <{dimensions = array<i64: 0, 1, 2>}>
// CHECK: %[[SHARED:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 1>}>
// CHECK: %[[COLS:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: %[[INIT:.*]] = "stablehlo.reduce"(%[[COLS]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: %[[R:.*]] = "stablehlo.constant"() <{value = dense<0.105374083> : tensor<8xf32>}>
// CHECK: %[[Q:.*]] = "stablehlo.multiply"(%[[V]], %[[R]]) : {{.*}} loc("model.py":9:8)
// CHECK: %[[QZ:.*]] = "stablehlo.divide"(%[[V]], %{{.*}})
// CHECK: "func.return"(%[[TOTAL]], %[[C]], %[[SHARED]], %[[Q]], %[[COLS]], %[[INIT]], %[[QZ]], %[[V]])
