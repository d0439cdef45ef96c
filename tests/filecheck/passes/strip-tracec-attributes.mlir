// RUN: tracec-opt %s -p strip-tracec-attributes | filecheck %s

// tracec's argument/result attributes go (the manifest keeps names and roles), as do
// its attributes on ops and private functions no entry uses; composite decompositions
// that are used stay.
module {
  func.func @forward(%x: tensor<3xf32> {tracec.role = "input", tracec.name = "x", other.attr = 1 : i32}) -> (tensor<3xf32> {tracec.role = "output", tracec.name = "y"}) {
    %0 = stablehlo.composite "tracec.spike" %x {decomposition = @tracec.spike} : (tensor<3xf32>) -> tensor<3xf32>
    %1 = "stablehlo.optimization_barrier"(%0) {tracec.fusion_barrier, other.mark} : (tensor<3xf32>) -> tensor<3xf32>
    return %1 : tensor<3xf32>
  }
  func.func private @step(%x: tensor<3xf32>) -> tensor<3xf32> {
    return %x : tensor<3xf32>
  }
  func.func private @tracec.spike(%x: tensor<3xf32>) -> tensor<3xf32> {
    return %x : tensor<3xf32>
  }
}
// CHECK-NOT: tracec.role
// CHECK: arg_attrs = [{other.attr = 1 : i32}]{{.*}}res_attrs = [{}], sym_name = "forward"
// CHECK: "stablehlo.optimization_barrier"(%{{[0-9]+}}) {other.mark} :
// CHECK-NOT: sym_name = "step"
// CHECK: sym_name = "tracec.spike"
