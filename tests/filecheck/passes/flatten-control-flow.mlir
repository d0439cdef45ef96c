// RUN: tracec-opt %s -p flatten-control-flow | filecheck %s

// A fori_loop of 3 sub-steps (a counter from 0 stepping by 1 while < 3) is unrolled:
// the body's multiply appears three times, each with the body's location; the case of
// a cond becomes both branches and a select on the index.
func.func private @step(%v: tensor<4xf32>, %x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %c1 = stablehlo.constant dense<1> : tensor<i32>
  %c3 = stablehlo.constant dense<3> : tensor<i32>
  %half = stablehlo.constant dense<0.5> : tensor<4xf32>
  %r:2 = stablehlo.while(%i = %c0, %acc = %v) : tensor<i32>, tensor<4xf32>
    cond {
      %lt = stablehlo.compare LT, %i, %c3, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      %m = stablehlo.multiply %acc, %half : tensor<4xf32> loc("model.py":9:12)
      %a = stablehlo.add %m, %x : tensor<4xf32> loc("model.py":9:20)
      %n = stablehlo.add %i, %c1 : tensor<i32>
      stablehlo.return %n, %a : tensor<i32>, tensor<4xf32>
    }
  %k = stablehlo.convert %x : (tensor<4xf32>) -> tensor<4xi32>
  %k0 = stablehlo.slice %k [0:1] : (tensor<4xi32>) -> tensor<1xi32>
  %ki = stablehlo.reshape %k0 : (tensor<1xi32>) -> tensor<i32>
  %c = "stablehlo.case"(%ki) ({
    %e = stablehlo.exponential %r#1 : tensor<4xf32> loc("model.py":12:4)
    stablehlo.return %e : tensor<4xf32>
  }, {
    %t = stablehlo.tanh %r#1 : tensor<4xf32> loc("model.py":13:4)
    stablehlo.return %t : tensor<4xf32>
  }) : (tensor<i32>) -> tensor<4xf32>
  return %r#1, %c : tensor<4xf32>, tensor<4xf32>
}

// CHECK-NOT: stablehlo.while
// CHECK-NOT: stablehlo.case
// CHECK: %[[M1:.*]] = "stablehlo.multiply"(%{{.*}}, %{{.*}}) {{.*}}loc("model.py":9:12)
// CHECK: %[[A1:.*]] = "stablehlo.add"(%[[M1]], %{{.*}}) {{.*}}loc("model.py":9:20)
// CHECK: %[[M2:.*]] = "stablehlo.multiply"(%[[A1]], %{{.*}}) {{.*}}loc("model.py":9:12)
// CHECK: %[[A2:.*]] = "stablehlo.add"(%[[M2]], %{{.*}})
// CHECK: %[[M3:.*]] = "stablehlo.multiply"(%[[A2]], %{{.*}})
// CHECK: %[[A3:.*]] = "stablehlo.add"(%[[M3]], %{{.*}})
// CHECK-NOT: "stablehlo.multiply"(%[[A3]]
// CHECK: %[[E:.*]] = "stablehlo.exponential"(%[[A3]]) {{.*}}loc("model.py":12:4)
// CHECK: %[[T:.*]] = "stablehlo.tanh"(%[[A3]]) {{.*}}loc("model.py":13:4)
// CHECK: %[[EQ:.*]] = "stablehlo.compare"(%{{.*}}, %{{.*}}) {{.*}}comparison_direction EQ
// CHECK: %[[P:.*]] = "stablehlo.broadcast_in_dim"(%[[EQ]])
// CHECK: %[[SEL:.*]] = "stablehlo.select"(%[[P]], %[[E]], %[[T]])
// CHECK: "func.return"(%[[A3]], %[[SEL]])

// In @loss, a loop reading row i of a [3, 4] array: after unrolling, the rows are
// static slices.
func.func private @loss(%a: tensor<3x4xf32>, %t: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %c1 = stablehlo.constant dense<1> : tensor<i32>
  %c3 = stablehlo.constant dense<3> : tensor<i32>
  %r:2 = stablehlo.while(%i = %c0, %acc = %t) : tensor<i32>, tensor<4xf32>
    cond {
      %lt = stablehlo.compare LT, %i, %c3, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %lt : tensor<i1>
    } do {
      %row = stablehlo.dynamic_slice %a, %i, %c0, sizes = [1, 4] : (tensor<3x4xf32>, tensor<i32>, tensor<i32>) -> tensor<1x4xf32>
      %v = stablehlo.reshape %row : (tensor<1x4xf32>) -> tensor<4xf32>
      %s = stablehlo.add %acc, %v : tensor<4xf32>
      %n = stablehlo.add %i, %c1 : tensor<i32>
      stablehlo.return %n, %s : tensor<i32>, tensor<4xf32>
    }
  return %r#1 : tensor<4xf32>
}
// CHECK-LABEL: sym_name = "loss"
// CHECK-NOT: dynamic_slice
// CHECK: "stablehlo.slice"(%{{.*}}) <{start_indices = array<i64: 0, 0>, limit_indices = array<i64: 1, 4>
// CHECK: "stablehlo.slice"(%{{.*}}) <{start_indices = array<i64: 1, 0>, limit_indices = array<i64: 2, 4>
// CHECK: "stablehlo.slice"(%{{.*}}) <{start_indices = array<i64: 2, 0>, limit_indices = array<i64: 3, 4>
