// RUN: tracec-opt %S/Inputs/conv.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=es-d-rtrl decay=0.5}' | filecheck %s --check-prefix=ES
// RUN: tracec-opt %S/Inputs/conv.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0}' | filecheck %s --check-prefix=DRTRL

// A convolution relation (x [3, 1, 4], kernel w [2, 1, 3], neurons v [3, 2, 4]).
// ES-D-RTRL: εx shaped like x, εf like the neurons; the gradient is the kernel
// cotangent of a convolution of εx with the learning signal δ·εf·correction
// (the transposed dimension numbers of the weight gradient).
// ES: sym_name = "learn_step"
// ES-SAME: tracec.name = "ex/w"}, {tracec.role = "trace", tracec.name = "ef/w/v"}
// ES: %[[X:[0-9]+]]: tensor<3x1x4xf32> loc(unknown), %{{[0-9]+}}: tensor<3x2x4xf32> loc(unknown), %{{[0-9]+}}: tensor<f32> loc(unknown)):
// ES: %[[EX:[0-9]+]] = "tracec.input_trace"(%{{[0-9]+}}, %[[X]]) <{decay = 5.000000e-01 : f32}> : (tensor<3x1x4xf32>, tensor<3x1x4xf32>) -> tensor<3x1x4xf32> loc("c.py":6:8)
// ES: %[[EF:[0-9]+]] = "tracec.neuron_trace"({{.*}}) -> tensor<3x2x4xf32> loc("c.py":6:8)
// ES: %[[SIG:[0-9]+]] = "stablehlo.multiply"(%{{[0-9]+}}, %[[EF]])
// ES: %[[G:[0-9]+]] = "stablehlo.convolution"(%[[EX]], %{{[0-9]+}}) <{dimension_numbers = #stablehlo.conv<[f, b, 0]x[i, o, 0]->[f, b, 0]>{{.*}} -> tensor<2x1x3xf32> loc("c.py":6:8)
// ES: "func.return"(%{{[0-9]+}}, %[[EX]], %[[EF]], %[[G]],

// D-RTRL: the input of each neuron is its patch, a convolution of x with a one-hot
// kernel (J = 1 channel x 3 offsets), broadcast over output channels and flattened:
// ε [N, B, J] = [8, 3, 3], like the patches (made neuron-major); the [J, N] gradient is
// summed over positions and laid out as the kernel.
// DRTRL: sym_name = "learn_step"
// DRTRL-SAME: tracec.name = "eps/w/v"}
// DRTRL: %[[ONEHOT:[0-9]+]] = "stablehlo.constant"() <{value = dense<{{\[\[\[}}1.000000e+00, 0.000000e+00, 0.000000e+00]], {{\[\[}}0.000000e+00, 1.000000e+00, 0.000000e+00]], {{\[\[}}0.000000e+00, 0.000000e+00, 1.000000e+00]]]> : tensor<3x1x3xf32>}>
// DRTRL: %[[P:[0-9]+]] = "stablehlo.convolution"(%{{[0-9]+}}, %[[ONEHOT]]) {{.*}} -> tensor<3x3x4xf32>
// DRTRL: %[[PB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[P]]) <{broadcast_dimensions = array<i64: 0, 1, 3>}> : (tensor<3x3x4xf32>) -> tensor<3x3x2x4xf32>
// DRTRL: %[[PF:[0-9]+]] = "stablehlo.reshape"(%[[PB]]) : (tensor<3x3x2x4xf32>) -> tensor<3x3x8xf32>
// DRTRL: %[[PX:[0-9]+]] = "stablehlo.transpose"(%[[PF]]) <{permutation = array<i64: 2, 0, 1>}> : (tensor<3x3x8xf32>) -> tensor<8x3x3xf32>
// DRTRL: %[[EPS:[0-9]+]] = "tracec.param_trace"(%{{[0-9]+}}, %{{[0-9]+}}, %[[PX]], %{{[0-9]+}}) {{.*}} : (tensor<3x8xf32>, tensor<8x3x3xf32>, tensor<8x3x3xf32>, tensor<3x8xf32>) -> tensor<8x3x3xf32> loc("c.py":6:8)
// DRTRL: %[[GJN:[0-9]+]] = "tracec.trace_grad"(%{{[0-9]+}}, %[[EPS]]) {{.*}} -> tensor<3x8xf32>
// DRTRL: "stablehlo.reduce"
// DRTRL: %[[G:[0-9]+]] = "stablehlo.transpose"(%{{[0-9]+}}) <{permutation = array<i64: 2, 0, 1>}> : (tensor<1x3x2xf32>) -> tensor<2x1x3xf32>
// DRTRL: "func.return"(%{{[0-9]+}}, %[[EPS]], %[[G]],
