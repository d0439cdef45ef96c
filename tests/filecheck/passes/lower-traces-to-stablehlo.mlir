// RUN: tracec-opt %S/Inputs/traces.mlir -p lower-traces-to-stablehlo | filecheck %s
// RUN: tracec-opt %S/Inputs/traces-factored.mlir -p lower-traces-to-stablehlo | filecheck %s --check-prefix=ES
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0 row-gradients=true},lower-traces-to-stablehlo' | filecheck %s --check-prefix=ROWS

// CHECK: ^bb0(%[[EX:[a-z0-9]+]]: tensor<4x2xf32> {{.*}}, %[[X:[a-z0-9]+]]: tensor<4x2xf32> {{.*}}, %[[D:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[EF:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[DF:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[EPS:[a-z0-9]+]]: tensor<3x4x2xf32> {{.*}}, %[[CORR:[a-z0-9]+]]: tensor<f32>
// input_trace: 0.5 εx + x, at the relation's line.
// CHECK: %[[HALF:[0-9]+]] = "stablehlo.constant"() <{value = dense<5.000000e-01> : tensor<4x2xf32>}> {{.*}} loc("m.py":5:20)
// CHECK: %[[S:[0-9]+]] = "stablehlo.multiply"(%[[HALF]], %[[EX]])
// CHECK: %[[NEX:[0-9]+]] = "stablehlo.add"(%[[S]], %[[X]]) {{.*}} loc("m.py":5:20)
// neuron_trace: 0.5 (D εf) + 0.5 Df.
// CHECK: %[[DEF:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[EF]])
// CHECK: %[[H3:[0-9]+]] = "stablehlo.constant"() <{value = dense<5.000000e-01> : tensor<4x3xf32>}>
// CHECK: %[[A:[0-9]+]] = "stablehlo.multiply"(%[[H3]], %[[DEF]])
// CHECK: %[[B:[0-9]+]] = "stablehlo.multiply"(%[[H3]], %[[DF]])
// CHECK: %[[NEF:[0-9]+]] = "stablehlo.add"(%[[A]], %[[B]])
// param_trace: D[b,h] eps[h,b,i] + x[b,i] Df[b,h], neuron-major [3, 4, 2].
// CHECK: %[[DB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[D]]) <{broadcast_dimensions = array<i64: 1, 0>}> : (tensor<4x3xf32>) -> tensor<3x4x2xf32>
// CHECK: %[[C:[0-9]+]] = "stablehlo.multiply"(%[[DB]], %[[EPS]])
// CHECK: %[[XB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[X]]) <{broadcast_dimensions = array<i64: 1, 2>}>
// CHECK: %[[FB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[DF]]) <{broadcast_dimensions = array<i64: 1, 0>}>
// CHECK: %[[XF:[0-9]+]] = "stablehlo.multiply"(%[[XB]], %[[FB]])
// CHECK: %[[NEPS:[0-9]+]] = "stablehlo.add"(%[[C]], %[[XF]])
// trace_grad of a dense trace: Σ_b δ[b,h] eps[h,b,i], batched over h, then [H, I] -> [I, H]
// behind a fusion barrier (IREE keeps the contraction fused with the trace update).
// CHECK: %[[GHI:[0-9]+]] = "stablehlo.dot_general"(%[[D]], %[[NEPS]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [1], rhs_batching_dimensions = [0], lhs_contracting_dimensions = [0], rhs_contracting_dimensions = [1]>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<3x2xf32>
// CHECK: %[[BAR:[0-9]+]] = "stablehlo.optimization_barrier"(%[[GHI]]) {tracec.fusion_barrier}
// CHECK: %[[G1:[0-9]+]] = "stablehlo.transpose"(%[[BAR]]) <{permutation = array<i64: 1, 0>}> : (tensor<3x2xf32>) -> tensor<2x3xf32>
// factored_grad: εxᵀ (δ εf · corr).
// CHECK: %[[SIG:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[NEF]])
// CHECK: %[[CB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[CORR]])
// CHECK: %[[SC:[0-9]+]] = "stablehlo.multiply"(%[[SIG]], %[[CB]])
// CHECK: %[[G2:[0-9]+]] = "stablehlo.dot_general"(%[[NEX]], %[[SC]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [0], rhs_contracting_dimensions = [0]>}> : (tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
// element-wise parameter: decay = gain = 1, no scaling; its gradient reduces the batch
// (no barrier: the module has D-RTRL parameter traces).
// CHECK: %[[NEP:[0-9]+]] = "stablehlo.add"(%[[DEF]], %[[DF]]) {{.*}} loc("m.py":6:8)
// CHECK: %[[Q:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[NEP]])
// CHECK-NOT: optimization_barrier
// CHECK: %[[G3:[0-9]+]] = "stablehlo.reduce"(%[[Q]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// CHECK: (tensor<4x3xf32>, tensor<f32>) -> tensor<3xf32>
// CHECK: "func.return"(%[[NEX]], %[[NEF]], %[[NEPS]], %[[G1]], %[[G2]], %[[G3]])
// CHECK-NOT: "tracec.

