// RUN: tracec-opt %S/Inputs/trace-window.mlir -p 'window-param-traces{min-bytes=0}' | filecheck %s

// Two steps in closed form from the window's first trace e0:
//   e2 = (d1 d2) e0 + (d2 f1) x1 + f2 x2  (two param_traces, the second with jac 1),
//   gradient = Σ_b d1 (g1 + gp2 + d2 g2) e0 + x1ᵀ (f1 (g1 + gp2 + d2 g2)) + x2ᵀ (f2 g2),
// added once into the accumulator (the select on a known-false predicate folded).
// CHECK-LABEL: sym_name = "window"
// CHECK: ^bb0(%[[E0:[a-z0-9]+]]: tensor<3x4x2xf32> {{.*}}, %[[D1:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[D2:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[X1:[a-z0-9]+]]: tensor<4x2xf32> {{.*}}, %[[X2:[a-z0-9]+]]: tensor<4x2xf32> {{.*}}, %[[F1:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[F2:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[G1:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[G2:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[GP2:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[ACC:[a-z0-9]+]]: tensor<2x3xf32>
// CHECK: %[[ONE:[0-9]+]] = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<4x3xf32>}>
// CHECK: %[[P:[0-9]+]] = "stablehlo.multiply"(%[[D1]], %[[D2]])
// CHECK: %[[R1F:[0-9]+]] = "stablehlo.multiply"(%[[D2]], %[[F1]])
// CHECK: %[[T1:[0-9]+]] = "tracec.param_trace"(%[[P]], %[[E0]], %[[X1]], %[[R1F]]) {{.*}} loc("m.py":5:20)
// CHECK: %[[T2:[0-9]+]] = "tracec.param_trace"(%[[ONE]], %[[T1]], %[[X2]], %[[F2]])
// CHECK: %[[DL1:[0-9]+]] = "stablehlo.add"(%[[GP2]], %[[G1]])
// CHECK: %[[DG2:[0-9]+]] = "stablehlo.multiply"(%[[D2]], %[[G2]])
// CHECK: %[[S1:[0-9]+]] = "stablehlo.add"(%[[DL1]], %[[DG2]])
// CHECK: %[[A:[0-9]+]] = "stablehlo.multiply"(%[[D1]], %[[S1]])
// CHECK: %[[GE:[0-9]+]] = "tracec.trace_grad"(%[[A]], %[[E0]]) {{.*}} -> tensor<2x3xf32>
// CHECK: %[[C1:[0-9]+]] = "stablehlo.multiply"(%[[F1]], %[[S1]])
// CHECK: %[[C2:[0-9]+]] = "stablehlo.multiply"(%[[F2]], %[[G2]])
// CHECK: %[[XS:[0-9]+]] = "stablehlo.concatenate"(%[[X1]], %[[X2]]) <{dimension = 0 : i64}>
// CHECK: %[[CS:[0-9]+]] = "stablehlo.concatenate"(%[[C1]], %[[C2]]) <{dimension = 0 : i64}>
// CHECK: %[[GX:[0-9]+]] = "stablehlo.dot_general"(%[[XS]], %[[CS]]) {{.*}} : (tensor<8x2xf32>, tensor<8x3xf32>) -> tensor<2x3xf32>
// CHECK: %[[G:[0-9]+]] = "stablehlo.add"(%[[GE]], %[[GX]])
// CHECK: %[[NEW:[0-9]+]] = "stablehlo.add"(%[[ACC]], %[[G]])
// CHECK-NOT: tracec.trace_grad
// CHECK: "func.return"(%[[T2]], %[[NEW]])

// The accumulator read after the first step: left as it is.
// CHECK-LABEL: sym_name = "read_inside"
// CHECK: "tracec.param_trace"
// CHECK: "tracec.trace_grad"
// CHECK: "tracec.param_trace"
// CHECK: "tracec.trace_grad"
// CHECK: "func.return"

// The first step's trace read outside the window: left as it is.
// CHECK-LABEL: sym_name = "trace_read"
// CHECK: "tracec.param_trace"
// CHECK: "tracec.trace_grad"
// CHECK: "tracec.param_trace"
// CHECK: "tracec.trace_grad"
// CHECK: "func.return"
