// RUN: tracec-opt %S/Inputs/lif_carry.mlir -p identify-recurrent-state,find-hidden-groups | filecheck %s

// One group {v} with z derived; v reaches v and z element-wise; the recurrent matmul
// is a cut.
// CHECK: tracec.groups = [{states = ["v"], derived = ["z"], zero_recurrence = false, shape = [4 : i64, 3 : i64]}]
// CHECK-SAME: tracec.cuts = [{op = "stablehlo.dot_general", loc = "lif.py:10:35", reason = "mixing through parameter 'w_rec'", from = ["z"], to = ["v", "z"]}]
// CHECK-SAME: tracec.edges = [{from = "v", to = "v"}, {from = "v", to = "z"}, {from = "z", to = "v"}, {from = "z", to = "z"}]
