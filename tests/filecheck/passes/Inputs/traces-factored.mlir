// A bias's exact trace and its gradient (B=4, H=3) in a module without D-RTRL parameter
// traces, as insert-eligibility-traces writes them for ES-D-RTRL.
"builtin.module"() ({
  "func.func"() <{sym_name = "traces", function_type = (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> (tensor<4x3xf32>, tensor<3xf32>)}> ({
  ^bb0(%d: tensor<4x3xf32>, %ef: tensor<4x3xf32>, %df: tensor<4x3xf32>):
    %0 = "tracec.neuron_trace"(%d, %ef, %df) <{decay = 1.000000e+00 : f32, gain = 1.000000e+00 : f32, operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32> loc("m.py":6:8)
    %1 = "tracec.trace_grad"(%d, %0) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32> loc("m.py":6:8)
    "func.return"(%0, %1) : (tensor<4x3xf32>, tensor<3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
