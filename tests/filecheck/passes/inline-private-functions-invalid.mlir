// RUN: not tracec-opt %s -p inline-private-functions 2>&1 | filecheck %s

// A callee with branches between blocks cannot be inlined into a straight-line step.
func.func @main(%x: tensor<f32>) -> tensor<f32> {
  %0 = func.call @branchy(%x) : (tensor<f32>) -> tensor<f32> loc("model.py":4:4)
  return %0 : tensor<f32>
}
func.func private @branchy(%x: tensor<f32>) -> tensor<f32> {
  cf.br ^bb1(%x : tensor<f32>)
^bb1(%y: tensor<f32>):
  return %y : tensor<f32>
}
// CHECK: model.py:4:4: error: cannot inline @branchy: it has control flow between blocks (op 'func.call')
