// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=sgd lr=0.5 update-every=3}' | filecheck %s
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=adam lr=0.5 update-every=3}' | filecheck %s --check-prefix=ADAM
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=adam lr=0.5 update-every=1}' | filecheck %s --check-prefix=EVERY
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=sgd lr=0.5 update-every=1 skip-masked=true}' | filecheck %s --check-prefix=SKIP
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=adam lr=0.5 update-every=3 skip-masked=true}' | filecheck %s --check-prefix=SKIPADAM
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=sgd lr=0.5 update-every=3 apart=true}' | filecheck %s --check-prefix=APART
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0 row-gradients=true},insert-optimizer{kind=adam lr=0.5 update-every=3}' | filecheck %s --check-prefix=ROWS

// Accumulate, count k, and when k+1 >= 3 apply θ - lr·accum and clear the accumulator.
// CHECK: sym_name = "train_core"
// CHECK-SAME: arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "accum", tracec.name = "w"}, {tracec.role = "counter", tracec.name = "n"}, {tracec.role = "counter", tracec.name = "k"}, {tracec.role = "input", tracec.name = "x"}, {tracec.role = "target", tracec.name = "target"}, {tracec.role = "mask", tracec.name = "mask"}]
// The optimizer runs inside a stablehlo.if on "due": the steps in between only add to the
// accumulator (and the accumulator restarts from zero when due). The branch returns the
// one tensor it updates (the old one when not due), behind an optimization barrier.
// CHECK: %[[DUE:[0-9]+]] = "stablehlo.compare"({{.*}}) <{comparison_direction = #stablehlo<comparison_direction GE>, compare_type = #stablehlo<comparison_type SIGNED>}>
// CHECK: %[[ACC:[0-9]+]] = "stablehlo.select"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}) : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>)
// CHECK-NEXT: %[[IF:[0-9]+]] = "stablehlo.if"(%[[DUE]]) ({
// CHECK-NEXT: "stablehlo.constant"() <{value = dense<5.000000e-01> : tensor<2x3xf32>}>
// CHECK: %[[NEW:[0-9]+]] = "stablehlo.subtract"(%[[W:[0-9]+]],
// CHECK-NEXT: "stablehlo.return"(%[[NEW]])
// CHECK-NEXT: }, {
// CHECK-NEXT: "stablehlo.return"(%[[W]])
// CHECK-NEXT: }) : (tensor<i1>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[OUT:[0-9]+]] = "stablehlo.optimization_barrier"(%[[IF]])
// CHECK-NEXT: "func.return"(%[[OUT]], {{.*}}, %[[ACC]],

// Adam: t counts updates (a select); m, v and the parameter each in their own branch,
// the parameter's branch reading the new moments.
// ADAM: %[[DUE:[0-9]+]] = "stablehlo.compare"({{.*}}) <{comparison_direction = #stablehlo<comparison_direction GE>
// ADAM: %[[T:[0-9]+]] = "stablehlo.select"(%[[DUE]], %{{[0-9]+}}, %{{[0-9]+}}) : (tensor<i1>, tensor<f32>, tensor<f32>)
// ADAM: %[[IFM:[0-9]+]] = "stablehlo.if"(%[[DUE]]) ({
// ADAM: }) : (tensor<i1>) -> tensor<2x3xf32>
// ADAM-NEXT: %[[M:[0-9]+]] = "stablehlo.optimization_barrier"(%[[IFM]])
// ADAM-NEXT: %[[IFV:[0-9]+]] = "stablehlo.if"(%[[DUE]]) ({
// ADAM: }) : (tensor<i1>) -> tensor<2x3xf32>
// ADAM-NEXT: %[[V:[0-9]+]] = "stablehlo.optimization_barrier"(%[[IFV]])
// ADAM-NEXT: %[[IFP:[0-9]+]] = "stablehlo.if"(%[[DUE]]) ({
// ADAM: "stablehlo.divide"(%[[M]],
// ADAM: "stablehlo.divide"(%[[V]],
// ADAM: }) : (tensor<i1>) -> tensor<2x3xf32>
// ADAM-NEXT: %[[P:[0-9]+]] = "stablehlo.optimization_barrier"(%[[IFP]])
// ADAM-NEXT: "func.return"(%[[P]], %[[M]], %[[V]], %[[T]],

