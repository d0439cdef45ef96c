// RUN: tracec-opt %S/Inputs/fused-gates.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=es-d-rtrl decay=0.5}' | filecheck %s --check-prefix=ES
// RUN: tracec-opt %S/Inputs/fused-gates.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0}' | filecheck %s --check-prefix=DRTRL

// A relation whose output [B, 2H] feeds each neuron through two columns (fused gates
// split by slices): its traces are laid out as the output, [B, 2H] (εf) and
// [B, I, 2H] (D-RTRL); Df comes from one reverse pass (the column sum: each column
// feeds one neuron); D and δ are spread to both halves (broadcast [B, 2, H] + reshape).
// The bias c [2H] gets an exact trace per element of its broadcast operand [B, 2H],
// whose gradient goes back through the broadcast (a batch sum) to c.

// ES: sym_name = "learn_step"
// ES-SAME: tracec.name = "ex/w"}, {tracec.role = "trace", tracec.name = "ef/w/v"}, {tracec.role = "trace", tracec.name = "ep/c/v"}
// ES: ^bb0(%[[W:[0-9]+]]: tensor<2x6xf32> loc(unknown), %{{[0-9]+}}: tensor<6xf32> loc(unknown), %[[V:[0-9]+]]: tensor<4x3xf32> loc(unknown), %[[EX:[0-9]+]]: tensor<4x2xf32> loc(unknown), %[[EF:[0-9]+]]: tensor<4x6xf32> loc(unknown), %[[EP:[0-9]+]]: tensor<4x6xf32> loc(unknown)
// ES: %[[A:[0-9]+]] = "stablehlo.slice"(%{{[0-9]+}}) <{limit_indices = array<i64: 4, 3>
// ES: %[[DB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[A]]) <{broadcast_dimensions = array<i64: 0, 2>}> : (tensor<4x3xf32>) -> tensor<4x2x3xf32> loc("g.py":7:8)
// ES-NEXT: %[[D:[0-9]+]] = "stablehlo.reshape"(%[[DB]]) : (tensor<4x2x3xf32>) -> tensor<4x6xf32> loc("g.py":7:8)
// ES: %[[DF:[0-9]+]] = "stablehlo.add"({{.*}}) : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
// ES: %[[NEF:[0-9]+]] = "tracec.neuron_trace"(%[[D]], %[[EF]], %[[DF]]) <{decay = 5.000000e-01 : f32, gain = 5.000000e-01 : f32, {{.*}}}> : (tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32> loc("g.py":7:8)
// ES: %[[GW:[0-9]+]] = "tracec.factored_grad"(%{{[0-9]+}}, %{{[0-9]+}}, %[[NEF]], %{{[0-9]+}}) {{.*}} -> tensor<2x6xf32> loc("g.py":7:8)
// ES: %[[NEP:[0-9]+]] = "tracec.neuron_trace"(%[[D]], %[[EP]], %[[DF]]) <{decay = 1.000000e+00 : f32, gain = 1.000000e+00 : f32, {{.*}}}> : (tensor<4x6xf32>, tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32> loc("g.py":7:8)
// ES: %[[GU:[0-9]+]] = "tracec.trace_grad"(%{{[0-9]+}}, %[[NEP]]) {{.*}} -> tensor<4x6xf32> loc("g.py":7:8)
// ES: %[[GC:[0-9]+]] = "stablehlo.reduce"(%[[GU]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// ES: "func.return"(%{{[0-9]+}}, %{{[0-9]+}}, %[[NEF]], %[[NEP]], %[[GW]], %[[GC]],

// DRTRL: sym_name = "learn_step"
// DRTRL-SAME: tracec.name = "eps/w/v"}, {tracec.role = "trace", tracec.name = "ep/c/v"}
// DRTRL: %[[EPS:[0-9]+]] = "tracec.param_trace"({{.*}}) {{.*}} : (tensor<4x6xf32>, tensor<6x4x2xf32>, tensor<4x2xf32>, tensor<4x6xf32>) -> tensor<6x4x2xf32> loc("g.py":7:8)
// DRTRL: "tracec.trace_grad"(%{{[0-9]+}}, %[[EPS]]) {{.*}} : (tensor<4x6xf32>, tensor<6x4x2xf32>) -> tensor<2x6xf32> loc("g.py":7:8)
