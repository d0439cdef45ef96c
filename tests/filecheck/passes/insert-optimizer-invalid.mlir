// RUN: not tracec-opt %S/Inputs/learn.mlir -p 'insert-optimizer' 2>&1 | filecheck %s
// RUN: not tracec-opt %S/Inputs/learn.mlir -p 'insert-optimizer{lr=-1.0}' 2>&1 | filecheck %s --check-prefix=LR

// CHECK: error: insert-optimizer: the module has no function @learn_step
// LR: error: insert-optimizer: lr must be a positive number, got -1.0
