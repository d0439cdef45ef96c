// RUN: tracec-opt %s -p extract-step | filecheck %s

// A lax.scan as JAX lowers it (after inlining): the loop carries xs, a parameter,
// the counter, the state and the stacked output buffer.
module {
  func.func private @sequence(%w: tensor<2x3xf32> {tracec.role = "param", tracec.name = "w"},
                              %v0: tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
                              %xs: tensor<5x4x2xf32> {tracec.role = "input", tracec.name = "xs"})
      -> (tensor<4x3xf32> {tracec.role = "state", tracec.name = "v"},
          tensor<5x4x3xf32> {tracec.role = "output", tracec.name = "output"}) {
    %zero = stablehlo.constant dense<0.0> : tensor<5x4x3xf32>
    %c0 = stablehlo.constant dense<0> : tensor<i32>
    %r:5 = stablehlo.while(%a = %xs, %b = %w, %i = %c0, %v = %v0, %ys = %zero) : tensor<5x4x2xf32>, tensor<2x3xf32>, tensor<i32>, tensor<4x3xf32>, tensor<5x4x3xf32>
    cond {
      %n = stablehlo.constant dense<5> : tensor<i32>
      %p = stablehlo.compare LT, %i, %n, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    } do {
      %z = stablehlo.constant dense<0> : tensor<i32>
      %row = stablehlo.dynamic_slice %a, %i, %z, %z, sizes = [1, 4, 2] : (tensor<5x4x2xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<1x4x2xf32>
      %x = stablehlo.reshape %row : (tensor<1x4x2xf32>) -> tensor<4x2xf32>
      %y = stablehlo.dot_general %x, %b, contracting_dims = [1] x [0] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32> loc("m.py":9:12)
      %nv = stablehlo.add %v, %y : tensor<4x3xf32> loc("m.py":9:8)
      %u = stablehlo.broadcast_in_dim %nv, dims = [1, 2] : (tensor<4x3xf32>) -> tensor<1x4x3xf32>
      %ys2 = stablehlo.dynamic_update_slice %ys, %u, %i, %z, %z : (tensor<5x4x3xf32>, tensor<1x4x3xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<5x4x3xf32>
      %one = stablehlo.constant dense<1> : tensor<i32>
      %i2 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %a, %b, %i2, %nv, %ys2 : tensor<5x4x2xf32>, tensor<2x3xf32>, tensor<i32>, tensor<4x3xf32>, tensor<5x4x3xf32>
    }
    return %r#3, %r#4 : tensor<4x3xf32>, tensor<5x4x3xf32>
  }
}
// CHECK: tracec.carried = ["stacked-input", "param", "counter", "state", "stacked-output"]
// CHECK: sym_name = "step"
// CHECK-SAME: function_type = (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4x2xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
// CHECK: ^bb{{[0-9]+}}(%[[W:.*]]: tensor<2x3xf32>{{.*}}, %[[V:.*]]: tensor<4x3xf32>{{.*}}, %[[X:.*]]: tensor<4x2xf32>
// CHECK-NOT: dynamic_slice
// CHECK: %[[Y:.*]] = "stablehlo.dot_general"(%[[X]], %[[W]]) {{.*}} loc("m.py":9:12)
// CHECK: %[[N:.*]] = "stablehlo.add"(%[[V]], %[[Y]]) {{.*}} loc("m.py":9:8)
// CHECK-NOT: dynamic_update_slice
// CHECK: "func.return"(%[[N]], %[[N]])
