// A 1-D convolution relation y = conv(x, w) [B=3, C=2, P=4] (NCH, kernel OIH 2x1x3,
// SAME padding); v' = 0.9 v + y. Written by `tracec c.py --emit stablehlo`.
"builtin.module"() ({
  "func.func"() <{arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "state", tracec.name = "v"}, {tracec.role = "input", tracec.name = "x"}], function_type = (tensor<2x1x3xf32>, tensor<3x2x4xf32>, tensor<3x1x4xf32>) -> (tensor<3x2x4xf32>, tensor<3x2x4xf32>), res_attrs = [{tracec.role = "state", tracec.name = "v"}, {tracec.role = "output", tracec.name = "output"}], sym_name = "step", sym_visibility = "private"}> ({
  ^bb0(%arg0: tensor<2x1x3xf32> loc(unknown), %arg1: tensor<3x2x4xf32> loc(unknown), %arg2: tensor<3x1x4xf32> loc(unknown)):
    %0 = "stablehlo.convolution"(%arg2, %arg0) <{batch_group_count = 1 : i64, dimension_numbers = #stablehlo.conv<[b, f, 0]x[o, i, 0]->[b, f, 0]>, feature_group_count = 1 : i64, lhs_dilation = array<i64: 1>, padding = dense<1> : tensor<1x2xi64>, precision_config = [#stablehlo<precision DEFAULT>, #stablehlo<precision DEFAULT>], rhs_dilation = array<i64: 1>, window_reversal = array<i1: false>, window_strides = array<i64: 1>}> : (tensor<3x1x4xf32>, tensor<2x1x3xf32>) -> tensor<3x2x4xf32> loc("c.py":6:8)
    %1 = "stablehlo.constant"() <{value = dense<9.000000e-01> : tensor<f32>}> : () -> tensor<f32> loc(unknown)
    %2 = "stablehlo.broadcast_in_dim"(%1) <{broadcast_dimensions = array<i64>}> : (tensor<f32>) -> tensor<3x2x4xf32> loc("c.py":7:8)
    %3 = "stablehlo.multiply"(%2, %arg1) : (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> tensor<3x2x4xf32> loc("c.py":7:8)
    %4 = "stablehlo.add"(%3, %0) : (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> tensor<3x2x4xf32> loc("c.py":7:8)
    "func.return"(%4, %4) : (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> () loc(unknown)
  }) : () -> () loc("c.py":5:1)
  "func.func"() <{sym_name = "init_params", function_type = () -> tensor<2x1x3xf32>, res_attrs = [{tracec.role = "param", tracec.name = "w"}]}> ({
    %0 = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<2x1x3xf32>}> : () -> tensor<2x1x3xf32> loc(unknown)
    "func.return"(%0) : (tensor<2x1x3xf32>) -> () loc(unknown)
  }) : () -> () loc(unknown)
  "func.func"() <{sym_name = "init_state", function_type = () -> tensor<3x2x4xf32>, res_attrs = [{tracec.role = "state", tracec.name = "v"}]}> ({
    %0 = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<3x2x4xf32>}> : () -> tensor<3x2x4xf32> loc(unknown)
    "func.return"(%0) : (tensor<3x2x4xf32>) -> () loc(unknown)
  }) : () -> () loc(unknown)
  "func.func"() <{arg_attrs = [{tracec.role = "output", tracec.name = "output"}, {tracec.role = "target", tracec.name = "target"}], function_type = (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> tensor<f32>, res_attrs = [{tracec.role = "loss", tracec.name = "loss"}], sym_name = "loss", sym_visibility = "private"}> ({
  ^bb0(%arg0: tensor<3x2x4xf32> loc(unknown), %arg1: tensor<3x2x4xf32> loc(unknown)):
    %0 = "stablehlo.subtract"(%arg0, %arg1) : (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> tensor<3x2x4xf32> loc("c.py":13:48)
    %1 = "stablehlo.multiply"(%0, %0) : (tensor<3x2x4xf32>, tensor<3x2x4xf32>) -> tensor<3x2x4xf32> loc("c.py":13:47)
    %2 = "stablehlo.constant"() <{value = dense<0.000000e+00> : tensor<f32>}> : () -> tensor<f32> loc("c.py":13:39)
    %3 = "stablehlo.reduce"(%1, %2) <{dimensions = array<i64: 0, 1, 2>}> ({
    ^bb0(%arg2: tensor<f32> loc(unknown), %arg3: tensor<f32> loc(unknown)):
      %4 = "stablehlo.add"(%arg2, %arg3) : (tensor<f32>, tensor<f32>) -> tensor<f32> loc("c.py":13:39)
      "stablehlo.return"(%4) : (tensor<f32>) -> () loc("c.py":13:39)
    }) : (tensor<3x2x4xf32>, tensor<f32>) -> tensor<f32> loc("c.py":13:39)
    "func.return"(%3) : (tensor<f32>) -> () loc(unknown)
  }) : () -> () loc(unknown)
}) {mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32} : () -> () loc(unknown)
