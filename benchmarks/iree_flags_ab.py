"""IREE fusion flags and the multi-threaded driver on the learning step: A/B in one process.

    python -m benchmarks.iree_flags_ab [--algorithm es-d-rtrl] [--T 300] [--rounds 7]

Compiles examples/lif2.py (Adam, ``--update-every T``, no compile cache) once with
tracec's IREE flags and once per variant that adds IREE flags which could cut the
dispatches a time step runs (ES-D-RTRL runs 28 per step, the forward 5;
benchmarks/results/dispatch_profile.md): horizontal fusion of contractions sharing an
operand, fusion of producers with several uses, element-wise fusion of several
reductions (the loss's max and sum). The base artifact also runs on IREE's
multi-threaded ``local-task`` driver (both cores) besides the default ``local-sync``.
Times ``train_sequence`` per step, variants interleaved round by round; medians and
minima; the largest difference of the losses from the base (all compute the same
steps). Two more variants change how IREE splits a dispatch into workgroups (for the
one-thread local-sync driver, many small workgroups are pure overhead): no workgroup
distribution at all, and code generated for one thread. ``--variants 4 5`` compares
only those with the base. Writes benchmarks/results/iree_flags_ab.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchmarks.common import ROOT, interleaved, make_data, write_text

VARIANTS = {
    "tracec's flags": [],
    "+ horizontal contractions": ["--iree-dispatch-creation-enable-fuse-horizontal-contractions=true"],
    "+ fuse multi-use": ["--iree-dispatch-creation-fuse-multi-use=true"],
    "+ multi-reduction fusion": ["--iree-dispatch-creation-element-wise-fuse-multi-reduction=true"],
    "+ no workgroup distribution": ["--iree-llvmcpu-disable-distribution"],
    "+ codegen for one thread": ["--iree-llvmcpu-number-of-threads=1"],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["es-d-rtrl", "d-rtrl"])
    ap.add_argument("--T", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--variants", nargs="*", metavar="N",
                    help="1-based numbers of the flag variants to compare with the base "
                         "(default: all)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "iree_flags_ab.md"))
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.backends as backends

    base_flags = backends.iree_flags
    learners, compile_s = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        chosen = list(VARIANTS.items())
        if args.variants:
            chosen = [chosen[0]] + [chosen[int(n)] for n in args.variants]
        for name, extra in chosen:
            backends.iree_flags = lambda o, a=True, extra=extra: base_flags(o, a) + extra
            t0 = time.perf_counter()
            art = tracec.compile(os.path.join(ROOT, "examples", "lif2.py"),
                                 algorithm=args.algorithm, optimizer="adam", update_every=args.T)
            compile_s[name] = time.perf_counter() - t0
            path = os.path.join(tmp, f"{len(learners)}.vmfb")
            art.save(path)
            learners[(name, "local-sync")] = tracec.runtime.load(path)
            if not extra:
                learners[(name, "local-task")] = tracec.runtime.load(path, driver="local-task")
        backends.iree_flags = base_flags
        xs, ys = make_data(args.T, 32)

        def run(learner):
            learner.reset()
            return np.asarray(learner.train_sequence(xs, ys))

        seconds, losses = interleaved({k: (lambda lr=lr: run(lr)) for k, lr in learners.items()},
                                      args.rounds)
        times = {k: [s / args.T * 1e6 for s in ts] for k, ts in seconds.items()}
    base = next(iter(learners))
    lines = [f"# IREE fusion flags and drivers on the learning step (examples/lif2.py, {args.algorithm})",
             "", f"Command: `python -m benchmarks.iree_flags_ab --algorithm {args.algorithm} --T "
             f"{args.T} --rounds {args.rounds}"
             + (f" --variants {' '.join(args.variants)}" if args.variants else "") + "`. B = 32, Adam, IREE llvm-cpu on this CPU; "
             f"µs per step of `train_sequence`, {args.rounds} interleaved rounds.", "",
             "| variant | driver | µs/step median [min] | vs base | compile s | max loss diff |",
             "|---|---|---|---|---|---|"]
    t_base = statistics.median(times[base])
    for key, ts in times.items():
        med = statistics.median(ts)
        diff = float(np.abs(losses[key] - losses[base]).max())
        lines.append(f"| {key[0]} | {key[1]} | {med:.1f} [{min(ts):.1f}] | {t_base / med:.2f}× | "
                     f"{compile_s[key[0]]:.1f} | {diff:.1e} |")
        print(lines[-1], flush=True)
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