// With an update every step there is no branch: the update is selected.
// EVERY: sym_name = "train_core"
// EVERY-NOT: stablehlo.if
// EVERY-NOT: optimization_barrier
// EVERY: "stablehlo.select"
// EVERY-NOT: stablehlo.if

// skip-masked: @advance_core is the step for a mask of 0. The trace still advances; the
// gradient (tracec.trace_grad), the mask and the loss's derivative are gone. SGD after
// every step leaves the parameter and the (zero) accumulator as they came in.
// SKIP: sym_name = "train_core"
// SKIP: "tracec.trace_grad"
// SKIP: sym_name = "advance_core"
// SKIP-NEXT: ^bb0(%[[W:[0-9]+]]: tensor<2x3xf32> {{.*}}, %[[V:[0-9]+]]: tensor<4x3xf32> {{.*}}, %[[E:[0-9]+]]: tensor<3x4x2xf32> {{.*}}, %[[ACC:[0-9]+]]: tensor<2x3xf32>
// SKIP-NOT: tracec.trace_grad
// SKIP: %[[TR:[0-9]+]] = "tracec.param_trace"(%{{[0-9]+}}, %[[E]],
// SKIP-NOT: tracec.trace_grad
// SKIP: "func.return"(%[[W]], %{{[0-9]+}}, %[[TR]], %[[ACC]],

// Adam moves a parameter on its moments alone, so with a zero gradient the update still
// runs when due.
// SKIPADAM: sym_name = "advance_core"
// SKIPADAM-NOT: tracec.trace_grad
// SKIPADAM: "stablehlo.if"
// SKIPADAM-NOT: tracec.trace_grad
// SKIPADAM: "func.return"

// apart (a data-parallel artifact): the step only adds its gradient to the accumulator,
// k still counts the window; @update_core applies SGD to the accumulator it is given
// and returns it cleared.
// APART: sym_name = "train_core"
// APART-NOT: stablehlo.if
// APART: %[[ACC:[0-9]+]] = "stablehlo.add"(%3, %{{[0-9]+}}) : (tensor<2x3xf32>, tensor<2x3xf32>)
// APART-NEXT: "func.return"(%0, {{.*}}, %[[ACC]],
// APART: sym_name = "update_core"
// APART-SAME: arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "accum", tracec.name = "w"}]
// APART: %[[STEP:[0-9]+]] = "stablehlo.multiply"(%{{[0-9]+}}, %1)
// APART-NEXT: %[[NEW:[0-9]+]] = "stablehlo.subtract"(%0, %[[STEP]])
// APART-NEXT: %[[ZERO:[0-9]+]] = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<2x3xf32>}>
// APART-NEXT: "func.return"(%[[NEW]], %[[ZERO]])

// A gradient kept per batch row: the accumulator is laid out as the trace [H, B, I];
// when due, its own branch sums it over the batch and transposes it to w [I, H] (the
// moments and w read that sum); the core names it in tracec.accumulator_rows.
// ROWS: sym_name = "train_core"
// ROWS-SAME: function_type = (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<f32>, tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<3x4x2xf32>, tensor<i32>, tensor<i32>,
// ROWS: %[[DUE:[0-9]+]] = "stablehlo.compare"{{.*}}comparison_direction GE
// ROWS: %[[TOTAL:[0-9]+]] = "stablehlo.add"(%{{[0-9]+}}, %{{[0-9]+}}) : (tensor<3x4x2xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32>
// ROWS: "stablehlo.if"(%[[DUE]]) ({
// ROWS-NEXT: stablehlo.constant
// ROWS-NEXT: "stablehlo.reduce"(%[[TOTAL]], %{{[0-9]+}}) <{dimensions = array<i64: 1>}>
// ROWS: "stablehlo.transpose"(%{{[0-9]+}}) <{permutation = array<i64: 1, 0>}> : (tensor<3x2xf32>) -> tensor<2x3xf32>
// ROWS: tracec.accumulator_rows = {w = [1 : i64, 0 : i64]}
