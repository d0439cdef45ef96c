// Two unrolled D-RTRL steps of one dense weight (trace [H=3, B=4, I=2]): each step's
// trace read by its gradient (and step 2's δ⁻ read against step 1's trace), the
// gradients added into one accumulator that nothing reads inside the window; the
// second function's accumulator is read after the first step (an update inside the
// window), the third's intermediate trace is returned.
"builtin.module"() ({
  "func.func"() <{sym_name = "window", function_type = (tensor<3x4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<2x3xf32>) -> (tensor<3x4x2xf32>, tensor<2x3xf32>)}> ({
  ^bb0(%e0: tensor<3x4x2xf32>, %d1: tensor<4x3xf32>, %d2: tensor<4x3xf32>, %x1: tensor<4x2xf32>, %x2: tensor<4x2xf32>, %f1: tensor<4x3xf32>, %f2: tensor<4x3xf32>, %g1: tensor<4x3xf32>, %g2: tensor<4x3xf32>, %gp2: tensor<4x3xf32>, %acc: tensor<2x3xf32>):
    %e1 = "tracec.param_trace"(%d1, %e0, %x1, %f1) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
    %t1 = "tracec.trace_grad"(%g1, %e1) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32> loc("m.py":5:20)
    %a1 = "stablehlo.add"(%acc, %t1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %false = "arith.constant"() <{value = false}> : () -> i1
    %empty = "tensor.empty"() : () -> tensor<i1>
    %due = "linalg.fill"(%false, %empty) <{operandSegmentSizes = array<i32: 1, 1>}> ({
    ^bb1(%in: i1, %out: i1):
      "linalg.yield"(%in) : (i1) -> ()
    }) : (i1, tensor<i1>) -> tensor<i1>
    %dueb = "stablehlo.broadcast_in_dim"(%due) <{broadcast_dimensions = array<i64>}> : (tensor<i1>) -> tensor<2x3xi1>
    %zero = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<2x3xf32>}> : () -> tensor<2x3xf32>
    %a1s = "stablehlo.select"(%dueb, %zero, %a1) : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %e2 = "tracec.param_trace"(%d2, %e1, %x2, %f2) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
    %t2 = "tracec.trace_grad"(%g2, %e2) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32> loc("m.py":5:20)
    %tp2 = "tracec.trace_grad"(%gp2, %e1) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32> loc("m.py":5:20)
    %s2 = "stablehlo.add"(%t2, %tp2) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %a2 = "stablehlo.add"(%a1s, %s2) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    "func.return"(%e2, %a2) : (tensor<3x4x2xf32>, tensor<2x3xf32>) -> ()
  }) : () -> ()
  "func.func"() <{sym_name = "read_inside", function_type = (tensor<3x4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<2x3xf32>) -> (tensor<3x4x2xf32>, tensor<2x3xf32>, tensor<2x3xf32>)}> ({
  ^bb0(%e0: tensor<3x4x2xf32>, %d1: tensor<4x3xf32>, %d2: tensor<4x3xf32>, %x1: tensor<4x2xf32>, %x2: tensor<4x2xf32>, %f1: tensor<4x3xf32>, %f2: tensor<4x3xf32>, %g1: tensor<4x3xf32>, %g2: tensor<4x3xf32>, %acc: tensor<2x3xf32>):
    %e1 = "tracec.param_trace"(%d1, %e0, %x1, %f1) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32>
    %t1 = "tracec.trace_grad"(%g1, %e1) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32>
    %a1 = "stablehlo.add"(%acc, %t1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %e2 = "tracec.param_trace"(%d2, %e1, %x2, %f2) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32>
    %t2 = "tracec.trace_grad"(%g2, %e2) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32>
    %a2 = "stablehlo.add"(%a1, %t2) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    "func.return"(%e2, %a1, %a2) : (tensor<3x4x2xf32>, tensor<2x3xf32>, tensor<2x3xf32>) -> ()
  }) : () -> ()
  "func.func"() <{sym_name = "trace_read", function_type = (tensor<3x4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<2x3xf32>) -> (tensor<3x4x2xf32>, tensor<3x4x2xf32>, tensor<2x3xf32>)}> ({
  ^bb0(%e0: tensor<3x4x2xf32>, %d1: tensor<4x3xf32>, %d2: tensor<4x3xf32>, %x1: tensor<4x2xf32>, %x2: tensor<4x2xf32>, %f1: tensor<4x3xf32>, %f2: tensor<4x3xf32>, %g1: tensor<4x3xf32>, %g2: tensor<4x3xf32>, %acc: tensor<2x3xf32>):
    %e1 = "tracec.param_trace"(%d1, %e0, %x1, %f1) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32>
    %t1 = "tracec.trace_grad"(%g1, %e1) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32>
    %a1 = "stablehlo.add"(%acc, %t1) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    %e2 = "tracec.param_trace"(%d2, %e1, %x2, %f2) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32>
    %t2 = "tracec.trace_grad"(%g2, %e2) <{operandSegmentSizes = array<i32: 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<2x3xf32>
    %a2 = "stablehlo.add"(%a1, %t2) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    "func.return"(%e1, %e2, %a2) : (tensor<3x4x2xf32>, tensor<3x4x2xf32>, tensor<2x3xf32>) -> ()
  }) : () -> ()
}) : () -> ()
