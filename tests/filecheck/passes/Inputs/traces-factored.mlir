// A bias's exact trace and its gradient (B=4, H=3) in a module without D-RTRL parameter
// traces, as insert-eligibility-traces writes them for ES-D-RTRL; then a gradient of two
// products (two states, or δ with this step's trace and δ⁻ with the previous one).
"builtin.module"() ({
  "func.func"() <{sym_name = "traces", function_type = (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> (tensor<4x3xf32>, tensor<3xf32>)}> ({
  ^bb0(%d: tensor<4x3xf32>, %ef: tensor<4x3xf32>, %df: tensor<4x3xf32>):
    %0 = "tracec.neuron_trace"(%d, %ef, %df) <{decay = 1.000000e+00 : f32, gain = 1.000000e+00 : f32, operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<4x3xf32> loc("m.py":6:8)
    %1 = "tracec.trace_grad"(%d, %0) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32> loc("m.py":6:8)
    "func.return"(%0, %1) : (tensor<4x3xf32>, tensor<3xf32>) -> ()
  }) : () -> ()
  "func.func"() <{sym_name = "two", function_type = (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32>}> ({
  ^bb0(%d1: tensor<4x3xf32>, %e1: tensor<4x3xf32>, %d2: tensor<4x3xf32>, %e2: tensor<4x3xf32>):
    %2 = "tracec.trace_grad"(%d1, %d2, %e1, %e2) <{operandSegmentSizes = array<i32: 2, 2>}> : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>) -> tensor<3xf32> loc("m.py":7:8)
    "func.return"(%2) : (tensor<3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
