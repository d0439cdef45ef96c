"""A/B: D-RTRL's weight gradient contracted over the batch each step, or accumulated per
batch row and summed once per update window.

    python -m benchmarks.row_gradients_ab [--networks lif_v:64 alif_v:64] [--T 180]
        [--rounds 7]

Each step, D-RTRL contracts a dense weight's trace ``ε [H, B, I]`` with the learning
signal over the batch, ``Σ_b δ[b, h] ε[h, b, i]``; IREE computes the trace's new value
inside that contraction (one kernel, the trace read once and written once). The other
form (insert-eligibility-traces' ``row_gradients``) keeps the products per batch row,
``δ[b, h] ε[h, b, i]``, in an accumulator laid out as the trace, and sums it over the
batch once per window, where the optimizer reads it: no contraction in the step, but an
accumulator the trace's size read and written every step. On the least-work programs
of benchmarks/step_floor.py the per-row form was 1.46x faster than a contraction there
(which IREE compiles as a second pass over the trace).

Per network of benchmarks/networks.py (B = 32, D-RTRL, Adam lr 1e-3, one update per
sequence, IREE llvm-cpu, no compile cache): the contracted form as tracec compiles it,
and the per-row form at the default ``--scan-unroll`` and at 2 (its fastest here), on
the whole batch and in 4 parts on 2 threads (``--batch-shards 4``); ``train_sequence``
timed in interleaved rounds, µs per step, median [min] of the rounds after the first.
Each per-row form is checked against the contracted one first (losses to 1e-5, trained
parameters to 1e-4 of their largest entry). Writes benchmarks/results/row_gradients_ab.md.

What it showed (results/row_gradients_ab.md): the per-row form is slower in every form,
0.56-0.90x. The contracted form already reads and writes each trace once per step (the
contraction runs inside the update's kernel), so the accumulator's read and write are
extra traffic the saved contraction does not pay for; the floors' contraction was a
second pass over the trace. At lif_v's default unroll of 4, IREE's aggressive fusion
fails on the per-row module and tracec lowers its steps apart (0.56x); at unroll 2 they
fuse (0.90x).
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
#: (label, per-row, scan_unroll (None: the default), parts)
FORMS = [("contracted", False, None, 1), ("per row", True, None, 1),
         ("per row, --scan-unroll 2", True, 2, 1),
         ("contracted, 4 parts on 2 threads", False, None, 4),
         ("per row, 4 parts on 2 threads", True, None, 4)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "alif_v:64"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "row_gradients_ab.md"))
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
            learners = {}
            for label, per_row, unroll, parts in FORMS:
                options.ROW_GRADIENTS = per_row
                try:
                    art = tracec.compile(make_model(int(H), variant, B), algorithm="d-rtrl",
                                         optimizer="adam", lr=1e-3, update_every=args.T,
                                         scan_unroll=unroll, batch_shards=parts,
                                         use_cache=False)
                finally:
                    options.ROW_GRADIENTS = False
                accum = {s["name"]: s.get("batch_rows") for s in art.manifest["accumulators"]}
                assert any(accum.values()) == per_row, (net, label, accum)
                path = os.path.join(tmp, f"{variant}{H}-{len(learners)}.vmfb")
                art.save(path)
                learners[label] = tracec.runtime.load(path, threads=2 if parts > 1 else None)
            p0 = learners["contracted"].params
            trained = {}
            for label, learner in learners.items():
                trained[label] = (learner.train_sequence(xs, ys), learner.params)
                learner.set_params(p0)
            ref_losses, ref = trained["contracted"]
            diffs = {}
            for label, (losses, params) in trained.items():
                assert np.allclose(ref_losses, losses, rtol=1e-5, atol=1e-6), (net, label)
                diffs[label] = max(float(np.abs(params[k] - v).max() / np.abs(v).max())
                                   for k, v in ref.items())
                assert diffs[label] <= 1e-4, (net, label, diffs[label])

            def run(learner):
                learner.reset()
                return learner.train_sequence(xs, ys)

            times, _ = interleaved({k: (lambda lr=lr: run(lr)) for k, lr in learners.items()},
                                   args.rounds)
            per_step = {k: [t / args.T * 1e6 for t in v[1:]] for k, v in times.items()}
            rows.append((net, per_step, diffs))
            print(net, {k: round(statistics.median(v), 1) for k, v in per_step.items()},
                  flush=True)
    lines = ["# D-RTRL's gradient contracted each step, or accumulated per batch row", "",
             f"Command: `python -m benchmarks.row_gradients_ab --networks "
             f"{' '.join(args.networks)} --T {args.T} --rounds {args.rounds}` "
             f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores). B = {B}, T = {args.T}, "
             "D-RTRL, Adam with one update per sequence, IREE llvm-cpu; µs per step of "
             "`train_sequence`, median [min] of the interleaved rounds after the first; "
             "against: the contracted form on the same parts (whole batch, or 4 parts on 2 "
             "threads) over this form; last column: the largest difference of the trained "
             "parameters from the contracted whole batch, relative to the parameter's "
             "largest entry.", "",
             "| network | form | µs/step median [min] | against contracted | max param diff |",
             "|---|---|---|---|---|"]
    for net, per_step, diffs in rows:
        for label, _, _, parts in FORMS:
            base = statistics.median(per_step["contracted" if parts == 1 else
                                              "contracted, 4 parts on 2 threads"])
            med = statistics.median(per_step[label])
            lines.append(f"| {net} | {label} | {med:.1f} [{min(per_step[label]):.1f}] | "
                         f"{base / med:.2f}× | {diffs[label]:.1e} |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
