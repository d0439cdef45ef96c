// RUN: tracec-opt %s -p fusion-barriers-to-iree | filecheck %s

// A barrier marked as a fusion barrier becomes one IREE compute barrier per operand,
// which IREE drops once it has formed its kernels (no host wait at run time); the
// barriers tracec needs for a value's identity, and any with a dynamic shape, stay.
module {
  func.func @f(%a: tensor<4x3xf32>, %b: tensor<i32>, %d: tensor<?x3xf32>) -> (tensor<4x3xf32>, tensor<i32>, tensor<4x3xf32>, tensor<?x3xf32>) {
    %0 = stablehlo.multiply %a, %a : tensor<4x3xf32>
    %1:2 = "stablehlo.optimization_barrier"(%0, %b) {tracec.fusion_barrier} : (tensor<4x3xf32>, tensor<i32>) -> (tensor<4x3xf32>, tensor<i32>)
    %2 = stablehlo.add %1#0, %1#0 : tensor<4x3xf32>
    %3 = "stablehlo.optimization_barrier"(%2) : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %4 = "stablehlo.optimization_barrier"(%d) {tracec.fusion_barrier} : (tensor<?x3xf32>) -> tensor<?x3xf32>
    return %2, %1#1, %3, %4 : tensor<4x3xf32>, tensor<i32>, tensor<4x3xf32>, tensor<?x3xf32>
  }
}
// CHECK: %[[M:[0-9]+]] = "stablehlo.multiply"
// CHECK-NEXT: %[[CA:[0-9]+]] = "iree_tensor_ext.compute_barrier.start"(%[[M]]) : (tensor<4x3xf32>) -> tensor<4x3xf32>
// CHECK-NEXT: %[[CB:[0-9]+]] = "iree_tensor_ext.compute_barrier.start"(%{{.*}}) : (tensor<i32>) -> tensor<i32>
// CHECK-NEXT: %[[S:[0-9]+]] = "stablehlo.add"(%[[CA]], %[[CA]])
// CHECK-NEXT: %[[KEEP:[0-9]+]] = "stablehlo.optimization_barrier"(%[[S]]) : (tensor<4x3xf32>) -> tensor<4x3xf32>
// CHECK-NEXT: %[[DYN:[0-9]+]] = "stablehlo.optimization_barrier"(%{{.*}}) {tracec.fusion_barrier} : (tensor<?x3xf32>) -> tensor<?x3xf32>
// CHECK-NEXT: "func.return"(%[[S]], %[[CB]], %[[KEEP]], %[[DYN]])
