"""Does unrolling the time loop pay, and fusing across the unrolled steps? A/B in one process.

    python -m benchmarks.scan_unroll [--algorithm es-d-rtrl] [--K 1 4 8] [--T 600] [--rounds 10]
        [--network lif_v:64] [--optimizer adam] [--out FILE]

Compiles examples/lif2.py (or ``--network VARIANT:H`` of benchmarks/networks.py, B = 32)
once per variant: ``--scan-unroll K`` for each K, and for
K > 1 both without and with ``--fuse-steps`` (IREE llvm-cpu, no compile cache; one
warm-up compile first, so that no variant pays for JAX's first use). Times the entry
that loops (``forward_sequence`` for ``--algorithm forward``, else ``train_sequence``
with ``--update-every T``), interleaving the variants round by round so that a change
in the machine's load hits all of them alike. Reports the median and minimum µs per
step, the compile time (whole ``tracec.compile``, and iree-compile alone), the number
of IREE executables, whether IREE's aggressive fusion was used (tracec compiles without
it a module it breaks), and the largest difference of the outputs from the first
variant's (every variant computes the same steps). Writes
benchmarks/results/scan_unroll.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from benchmarks.common import ROOT, make_data, write_text

RESULT = os.path.join(ROOT, "benchmarks", "results", "scan_unroll.md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["forward", "es-d-rtrl", "d-rtrl"])
    ap.add_argument("--K", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--T", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--network", help="VARIANT:H of benchmarks/networks.py instead of lif2")
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    ap.add_argument("--out", default=RESULT)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.runtime
    from tracec import backends

    model, name = os.path.join(ROOT, "examples", "lif2.py"), "examples/lif2.py"
    if args.network:
        from benchmarks.networks import make_model

        variant, H = args.network.split(":")
        model, name = make_model(int(H), variant, 32), args.network
    variants = [(k, fuse) for k in args.K for fuse in ((False, True) if k > 1 else (False,))]
    xs, ys = make_data(args.T, 32)
    tracec.compile(model, emit="iree-input")  # warm-up: JAX's first compiles
    calls, info = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            k, fuse = v
            opts = dict(algorithm=args.algorithm, update_every=args.T, optimizer=args.optimizer, lr=0.1,
                        scan_unroll=k, fuse_steps=fuse)
            t0 = time.perf_counter()
            art = tracec.compile(model, **opts)
            total = time.perf_counter() - t0
            t0 = time.perf_counter()
            backends.compile_iree(art.ir["iree-input"], tracec.CompileOptions(**opts))
            iree = time.perf_counter() - t0
            fusion = not any("aggressive fusion failed" in w for w in art.warnings)
            info[v] = {"compile": total, "iree": iree, "executables": _executables(art, fusion),
                       "fusion": fusion}
            path = os.path.join(tmp, f"unroll{k}{'f' if fuse else ''}.vmfb")
            art.save(path)
            learner = tracec.runtime.load(path)
            if args.algorithm == "forward":
                calls[v] = lambda l=learner: (l.reset(), l.forward_sequence(xs))[1]
            else:
                calls[v] = lambda l=learner: (l.reset(), l.train_sequence(xs, ys))[1]
        outs = {v: f() for v, f in calls.items()}  # also the warm-up call
        times = {v: [] for v in variants}
        for _ in range(args.rounds):
            for v, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[v].append(time.perf_counter() - t0)
    first = variants[0]
    net = f" --network {args.network}" if args.network else ""
    lines = [f"# Unrolling the time loop ({name}, {args.algorithm})", "",
             f"Command: `python -m benchmarks.scan_unroll --algorithm {args.algorithm} "
             f"--K {' '.join(map(str, args.K))} --T {args.T} --rounds {args.rounds}{net} "
             f"--optimizer {args.optimizer}` "
             f"({time.strftime('%Y-%m-%d')}). Batch 32, T={args.T}, IREE llvm-cpu, "
             f"{args.rounds} interleaved rounds; compile times from one compile each.", "",
             "| --scan-unroll | --fuse-steps | µs/step median [min] | tracec.compile s | "
             "iree-compile alone s | IREE executables | aggressive fusion | max abs diff vs first |",
             "|---|---|---|---|---|---|---|---|"]
    for v in variants:
        ts = [t / args.T * 1e6 for t in times[v]]
        diff = float(np.max(np.abs(np.asarray(outs[v]) - np.asarray(outs[first]))))
        lines.append(f"| {v[0]} | {'yes' if v[1] else 'no'} | {statistics.median(ts):.1f} "
                     f"[{min(ts):.1f}] | {info[v]['compile']:.1f} | {info[v]['iree']:.1f} | "
                     f"{info[v]['executables']} | "
                     f"{'yes' if info[v]['fusion'] else 'no: IREE failed with it'} | {diff:.2g} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text(args.out, text)
    return 0


def _executables(art, aggressive_fusion: bool = True) -> int:
    """IREE executables of the artifact (its stream IR's ``stream.executable`` ops)."""
    from benchmarks.dispatch_profile import stream_ir

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.mlir")
        with open(src, "w") as f:
            f.write(art.ir["iree-input"])
        return stream_ir(src, os.path.join(tmp, "out.mlir"),
                         aggressive_fusion).count("stream.executable private")


if __name__ == "__main__":
    sys.exit(main())
