"""Does unrolling the time loop pay? ``lower-scan-to-iree{unroll=K}``, A/B in one process.

    python -m benchmarks.scan_unroll [--algorithm es-d-rtrl] [--K 1 4] [--T 600] [--rounds 10]

Compiles examples/lif2.py once per K (``tracec --scan-unroll K``; IREE llvm-cpu, no
compile cache) and times the
entry that loops (``forward_sequence`` for ``--algorithm forward``, else
``train_sequence`` with ``--update-every T``), interleaving the K variants round by
round so that a change in the machine's load hits all of them alike. Prints the median
and minimum µs per step, the cold compile time, and the largest difference of the
outputs from the first K's (the unrolled loop must compute the same numbers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchmarks.common import ROOT, make_data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["forward", "es-d-rtrl", "d-rtrl"])
    ap.add_argument("--K", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--T", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.runtime

    xs, ys = make_data(args.T, 32)
    calls, compile_s = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.K:
            t0 = time.perf_counter()
            art = tracec.compile(os.path.join(ROOT, "examples", "lif2.py"), algorithm=args.algorithm,
                                 update_every=args.T, optimizer="sgd", lr=0.1, scan_unroll=k)
            compile_s[k] = time.perf_counter() - t0
            path = os.path.join(tmp, f"unroll{k}.vmfb")
            art.save(path)
            learner = tracec.runtime.load(path)
            if args.algorithm == "forward":
                calls[k] = lambda l=learner: (l.reset(), l.forward_sequence(xs))[1]
            else:
                calls[k] = lambda l=learner: (l.reset(), l.train_sequence(xs, ys))[1]
        outs = {k: f() for k, f in calls.items()}  # also the warm-up call
        times = {k: [] for k in args.K}
        for _ in range(args.rounds):
            for k, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    first = args.K[0]
    print(f"{args.algorithm}, examples/lif2.py, batch 32, T={args.T}, {args.rounds} interleaved rounds")
    for k in args.K:
        ts = [t / args.T * 1e6 for t in times[k]]
        diff = float(np.max(np.abs(outs[k] - outs[first])))
        print(f"unroll={k}: {statistics.median(ts):.1f} µs/step (min {min(ts):.1f}), "
              f"cold compile {compile_s[k]:.1f} s, max |out - out[unroll={first}]| {diff:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
