// RUN: not tracec-opt %s -p 'check-backend-ops{target=llvm-cpu}' 2>&1 | filecheck %s
// RUN: tracec-opt %s -p 'check-backend-ops{target=xla}' | filecheck %s --check-prefix=XLA

func.func @main(%x: tensor<3x3xf32>) -> tensor<3x3xf32> {
  %0 = stablehlo.custom_call @lapack_sgetrf_ffi(%x) : (tensor<3x3xf32>) -> tensor<3x3xf32> loc("model.py":12:8)
  return %0 : tensor<3x3xf32>
}
// CHECK: model.py:12:8: error: the llvm-cpu backend cannot compile custom call 'lapack_sgetrf_ffi' (op 'stablehlo.custom_call'); {{.*}}--target xla
// XLA: "stablehlo.custom_call"

// -----
// RUN: not tracec-opt %S/Inputs/rng.mlir -p 'check-backend-ops{target=vmvx}' 2>&1 | filecheck %s --check-prefix=RNG
// RNG: rng.mlir:3:8: error: the vmvx backend cannot compile random number generation inside the step (op 'stablehlo.rng'); pass random numbers in as inputs instead

// -----
// RUN: not tracec-opt %S/Inputs/callback.mlir -p 'check-backend-ops{target=xla}' 2>&1 | filecheck %s --check-prefix=CALLBACK
// RUN: not tracec-opt %S/Inputs/callback.mlir -p 'check-backend-ops{target=llvm-cpu}' 2>&1 | filecheck %s --check-prefix=CALLBACK
// CALLBACK: callback.mlir:2:8: error: the {{xla|llvm-cpu}} target cannot compile a host callback (custom call 'xla_python_cpu_callback'{{.*}}; compute it with jax array ops in the step
