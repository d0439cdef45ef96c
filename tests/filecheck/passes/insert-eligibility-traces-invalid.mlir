// RUN: not tracec-opt %S/Inputs/lif_carry.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces' 2>&1 | filecheck %s
// RUN: not tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations,insert-eligibility-traces{decay=1.5}' 2>&1 | filecheck %s --check-prefix=DECAY
// RUN: tracec-opt %S/Inputs/learn.mlir -p 'identify-recurrent-state,find-hidden-groups,find-param-relations' | sed 's/op_index = [0-9]*/op_index = 0/g' | not tracec-opt - -p insert-eligibility-traces 2>&1 | filecheck %s --check-prefix=STALE

// CHECK: error: online learning needs a loss: give tracec.Model a loss(output, target) and a target spec
// DECAY: error: insert-eligibility-traces: decay must be in [0, 1), got 1.5
// STALE: error: tracec.relations no longer matches @step (the relation of 'w' at m.py:5:20)
// STALE-SAME: run find-param-relations again right before the learning passes
