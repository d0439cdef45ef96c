"""Do steps whose loss mask is 0 pay for a gradient? ``--skip-masked-steps`` A/B in one process.

    python -m benchmarks.masked_steps [--networks lif_v:64 alif_v:64 lif_v:256]
        [--algorithms es-d-rtrl d-rtrl] [--T 180] [--rounds 15]

A loss that counts at some steps only (a class read out at the end of a sequence, a
warm-up left out) is written with the per-step mask of ``train_sequence``. Each network
of benchmarks/networks.py (B = 32, SGD lr 0.1 after every step, IREE llvm-cpu, no
compile cache) is compiled twice per rule, without and with ``--skip-masked-steps``, and
``train_sequence`` is timed on both with four masks: every step, the second half, the
last tenth, the last step alone; rounds interleaved so that a change in the machine's
load hits every variant alike. Before timing, each mask's final parameters and losses
are checked equal between the two artifacts. Reports the median µs per step, the ratio
(without / with), ``forward_sequence`` of the same artifact for scale, the compile times
and the artifact sizes; then ``advance_sequence`` alone and the fixed cost of a call, and
from them the shortest run of masked steps worth a call of its own. Writes
benchmarks/results/masked_steps.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from benchmarks.common import ROOT, interleaved, make_data, write_text

RESULT = os.path.join(ROOT, "benchmarks", "results", "masked_steps.md")


def masks(T: int) -> dict:
    import numpy as np

    def last(n):
        return np.r_[np.zeros(T - n), np.ones(n)].astype(np.float32)

    return {"every step": np.ones(T, np.float32), "second half": last(T // 2),
            "last tenth": last(max(1, T // 10)), "last step": last(1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "alif_v:64", "lif_v:256"])
    ap.add_argument("--algorithms", nargs="+", default=["es-d-rtrl", "d-rtrl"],
                    choices=["es-d-rtrl", "d-rtrl"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default=RESULT)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model
    from tracec.runtime.learner import MIN_SKIPPED_RUN

    xs, ys = make_data(args.T, 32)
    ms = masks(args.T)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.networks:
            variant, H = net.split(":")
            model = make_model(int(H), variant, 32)
            tracec.compile(model, emit="iree-input")  # warm-up: JAX's first compiles
            for alg in args.algorithms:
                learners, info = {}, {}
                for skip in (False, True):
                    t0 = time.perf_counter()
                    art = tracec.compile(model, algorithm=alg, optimizer="sgd", lr=0.1,
                                         skip_masked_steps=skip)
                    info[skip] = (time.perf_counter() - t0, len(art.binary))
                    path = os.path.join(tmp, f"{variant}{H}{alg}{int(skip)}.vmfb")
                    art.save(path)
                    learners[skip] = tracec.runtime.load(path)
                p0 = learners[False].params
                for name, m in ms.items():  # the same results, both ways
                    out = {}
                    for skip, learner in learners.items():
                        learner.set_params(p0)
                        learner.reset()
                        out[skip] = (learner.train_sequence(xs, ys, m), learner.params)
                    assert np.allclose(out[False][0], out[True][0], rtol=1e-5, atol=1e-6), name
                    for k in p0:
                        assert np.allclose(out[False][1][k], out[True][1][k], rtol=1e-5,
                                           atol=1e-6), (name, k)
                calls = {}  # the two artifacts alternate: each call follows the other's
                for name, m in ms.items():
                    for skip, learner in learners.items():
                        calls[(skip, name)] = (lambda lr=learner, m=m:
                                               (lr.reset(), lr.train_sequence(xs, ys, m)))
                sk = learners[True]
                calls["forward"] = lambda: (sk.reset(), sk.forward_sequence(xs))
                calls["advance"] = lambda: (sk.reset(), sk._call("advance_sequence", {
                    "input:xs": xs, "target:targets": ys, "mask:masks": ms["every step"]}))
                one = ms["every step"][:1]
                calls["one step"] = lambda: (sk.reset(), sk.train_sequence(xs[:1], ys[:1], one))
                times, _ = interleaved(calls, args.rounds)
                med = {k: statistics.median(v) / args.T * 1e6 for k, v in times.items()}
                med["one step"] *= args.T  # µs per call
                rows.append((net, alg, med, info))
                print(net, alg, {str(k): round(v, 1) for k, v in med.items()}, flush=True)
    lines = ["# Steps whose loss mask is 0: `--skip-masked-steps`", "",
             f"Command: `python -m benchmarks.masked_steps --networks {' '.join(args.networks)} "
             f"--algorithms {' '.join(args.algorithms)} --T {args.T} --rounds {args.rounds}` "
             f"({time.strftime('%Y-%m-%d')}). Batch 32, T = {args.T}, SGD after every step, "
             f"IREE llvm-cpu, {args.rounds} interleaved rounds, medians in µs per step of "
             "`train_sequence`: without the option / with it (ratio). The mask is 1 on the "
             "steps named, 0 elsewhere; both artifacts' parameters and losses were checked "
             "equal for each mask before timing.", "",
             "| network | rule | " + " | ".join(ms) + " | forward | compile s without / with "
             "| artifact KiB without / with |",
             "|---|---|" + "---|" * len(ms) + "---|---|---|"]
    for net, alg, med, info in rows:
        cells = [f"{med[(False, n)]:.1f} / {med[(True, n)]:.1f} "
                 f"({med[(False, n)] / med[(True, n)]:.2f}×)" for n in ms]
        lines.append(f"| {net} | {alg} | " + " | ".join(cells) + f" | {med['forward']:.1f} | "
                     f"{info[False][0]:.1f} / {info[True][0]:.1f} | "
                     f"{info[False][1] // 1024} / {info[True][1] // 1024} |")
    lines += ["", "Where a run of masked steps is worth a call of its own. A run of n such steps "
              "cut out of a sequence costs two calls more (one of `advance_sequence`, one more "
              "of `train_sequence`) and saves n × (train − advance): `advance_sequence` alone "
              "(its entry called directly, µs per step), one call of `train_sequence` on a "
              "single step (µs, reset included), its cost beyond a step of the long sequence, "
              "and the run length from which skipping saves time, 2 × call cost / saving per "
              "step (the runtime skips runs of `MIN_SKIPPED_RUN` = "
              f"{MIN_SKIPPED_RUN} or more).", "",
              "| network | rule | train µs/step | advance µs/step | one-step call µs | "
              "call cost µs | break-even run |", "|---|---|---|---|---|---|---|"]
    for net, alg, med, info in rows:
        train, adv = med[(True, "every step")], med["advance"]
        cost = med["one step"] - train
        even = f"{2 * cost / (train - adv):.1f}" if train > adv else "never"
        lines.append(f"| {net} | {alg} | {train:.1f} | {adv:.1f} | {med['one step']:.1f} | "
                     f"{cost:.1f} | {even} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
