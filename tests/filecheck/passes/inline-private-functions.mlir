// RUN: tracec-opt %s -p inline-private-functions | filecheck %s

// Calls to private functions are inlined (callee ops keep their own locations, or take
// the call site's); private functions left unused are removed; composite
// decompositions are kept.
module {
  func.func public @main(%x: tensor<3xf32>) -> tensor<3xf32> {
    %0 = func.call @helper(%x) : (tensor<3xf32>) -> tensor<3xf32> loc("model.py":7:8)
    %1 = stablehlo.composite "tracec.spike" %0 {composite_attributes = {alpha = 4.0 : f64, surrogate = "sigmoid"}, decomposition = @tracec.spike} : (tensor<3xf32>) -> tensor<3xf32> loc("model.py":8:8)
    return %1 : tensor<3xf32>
  }
  func.func private @helper(%a: tensor<3xf32>) -> tensor<3xf32> {
    %0 = stablehlo.multiply %a, %a : tensor<3xf32> loc("model.py":20:4)
    %1 = func.call @inner(%0) : (tensor<3xf32>) -> tensor<3xf32> loc("jit(inner)"("/usr/lib/python3.11/site-packages/jax/api.py":9:1))
    return %1 : tensor<3xf32>
  }
  func.func private @inner(%a: tensor<3xf32>) -> tensor<3xf32> {
    %0 = stablehlo.negate %a : tensor<3xf32> loc(callsite("jnp.negative"("/usr/lib/python3.11/site-packages/jax/numpy.py":10:2) at "jit"("/usr/lib/python3.11/site-packages/jax/api.py":3:1)))
    return %0 : tensor<3xf32>
  }
  func.func private @tracec.spike(%a: tensor<3xf32>) -> tensor<3xf32> {
    return %a : tensor<3xf32>
  }
}

// CHECK-LABEL: sym_name = "main"
// CHECK-NOT: func.call
// CHECK: %[[M:.*]] = "stablehlo.multiply"(%{{.*}}, %{{.*}}) {{.*}} loc("model.py":20:4)
// CHECK: %[[N:.*]] = "stablehlo.negate"(%[[M]]) {{.*}} loc("model.py":7:8)
// CHECK: "stablehlo.composite"(%[[N]])
// CHECK-NOT: sym_name = "helper"
// CHECK-NOT: sym_name = "inner"
// CHECK: sym_name = "tracec.spike"
