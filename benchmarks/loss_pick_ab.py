"""A/B: the derivative of a loss's per-row pick as a one-hot select or as a scatter.

    python -m benchmarks.loss_pick_ab [--T 180] [--rounds 7]

``jnp.take_along_axis(logp, target)`` is a gather; its derivative writes the cotangent
back at the picked class. The general derivative rule emits a scatter (a kernel of its
own on IREE, with copies to build its index vectors); for a pick of a few of ``C``
classes per row the autodiff rules emit ``select(iota == target, ct, 0)``, which fuses
with its neighbours. This compiles examples/lif2.py (B = 32, 10 classes) for ES-D-RTRL
and D-RTRL both ways in one process (the rule's ``ONE_HOT_MAX_CLASSES`` set to 0 gives
the scatter), counts IREE dispatches per step (``--scan-unroll 1``) and times
``train_sequence`` (update every T steps) in interleaved rounds: medians.
Writes benchmarks/results/loss_pick_ab.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, write_text


def _compile(alg: str, T: int, one_hot: bool, scan_unroll: int = 4):
    import tracec
    from tracec.passes.autodiff import rules

    saved = rules.ONE_HOT_MAX_CLASSES
    rules.ONE_HOT_MAX_CLASSES = saved if one_hot else 0
    try:
        return tracec.compile(os.path.join(ROOT, "examples", "lif2.py"), algorithm=alg,
                              update_every=T, scan_unroll=scan_unroll, use_cache=False)
    finally:
        rules.ONE_HOT_MAX_CLASSES = saved


def _dispatches(art, tmp: str, tag: str) -> int:
    from benchmarks.dispatch_profile import dispatch_kinds, stream_ir

    path = os.path.join(tmp, f"{tag}.mlir")
    with open(path, "w") as f:
        f.write(art.ir["iree-input"])
    return sum(dispatch_kinds(stream_ir(path, path + ".stream"), "train_sequence").values())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "loss_pick_ab.md"))
    args = ap.parse_args(argv)
    import tracec.runtime

    rng = np.random.default_rng(0)
    xs = (rng.random((args.T, 32, 40)) < 0.2).astype(np.float32)
    ys = rng.integers(0, 10, (args.T, 32)).astype(np.int32)
    lines = ["# Loss pick derivative: one-hot select vs scatter (examples/lif2.py, B = 32)", "",
             f"Command: `python -m benchmarks.loss_pick_ab --T {args.T} --rounds {args.rounds}`; "
             "IREE llvm-cpu, local-sync; µs per step of `train_sequence`, medians of the "
             "rounds (the two forms alternate in each round); dispatches per step counted "
             "with `--scan-unroll 1`.", "",
             "| rule | form | dispatches per step | µs per step | ratio |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for alg in ("es-d-rtrl", "d-rtrl"):
            learners, counts = {}, {}
            for form, one_hot in (("scatter", False), ("one-hot", True)):
                counts[form] = _dispatches(_compile(alg, args.T, one_hot, 1), tmp, f"{alg}-{form}")
                path = os.path.join(tmp, f"{alg}-{form}.vmfb")
                _compile(alg, args.T, one_hot).save(path)
                learners[form] = tracec.runtime.load(path)
                learners[form].train_sequence(xs, ys)  # warm-up
            times = {form: [] for form in learners}
            for _ in range(args.rounds):
                for form, learner in learners.items():
                    learner.reset()
                    t0 = time.perf_counter()
                    learner.train_sequence(xs, ys)
                    times[form].append((time.perf_counter() - t0) / args.T * 1e6)
            base = statistics.median(times["scatter"])
            for form in learners:
                med = statistics.median(times[form])
                lines.append(f"| {alg} | {form} | {counts[form]} | {med:.1f} | {base / med:.2f}× |")
                print(lines[-1], flush=True)
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
