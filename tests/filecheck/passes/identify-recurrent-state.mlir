// RUN: tracec-opt %S/Inputs/lif_carry.mlir -p identify-recurrent-state | filecheck %s

// z' = spike(v') is a pure function of another new state: derived from v.
// CHECK: res_attrs = [{tracec.name = "v", tracec.role = "state"}, {tracec.name = "z", tracec.role = "state", tracec.derived_from = ["v"]}, {tracec.name = "output", tracec.role = "output"}]
// CHECK: sym_name = "step"
// CHECK: tracec.recurrent = true
