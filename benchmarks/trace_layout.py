"""D-RTRL trace layouts side by side: one weight's trace update and gradient, per backend.

    python -m benchmarks.trace_layout [--B 32] [--I 64] [--H 64] [--no-write]

One D-RTRL time step of one dense weight as lif2 runs it: the carried trace of the
membrane, ``ε_v = D_vv ε + x Df_v``, the spike's trace ``ε_z = D_zv ε + x Df_z`` (needed
for this step's gradient only) and ``acc += Σ_b δ ε_z``, in three forms:

- ``batch-first``: ε ``[B, I, H]``, the batch sum as ``ones[B] · (δ ⊙ ε_z)``
  (the earlier form: lower-traces-to-stablehlo + leading-sums-to-dot);
- ``neuron-major``: ε ``[H, B, I]``, the batch sum as a ``dot_general`` batched over h,
  giving ``[H, I]``, transposed to ``[I, H]`` behind a ``stablehlo.optimization_barrier``
  (what lower-traces-to-stablehlo emits now);
- ``neuron-major, no barrier``: the same without the barrier;
- ``neuron-major, one pass``: both traces and the gradient in one ``linalg.generic``
  with two results (the new ``ε_v``, and the accumulator ``[H, I]`` summed over the
  batch in the same loop nest): the trace read once and written once, the least an
  exact D-RTRL step can do, where the other forms read it twice. IREE only (written in
  linalg, which iree-compile takes beside StableHLO); XLA gets the same arithmetic with
  the accumulator ``[H, I]``. Its results are checked against ``neuron-major``'s first.
  With the accumulator kept ``[I, H]`` (a transpose after the generic), IREE 3.13's
  ``iree-global-opt-propagate-linalg-transpose`` folds the transpose into the generic
  and leaves it invalid (a yield of two values for one result). In a whole model this
  form was slower (benchmarks/README.md, "One pass over a D-RTRL trace, tried").

IREE llvm-cpu with tracec's flags (``tracec.backends.iree_flags``), timed by
``iree-benchmark-module`` (local-sync, median of its repetitions); XLA CPU through
jax.jit of the same arithmetic, 300 steps in one ``fori_loop`` per call, median of 9
calls. Writes benchmarks/results/trace_layout.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, write_text

RESULT = os.path.join(ROOT, "benchmarks", "results", "trace_layout.md")
FORMS = ("batch-first", "neuron-major", "neuron-major, no barrier", "neuron-major, one pass")
ONE_PASS = "neuron-major, one pass"


def _one_pass_mlir(B: int, I: int, H: int) -> str:
    """The same step as one ``linalg.generic`` over (h, b, i), b a reduction: results
    ε_v ``[H, B, I]`` and the accumulator ``[H, I]``."""
    big, vec, xin, acc = (f"tensor<{H}x{B}x{I}xf32>", f"tensor<{B}x{H}xf32>",
                          f"tensor<{B}x{I}xf32>", f"tensor<{H}x{I}xf32>")
    maps = ["affine_map<(h, b, i) -> (h, b, i)>", *["affine_map<(h, b, i) -> (b, h)>"] * 2,
            "affine_map<(h, b, i) -> (b, i)>", *["affine_map<(h, b, i) -> (b, h)>"] * 3,
            "affine_map<(h, b, i) -> (h, b, i)>", "affine_map<(h, b, i) -> (h, i)>"]
    return "\n".join([
        f"func.func @step(%e: {big}, %dvv: {vec}, %dzv: {vec}, %x: {xin}, %fv: {vec}, "
        f"%fz: {vec}, %delta: {vec}, %acc: {acc}) -> ({big}, {acc}) {{",
        f"  %init = tensor.empty() : {big}",
        f"  %r:2 = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
        "iterator_types = [\"parallel\", \"reduction\", \"parallel\"]}",
        f"      ins(%e, %dvv, %dzv, %x, %fv, %fz, %delta : {big}, {vec}, {vec}, {xin}, {vec}, "
        f"{vec}, {vec}) outs(%init, %acc : {big}, {acc}) {{",
        "  ^bb0(%ee: f32, %jv: f32, %jz: f32, %xx: f32, %sv: f32, %sz: f32, %d: f32, "
        "%unused: f32, %a: f32):",
        "    %cv = arith.mulf %jv, %ee : f32", "    %pv = arith.mulf %xx, %sv : f32",
        "    %ev = arith.addf %cv, %pv : f32",
        "    %cz = arith.mulf %jz, %ee : f32", "    %pz = arith.mulf %xx, %sz : f32",
        "    %ez = arith.addf %cz, %pz : f32",
        "    %g = arith.mulf %d, %ez : f32", "    %n = arith.addf %a, %g : f32",
        "    linalg.yield %ev, %n : f32, f32",
        f"  }} -> ({big}, {acc})",
        f"  return %r#0, %r#1 : {big}, {acc}", "}"]) + "\n"


def _mlir(form: str, B: int, I: int, H: int) -> str:
    """The StableHLO of one step: (ε, D_vv, D_zv, x, Df_v, Df_z, δ, acc) -> (ε_v, acc')."""
    if form == ONE_PASS:
        return _one_pass_mlir(B, I, H)
    vec = f"tensor<{B}x{H}xf32>"
    if form == "batch-first":
        big, along_h, along_i = f"tensor<{B}x{I}x{H}xf32>", "[0, 2]", "[0, 1]"
    else:
        big, along_h, along_i = f"tensor<{H}x{B}x{I}xf32>", "[1, 0]", "[1, 2]"
    acc = f"tensor<{I}x{H}xf32>"
    xin = f"tensor<{B}x{I}xf32>"
    lines = [
        f"func.func @step(%e: {big}, %dvv: {vec}, %dzv: {vec}, %x: {xin}, %fv: {vec}, "
        f"%fz: {vec}, %delta: {vec}, %acc: {acc}) -> ({big}, {acc}) {{",
        f"  %xb = stablehlo.broadcast_in_dim %x, dims = {along_i} : ({xin}) -> {big}",
    ]
    for s in ("v", "z"):
        d = "dvv" if s == "v" else "dzv"
        lines += [
            f"  %j{s} = stablehlo.broadcast_in_dim %{d}, dims = {along_h} : ({vec}) -> {big}",
            f"  %c{s} = stablehlo.multiply %j{s}, %e : {big}",
            f"  %f{s}b = stablehlo.broadcast_in_dim %f{s}, dims = {along_h} : ({vec}) -> {big}",
            f"  %s{s} = stablehlo.multiply %xb, %f{s}b : {big}",
            f"  %e{s} = stablehlo.add %c{s}, %s{s} : {big}",
        ]
    if form == "batch-first":
        lines += [
            f"  %db = stablehlo.broadcast_in_dim %delta, dims = [0, 2] : ({vec}) -> {big}",
            f"  %p = stablehlo.multiply %db, %ez : {big}",
            f"  %ones = stablehlo.constant dense<1.0> : tensor<{B}xf32>",
            f"  %g = stablehlo.dot_general %ones, %p, contracting_dims = [0] x [0] : "
            f"(tensor<{B}xf32>, {big}) -> {acc}",
        ]
    else:
        hi = f"tensor<{H}x{I}xf32>"
        lines.append(f"  %ghi = stablehlo.dot_general %delta, %ez, batching_dims = [1] x [0], "
                     f"contracting_dims = [0] x [1] : ({vec}, {big}) -> {hi}")
        src = "%ghi"
        if form == "neuron-major":
            lines.append(f"  %gb = stablehlo.optimization_barrier %ghi : {hi}")
            src = "%gb"
        lines.append(f"  %g = stablehlo.transpose {src}, dims = [1, 0] : ({hi}) -> {acc}")
    lines += [f"  %r = stablehlo.add %acc, %g : {acc}",
              f"  return %ev, %r : {big}, {acc}", "}"]
    return "\n".join(lines) + "\n"


def _iree_us(form: str, B: int, I: int, H: int, tmp: str) -> tuple[float, int]:
    """Median µs per call of iree-benchmark-module, and the number of dispatches."""
    from iree.compiler.tools.binaries import find_tool

    from tracec import backends
    from tracec.options import CompileOptions

    src = os.path.join(tmp, "step.mlir")
    vmfb = os.path.join(tmp, "step.vmfb")
    write_text(src, _mlir(form, B, I, H))
    flags = backends.iree_flags(CompileOptions()) + ["--iree-input-type=stablehlo"]
    compile_ = [find_tool("iree-compile"), src, *flags]
    subprocess.run(compile_ + ["-o", vmfb], check=True, capture_output=True)
    flow = subprocess.run(compile_ + ["--compile-to=flow"], check=True, capture_output=True,
                          text=True).stdout
    dispatches = len(re.findall(r"flow\.dispatch @", flow))
    big = f"{B}x{I}x{H}" if form == "batch-first" else f"{H}x{B}x{I}"
    inputs = [f"{big}xf32", *[f"{B}x{H}xf32"] * 2, f"{B}x{I}xf32", *[f"{B}x{H}xf32"] * 3,
              f"{H}x{I}xf32" if form == ONE_PASS else f"{I}x{H}xf32"]
    bench = os.path.join(os.path.dirname(sys.executable), "iree-benchmark-module")
    out = subprocess.run([bench, f"--module={vmfb}", "--device=local-sync", "--function=step",
                          *[f"--input={t}=0.5" for t in inputs], "--benchmark_repetitions=9"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"_median\s+([\d.]+) (ms|us)", out)
    value = float(m.group(1))
    return (value * 1000 if m.group(2) == "ms" else value), dispatches


def _check_one_pass(B: int, I: int, H: int, tmp: str) -> float:
    """Run the one-pass form and ``neuron-major`` on the same random values (IREE,
    local-sync); raise unless they agree. Returns the largest difference, relative to
    the accumulator's largest entry."""
    import iree.runtime as rt
    import numpy as np
    from iree.compiler.tools.binaries import find_tool

    from tracec import backends
    from tracec.options import CompileOptions

    rng = np.random.default_rng(0)
    e = rng.random((H, B, I), np.float32)
    vecs = [rng.random((B, H), np.float32) for _ in range(2)]
    x = rng.random((B, I), np.float32)
    more = [rng.random((B, H), np.float32) for _ in range(3)]
    acc = rng.random((I, H), np.float32)
    flags = backends.iree_flags(CompileOptions()) + ["--iree-input-type=stablehlo"]
    outs = {}
    for form, a in (("neuron-major", acc), (ONE_PASS, np.ascontiguousarray(acc.T))):
        src, vmfb = os.path.join(tmp, "check.mlir"), os.path.join(tmp, "check.vmfb")
        write_text(src, _mlir(form, B, I, H))
        subprocess.run([find_tool("iree-compile"), src, *flags, "-o", vmfb], check=True,
                       capture_output=True)
        ctx = rt.SystemContext(config=rt.Config("local-sync"))
        with open(vmfb, "rb") as f:
            ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, f.read()))
        outs[form] = [np.asarray(o) for o in ctx.modules.module["step"](e, *vecs, x, *more, a)]
    (ev, g), (ev1, g1) = outs["neuron-major"], outs[ONE_PASS]
    scale = float(np.abs(g).max())
    worst = max(float(np.abs(ev - ev1).max()), float(np.abs(g - g1.T).max())) / scale
    if worst > 1e-5:
        raise AssertionError(f"the one-pass form differs from neuron-major by {worst:.2e}")
    return worst


