// RUN: tracec-opt %s -p guard-scatter-indices | filecheck %s

// Indices from data: the adding scatter keeps its operand and gets in-range indices and
// masked updates; the overwriting one scatters into a padded copy and is sliced back;
// a clamp with constant bounds in range and constant indices in range stay as they are.
func.func public @main(%x: tensor<8x4xf32>, %i: tensor<5x1xi32>, %u: tensor<5x4xf32>, %j: tensor<5xi32>)
    -> (tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) {
  %a = "stablehlo.scatter"(%x, %i, %u) <{indices_are_sorted = true, scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%p: tensor<f32>, %q: tensor<f32>):
    %s = stablehlo.add %p, %q : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<8x4xf32>, tensor<5x1xi32>, tensor<5x4xf32>) -> tensor<8x4xf32> loc("model.py":7:8)
  %b = "stablehlo.scatter"(%x, %j, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%p: tensor<f32>, %q: tensor<f32>):
    stablehlo.return %q : tensor<f32>
  }) : (tensor<8x4xf32>, tensor<5xi32>, tensor<5x4xf32>) -> tensor<8x4xf32>
  %lo = stablehlo.constant dense<0> : tensor<5x1xi32>
  %hi = stablehlo.constant dense<7> : tensor<5x1xi32>
  %ci = stablehlo.clamp %lo, %i, %hi : tensor<5x1xi32>
  %c = "stablehlo.scatter"(%x, %ci, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%p: tensor<f32>, %q: tensor<f32>):
    %s = stablehlo.add %p, %q : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<8x4xf32>, tensor<5x1xi32>, tensor<5x4xf32>) -> tensor<8x4xf32>
  %k = stablehlo.constant dense<[[0], [7], [3], [3], [1]]> : tensor<5x1xi32>
  %d = "stablehlo.scatter"(%x, %k, %u) <{scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [1], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1>}> ({
  ^bb0(%p: tensor<f32>, %q: tensor<f32>):
    %s = stablehlo.add %p, %q : tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<8x4xf32>, tensor<5x1xi32>, tensor<5x4xf32>) -> tensor<8x4xf32>
  return %a, %b, %c, %d : tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>
}

// CHECK: ^bb0(%[[X:.*]]: tensor<8x4xf32>{{.*}}, %[[I:.*]]: tensor<5x1xi32>{{.*}}, %[[U:.*]]: tensor<5x4xf32>{{.*}}, %[[J:.*]]: tensor<5xi32>
// CHECK: %[[SEVEN:.*]] = "stablehlo.constant"() <{value = dense<7> : tensor<1xi32>}>
// CHECK: %[[TOP:.*]] = "stablehlo.broadcast_in_dim"(%[[SEVEN]]) {{.*}} -> tensor<5x1xi32>
// CHECK: %[[ZI:.*]] = "stablehlo.constant"() <{value = dense<0> : tensor<5x1xi32>}>
// CHECK: %[[GE:.*]] = "stablehlo.compare"(%[[I]], %[[ZI]]) <{comparison_direction = #stablehlo<comparison_direction GE>
// CHECK: %[[LE:.*]] = "stablehlo.compare"(%[[I]], %[[TOP]]) <{comparison_direction = #stablehlo<comparison_direction LE>
// CHECK: %[[BOTH:.*]] = "stablehlo.and"(%[[GE]], %[[LE]])
// CHECK: %[[OK:.*]] = "stablehlo.reduce"(%[[BOTH]], %{{.*}}) <{dimensions = array<i64: 1>}>
// CHECK: }) : (tensor<5x1xi1>, tensor<i1>) -> tensor<5xi1>
// CHECK: %[[OKI:.*]] = "stablehlo.broadcast_in_dim"(%[[OK]]) <{broadcast_dimensions = array<i64: 0>}> : (tensor<5xi1>) -> tensor<5x1xi1>
// CHECK: %[[OKU:.*]] = "stablehlo.broadcast_in_dim"(%[[OK]]) <{broadcast_dimensions = array<i64: 0>}> : (tensor<5xi1>) -> tensor<5x4xi1>
// CHECK: %[[SI:.*]] = "stablehlo.select"(%[[OKI]], %[[I]], %[[ZI]])
// CHECK: %[[SU:.*]] = "stablehlo.select"(%[[OKU]], %[[U]], %{{.*}})
// CHECK: %[[A:.*]] = "stablehlo.scatter"(%[[X]], %[[SI]], %[[SU]]) <{indices_are_sorted = false,
// CHECK: }) : (tensor<8x4xf32>, tensor<5x1xi32>, tensor<5x4xf32>) -> tensor<8x4xf32> loc("model.py":7:8)
// CHECK: %[[PAST:.*]] = "stablehlo.constant"() <{value = dense<8> : tensor<5xi32>}>
// CHECK: %[[SJ:.*]] = "stablehlo.select"(%{{.*}}, %[[J]], %[[PAST]])
// CHECK: %[[PAD:.*]] = "stablehlo.pad"(%[[X]], %{{.*}}) <{edge_padding_low = array<i64: 0, 0>, edge_padding_high = array<i64: 1, 0>, interior_padding = array<i64: 0, 0>}> : (tensor<8x4xf32>, tensor<f32>) -> tensor<9x4xf32>
// CHECK: %[[BP:.*]] = "stablehlo.scatter"(%[[PAD]], %[[SJ]], %[[U]])
// CHECK: }) : (tensor<9x4xf32>, tensor<5xi32>, tensor<5x4xf32>) -> tensor<9x4xf32>
// CHECK: %[[B:.*]] = "stablehlo.slice"(%[[BP]]) <{start_indices = array<i64: 0, 0>, limit_indices = array<i64: 8, 4>
// CHECK: %[[CI:.*]] = "stablehlo.clamp"
// CHECK: %[[C:.*]] = "stablehlo.scatter"(%[[X]], %[[CI]], %[[U]])
// CHECK: %[[K:.*]] = "stablehlo.constant"() <{value = dense<{{\[\[}}0], [7], [3], [3], [1]]>
// CHECK: %[[D:.*]] = "stablehlo.scatter"(%[[X]], %[[K]], %[[U]])
// CHECK: "func.return"(%[[A]], %[[B]], %[[C]], %[[D]])
