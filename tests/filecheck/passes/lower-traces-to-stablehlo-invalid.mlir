// RUN: not tracec-opt %s -p lower-traces-to-stablehlo 2>&1 | filecheck %s

// The trace ops check their shapes: a D-RTRL trace must be [H, B, I] with the
// per-neuron operands [B, H].
// CHECK: tracec.param_trace: per-neuron operand tensor<4x2xf32> must be [4, 3]
"builtin.module"() ({
  "func.func"() <{sym_name = "bad", function_type = (tensor<4x2xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32>}> ({
  ^bb0(%d: tensor<4x2xf32>, %eps: tensor<3x4x2xf32>):
    %0 = "tracec.param_trace"(%d, %eps) <{operandSegmentSizes = array<i32: 1, 1, 0, 0>}> : (tensor<4x2xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32>
    "func.return"(%0) : (tensor<3x4x2xf32>) -> ()
  }) : () -> ()
}) : () -> ()