def _xla_us(form: str, B: int, I: int, H: int, steps: int = 300) -> float:
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    vec = [jnp.asarray(rng.random((B, H), np.float32)) for _ in range(5)]
    x = jnp.asarray(rng.random((B, I), np.float32))

    def step(_, carry):
        e, acc = carry
        dvv, dzv, fv, fz, delta = vec
        if form == "batch-first":
            ev = dvv[:, None, :] * e + x[:, :, None] * fv[:, None, :]
            ez = dzv[:, None, :] * e + x[:, :, None] * fz[:, None, :]
            g = jnp.einsum("b,bih->ih", jnp.ones(B, jnp.float32), delta[:, None, :] * ez)
        else:
            ev = dvv.T[:, :, None] * e + x[None] * fv.T[:, :, None]
            ez = dzv.T[:, :, None] * e + x[None] * fz.T[:, :, None]
            ghi = jnp.einsum("bh,hbi->hi", delta, ez)
            if form == "neuron-major":
                ghi = jax.lax.optimization_barrier(ghi)
            g = ghi if form == ONE_PASS else ghi.T
        return 0.5 * ev, acc + g

    shape = (B, I, H) if form == "batch-first" else (H, B, I)
    run = jax.jit(lambda e, acc: jax.lax.fori_loop(0, steps, step, (e, acc)))
    e0 = jnp.zeros(shape, jnp.float32)
    a0 = jnp.zeros((H, I) if form == ONE_PASS else (I, H), jnp.float32)
    jax.block_until_ready(run(e0, a0))
    times = []
    for _ in range(9):
        t0 = time.perf_counter()
        jax.block_until_ready(run(e0, a0))
        times.append((time.perf_counter() - t0) / steps * 1e6)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--H", type=int, default=64)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    B, I, H = args.B, args.I, args.H
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checked = _check_one_pass(B, I, H, tmp)
        for form in FORMS:
            iree, dispatches = _iree_us(form, B, I, H, tmp)
            rows.append((form, iree, dispatches, _xla_us(form, B, I, H)))
    base = rows[0]
    cmd = f"python -m benchmarks.trace_layout --B {B} --I {I} --H {H}"
    lines = [f"# D-RTRL trace layouts (one weight, B={B}, I={I}, H={H})", "",
             f"Command: `{cmd}`; {os.cpu_count()} cores. One step of one weight's two traces "
             "and its gradient (see the script's docstring). IREE llvm-cpu: "
             "iree-benchmark-module, local-sync, median of 9; XLA CPU: jax.jit, 300 steps "
             "per call, median of 9 calls. These are kernels alone: in a whole model, where "
             "other dispatches surround them, the layout gained less (lif2-like networks, "
             "D-RTRL train_sequence: 1.2× on IREE, 1.7-2.2× on XLA; docs/passes.md, "
             "lower-traces-to-stablehlo). The one-pass form's results agree with "
             f"neuron-major's to {checked:.1e} of the accumulator's largest entry.", "",
             "| form | IREE µs/step | IREE dispatches | XLA µs/step | vs batch-first (IREE / XLA) |",
             "|---|---|---|---|---|"]
    for form, iree, dispatches, xla in rows:
        lines.append(f"| {form} | {iree:.1f} | {dispatches} | {xla:.1f} | "
                     f"{base[1] / iree:.2f}× / {base[3] / xla:.2f}× |")
    text = "\n".join(lines) + "\n"
    if not args.no_write:
        write_text(RESULT, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
