// One of each eligibility-trace op (B=4, I=2, H=3), as insert-eligibility-traces writes them.
"builtin.module"() ({
  "func.func"() <{sym_name = "traces", function_type = (tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<f32>) -> (tensor<4x2xf32>, tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xf32>)}> ({
  ^bb0(%ex: tensor<4x2xf32>, %x: tensor<4x2xf32>, %d: tensor<4x3xf32>, %ef: tensor<4x3xf32>, %df: tensor<4x3xf32>, %eps: tensor<3x4x2xf32>, %corr: tensor<f32>):
    %0 = "tracec.input_trace"(%ex, %x) <{decay = 5.000000e-01 : f32}> : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x2xf32> loc("m.py":5:20)
    %1 = "tracec.neuron_trace"(%d, %ef, %df) <{decay = 5.000000e-01 : f32, gain = 5.000000e-01 : f32, operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32> loc("m.py":5:20)
    %2 = "tracec.param_trace"(%d, %eps, %x, %df) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
    %3 = "tracec.trace_grad"(%d, %2) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32> loc("m.py":5:20)
    %4 = "tracec.factored_grad"(%0, %d, %1, %corr) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<f32>) -> tensor<2x3xf32> loc("m.py":5:20)
    %5 = "tracec.neuron_trace"(%d, %ef, %df) <{decay = 1.000000e+00 : f32, gain = 1.000000e+00 : f32, operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32> loc("m.py":6:8)
    %6 = "tracec.trace_grad"(%d, %5) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32> loc("m.py":6:8)
    "func.return"(%0, %1, %2, %3, %4, %6) : (tensor<4x2xf32>, tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
