// The smallest module that fails on IREE 3.13 (compiler 3.13.0rc20261016) the way the
// optimizer's first stablehlo.if did: a branch that computes three tensors.
//
//   C=.venv/bin; F="--iree-hal-target-device=local --iree-hal-local-target-device-backends=llvm-cpu --iree-llvmcpu-target-cpu=host --iree-input-type=stablehlo"
//   $C/iree-compile benchmarks/results/optimizer_if_repro.mlir $F -o /tmp/repro.vmfb
//   $C/iree-run-module --module=/tmp/repro.vmfb --function=f --input="4xf32=1 2 3 4" \
//       --input="4xf32=2 2 2 2" --input="4xf32=5 5 5 5" --input="i32=0"   # not taken: runs
//   ... the same with --input="i32=1"                                     # taken: fails
//   INVALID_ARGUMENT; ref is null; while invoking native function hal.buffer_view.create
//
// Cause: IREE's stream allocation packs the three results the taken branch computes into
// one buffer, so the branch's `cf.br` passes that one !hal.buffer three times (with the
// subview offsets selected after the merge). The VM bytecode's branch remapping then gives
// one block argument the source register itself (coalesced) and moves the buffer out of
// that register for another argument: that argument's register is left null. (The
// annotated bytecode, --iree-vm-bytecode-module-output-format=annotated-mlir-text, shows
// the taken branch's `vm.br` with operands r2, R3, r2, R2 into block arguments r0..r3 and
// remaps R3->r1, r2->r0, R2->r3: r2 is argument 2's register and is moved out.)
// (`--iree-hal-local-target-device-backends=vmvx` fails the same way; so do
// --iree-opt-level=O0, --iree-vm-target-optimize-for-stack-size,
// --iree-stream-resource-alias-mutable-bindings and --iree-stream-partitioning-favor=debug.
// With two results it runs here, by the luck of the register assignment.)
//
// Splitting the branch into one stablehlo.if per result does not help by itself: MLIR's
// scf.if canonicalization merges adjacent ifs on the same condition back into this form.
// One if per result with a stablehlo.optimization_barrier on each result between them
// runs (what passes/insert_optimizer.py emits).
func.func @f(%p: tensor<4xf32>, %q: tensor<4xf32>, %s: tensor<4xf32>, %k: tensor<i32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %c = stablehlo.constant dense<0> : tensor<i32>
  %due = stablehlo.compare GT, %k, %c, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
  %r:3 = "stablehlo.if"(%due) ({
    %a = stablehlo.add %p, %q : tensor<4xf32>
    %b = stablehlo.multiply %p, %q : tensor<4xf32>
    %d = stablehlo.subtract %s, %q : tensor<4xf32>
    stablehlo.return %a, %b, %d : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  }, {
    stablehlo.return %p, %q, %s : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
  }) : (tensor<i1>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return %r#0, %r#1, %r#2 : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}
