// RUN: tracec-opt %s -p 'differentiate{mode=forward func=elementwise}' | filecheck %s --check-prefix=EW-FWD
// RUN: tracec-opt %s -p 'differentiate{mode=reverse func=elementwise}' | filecheck %s --check-prefix=EW-REV
// RUN: tracec-opt %s -p 'differentiate{mode=reverse func=dense}' --no-locations | filecheck %s --check-prefix=DOT
// RUN: tracec-opt %s -p 'differentiate{mode=reverse func=batched}' --no-locations | filecheck %s --check-prefix=BDOT
// RUN: tracec-opt %s -p 'differentiate{mode=reverse func=reduce}' --no-locations | filecheck %s --check-prefix=RED
// RUN: tracec-opt %s -p 'differentiate{mode=reverse func=shapes}' --no-locations | filecheck %s --check-prefix=SHAPE
// RUN: tracec-opt %s -p 'differentiate{mode=forward func=spike}' | filecheck %s --check-prefix=SPIKE
// RUN: tracec-opt %s -p 'differentiate{mode=forward func=bare}' | filecheck %s --check-prefix=BARE

module {
  // Element-wise: d(tanh(x*y) + 0) = (1 - z*z) * (tx*y + x*ty); the +0 folds away and
  // every new op has the location of the op it differentiates.
  func.func @elementwise(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.multiply %x, %y : tensor<4xf32> loc("model.py":3:8)
    %1 = stablehlo.tanh %0 : tensor<4xf32> loc("model.py":4:8)
    %c = stablehlo.constant dense<0.0> : tensor<4xf32> loc("model.py":5:8)
    %2 = stablehlo.add %1, %c : tensor<4xf32> loc("model.py":5:8)
    return %2 : tensor<4xf32>
  }
  // dot_general: the cotangents are dot_generals again, without transposes.
  func.func @dense(%x: tensor<2x3xf32>, %w: tensor<3x5xf32>) -> tensor<2x5xf32> {
    %0 = stablehlo.dot_general %x, %w, contracting_dims = [1] x [0] : (tensor<2x3xf32>, tensor<3x5xf32>) -> tensor<2x5xf32> loc("model.py":8:8)
    return %0 : tensor<2x5xf32>
  }
  // A batched dot_general (einsum "bij,bjk->bik").
  func.func @batched(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x3x5xf32> {
    %0 = stablehlo.dot_general %a, %b, batching_dims = [0] x [0], contracting_dims = [2] x [1] : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
    return %0 : tensor<2x3x5xf32>
  }
  // reduce: a sum broadcasts its cotangent back; a max shares it among the maxima.
  func.func @reduce(%x: tensor<4x6xf32>) -> (tensor<4xf32>, tensor<6xf32>) {
    %z = stablehlo.constant dense<0.0> : tensor<f32>
    %m = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %0 = stablehlo.reduce(%x init: %z) applies stablehlo.add across dimensions = [1] : (tensor<4x6xf32>, tensor<f32>) -> tensor<4xf32> loc("model.py":11:8)
    %1 = stablehlo.reduce(%x init: %m) applies stablehlo.maximum across dimensions = [0] : (tensor<4x6xf32>, tensor<f32>) -> tensor<6xf32> loc("model.py":12:8)
    return %0, %1 : tensor<4xf32>, tensor<6xf32>
  }
  // broadcast_in_dim (a bias), reshape there and back (folds away), transpose.
  func.func @shapes(%b: tensor<3xf32>, %x: tensor<2x3xf32>) -> tensor<3x2xf32> {
    %0 = stablehlo.broadcast_in_dim %b, dims = [1] : (tensor<3xf32>) -> tensor<2x3xf32> loc("model.py":15:8)
    %1 = stablehlo.add %x, %0 : tensor<2x3xf32> loc("model.py":15:8)
    %2 = stablehlo.reshape %1 : (tensor<2x3xf32>) -> tensor<6xf32> loc("model.py":16:8)
    %3 = stablehlo.reshape %2 : (tensor<6xf32>) -> tensor<2x3xf32> loc("model.py":16:8)
    %4 = stablehlo.transpose %3, dims = [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32> loc("model.py":17:8)
    return %4 : tensor<3x2xf32>
  }
  // tracec.spike with the arctan surrogate, alpha 2: (α/2)/(1+(παx/2)²) = 1/(1+(πx)²);
  // tracec.stop_gradient passes no tangent.
  func.func @spike(%v: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.composite "tracec.spike" %v {composite_attributes = {alpha = 2.0 : f64, surrogate = "arctan"}, decomposition = @heaviside} : (tensor<4xf32>) -> tensor<4xf32> loc("model.py":20:8)
    %1 = stablehlo.composite "tracec.stop_gradient" %v {decomposition = @identity} : (tensor<4xf32>) -> tensor<4xf32> loc("model.py":21:8)
    %2 = stablehlo.multiply %0, %1 : tensor<4xf32> loc("model.py":22:8)
    return %2 : tensor<4xf32>
  }
  // A bare Heaviside (v > 1) gets the default surrogate, α·σ(α(v-1))·σ(-α(v-1)) with α = 4,
  // and a warning with its line.
  func.func @bare(%v: tensor<4xf32>) -> tensor<4xf32> {
    %c = stablehlo.constant dense<1.0> : tensor<4xf32>
    %0 = stablehlo.compare GT, %v, %c, FLOAT : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1> loc("model.py":25:8)
    %1 = stablehlo.convert %0 : (tensor<4xi1>) -> tensor<4xf32> loc("model.py":25:8)
    return %1 : tensor<4xf32>
  }
  func.func private @heaviside(%v: tensor<4xf32>) -> tensor<4xf32> {
    %c = stablehlo.constant dense<0.0> : tensor<4xf32>
    %0 = stablehlo.compare GT, %v, %c, FLOAT : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
    %1 = stablehlo.convert %0 : (tensor<4xi1>) -> tensor<4xf32>
    return %1 : tensor<4xf32>
  }
  func.func private @identity(%v: tensor<4xf32>) -> tensor<4xf32> {
    return %v : tensor<4xf32>
  }
}

// EW-FWD-LABEL: sym_name = "elementwise_jvp", function_type = (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>)
// EW-FWD-SAME: arg_attrs = [{}, {}, {tracec.role = "tangent", tracec.name = "#0"}, {tracec.role = "tangent", tracec.name = "#1"}]
// EW-FWD: ^bb0(%[[X:[0-9]+]]: {{.*}}, %[[Y:[0-9]+]]: {{.*}}, %[[TX:[0-9]+]]: {{.*}}, %[[TY:[0-9]+]]: {{.*}}):
// EW-FWD: %[[M:[0-9]+]] = "stablehlo.multiply"(%[[X]], %[[Y]])
// EW-FWD: %[[Z:[0-9]+]] = "stablehlo.tanh"(%[[M]])
// EW-FWD: %[[OUT:[0-9]+]] = "stablehlo.add"(%[[Z]],
// EW-FWD: %[[A:[0-9]+]] = "stablehlo.multiply"(%[[TX]], %[[Y]]) {{.*}} loc("model.py":3:8)
// EW-FWD: %[[B:[0-9]+]] = "stablehlo.multiply"(%[[X]], %[[TY]]) {{.*}} loc("model.py":3:8)
// EW-FWD: %[[TM:[0-9]+]] = "stablehlo.add"(%[[A]], %[[B]]) {{.*}} loc("model.py":3:8)
// EW-FWD: %[[ONE:[0-9]+]] = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<4xf32>}>
// EW-FWD: %[[ZZ:[0-9]+]] = "stablehlo.multiply"(%[[Z]], %[[Z]]) {{.*}} loc("model.py":4:8)
// EW-FWD: %[[D:[0-9]+]] = "stablehlo.subtract"(%[[ONE]], %[[ZZ]]) {{.*}} loc("model.py":4:8)
// EW-FWD: %[[T:[0-9]+]] = "stablehlo.multiply"(%[[TM]], %[[D]]) {{.*}} loc("model.py":4:8)
// EW-FWD-NOT: stablehlo.add
// EW-FWD: "func.return"(%[[OUT]], %[[T]])

// EW-REV-LABEL: sym_name = "elementwise_vjp", function_type = (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
// EW-REV: ^bb0(%[[X:[0-9]+]]: {{.*}}, %[[Y:[0-9]+]]: {{.*}}, %[[C:[0-9]+]]: {{.*}}):
// EW-REV: %[[Z:[0-9]+]] = "stablehlo.tanh"
// EW-REV: %[[OUT:[0-9]+]] = "stablehlo.add"(%[[Z]],
// EW-REV: %[[ZZ:[0-9]+]] = "stablehlo.multiply"(%[[Z]], %[[Z]])
// EW-REV: %[[D:[0-9]+]] = "stablehlo.subtract"(%{{[0-9]+}}, %[[ZZ]])
// EW-REV: %[[CM:[0-9]+]] = "stablehlo.multiply"(%[[C]], %[[D]]) {{.*}} loc("model.py":4:8)
// EW-REV: %[[CX:[0-9]+]] = "stablehlo.multiply"(%[[CM]], %[[Y]]) {{.*}} loc("model.py":3:8)
// EW-REV: %[[CY:[0-9]+]] = "stablehlo.multiply"(%[[X]], %[[CM]]) {{.*}} loc("model.py":3:8)
// EW-REV: "func.return"(%[[OUT]], %[[CX]], %[[CY]])

// DOT-LABEL: sym_name = "dense_vjp"
// DOT: ^bb0(%[[X:[0-9]+]]: tensor<2x3xf32>, %[[W:[0-9]+]]: tensor<3x5xf32>, %[[C:[0-9]+]]: tensor<2x5xf32>):
// DOT: %[[Y:[0-9]+]] = "stablehlo.dot_general"(%[[X]], %[[W]])
// DOT: %[[CX:[0-9]+]] = "stablehlo.dot_general"(%[[C]], %[[W]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [1]>}> : (tensor<2x5xf32>, tensor<3x5xf32>) -> tensor<2x3xf32>
// DOT: %[[CW:[0-9]+]] = "stablehlo.dot_general"(%[[X]], %[[C]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_contracting_dimensions = [0], rhs_contracting_dimensions = [0]>}> : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<3x5xf32>
// DOT-NOT: stablehlo.transpose
// DOT: "func.return"(%[[Y]], %[[CX]], %[[CW]])

// BDOT-LABEL: sym_name = "batched_vjp"
// BDOT: ^bb0(%[[A:[0-9]+]]: tensor<2x3x4xf32>, %[[B:[0-9]+]]: tensor<2x4x5xf32>, %[[C:[0-9]+]]: tensor<2x3x5xf32>):
// BDOT: %[[CA:[0-9]+]] = "stablehlo.dot_general"(%[[C]], %[[B]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [0], rhs_batching_dimensions = [0], lhs_contracting_dimensions = [2], rhs_contracting_dimensions = [2]>}> : (tensor<2x3x5xf32>, tensor<2x4x5xf32>) -> tensor<2x3x4xf32>
// BDOT: %[[CB:[0-9]+]] = "stablehlo.dot_general"(%[[A]], %[[C]]) <{dot_dimension_numbers = #stablehlo.dot<lhs_batching_dimensions = [0], rhs_batching_dimensions = [0], lhs_contracting_dimensions = [1], rhs_contracting_dimensions = [1]>}> : (tensor<2x3x4xf32>, tensor<2x3x5xf32>) -> tensor<2x4x5xf32>
// BDOT: "func.return"(%{{[0-9]+}}, %[[CA]], %[[CB]])

// RED-LABEL: sym_name = "reduce_vjp"
// RED: ^bb0(%[[X:[0-9]+]]: tensor<4x6xf32>, %[[CS:[0-9]+]]: tensor<4xf32>, %[[CM:[0-9]+]]: tensor<6xf32>):
// RED: %[[SUM:[0-9]+]] = "stablehlo.reduce"(%[[X]]
// RED: "stablehlo.add"
// RED: %[[MAX:[0-9]+]] = "stablehlo.reduce"(%[[X]]
// RED: "stablehlo.maximum"
// RED: %[[MB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[MAX]]) <{broadcast_dimensions = array<i64: 1>}>
// RED: %[[EQ:[0-9]+]] = "stablehlo.compare"(%[[X]], %[[MB]]) <{comparison_direction = #stablehlo<comparison_direction EQ>
// RED: %[[MASK:[0-9]+]] = "stablehlo.convert"(%[[EQ]]) : (tensor<4x6xi1>) -> tensor<4x6xf32>
// RED: %[[N:[0-9]+]] = "stablehlo.reduce"(%[[MASK]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// RED: %[[SHARE:[0-9]+]] = "stablehlo.divide"(%[[CM]], %[[N]])
// RED: %[[SB:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[SHARE]]) <{broadcast_dimensions = array<i64: 1>}>
// RED: %[[C1:[0-9]+]] = "stablehlo.multiply"(%[[SB]], %[[MASK]])
// RED: %[[C2:[0-9]+]] = "stablehlo.broadcast_in_dim"(%[[CS]]) <{broadcast_dimensions = array<i64: 0>}> : (tensor<4xf32>) -> tensor<4x6xf32>
// RED: %[[CX:[0-9]+]] = "stablehlo.add"(%[[C1]], %[[C2]])
// RED: "func.return"(%[[SUM]], %[[MAX]], %[[CX]])

// SHAPE-LABEL: sym_name = "shapes_vjp"
// SHAPE: ^bb0(%[[B:[0-9]+]]: tensor<3xf32>, %[[X:[0-9]+]]: tensor<2x3xf32>, %[[C:[0-9]+]]: tensor<3x2xf32>):
// SHAPE: %[[OUT:[0-9]+]] = "stablehlo.transpose"
// SHAPE: %[[CT:[0-9]+]] = "stablehlo.transpose"(%[[C]]) <{permutation = array<i64: 1, 0>}> : (tensor<3x2xf32>) -> tensor<2x3xf32>
// SHAPE-NOT: stablehlo.reshape
// SHAPE: %[[CB:[0-9]+]] = "stablehlo.reduce"(%[[CT]], %{{[0-9]+}}) <{dimensions = array<i64: 0>}>
// SHAPE: "stablehlo.add"
// SHAPE: }) : (tensor<2x3xf32>, tensor<f32>) -> tensor<3xf32>
// SHAPE: "func.return"(%[[OUT]], %[[CB]], %[[CT]])

// SPIKE-LABEL: sym_name = "spike_jvp"
// SPIKE: ^bb0(%[[V:[0-9]+]]: {{.*}}, %[[T:[0-9]+]]: {{.*}}):
// SPIKE: %[[S:[0-9]+]] = "stablehlo.composite"(%[[V]]) {{.*}}name = "tracec.spike"
// SPIKE: %[[G:[0-9]+]] = "stablehlo.composite"(%[[V]]) {{.*}}name = "tracec.stop_gradient"
// SPIKE: %[[OUT:[0-9]+]] = "stablehlo.multiply"(%[[S]], %[[G]])
// SPIKE: %[[PI:[0-9]+]] = "stablehlo.constant"() <{value = dense<3.14159274> : tensor<4xf32>}> {{.*}} loc("model.py":20:8)
// SPIKE: %[[U:[0-9]+]] = "stablehlo.multiply"(%[[PI]], %[[V]]) {{.*}} loc("model.py":20:8)
// SPIKE: %[[ONE:[0-9]+]] = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<4xf32>}>
// SPIKE: %[[UU:[0-9]+]] = "stablehlo.multiply"(%[[U]], %[[U]])
// SPIKE: %[[DEN:[0-9]+]] = "stablehlo.add"(%[[ONE]], %[[UU]])
// SPIKE: %[[D:[0-9]+]] = "stablehlo.divide"(%[[ONE]], %[[DEN]])
// SPIKE: %[[TS:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[T]])
// SPIKE: %[[TOUT:[0-9]+]] = "stablehlo.multiply"(%[[TS]], %[[G]]) {{.*}} loc("model.py":22:8)
// SPIKE: "func.return"(%[[OUT]], %[[TOUT]])

// BARE-LABEL: sym_name = "bare_jvp"
// BARE: ^bb0(%[[V:[0-9]+]]: {{.*}}, %[[T:[0-9]+]]: {{.*}}):
// BARE: %[[C:[0-9]+]] = "stablehlo.constant"() <{value = dense<1.000000e+00> : tensor<4xf32>}>
// BARE: %[[H:[0-9]+]] = "stablehlo.convert"
// BARE: %[[U:[0-9]+]] = "stablehlo.subtract"(%[[V]], %[[C]]) {{.*}} loc("model.py":25:8)
// The sigmoid surrogate 4·σ(4u)·σ(−4u) as 4e/(1+e)², e = exp(−4|u|): one exponential.
// BARE: %[[NA:[0-9]+]] = "stablehlo.constant"() <{value = dense<-4.000000e+00> : tensor<4xf32>}>
// BARE: %[[AB:[0-9]+]] = "stablehlo.abs"(%[[U]])
// BARE: %[[NAU:[0-9]+]] = "stablehlo.multiply"(%[[NA]], %[[AB]])
// BARE: %[[E:[0-9]+]] = "stablehlo.exponential"(%[[NAU]])
// BARE: %[[ONEE:[0-9]+]] = "stablehlo.add"(%[[C]], %[[E]])
// BARE: %[[A:[0-9]+]] = "stablehlo.constant"() <{value = dense<4.000000e+00> : tensor<4xf32>}>
// BARE: %[[AE:[0-9]+]] = "stablehlo.multiply"(%[[A]], %[[E]])
// BARE: %[[SQ:[0-9]+]] = "stablehlo.multiply"(%[[ONEE]], %[[ONEE]])
// BARE: %[[D:[0-9]+]] = "stablehlo.divide"(%[[AE]], %[[SQ]])
// BARE-NOT: logistic
// BARE: %[[TH:[0-9]+]] = "stablehlo.multiply"(%[[D]], %[[T]])
// BARE: "func.return"(%[[H]], %[[TH]])
// BARE: tracec.warnings = ["model.py:25:8: warning: a bare Heaviside (x > y converted to float) is differentiated with the default surrogate (sigmoid, alpha 4.0); write tracec.spike(v, surrogate=..., alpha=...) to choose one"]
