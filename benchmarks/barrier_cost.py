"""What one barrier costs IREE's host program: a loop of N small kernels kept apart by
``stablehlo.optimization_barrier`` or by ``iree_tensor_ext.compute_barrier.start``.

    python -m benchmarks.barrier_cost [--T 2000] [--rounds 7]

Each loop iteration reads a row ``x[t]`` (``[32, 64]``), adds it to the carried value
and then squares it N times, with a barrier before each square so each is a kernel
(an IREE dispatch) of its own; IREE llvm-cpu, local-sync, the flags tracec compiles
with. The slope of µs per iteration over N is the cost of one kernel with its barrier.
Writes benchmarks/results/barrier_cost.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, write_text

COUNTS = (0, 8, 32)
KINDS = {"optimization barrier": "stablehlo.optimization_barrier",
         "compute barrier": "iree_tensor_ext.compute_barrier.start"}


def module(n: int, barrier: str) -> str:
    t = "tensor<32x64xf32>"
    body = ['%xt = "stablehlo.dynamic_slice"(%x, %i, %z, %z) <{slice_sizes = array<i64: 1, 32, 64>}>'
            ' : (tensor<?x32x64xf32>, tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<1x32x64xf32>',
            f"%xr = stablehlo.reshape %xt : (tensor<1x32x64xf32>) -> {t}",
            f"%v0 = stablehlo.add %s, %xr : {t}"]
    for k in range(1, n + 1):
        body.append(f'%b{k} = "{barrier}"(%v{k - 1}) : ({t}) -> {t}')
        body.append(f"%v{k} = stablehlo.multiply %b{k}, %b{k} : {t}")
    lines = "\n      ".join(body)
    return f"""
func.func @run(%x: tensor<?x32x64xf32>, %s0: {t}) -> {t} {{
  %c0 = stablehlo.constant dense<0> : tensor<i32>
  %one = stablehlo.constant dense<1> : tensor<i32>
  %T = stablehlo.get_dimension_size %x, dim = 0 : (tensor<?x32x64xf32>) -> tensor<i32>
  %r:2 = stablehlo.while(%i = %c0, %s = %s0) : tensor<i32>, {t}
    cond {{
      %p = stablehlo.compare LT, %i, %T : (tensor<i32>, tensor<i32>) -> tensor<i1>
      stablehlo.return %p : tensor<i1>
    }} do {{
      %z = stablehlo.constant dense<0> : tensor<i32>
      {lines}
      %i1 = stablehlo.add %i, %one : tensor<i32>
      stablehlo.return %i1, %v{n} : tensor<i32>, {t}
    }}
  return %r#1 : {t}
}}"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "barrier_cost.md"))
    args = ap.parse_args(argv)
    import iree.runtime as rt

    from iree.compiler.tools.binaries import find_tool

    from tracec.backends import iree_flags
    from tracec.options import CompileOptions

    flags = iree_flags(CompileOptions()) + ["--iree-input-type=stablehlo"]
    x = np.random.default_rng(0).random((args.T, 32, 64)).astype(np.float32)
    s = np.zeros((32, 64), np.float32)
    fns = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, op in KINDS.items():
            for n in COUNTS:
                path = os.path.join(tmp, f"{len(fns)}.vmfb")
                subprocess.run([find_tool("iree-compile"), "-", *flags, "-o", path],
                               input=module(n, op).encode(), check=True)
                config = rt.Config("local-sync")
                ctx = rt.SystemContext(config=config)
                ctx.add_vm_module(rt.VmModule.mmap(config.vm_instance, path))
                fns[(kind, n)] = ctx.modules.module.run
        us = {k: [] for k in fns}
        for r in range(args.rounds):
            for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
                t0 = time.perf_counter()
                fns[k](x, s)
                us[k].append((time.perf_counter() - t0) / args.T * 1e6)
    lines = ["# One kernel and its barrier in IREE's host program", "",
             f"Command: `python -m benchmarks.barrier_cost --T {args.T} --rounds {args.rounds}`. "
             "A loop of T iterations, each N `[32, 64]` squares kept apart by barriers; IREE "
             "llvm-cpu, local-sync; µs per iteration, medians of interleaved rounds; the "
             f"slope: µs per kernel from N = {COUNTS[0]} to {COUNTS[-1]}.", "",
             "| barrier | " + " | ".join(f"N = {n}" for n in COUNTS) + " | µs per kernel |",
             "|---|" + "---|" * (len(COUNTS) + 1)]
    for kind in KINDS:
        med = [statistics.median(us[(kind, n)]) for n in COUNTS]
        slope = (med[-1] - med[0]) / (COUNTS[-1] - COUNTS[0])
        lines.append(f"| {kind} | " + " | ".join(f"{m:.1f}" for m in med) + f" | {slope:.2f} |")
        print(lines[-1], flush=True)
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
