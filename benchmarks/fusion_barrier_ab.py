"""A/B: what IREE's host program does per time step: fusion barriers, counters, allocator.

    python -m benchmarks.fusion_barrier_ab [--T 180] [--rounds 11]

On this CPU a small network's time step is mostly IREE's host program, not its
kernels (`perf` on lif2's ES-D-RTRL step: ~40 % in the kernels). Three changes cut what
the host does per step, measured here one after the other:
- compute barriers: tracec's fusion barriers (a bias's batch sum, a D-RTRL gradient's
  transpose, the step boundary under ``--no-fuse-steps``) become
  ``iree_tensor_ext.compute_barrier.start`` (fusion-barriers-to-iree) instead of staying
  ``stablehlo.optimization_barrier``, which IREE keeps as a host op that submits and
  waits for the kernels before it;
- host counters: lower-scan-to-iree computes the step counters, and the optimizer's
  "an update is due" branch, on the host, so the step's kernels are not awaited to read
  the predicate back;
- caching allocator: tracec's runtime creates the IREE device with the caching
  allocator, so each step's transient buffers are reused, not allocated and zeroed.
This compiles the ``lif_v`` network (benchmarks/networks.py, H = 64, B = 32; Adam, an
update every T steps) for ES-D-RTRL and D-RTRL on IREE llvm-cpu in each form, and times
``train_sequence`` in interleaved rounds: medians and minima, and the largest
difference of the trained parameters from the first form. Writes
benchmarks/results/fusion_barrier_ab.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.common import ROOT, interleaved, make_data, write_text

#: each form: (name, compute barriers, host counters, allocator); each adds one change
FORMS = [("optimization barriers", False, False, None),
         ("+ compute barriers", True, False, None),
         ("+ host counters", True, True, None),
         ("+ caching allocator", True, True, "caching")]


class _Unchanged:
    """fusion-barriers-to-iree left out: the marked barriers stay as they are."""
    name = "fusion-barriers-to-iree"

    def apply(self, ctx, op) -> None:
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "fusion_barrier_ab.md"))
    args = ap.parse_args(argv)
    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model
    from tracec import passes
    from tracec.passes import lower_scan_to_iree as scan

    xs, ys = make_data(args.T, 32)
    calls = {}
    real = passes.PASSES["fusion-barriers-to-iree"]
    with tempfile.TemporaryDirectory() as tmp:
        for alg in ("es-d-rtrl", "d-rtrl"):
            for form, barriers, counters, allocator in FORMS:
                path = os.path.join(tmp, f"{alg}-{barriers}-{counters}.vmfb")
                if not os.path.exists(path):
                    if not barriers:
                        passes.PASSES["fusion-barriers-to-iree"] = lambda: (lambda: _Unchanged())
                    scan.HOST_COUNTERS = counters
                    try:
                        tracec.compile(make_model(64, "lif_v"), algorithm=alg, optimizer="adam",
                                       update_every=args.T, use_cache=False).save(path)
                    finally:
                        passes.PASSES["fusion-barriers-to-iree"] = real
                        scan.HOST_COUNTERS = True
                learner = tracec.runtime.load(path, allocator=allocator)

                def train(lr=learner):
                    lr.reset()
                    lr.train_sequence(xs, ys)
                    return {k: np.asarray(v) for k, v in lr.params.items()}
                calls[(alg, form)] = train
        for c in calls.values():  # warm-up
            c()
        seconds, params = interleaved(calls, args.rounds)
    lines = ["# IREE's host program per time step (lif_v H = 64, B = 32)", "",
             f"Command: `python -m benchmarks.fusion_barrier_ab --T {args.T} --rounds "
             f"{args.rounds}`. IREE llvm-cpu, local-sync; µs per step of `train_sequence` "
             f"(reset, T steps, one Adam update), {args.rounds} interleaved rounds, median "
             "[min]. Each row adds one change to the row above; speed-up against the first "
             "row of the rule; the last column: the largest difference of the trained "
             "parameters from that row.", "",
             "| rule | form | µs/step median [min] | speed-up | max param diff |",
             "|---|---|---|---|---|"]
    for (alg, form), ts in seconds.items():
        first = (alg, FORMS[0][0])
        base = statistics.median(seconds[first])
        med = statistics.median(ts)
        diff = max(float(np.abs(params[(alg, form)][k] - params[first][k]).max())
                   for k in params[first])
        lines.append(f"| {alg} | {form} | {med / args.T * 1e6:.1f} "
                     f"[{min(ts) / args.T * 1e6:.1f}] | {base / med:.2f}× | {diff:.1e} |")
        print(lines[-1], flush=True)
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
