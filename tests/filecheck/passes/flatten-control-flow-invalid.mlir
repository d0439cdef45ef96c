// RUN: not tracec-opt %s -p flatten-control-flow 2>&1 | filecheck %s
// RUN: not tracec-opt %S/Inputs/long-loop.mlir -p 'flatten-control-flow{max-trip-count=10}' 2>&1 | filecheck %s --check-prefix=LONG

// A loop whose condition reads data has no static trip count: an error at its line.
func.func private @step(%v: tensor<4xf32>, %x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = stablehlo.constant dense<0.0> : tensor<f32>
  %r = stablehlo.while(%acc = %v) : tensor<4xf32>
    cond {
      %s = stablehlo.reduce(%acc init: %zero) applies stablehlo.add across dimensions = [0] : (tensor<4xf32>, tensor<f32>) -> tensor<f32>
      %lt = stablehlo.compare LT, %s, %zero, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      %a = stablehlo.add %acc, %x : tensor<4xf32>
      stablehlo.return %a : tensor<4xf32>
    } loc("model.py":21:8)
  return %r : tensor<4xf32>
}
// CHECK: model.py:21:8: error: a loop inside the step has no trip count known at compile time{{.*}}fixed number of iterations

// LONG: long-loop.mlir:{{.*}}error: a loop inside the step runs more than 10 times
