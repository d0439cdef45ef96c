// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0}' | filecheck %s --check-prefix=DRTRL
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=es-d-rtrl decay=0.5}' | filecheck %s --check-prefix=ES

// D-RTRL: one trace eps/w/v [B, I, H]; update D·eps + x·Df broadcast to [4, 2, 3];
// gradient Σ_b δ·eps (a reduce over the batch).
// DRTRL: sym_name = "learn_step"
// DRTRL-SAME: function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4x2x3xf32>, tensor<i32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<f32>) -> (tensor<4x3xf32>, tensor<4x2x3xf32>, tensor<2x3xf32>, tensor<f32>, tensor<4x3xf32>)
// DRTRL-SAME: arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "counter", tracec.name = "n"}, {tracec.role = "input", tracec.name = "x"}, {tracec.role = "target", tracec.name = "target"}, {tracec.role = "mask", tracec.name = "mask"}]
// DRTRL-SAME: res_attrs = [{tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "grad", tracec.name = "w"}, {tracec.role = "loss", tracec.name = "loss"}, {tracec.role = "output", tracec.name = "output"}]
// DRTRL: "stablehlo.broadcast_in_dim"({{.*}}) <{broadcast_dimensions = array<i64: 0, 1>}> : (tensor<4x2xf32>) -> tensor<4x2x3xf32>
// DRTRL: "stablehlo.reduce"({{.*}}) <{dimensions = array<i64: 0>}>
// DRTRL: tracec.learning = {algorithm = "d-rtrl", decay = 0.000000e+00 : f64}

// ES-D-RTRL: εx [B, I] and εf [B, H]; the bias correction 1/(1 - α^(n+1)); G = εxᵀ g.
// ES: sym_name = "learn_step"
// ES-SAME: function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<i32>, tensor<4x2xf32>, tensor<4x3xf32>, tensor<f32>)
// ES-SAME: tracec.name = "ex/w"}, {tracec.role = "trace", tracec.name = "ef/w/v"}
// ES: "stablehlo.power"
// ES: "stablehlo.dot_general"({{.*}}) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [0], rhs_contracting_dimensions = [0]>}> : (tensor<4x2xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>

