// RUN: tracec-opt %s -p leading-sums-to-dot | filecheck %s
// RUN: tracec-opt %s -p 'leading-sums-to-dot{min-elements=2048}' | filecheck %s --check-prefix=MIN

// A zero-init sum over dimension 0 of a [B, I, H] tensor becomes ones[B] . x; the
// location is the reduce's.
func.func public @main(%x: tensor<8x16x32xf32>, %y: tensor<8x4xf32>, %s: tensor<f32>)
    -> (tensor<16x32xf32>, tensor<8x32xf32>, tensor<4xf32>, tensor<16x32xf32>, tensor<16x32xf32>) {
  %zero = stablehlo.constant dense<0.0> : tensor<f32>
  %sum0 = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<8x16x32xf32>, tensor<f32>) -> tensor<16x32xf32> loc("model.py":3:4)
  // Another dimension, a small row, another init, another body: unchanged.
  %sum1 = stablehlo.reduce(%x init: %zero) applies stablehlo.add across dimensions = [1] : (tensor<8x16x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %small = stablehlo.reduce(%y init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<8x4xf32>, tensor<f32>) -> tensor<4xf32>
  %init = stablehlo.reduce(%x init: %s) applies stablehlo.add across dimensions = [0] : (tensor<8x16x32xf32>, tensor<f32>) -> tensor<16x32xf32>
  %max = stablehlo.reduce(%x init: %zero) applies stablehlo.maximum across dimensions = [0] : (tensor<8x16x32xf32>, tensor<f32>) -> tensor<16x32xf32>
  return %sum0, %sum1, %small, %init, %max : tensor<16x32xf32>, tensor<8x32xf32>, tensor<4xf32>, tensor<16x32xf32>, tensor<16x32xf32>
}

// CHECK: ^bb0(%[[X:.*]]: tensor<8x16x32xf32>{{.*}}, %[[Y:.*]]: tensor<8x4xf32>
// CHECK: %[[ONES:.*]] = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<8xf32>}>
// CHECK: %[[SUM0:.*]] = "stablehlo.dot_general"(%[[ONES]], %[[X]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [0], rhs_contracting_dimensions = [0]>}> : (tensor<8xf32>, tensor<8x16x32xf32>) -> tensor<16x32xf32> loc("model.py":3:4)
// CHECK: %[[SUM1:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 1>}>
// CHECK: %[[SMALL:.*]] = "stablehlo.reduce"(%[[Y]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: %[[INIT:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: %[[MAX:.*]] = "stablehlo.reduce"(%[[X]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: "stablehlo.maximum"
// CHECK: "func.return"(%[[SUM0]], %[[SUM1]], %[[SMALL]], %[[INIT]], %[[MAX]])

// With min-elements above the 16 x 32 = 512 elements per row, nothing is rewritten.
// MIN-NOT: dot_general
