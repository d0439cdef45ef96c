// RUN: not tracec-opt %s -p 'differentiate{mode=forward func=no_rule}' 2>&1 | filecheck %s --check-prefix=NORULE
// RUN: not tracec-opt %s -p 'differentiate{mode=reverse func=composite}' 2>&1 | filecheck %s --check-prefix=COMPOSITE
// RUN: not tracec-opt %s -p 'differentiate{mode=reverse func=missing}' 2>&1 | filecheck %s --check-prefix=NOFUNC
// RUN: not tracec-opt %s -p 'differentiate{mode=sideways func=no_rule}' 2>&1 | filecheck %s --check-prefix=MODE

module {
  // stablehlo.cbrt has no derivative rule: an error with the op and the user's line,
  // never a silent zero.
  func.func @no_rule(%x: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.cbrt %x : tensor<4xf32> loc("model.py":7:12)
    %1 = stablehlo.multiply %0, %x : tensor<4xf32> loc("model.py":8:8)
    return %1 : tensor<4xf32>
  }
  // A composite tracec does not know.
  func.func @composite(%x: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.composite "mylib.gelu" %x {decomposition = @gelu} : (tensor<4xf32>) -> tensor<4xf32> loc("model.py":12:8)
    return %0 : tensor<4xf32>
  }
  func.func private @gelu(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
// NORULE: model.py:7:12: error: differentiate: no derivative rule for this op (op 'stablehlo.cbrt'); use ops tracec can differentiate
// COMPOSITE: model.py:12:8: error: differentiate: no derivative rule for stablehlo.composite "mylib.gelu" (op 'stablehlo.composite')
// NOFUNC: error: differentiate: the module has no function @missing; functions present: composite, gelu, no_rule
// MODE: error: differentiate: unknown mode 'sideways'; mode is forward or reverse
