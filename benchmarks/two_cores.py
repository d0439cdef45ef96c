"""Does a learning step gain from the machine's second core? tracec's learning step on
one core, on IREE's multi-threaded driver, and compiled with ``--batch-shards 2`` (two
parts of the batch in two threads); braintrace on both cores (as its authors run it) and
pinned to one.

    python -m benchmarks.two_cores [--networks lif_v:64 alif_v:64 lif_v:256 alif_v:256 lif_v:512]
        [--algorithms es-d-rtrl d-rtrl] [--drtrl-max-H 64] [--T 180] [--rounds 9]
        [--no-braintrace]

Per network of benchmarks/networks.py and rule (Adam lr 1e-3 with one update per
sequence, as the side-by-side runner trains; IREE llvm-cpu; no compile cache), rounds
interleaved:

- ``B = 32, local-sync``: tracec's artifact as the runtime runs it by default (IREE's
  ``local-sync`` driver: every kernel on the calling thread, one core);
- ``B = 32, local-task``: the same artifact on IREE's ``local-task`` driver, which spreads
  each kernel's workgroups over both cores;
- ``--batch-shards 2``: the network compiled for batch 16 and loaded as the runtime's
  data-parallel learner (two parts of the batch in two threads, their accumulated
  gradients averaged and the same update applied in both once per window; docs/abi.md).
  Before timing, two windows of it are checked against the batch-32 artifact: the same
  losses and parameters to float32 rounding.

Then braintrace 0.2.8's ``pp_prop`` (or ``D_RTRL``; the newest benchmark venv,
``braintrace_side.py time``, its own process) twice: as its authors run it (XLA free to
use both cores) and under ``taskset -c 0``. D-RTRL (both tools) only up to
``--drtrl-max-H``. Writes benchmarks/results/two_cores.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

from benchmarks.common import (BRAINTRACE_SIDE, ROOT, bench_pythons, braintrace_version,
                               interleaved, make_data, write_text)

RESULT = os.path.join(ROOT, "benchmarks", "results", "two_cores.md")
B = 32
BT_NAME = {"es-d-rtrl": "pp_prop", "d-rtrl": "D_RTRL"}


def braintrace_time(python: str, variant: str, H: int, algorithm: str, T: int, repeats: int,
                    pinned: bool) -> float | None:
    """braintrace's pp_prop or D_RTRL µs per step (median), in its own process; pinned to
    one core with ``taskset -c 0``."""
    import json

    cmd = [python, BRAINTRACE_SIDE, "time", "--variant", variant, "--H", str(H),
           "--algorithm", algorithm.replace("-", "_"), "--T", str(T), "--repeats", str(repeats),
           "--optimizer", "adam", "--in-process"]
    if pinned:
        cmd = ["taskset", "-c", "0", *cmd]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                       cwd=ROOT)
    recs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return recs[0]["us_per_step_median"] if recs else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+",
                    default=["lif_v:64", "alif_v:64", "lif_v:256", "alif_v:256", "lif_v:512"])
    ap.add_argument("--algorithms", nargs="+", choices=list(BT_NAME),
                    default=["es-d-rtrl", "d-rtrl"])
    ap.add_argument("--drtrl-max-H", type=int, default=64)
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-braintrace", action="store_true")
    ap.add_argument("--out", default=RESULT)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    xs, ys = make_data(args.T, B)
    pythons = [] if args.no_braintrace else bench_pythons()
    bt_python = pythons[-1] if pythons else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.networks:
            variant, H = net.split(":")
            for alg in args.algorithms:
                if alg == "d-rtrl" and int(H) > args.drtrl_max_H:
                    continue
                paths = {}
                for shards in (1, 2):
                    art = tracec.compile(make_model(int(H), variant, B), algorithm=alg,
                                         optimizer="adam", lr=1e-3, update_every=args.T,
                                         batch_shards=shards)
                    paths[shards] = os.path.join(tmp, f"{variant}{H}_{alg}_{shards}.vmfb")
                    art.save(paths[shards])
                whole = tracec.runtime.load(paths[1])
                task = tracec.runtime.load(paths[1], driver="local-task")
                split = tracec.runtime.load(paths[2])
                p0 = whole.params  # the same start everywhere (the same seed), checked
                for learner in (task, split):
                    for k in p0:
                        assert np.array_equal(learner.params[k], p0[k]), (net, k)
                two = (np.concatenate([xs, xs]), np.concatenate([ys, ys]))
                losses = whole.train_sequence(*two)  # two windows: the same learning
                assert np.allclose(losses, split.train_sequence(*two), rtol=1e-5, atol=1e-6), net
                for k, v in whole.params.items():
                    assert np.allclose(v, split.params[k], rtol=1e-4,
                                       atol=1e-4 * np.abs(v).max()), (net, alg, k)
                for learner in (whole, task, split):
                    learner.set_params(p0)

                def run(learner):
                    learner.reset()
                    return learner.train_sequence(xs, ys)

                calls = {"local-sync": lambda: run(whole), "local-task": lambda: run(task),
                         "shards": lambda: run(split)}
                times, _ = interleaved(calls, args.rounds)
                med = {k: statistics.median(v[1:]) / args.T * 1e6 for k, v in times.items()}
                if bt_python is not None:
                    for pinned in (False, True):
                        med[("bt", pinned)] = braintrace_time(bt_python, variant, int(H), alg,
                                                              args.T, args.rounds, pinned)
                rows.append((net, alg, med))
                print(net, alg, {str(k): (round(v, 1) if v else v) for k, v in med.items()},
                      flush=True)
    version = braintrace_version(bt_python) if bt_python else None
    bt = f"braintrace {version}" if version else "braintrace"
    lines = ["# A learning step and the second core", "",
             f"Command: `python -m benchmarks.two_cores --networks {' '.join(args.networks)} "
             f"--algorithms {' '.join(args.algorithms)} --drtrl-max-H {args.drtrl_max_H} "
             f"--T {args.T} --rounds {args.rounds}` ({time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} cores). B = {B}, T = {args.T}, Adam with one update per "
             "sequence, IREE llvm-cpu; µs per step, medians of the rounds after the first, "
             "tracec's forms interleaved. `--batch-shards 2`: the network compiled for "
             "batch 16, run by the runtime's data-parallel learner (two parts in two "
             "threads, gradients averaged, one update per window; checked equal to the "
             f"batch-32 artifact over two windows). {bt} (`pp_prop` for ES-D-RTRL, `D_RTRL` "
             "for D-RTRL) in its own process, as its authors run it (XLA free to use every "
             "core) and pinned to core 0.", "",
             "| network | rule | B = 32, local-sync (one core) | B = 32, local-task (both cores) "
             f"| `--batch-shards 2` (both cores) | {bt}, both cores | {bt}, one core "
             "| `--batch-shards 2` against braintrace on both cores |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(v, base=None):
        if v is None:
            return "—"
        return f"{v:.1f}" + (f" ({base / v:.2f}×)" if base else "")

    for net, alg, med in rows:
        sync, bt2 = med["local-sync"], med.get(("bt", False))
        lines.append(f"| {net} | {alg} | {cell(sync)} | {cell(med['local-task'], sync)} | "
                     f"{cell(med['shards'], sync)} | {cell(bt2)} | "
                     f"{cell(med.get(('bt', True)))} | "
                     + (f"{bt2 / med['shards']:.2f}× |" if bt2 else "— |"))
    lines += ["", "In brackets: the one-core step's time over the form's (> 1: faster than "
              "one core). Last column: braintrace's time over `--batch-shards 2`'s (> 1: "
              "tracec faster)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
