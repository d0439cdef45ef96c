// RUN: tracec-opt %S/Inputs/scan.mlir -p lower-scan-to-iree | filecheck %s

// Loop values cross the scf.for edge as !hal.buffer_view (no tensor carried, so IREE
// copies nothing per iteration); rows are extracted/inserted in place.
// CHECK: ^bb0(%[[W:.*]]: tensor<2x3xf32>{{.*}}, %[[V0:.*]]: tensor<4x3xf32>{{.*}}, %[[XS:.*]]: tensor<?x4x2xf32>
// CHECK: %[[C0:.*]] = "arith.constant"() <{value = 0 : index}>
// CHECK: %[[C1:.*]] = "arith.constant"() <{value = 1 : index}>
// CHECK: %[[T:.*]] = "tensor.dim"(%[[XS]], %{{.*}}) : (tensor<?x4x2xf32>, index) -> index
// CHECK: %[[VB:.*]] = "hal.tensor.export"(%[[V0]]) <{source_encoding = tensor<4x3xf32>}>
// CHECK: %[[E:.*]] = "tensor.empty"(%[[T]]) : (index) -> tensor<?x4x3xf32>
// CHECK: %[[YB:.*]] = "hal.tensor.export"(%[[E]], %[[T]])
// CHECK: "scf.for"(%[[C0]], %[[T]], %[[C1]], %[[VB]], %[[YB]]) ({
// CHECK: ^bb{{[0-9]+}}(%[[IV:.*]]: index{{.*}}, %[[A:.*]]: !hal.buffer_view{{.*}}, %[[B:.*]]: !hal.buffer_view
// CHECK: %[[V:.*]] = "hal.tensor.import"(%[[A]]) <{operandSegmentSizes = array<i32: 1, 0, 0, 0>, target_encoding = tensor<4x3xf32>}>
// CHECK: %[[X:.*]] = "tensor.extract_slice"(%[[XS]], %[[IV]]) {{.*}}static_sizes = array<i64: 1, 4, 2>{{.*}} -> tensor<4x2xf32>
// CHECK: "stablehlo.dot_general"(%[[X]], %[[W]]) {{.*}} loc("model.py":5:8)
// CHECK: %[[N:.*]] = "stablehlo.add"(%[[V]], {{.*}} loc("model.py":6:8)
// CHECK: "hal.tensor.export"(%[[N]])
// CHECK: %[[BUF:.*]] = "hal.tensor.import"(%[[B]], %[[T]])
// CHECK: %[[INS:.*]] = "tensor.insert_slice"(%[[N]], %[[BUF]], %[[IV]])
// CHECK: "hal.tensor.export"(%[[INS]], %[[T]])
// CHECK: "scf.yield"
// CHECK-NOT: tracec.scan
