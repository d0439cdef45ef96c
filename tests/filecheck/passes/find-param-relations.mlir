// RUN: tracec-opt %S/Inputs/lif_carry.mlir -p identify-recurrent-state,find-hidden-groups,find-param-relations | filecheck %s

// CHECK: tracec.relations = [{param = "w_in", kind = "dense", y_shape = [4 : i64, 3 : i64], groups = [0 : i64], loc = "lif.py:10:20", x_shape = [4 : i64, 2 : i64], param_side = "rhs", op_index = 3 : i64, operand_index = 1 : i64}, {param = "w_rec", kind = "dense", y_shape = [4 : i64, 3 : i64], groups = [0 : i64], loc = "lif.py:10:35", x_shape = [4 : i64, 3 : i64], param_side = "rhs", op_index = 4 : i64, operand_index = 1 : i64}]
// CHECK-SAME: tracec.readout_params = []
