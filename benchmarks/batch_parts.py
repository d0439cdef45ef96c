"""How many parts of the batch, in how many threads? tracec's learning step compiled with
``--batch-shards N`` for several N and run by the runtime's data-parallel learner with 1
thread (the parts one after the other on one core) and with 2 (both cores), against the
whole batch on one core and braintrace on both cores.

    python -m benchmarks.batch_parts [--networks lif_v:64 alif_v:64] [--parts 2 4 8]
        [--algorithms d-rtrl es-d-rtrl] [--T 180] [--rounds 7] [--no-braintrace]

Per network of benchmarks/networks.py and rule (B = 32, Adam lr 1e-3 with one update per
sequence, IREE llvm-cpu, local-sync; no compile cache), tracec's forms interleaved in one
process; every form is checked against the whole batch over one window first (losses to
1e-5, parameters to 1e-4 of their largest entry). braintrace 0.2.8 (``pp_prop`` /
``D_RTRL``) as its authors run it, in its own process (``two_cores.braintrace_time``).
Writes benchmarks/results/batch_parts.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from benchmarks.common import (ROOT, bench_pythons, braintrace_version, interleaved, make_data,
                               write_text)
from benchmarks.two_cores import BT_NAME, braintrace_time

RESULT = os.path.join(ROOT, "benchmarks", "results", "batch_parts.md")
B = 32


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "alif_v:64"])
    ap.add_argument("--parts", nargs="+", type=int, default=[2, 4, 8])
    ap.add_argument("--algorithms", nargs="+", choices=list(BT_NAME),
                    default=["d-rtrl", "es-d-rtrl"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-braintrace", action="store_true")
    ap.add_argument("--out", default=RESULT)
    args = ap.parse_args(argv)
    os.environ["TRACEC_CACHE"] = "0"
    import numpy as np

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    xs, ys = make_data(args.T, B)
    pythons = [] if args.no_braintrace else bench_pythons()
    bt_python = pythons[-1] if pythons else None
    forms = [(1, 1)] + [(n, t) for n in args.parts for t in (1, 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.networks:
            variant, H = net.split(":")
            for alg in args.algorithms:
                paths = {}
                for n in sorted({n for n, _ in forms}):
                    paths[n] = os.path.join(tmp, f"{variant}{H}_{alg}_{n}.vmfb")
                    tracec.compile(make_model(int(H), variant, B), algorithm=alg,
                                   optimizer="adam", lr=1e-3, update_every=args.T,
                                   batch_shards=n).save(paths[n])
                learners = {(n, t): tracec.runtime.load(paths[n], threads=None if n == 1 else t)
                            for n, t in forms}
                whole = learners[(1, 1)]
                p0 = whole.params
                losses = whole.train_sequence(xs, ys)
                for form, learner in learners.items():
                    if form == (1, 1):
                        continue
                    assert np.allclose(losses, learner.train_sequence(xs, ys), rtol=1e-5,
                                       atol=1e-6), (net, alg, form)
                    for k, v in whole.params.items():
                        assert np.allclose(v, learner.params[k], rtol=1e-4,
                                           atol=1e-4 * np.abs(v).max()), (net, alg, form, k)
                for learner in learners.values():
                    learner.set_params(p0)

                def run(learner):
                    learner.reset()
                    return learner.train_sequence(xs, ys)

                calls = {form: (lambda lr=lr: run(lr)) for form, lr in learners.items()}
                times, _ = interleaved(calls, args.rounds)
                med = {k: statistics.median(v[1:]) / args.T * 1e6 for k, v in times.items()}
                if bt_python is not None:
                    med["bt"] = braintrace_time(bt_python, variant, int(H), alg, args.T,
                                                args.rounds, pinned=False)
                rows.append((net, alg, med))
                print(net, alg, {str(k): (round(v, 1) if v else v) for k, v in med.items()},
                      flush=True)
    version = braintrace_version(bt_python) if bt_python else None
    bt = f"braintrace {version}" if version else "braintrace"
    head = ["network", "rule", "whole batch, one core"]
    for n in args.parts:
        head += [f"{n} parts, 1 thread", f"{n} parts, 2 threads"]
    head += [f"{bt}, both cores", "fastest tracec form against it"]
    lines = ["# Parts of the batch and threads", "",
             f"Command: `python -m benchmarks.batch_parts --networks {' '.join(args.networks)} "
             f"--parts {' '.join(map(str, args.parts))} --algorithms "
             f"{' '.join(args.algorithms)} --T {args.T} --rounds {args.rounds}` "
             f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores). B = {B}, T = {args.T}, "
             "Adam with one update per sequence, IREE llvm-cpu, local-sync; µs per step, "
             "medians of the rounds after the first, tracec's forms interleaved; in "
             "brackets, the whole batch's time over the form's. `N parts`: compiled with "
             "`--batch-shards N`, run by the data-parallel learner with that many threads "
             f"(1: the parts one after the other). {bt} (`pp_prop` for ES-D-RTRL, `D_RTRL` "
             "for D-RTRL) in its own process, as its authors run it (XLA free to use every "
             "core).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for net, alg, med in rows:
        base = med[(1, 1)]
        cells = [net, alg, f"{base:.1f}"]
        for n in args.parts:
            cells += [f"{med[(n, t)]:.1f} ({base / med[(n, t)]:.2f}×)" for t in (1, 2)]
        best = min(v for k, v in med.items() if k != "bt")
        cells += [f"{med['bt']:.1f}" if med.get("bt") else "—",
                  f"{med['bt'] / best:.2f}×" if med.get("bt") else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
