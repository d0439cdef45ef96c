// RUN: tracec-opt %s -p 'event-driven-relations{mode=always capacity=0.25}' | filecheck %s
// RUN: tracec-opt %s -p event-driven-relations | filecheck %s --check-prefix=AUTO
// RUN: tracec-opt %s -p 'event-driven-relations{min-size=8}' | filecheck %s --check-prefix=WIDE

// A relation fed by a spike (z = tracec.spike(v)) becomes an if: the event-driven
// product when no row has more than ceil(0.25 * 8) = 2 nonzero entries, else the dense
// dot. A relation fed by a plain input stays dense. The default mode (auto) leaves
// relations with N < 1024 alone, and narrow ones (C = 1 slot > H / 8 for H = 3) too.
func.func private @spike(%v: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %zero = stablehlo.constant dense<0.0> : tensor<4x8xf32>
  %gt = stablehlo.compare GT, %v, %zero : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xi1>
  %z = stablehlo.convert %gt : (tensor<4x8xi1>) -> tensor<4x8xf32>
  return %z : tensor<4x8xf32>
}

func.func public @main(%v: tensor<4x8xf32>, %w: tensor<8x3xf32>, %x: tensor<4x8xf32>, %w2: tensor<8x16xf32>)
    -> (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x16xf32>) {
  %z = "stablehlo.composite"(%v) <{name = "tracec.spike", decomposition = @spike, composite_attributes = {alpha = 4.0 : f64, surrogate = "sigmoid"}}> : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %a = stablehlo.dot_general %z, %w, contracting_dims = [1] x [0] : (tensor<4x8xf32>, tensor<8x3xf32>) -> tensor<4x3xf32> loc("model.py":9:4)
  %b = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<4x8xf32>, tensor<8x3xf32>) -> tensor<4x3xf32>
  %c = stablehlo.dot_general %z, %w2, contracting_dims = [1] x [0] : (tensor<4x8xf32>, tensor<8x16xf32>) -> tensor<4x16xf32>
  return %a, %b, %c : tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x16xf32>
}

// CHECK: ^bb0(%[[V:.*]]: tensor<4x8xf32>{{.*}}, %[[W:.*]]: tensor<8x3xf32>{{.*}}, %[[X:.*]]: tensor<4x8xf32>
// CHECK: %[[Z:.*]] = "stablehlo.composite"(%[[V]])
// CHECK: %[[NZ:.*]] = "stablehlo.compare"(%[[Z]], %{{.*}}) <{comparison_direction = #stablehlo<comparison_direction NE>
// CHECK: %[[ON:.*]] = "stablehlo.convert"(%[[NZ]]) : (tensor<4x8xi1>) -> tensor<4x8xi32>
// CHECK: %[[COUNT:.*]] = "stablehlo.reduce"(%[[ON]], %{{.*}}) <{dimensions = array<i64: 1>}>
// CHECK: %[[MOST:.*]] = "stablehlo.reduce"(%[[COUNT]], %{{.*}}) <{dimensions = array<i64: 0>}>
// CHECK: "stablehlo.maximum"
// CHECK: %[[CAP:.*]] = "stablehlo.constant"() <{value = dense<2> : tensor<i32>}>
// CHECK: %[[FITS:.*]] = "stablehlo.compare"(%[[MOST]], %[[CAP]]) <{comparison_direction = #stablehlo<comparison_direction LE>
// CHECK: %[[A:.*]] = "stablehlo.if"(%[[FITS]]) ({
// CHECK: "stablehlo.pad"
// CHECK: "stablehlo.iota"() <{iota_dimension = 1 : i64}> : () -> tensor<4x2x8xi32>
// CHECK: "stablehlo.gather"(%[[W]], %{{.*}}) {{.*}} : (tensor<8x3xf32>, tensor<4x2x1xi32>) -> tensor<4x2x3xf32>
// CHECK: "stablehlo.gather"({{.*}}) {{.*}} : (tensor<32xf32>, tensor<4x2x1xi32>) -> tensor<4x2xf32>
// CHECK: %[[SUM:.*]] = "stablehlo.reduce"({{.*}}) <{dimensions = array<i64: 1>}>
// CHECK: }) : (tensor<4x2x3xf32>, tensor<f32>) -> tensor<4x3xf32>
// CHECK: "stablehlo.return"(%[[SUM]])
// CHECK: }, {
// CHECK: %[[D:.*]] = "stablehlo.dot_general"(%[[Z]], %[[W]])
// CHECK: "stablehlo.return"(%[[D]])
// CHECK: }) : (tensor<i1>) -> tensor<4x3xf32> loc("model.py":9:4)
// CHECK: %[[B:.*]] = "stablehlo.dot_general"(%[[X]], %[[W]])
// CHECK: "stablehlo.if"
// CHECK: }) : (tensor<i1>) -> tensor<4x16xf32>
// CHECK: "func.return"(%[[A]], %[[B]], %{{.*}})

// AUTO-NOT: stablehlo.if
// AUTO: "stablehlo.dot_general"
// AUTO: "stablehlo.dot_general"
// AUTO: "stablehlo.dot_general"
// AUTO-NOT: stablehlo.if

// WIDE: "stablehlo.composite"
// WIDE-NEXT: "stablehlo.dot_general"{{.*}} -> tensor<4x3xf32>
// WIDE-NEXT: "stablehlo.dot_general"{{.*}} -> tensor<4x3xf32>
// WIDE-NOT: "stablehlo.dot_general"
// WIDE: "stablehlo.if"
// WIDE: "stablehlo.dot_general"{{.*}} -> tensor<4x16xf32>
// WIDE: }) : (tensor<i1>) -> tensor<4x16xf32>
// WIDE-NOT: "stablehlo.if"
