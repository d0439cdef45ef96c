// RUN: tracec-opt %s -p make-entry-points | filecheck %s

// A one-neuron-group step: entries forward / forward_sequence are built from @step,
// the time loop is a tracec.scan, every entry carries the manifest reflection.
module {
  func.func private @step(%w: tensor<2x3xf32> {tracec.role = "param", tracec.name = "w"},
                          %v: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                          %x: tensor<4x2xf32> {tracec.role = "input", tracec.name = "x"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
          tensor<4x3xf32> {tracec.role = "output", tracec.name = "output"}) {
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("model.py":5:8)
    %1 = stablehlo.add %v, %0 : tensor<4x3xf32> loc("model.py":6:8)
    return %1, %1 : tensor<4x3xf32>, tensor<4x3xf32>
  }
  func.func @init_params() -> (tensor<2x3xf32> {tracec.role = "param", tracec.name = "w"}) {
    %0 = stablehlo.constant dense<1.0> : tensor<2x3xf32>
    return %0 : tensor<2x3xf32>
  }
  func.func @init_state() -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"}) {
    %0 = stablehlo.constant dense<0.0> : tensor<4x3xf32>
    return %0 : tensor<4x3xf32>
  }
}

// CHECK: sym_name = "init_params"
// CHECK: iree.reflection = {tracec.abi_version = "1", tracec.entry = "init_params"}
// CHECK: sym_name = "forward"
// CHECK: "stablehlo.dot_general"{{.*}} loc("model.py":5:8)
// CHECK: "stablehlo.add"{{.*}} loc("model.py":6:8)
// CHECK: iree.reflection = {tracec.abi_version = "1", tracec.entry = "forward", tracec.manifest = "{{.*}}\22abi_version\22:1{{.*}}\22forward_sequence\22:{\22args\22:[\22param:w\22,\22state:v\22,\22input:xs\22]
// CHECK: sym_name = "forward_sequence", function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<?x4x2xf32>) -> (tensor<4x3xf32>, tensor<?x4x3xf32>)
// CHECK: ^bb0(%[[W:.*]]: tensor<2x3xf32>{{.*}}, %[[V0:.*]]: tensor<4x3xf32>{{.*}}, %[[XS:.*]]: tensor<?x4x2xf32>
// CHECK: "tracec.scan"(%[[V0]], %[[XS]]) <{operandSegmentSizes = array<i32: 1, 1>}> ({
// CHECK: ^bb{{[0-9]+}}(%[[V:.*]]: tensor<4x3xf32>{{.*}}, %[[X:.*]]: tensor<4x2xf32>
// CHECK: %[[D:.*]] = "stablehlo.dot_general"(%[[X]], %[[W]])
// CHECK: %[[N:.*]] = "stablehlo.add"(%[[V]], %[[D]])
// CHECK: "tracec.yield"(%[[N]], %[[N]])
// CHECK: (tensor<4x3xf32>, tensor<?x4x2xf32>) -> (tensor<4x3xf32>, tensor<?x4x3xf32>)
