"""A/B: D-RTRL's weight traces updated every step, or carried over each unrolled window of
steps in closed form (window-param-traces).

    python -m benchmarks.window_traces_ab [--networks lif_v:64 lif_v:256 alif_v:64]
        [--T 180] [--rounds 7]

Per step, each dense weight's trace ``ε [H, B, I]`` is read and written once and
contracted with the learning signal; at H = 256 (8 MiB per trace) that traffic is most
of the step, and IREE keeps every unrolled step's trace in memory for its contraction.
window-param-traces carries the trace over the K unrolled steps of a window in which the
optimizer does not run (the docstring of passes/window_param_traces.py gives the
algebra): one pass over the trace per window, and the window's gradient added once. The
windowed module is compiled without IREE's aggressive fusion, which fails on it.

Per network of benchmarks/networks.py (B = 32, D-RTRL, SGD with one update per
sequence, IREE llvm-cpu, no compile cache): both forms on the whole batch and in 2 parts
on 2 threads (``--batch-shards 2``); ``train_sequence`` timed in interleaved rounds, µs
per step, median [min] of the rounds after the first. Before timing, each form's update
after one sequence (the learning rate times the summed gradient) is checked against the
per-step form on the whole batch (relative to its largest entry, per parameter). Writes
benchmarks/results/window_traces_ab.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, interleaved, make_data, write_text

B = 32
#: (label, windows, parts)
FORMS = [("per step", False, 1), ("windows", True, 1),
         ("per step, 2 parts on 2 threads", False, 2), ("windows, 2 parts on 2 threads", True, 2)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "lif_v:256", "alif_v:64"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "window_traces_ab.md"))
    args = ap.parse_args(argv)
    import tracec
    import tracec.options as options
    import tracec.runtime
    from benchmarks.networks import make_model

    xs, ys = make_data(args.T, B)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.networks:
            variant, H = net.split(":")
            learners, compile_s = {}, {}
            for label, windows, parts in FORMS:
                saved = options.WINDOW_TRACES
                options.WINDOW_TRACES = windows
                try:
                    t0 = time.perf_counter()
                    art = tracec.compile(make_model(int(H), variant, B), algorithm="d-rtrl",
                                         optimizer="sgd", lr=1e-3, update_every=args.T,
                                         batch_shards=parts, use_cache=False)
                    compile_s[label] = time.perf_counter() - t0
                finally:
                    options.WINDOW_TRACES = saved
                path = os.path.join(tmp, f"{variant}{H}-{len(learners)}.vmfb")
                art.save(path)
                learners[label] = tracec.runtime.load(path, threads=2 if parts > 1 else None)
            p0 = learners["per step"].params
            steps = {}
            for label, learner in learners.items():
                losses = learner.train_sequence(xs, ys)
                steps[label] = (losses, {k: p0[k] - v for k, v in learner.params.items()})
                learner.set_params(p0)
            ref_losses, ref = steps["per step"]
            diffs = {}
            for label, (losses, step) in steps.items():
                assert np.allclose(ref_losses, losses, rtol=1e-5, atol=1e-6), (net, label)
                diffs[label] = max(float(np.abs(step[k] - v).max() / max(np.abs(v).max(), 1e-12))
                                   for k, v in ref.items())
                assert diffs[label] <= 1e-3, (net, label, diffs[label])

            def run(learner):
                learner.reset()
                return learner.train_sequence(xs, ys)

            times, _ = interleaved({k: (lambda lr=lr: run(lr)) for k, lr in learners.items()},
                                   args.rounds)
            per_step = {k: [t / args.T * 1e6 for t in v[1:]] for k, v in times.items()}
            rows.append((net, per_step, diffs, compile_s))
            print(net, {k: round(statistics.median(v), 1) for k, v in per_step.items()},
                  flush=True)
    lines = ["# D-RTRL's weight traces per step, or carried over each unrolled window", "",
             f"Command: `python -m benchmarks.window_traces_ab --networks "
             f"{' '.join(args.networks)} --T {args.T} --rounds {args.rounds}` "
             f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores). B = {B}, T = {args.T}, "
             "D-RTRL, SGD with one update per sequence, IREE llvm-cpu, tracec's default "
             "unroll; µs per step of `train_sequence`, median [min] of the interleaved rounds "
             "after the first; against: the per-step form on the same parts over this form; "
             "update diff: the largest difference of the update after one sequence from the "
             "per-step form's on the whole batch, relative to the parameter's largest entry; "
             "compile: seconds, cold.", "",
             "| network | form | µs/step median [min] | against per step | update diff | "
             "compile s |", "|---|---|---|---|---|---|"]
    for net, per_step, diffs, compile_s in rows:
        for label, _, parts in FORMS:
            base = statistics.median(per_step["per step" if parts == 1 else
                                              "per step, 2 parts on 2 threads"])
            med = statistics.median(per_step[label])
            lines.append(f"| {net} | {label} | {med:.1f} [{min(per_step[label]):.1f}] | "
                         f"{base / med:.2f}× | {diffs[label]:.1e} | {compile_s[label]:.1f} |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
