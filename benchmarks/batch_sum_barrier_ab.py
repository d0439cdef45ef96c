"""A/B: a barrier before each batch sum of a trace gradient (a bias's), or none.

    python -m benchmarks.batch_sum_barrier_ab [--T 180] [--rounds 11]

A per-neuron parameter's gradient (a bias) is ``Σ_b Σ_a δ_a ε_a`` each step, ``[B, H]``
→ ``[H]``. Without a barrier, IREE fuses the element-wise chain that makes ``δ`` and
``ε`` into the reduction's dispatch and runs it in the reduction's column order
(benchmarks/results/dispatch_times_es_d_rtrl.md: ~6 µs for each such dispatch, against
~1 µs for an element-wise one). ``lower-traces-to-stablehlo`` puts a
``stablehlo.optimization_barrier`` on the product first, in modules without D-RTRL
parameter traces (with them it slowed lif2's D-RTRL step down 1.6× at
``--scan-unroll 1``). This compiles the ``lif_v``
network (benchmarks/networks.py, H = 64, B = 32; Adam, an update every T steps) for
ES-D-RTRL and D-RTRL both ways, on IREE llvm-cpu and on XLA (``--target xla``), and
times ``train_sequence`` in interleaved rounds: medians and minima, and the largest
difference of the trained parameters between the two forms. Writes
benchmarks/results/batch_sum_barrier_ab.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.common import ROOT, interleaved, make_data, write_text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "batch_sum_barrier_ab.md"))
    args = ap.parse_args(argv)
    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model
    from tracec.passes import lower_traces_to_stablehlo as lower

    xs, ys = make_data(args.T, 32)
    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("llvm-cpu", "xla"):
            for alg in ("es-d-rtrl", "d-rtrl"):
                for form, barrier in (("no barrier", False), ("barrier", True)):
                    lower.BARRIER_BATCH_SUMS = barrier
                    try:
                        art = tracec.compile(make_model(64, "lif_v"), algorithm=alg, target=target,
                                             optimizer="adam", update_every=args.T,
                                             use_cache=False)
                    finally:
                        lower.BARRIER_BATCH_SUMS = True
                    path = os.path.join(tmp, f"{target}-{alg}-{barrier}.{'xla' if target == 'xla' else 'vmfb'}")
                    art.save(path)
                    learner = tracec.runtime.load(path)

                    def train(lr=learner):
                        lr.reset()
                        lr.train_sequence(xs, ys)
                        return {k: np.asarray(v) for k, v in lr.params.items()}
                    calls[(target, alg, form)] = train
        for c in calls.values():  # warm-up
            c()
        seconds, params = interleaved(calls, args.rounds)
    lines = ["# A barrier before each batch sum of a trace gradient (lif_v H = 64, B = 32)", "",
             f"Command: `python -m benchmarks.batch_sum_barrier_ab --T {args.T} --rounds "
             f"{args.rounds}`. µs per step of `train_sequence` (reset, T steps, one Adam "
             f"update), {args.rounds} interleaved rounds, median [min]; the last column: the "
             "largest difference of the trained parameters from the form without.", "",
             "| target | rule | form | µs/step median [min] | speed-up | max param diff |",
             "|---|---|---|---|---|---|"]
    for (target, alg, form), ts in seconds.items():
        base = statistics.median(seconds[(target, alg, "no barrier")])
        med = statistics.median(ts)
        ref = params[(target, alg, "no barrier")]
        diff = max(float(np.abs(params[(target, alg, form)][k] - ref[k]).max()) for k in ref)
        lines.append(f"| {target} | {alg} | {form} | {med / args.T * 1e6:.1f} "
                     f"[{min(ts) / args.T * 1e6:.1f}] | {base / med:.2f}× | {diff:.1e} |")
        print(lines[-1], flush=True)
    lines += ["", "D-RTRL modules carry parameter traces, so lower-traces-to-stablehlo puts no "
              "barrier in them (it slowed D-RTRL down): both D-RTRL forms compile to the same "
              "program, and their rows show how far this run's noise alone moves a ratio."]
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
