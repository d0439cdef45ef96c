"""How fast can an exact D-RTRL step be on this machine? Its traces' memory traffic.

    python -m benchmarks.trace_traffic [--networks lif_v:64 alif_v:64] [--T 180] [--rounds 7]

D-RTRL keeps one [H, B, I] trace per weight and per hidden state the weight reaches
(lif_v: the membrane; alif_v: the membrane and the adaptation, so two per weight), and
every time step reads each trace and writes it back; tracec's step also reads it once
more, in the gradient's contraction (benchmarks/README.md, "IREE's host program per time
step"). Once the traces outgrow the core's L2 cache (2 MiB here) the step is bounded by
how fast one core streams memory. Per network, this script:

- compiles ``benchmarks/networks.py``'s model for D-RTRL (IREE llvm-cpu, Adam, an update
  every T steps) and sums the bytes of its traces (``learner.traces``);
- measures one core's streaming rate on an array of that size (numpy's in-place
  ``a = 0.9 a``: one read and one write of every element, as a trace update), the
  median of ``--rounds`` interleaved with the step's timing;
- times the compiled ``train_sequence`` (T steps, median per step);
- prints the floor: the traces' bytes moved 2× (read and write, the least an exact rule
  can do) and 3× (what tracec's step does) at the measured rate.

Writes benchmarks/results/trace_traffic.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from benchmarks.common import ROOT, make_data, write_text

RESULT = os.path.join(ROOT, "benchmarks", "results", "trace_traffic.md")


def stream_rate(n_bytes: int):
    """(a call over an array of ``n_bytes``, the bytes it moves): ``a = 0.9 a`` in place
    reads the array once and writes it once, as a trace update must."""
    import numpy as np

    a = np.random.default_rng(0).random(max(n_bytes // 4, 1), dtype=np.float32)

    def call():
        np.multiply(a, np.float32(0.9), out=a)
    return call, 2 * a.nbytes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "alif_v:64"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    xs, ys = make_data(args.T, 32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.networks:
            variant, H = text.split(":")
            path = os.path.join(tmp, f"{variant}{H}.vmfb")
            tracec.compile(make_model(int(H), variant), algorithm="d-rtrl", optimizer="adam",
                           update_every=args.T).save(path)
            learner = tracec.runtime.load(path)
            n_bytes = sum(t.nbytes for t in learner.traces.values())
            stream, moved = stream_rate(n_bytes)

            def step():
                learner.reset()
                learner.train_sequence(xs, ys)
            step()
            stream()
            step_s, rate = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                step()
                step_s.append((time.perf_counter() - t0) / args.T)
                t0 = time.perf_counter()
                stream()
                rate.append(moved / (time.perf_counter() - t0))
            gbs = statistics.median(rate) / 1e9
            us = statistics.median(step_s) * 1e6
            rows.append((f"{variant} H={H}", n_bytes / 2**20, gbs, 2 * n_bytes / gbs / 1e3,
                         3 * n_bytes / gbs / 1e3, us))
    lines = ["# D-RTRL's trace traffic against one core's streaming rate", "",
             f"Command: `python -m benchmarks.trace_traffic --networks {' '.join(args.networks)} "
             f"--T {args.T} --rounds {args.rounds}`. B = 32, IREE llvm-cpu, Adam, an update every "
             f"T steps; medians of {args.rounds} interleaved rounds. Rate: numpy's in-place "
             "`a = 0.9 a` over an array the size of the traces (a read and a write).", "",
             "| network | traces MiB | streaming GB/s | floor, 2 passes µs | floor, 3 passes µs "
             "| tracec D-RTRL µs/step |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {mib:.2f} | {g:.1f} | {f2:.0f} | {f3:.0f} | {us:.0f} |"
              for n, mib, g, f2, f3, us in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text(RESULT, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
