// RUN: tracec-opt %s -p 'check-backend-ops{target=llvm-cpu}' | filecheck %s
// RUN: tracec-opt %s -p 'check-backend-ops{target=xla}' | filecheck %s

// An analysis: IR without unsupported ops passes through unchanged.
func.func @main(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = stablehlo.tanh %x : tensor<3xf32> loc("model.py":2:2)
  return %0 : tensor<3xf32>
}
// CHECK: "stablehlo.tanh"(%{{.*}}) : (tensor<3xf32>) -> tensor<3xf32> loc("model.py":2:2)
