// RUN: tracec-opt %S/Inputs/scan.mlir -p lower-scan-to-stablehlo | filecheck %s

// T from the leading dim of xs; the body's captured parameter w is carried explicitly;
// the stacked output is a [T,4,3] buffer written a row at a time.
// CHECK: ^bb0(%[[W:.*]]: tensor<2x3xf32>{{.*}}, %[[V0:.*]]: tensor<4x3xf32>{{.*}}, %[[XS:.*]]: tensor<?x4x2xf32>
// CHECK: %[[T:.*]] = "stablehlo.get_dimension_size"(%[[XS]]) <{dimension = 0 : i64}> {{.*}} loc("model.py":1:1)
// CHECK: %[[BUF:.*]] = "stablehlo.dynamic_broadcast_in_dim"({{.*}}) -> tensor<?x4x3xf32>
// CHECK: %[[I0:.*]] = "stablehlo.constant"() <{value = dense<0> : tensor<i32>}>
// CHECK: "stablehlo.while"(%[[I0]], %[[W]], %[[V0]], %[[BUF]]) ({
// CHECK: "stablehlo.compare"(%{{.*}}, %[[T]]) <{comparison_direction = #stablehlo<comparison_direction LT>
// CHECK: }, {
// CHECK: ^bb{{[0-9]+}}(%[[I:.*]]: tensor<i32>{{.*}}, %[[WB:.*]]: tensor<2x3xf32>{{.*}}, %[[V:.*]]: tensor<4x3xf32>{{.*}}, %[[B:.*]]: tensor<?x4x3xf32>
// CHECK: %[[ROW:.*]] = "stablehlo.dynamic_slice"(%[[XS]], %[[I]], {{.*}}) <{slice_sizes = array<i64: 1, 4, 2>}>
// CHECK: %[[X:.*]] = "stablehlo.reshape"(%[[ROW]]) : (tensor<1x4x2xf32>) -> tensor<4x2xf32>
// CHECK: %[[D:.*]] = "stablehlo.dot_general"(%[[X]], %[[WB]]) {{.*}} loc("model.py":5:8)
// CHECK: %[[N:.*]] = "stablehlo.add"(%[[V]], %[[D]]) {{.*}} loc("model.py":6:8)
// CHECK: %[[UPD:.*]] = "stablehlo.reshape"(%[[N]]) : (tensor<4x3xf32>) -> tensor<1x4x3xf32>
// CHECK: "stablehlo.dynamic_update_slice"(%[[B]], %[[UPD]], %[[I]],
// CHECK: "stablehlo.return"
// CHECK-NOT: tracec.scan
