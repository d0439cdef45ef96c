// RUN: not tracec-opt %s -p lower-scan-to-stablehlo 2>&1 | filecheck %s
// RUN: not tracec-opt %s -p lower-scan-to-iree 2>&1 | filecheck %s

func.func @f(%v0: tensor<4xf32>) -> tensor<4xf32> {
  %r = "tracec.scan"(%v0) <{operandSegmentSizes = array<i32: 1, 0>}> ({
  ^bb0(%v: tensor<4xf32>):
    "tracec.yield"(%v) : (tensor<4xf32>) -> ()
  }) : (tensor<4xf32>) -> tensor<4xf32> loc("model.py":3:3)
  return %r : tensor<4xf32>
}
// CHECK: model.py:3:3: error: tracec.scan without inputs has no trip count (op 'tracec.scan')
