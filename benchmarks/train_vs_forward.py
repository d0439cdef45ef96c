"""tracec's training step vs its own forward step, side by side (docs/design.md section 5).

    python -m benchmarks.train_vs_forward [--T 500] [--repeats 5]

For examples/lif2.py (2×64 recurrent LIF, batch 32): time per step of
``forward_sequence`` and of ``train_sequence`` for D-RTRL and ES-D-RTRL (IREE llvm-cpu,
local-sync), medians and spreads of --repeats runs after a warm-up, and the cold and
cached compile times. Writes benchmarks/results/train_vs_forward.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, timed_runs, write_text



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "train_vs_forward.md"))
    args = ap.parse_args(argv)
    import tracec
    import tracec.runtime

    model = os.path.join(ROOT, "examples", "lif2.py")
    rng = np.random.default_rng(0)
    xs = (rng.random((args.T, 32, 40)) < 0.2).astype(np.float32)
    ys = rng.integers(0, 10, (args.T, 32)).astype(np.int32)
    rows, compile_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRACEC_CACHE_DIR"] = os.path.join(tmp, "cache")
        for alg in ("forward", "d-rtrl", "es-d-rtrl"):
            t0 = time.perf_counter()
            art = tracec.compile(model, algorithm=alg, update_every=args.T)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            tracec.compile(model, algorithm=alg, update_every=args.T)
            cached = time.perf_counter() - t0
            compile_rows.append((alg, cold, cached))
            path = os.path.join(tmp, f"{alg}.vmfb")
            art.save(path)
            learner = tracec.runtime.load(path)
            if alg == "forward":
                fn = lambda: (learner.reset(), learner.forward_sequence(xs))
            else:
                fn = lambda learner=learner: (learner.reset(), learner.train_sequence(xs, ys))
            rows.append((alg, timed_runs(fn, args.repeats)))
    fwd = statistics.median(rows[0][1])
    lines = [f"# tracec train step vs forward step (examples/lif2.py, batch 32, T={args.T})", "",
             f"Command: `python -m benchmarks.train_vs_forward --T {args.T} --repeats {args.repeats}`; "
             f"{os.cpu_count()} cores, IREE llvm-cpu, local-sync; medians of {args.repeats} runs.", "",
             "| entry | µs/step (median) | min..max µs/step | ratio to forward |", "|---|---|---|---|"]
    for alg, ts in rows:
        med = statistics.median(ts)
        name = "forward_sequence" if alg == "forward" else f"train_sequence ({alg})"
        lines.append(f"| {name} | {med / args.T * 1e6:.1f} | {min(ts) / args.T * 1e6:.1f}.."
                     f"{max(ts) / args.T * 1e6:.1f} | {med / fwd:.2f}× |")
    lines += ["", "| algorithm | cold compile s | cached compile s (includes tracing the model) |",
              "|---|---|---|"]
    for alg, cold, cached in compile_rows:
        lines.append(f"| {alg} | {cold:.1f} | {cached:.2f} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
