// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{algorithm=d-rtrl decay=0.0},insert-optimizer{kind=sgd lr=0.5 update-every=3}' | filecheck %s

// Accumulate, count k, and when k+1 >= 3 apply θ - lr·accum and clear the accumulator.
// CHECK: sym_name = "train_core"
// CHECK-SAME: arg_attrs = [{tracec.role = "param", tracec.name = "w"}, {tracec.role = "state", tracec.name = "v"}, {tracec.role = "trace", tracec.name = "eps/w/v"}, {tracec.role = "accum", tracec.name = "w"}, {tracec.role = "counter", tracec.name = "n"}, {tracec.role = "counter", tracec.name = "k"}, {tracec.role = "input", tracec.name = "x"}, {tracec.role = "target", tracec.name = "target"}, {tracec.role = "mask", tracec.name = "mask"}]
// CHECK: "stablehlo.compare"({{.*}}) <{comparison_direction = #stablehlo<comparison_direction GE>, compare_type = #stablehlo<comparison_type SIGNED>}>
// CHECK: "stablehlo.constant"() <{value = dense<5.000000e-01> : tensor<2x3xf32>}>
// CHECK: "stablehlo.select"
