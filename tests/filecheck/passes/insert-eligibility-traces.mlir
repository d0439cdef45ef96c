// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0}' | filecheck %s --check-prefix=DRTRL
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=es-d-rtrl decay=0.5}' | filecheck %s --check-prefix=ES
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0 row-gradients=true}' | filecheck %s --check-prefix=ROWS

// D-RTRL: one trace eps/w/v [H, B, I] updated by tracec.param_trace (D·eps + x·Df),
// gradient Σ_b δ·eps by tracec.trace_grad; both at the relation's line (m.py:5:20).
// DRTRL: sym_name = "learn_step"
// DRTRL-SAME: function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<i32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<f32>) -> (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<2x3xf32>, tensor<f32>, tensor<4x3xf32>)
// DRTRL-SAME: arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "counter", tracec.name = "n"}, {tracec.role = "input", tracec.name = "x"}, {tracec.role = "target", tracec.name = "target"}, {tracec.role = "mask", tracec.name = "mask"}]
// DRTRL-SAME: res_attrs = [{tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "grad", tracec.name = "w"}, {tracec.role = "loss", tracec.name = "loss"}, {tracec.role = "output", tracec.name = "output"}]
// DRTRL: ^bb0({{.*}}, %[[EPS:[0-9]+]]: tensor<3x4x2xf32> loc(unknown), %{{[0-9]+}}: tensor<i32> loc(unknown), %[[X:[0-9]+]]: tensor<4x2xf32>
// DRTRL: %[[NEW:[0-9]+]] = "tracec.param_trace"(%{{.*}}, %[[EPS]], %[[X]], %{{.*}}) <{operandSegmentSizes = array<i32: 1, 1, 1, 1>}> : (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
// DRTRL: %[[G:[0-9]+]] = "tracec.trace_grad"(%{{.*}}, %[[NEW]]) {{.*}} -> tensor<2x3xf32> loc("m.py":5:20)
// DRTRL: "func.return"(%{{[0-9]+}}, %[[NEW]], %[[G]],
// DRTRL: tracec.learning = {algorithm = "d-rtrl", decay = 0.000000e+00 : f64}

// ES-D-RTRL: εx [B, I] by tracec.input_trace, εf [B, H] by tracec.neuron_trace
// (decay α, gain 1-α), G = εxᵀ (δ·εf) / (1 - α^(n+1)) by tracec.factored_grad.
// ES: sym_name = "learn_step"
// ES-SAME: function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<i32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<f32>)
// ES-SAME: tracec.name = "ex/w"}, {tracec.role = "trace", tracec.name = "ef/w/v"}
// ES: ^bb0({{.*}}, %[[EX:[0-9]+]]: tensor<4x2xf32> loc(unknown), %[[EF:[0-9]+]]: tensor<4x3xf32> loc(unknown), %{{[0-9]+}}: tensor<i32> loc(unknown), %[[X:[0-9]+]]: tensor<4x2xf32>
// ES: "stablehlo.power"
// ES: %[[CORR:[0-9]+]] = "stablehlo.divide"
// ES: %[[NEX:[0-9]+]] = "tracec.input_trace"(%[[EX]], %[[X]]) <{decay = 5.000000e-01 : f32}>
// ES: %[[NEF:[0-9]+]] = "tracec.neuron_trace"(%{{.*}}, %[[EF]], %{{.*}}) <{decay = 5.000000e-01 : f32, gain = 5.000000e-01 : f32, operandSegmentSizes = array<i32: 1, 1, 1>}>
// ES: %[[G:[0-9]+]] = "tracec.factored_grad"(%[[NEX]], %{{.*}}, %[[NEF]], %[[CORR]]) {{.*}} -> tensor<2x3xf32> loc("m.py":5:20)
// ES: "func.return"(%{{[0-9]+}}, %[[NEX]], %[[NEF]], %[[G]],

// row-gradients: the gradient kept per batch row, laid out as the trace [H, B, I] (no
// batch sum), named in batch_rows with the permutation back to w [I, H].
// ROWS: sym_name = "learn_step"
// ROWS-SAME: -> (tensor<4x3xf32>, tensor<3x4x2xf32>, tensor<3x4x2xf32>, tensor<f32>, tensor<4x3xf32>)
// ROWS: %[[NEW:[0-9]+]] = "tracec.param_trace"
// ROWS: %[[G:[0-9]+]] = "tracec.trace_grad"(%{{.*}}, %[[NEW]]) {{.*}} : (tensor<4x3xf32>, tensor<3x4x2xf32>) -> tensor<3x4x2xf32> loc("m.py":5:20)
// ROWS: "func.return"(%{{[0-9]+}}, %[[NEW]], %[[G]],
// ROWS: tracec.learning = {algorithm = "d-rtrl", decay = 0.000000e+00 : f64, batch_rows = {w = [1 : i64, 0 : i64]}}