// Without D-RTRL parameter traces (ES-D-RTRL), a bias's batch sum reduces its product
// behind a fusion barrier, so IREE keeps the element-wise chain out of the reduction's kernel.
// ES: ^bb0(%[[D:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[EF:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[DF:[a-z0-9]+]]: tensor<4x3xf32>
// ES: %[[DEF:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[EF]])
// ES: %[[NEP:[0-9]+]] = "stablehlo.add"(%[[DEF]], %[[DF]])
// ES: %[[Q:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[NEP]])
// ES: %[[QB:[0-9]+]] = "stablehlo.optimization_barrier"(%[[Q]]) {tracec.fusion_barrier} : (tensor<4x3xf32>) -> tensor<4x3xf32>
// ES: %[[G:[0-9]+]] = "stablehlo.reduce"(%[[QB]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// ES: "func.return"(%[[NEP]], %[[G]])
// Two products: each behind the barrier, summed, one batch sum (one kernel, not two).
// ES: ^bb0(%[[D1:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[E1:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[D2:[a-z0-9]+]]: tensor<4x3xf32> {{.*}}, %[[E2:[a-z0-9]+]]: tensor<4x3xf32>
// ES: %[[P1:[0-9]+]] = "stablehlo.multiply"(%[[D1]], %[[E1]])
// ES: %[[P2:[0-9]+]] = "stablehlo.multiply"(%[[D2]], %[[E2]])
// ES: %[[B1:[0-9]+]], %[[B2:[0-9]+]] = "stablehlo.optimization_barrier"(%[[P1]], %[[P2]]) {tracec.fusion_barrier}
// ES: %[[PS:[0-9]+]] = "stablehlo.add"(%[[B1]], %[[B2]])
// ES: %[[G2:[0-9]+]] = "stablehlo.reduce"(%[[PS]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// ES-NOT: "stablehlo.reduce"
// ES: "func.return"(%[[G2]])
// ES-NOT: "tracec.

// A D-RTRL gradient kept per batch row (result shaped as the trace): δ [B, H] broadcast
// to [H, B, I] times the new trace, element-wise; no contraction, no barrier.
// ROWS: sym_name = "learn_step"
// ROWS: %[[NEW:[0-9]+]] = "stablehlo.add"({{.*}}) : (tensor<3x4x2xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
// ROWS-NEXT: %[[DB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%{{[0-9]+}}) <{broadcast_dimensions = array<i64: 1, 0>}> : (tensor<4x3xf32>) -> tensor<3x4x2xf32>
// ROWS-NEXT: %[[G:[0-9]+]] = "stablehlo.multiply"(%[[DB]], %[[NEW]]) : (tensor<3x4x2xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
// ROWS-NOT: stablehlo.dot_general
// ROWS-NOT: optimization_barrier
// ROWS: "func.return"(%{{[0-9]+}}, %[[NEW]], %[[G]],
