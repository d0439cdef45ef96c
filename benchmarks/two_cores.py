"""Does a learning step gain from the machine's second core? tracec's ES-D-RTRL step on one
core, on IREE's multi-threaded driver, and split over the batch into two processes or
threads; braintrace's ``pp_prop`` on both cores (as its authors run it) and pinned to one.

    python -m benchmarks.two_cores [--networks lif_v:64 alif_v:64 lif_v:256 lif_v:512]
        [--T 180] [--rounds 9] [--no-braintrace]

Per network of benchmarks/networks.py (ES-D-RTRL, Adam lr 1e-3 with one update per
sequence, as the side-by-side runner trains; IREE llvm-cpu; no compile cache), rounds
interleaved:

- ``B = 32, local-sync``: tracec's artifact as the runtime runs it by default (IREE's
  ``local-sync`` driver: every kernel on the calling thread, one core);
- ``B = 32, local-task``: the same artifact on IREE's ``local-task`` driver, which spreads
  each kernel's workgroups over both cores;
- ``2 × B/2``: data parallelism over the batch, a prototype of a learner the runtime does
  not have (``DataParallel`` below). The network is compiled for batch 16; two learners
  each take half of the batch and run an update window's steps (here the whole sequence)
  at the same time, with the window counter ``k`` started at -1 so that the window's last
  step accumulates its gradient without the update. Then the two accumulators are
  averaged (the loss is a mean over the batch) and handed to one learner's
  ``train_step`` with mask 0 and ``k`` one short of the window: it adds a zero gradient
  and runs the optimizer; its state, traces and ``n`` are put back as they were, and the
  new parameters and optimizer state are copied to the other learner. Three ways: two
  processes (``multiprocessing``, spawned; inputs and gradients through pipes), two
  threads of this process (iree.runtime lets go of the GIL while a call runs), and one
  thread, the halves one after the other, for scale. Before timing, two windows of each
  are checked against the batch-32 artifact: the same losses and parameters to float32
  rounding (the batch sum is taken in another order).

Then braintrace 0.2.8's ``pp_prop`` (the newest benchmark venv, ``braintrace_side.py
time``, its own process) twice: as its authors run it (XLA free to use both cores) and
under ``taskset -c 0``. Writes benchmarks/results/two_cores.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import (BRAINTRACE_SIDE, ROOT, bench_pythons, braintrace_version,
                               interleaved, make_data, write_text)

RESULT = os.path.join(ROOT, "benchmarks", "results", "two_cores.md")
B = 32


def _acc_keys(learner) -> list[str]:
    return [f"accum:{s['name']}" for s in learner.manifest["accumulators"]]


def _part_window(learner, xs, ys):
    """One update window's steps on one part of the batch, the update held back (the
    window counter ``k`` starts at -1, so that the last step's count does not reach the
    window's length); returns the losses and the accumulated gradients. Like the rest of
    this prototype it reaches into the runtime's carried values, which docs/abi.md names."""
    import numpy as np

    learner._values["counter:k"] = learner._exec.to_device(np.asarray(np.int32(-1)))
    losses = learner.train_sequence(xs, ys)
    return losses, {k: learner._host(learner._values[k]) for k in _acc_keys(learner)}


def _part_update(learner, total: dict, window_steps: int) -> dict:
    """The optimizer on the whole batch's accumulated gradient ``total``: ``train_step``
    with mask 0 (a zero gradient) and ``k`` one short of the window; the state, traces
    and ``n`` it advanced are put back. Returns the parameters, optimizer state,
    accumulators and ``k`` after it."""
    import numpy as np

    m = learner.manifest
    kept = dict(learner._values)
    for k, v in total.items():
        learner._values[k] = learner._exec.to_device(v)
    learner._values["counter:k"] = learner._exec.to_device(np.asarray(np.int32(window_steps - 1)))
    tgt = m["source"]["target"]
    learner._call("train_step", {
        f"input:{m['input']['name']}": np.zeros(m["input"]["shape"], m["input"]["dtype"]),
        f"target:{tgt['name']}": np.zeros(tgt["shape"], tgt["dtype"]),
        "mask:mask": np.float32(0)})
    keys = ([f"param:{s['name']}" for s in m["params"]]
            + [f"opt:{s['name']}" for s in m["optimizer_state"]] + _acc_keys(learner)
            + ["counter:k"])
    new = {k: learner._host(learner._values[k]) for k in keys}
    learner._values.update({k: v for k, v in kept.items() if k not in new})
    return new


def _part_set(learner, values: dict) -> None:
    for k, v in values.items():
        learner._values[k] = learner._exec.to_device(v)


def _worker(path: str, conn) -> None:
    """A part of the batch in a process of its own: commands from ``conn``."""
    sys.path.insert(0, ROOT)
    import runtime

    learner = runtime.load(path)
    ops = {"window": lambda xs, ys: _part_window(learner, xs, ys),
           "update": lambda total, k: _part_update(learner, total, k),
           "set": lambda values: _part_set(learner, values),
           "reset": learner.reset, "params": lambda: learner.params}
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(ops[msg[0]](*msg[1:]))


class DataParallel:
    """Learners over equal parts of the batch, updated together once per window (a
    prototype for this benchmark). ``parts``: learners, run one after the other or (with
    ``pool``) from threads; or (``processes``) pipes to ``_worker`` processes. ``window``
    runs one update window of ``window_steps`` steps and returns the per-step losses."""

    def __init__(self, parts, window_steps: int, pool=None, processes: bool = False):
        self.parts, self.K, self.pool, self.processes = parts, window_steps, pool, processes

    def _ask(self, i, *msg):
        if self.processes:
            self.parts[i].send(msg)
            return self.parts[i].recv()
        fn = {"window": _part_window, "update": _part_update, "set": _part_set,
              "reset": lambda lr: lr.reset(), "params": lambda lr: lr.params}[msg[0]]
        return fn(self.parts[i], *msg[1:])

    def reset(self):
        for i in range(len(self.parts)):
            self._ask(i, "reset")

    def params(self):
        return self._ask(0, "params")

    def window(self, xs, ys):
        n = len(self.parts)
        b = xs.shape[1] // n
        cut = [(xs[:, i * b:(i + 1) * b], ys[:, i * b:(i + 1) * b]) for i in range(n)]
        if self.processes:
            for conn, (x, y) in zip(self.parts, cut):
                conn.send(("window", x, y))
            done = [conn.recv() for conn in self.parts]
        elif self.pool is not None:
            done = [f.result() for f in [self.pool.submit(self._ask, i, "window", *cut[i])
                                         for i in range(n)]]
        else:
            done = [self._ask(i, "window", *cut[i]) for i in range(n)]
        # the loss is a mean over the batch: the whole batch's gradient is the parts' mean
        total = {k: sum(acc[k] for _, acc in done) / n for k in done[0][1]}
        new = self._ask(0, "update", total, self.K)
        for i in range(1, n):
            self._ask(i, "set", new)
        return sum(losses for losses, _ in done) / n


def braintrace_pp_prop(python: str, variant: str, H: int, T: int, repeats: int,
                       pinned: bool) -> float | None:
    """braintrace's pp_prop µs per step (median), in its own process; pinned to one core
    with ``taskset -c 0``."""
    import json

    cmd = [python, BRAINTRACE_SIDE, "time", "--variant", variant, "--H", str(H),
           "--algorithm", "es_d_rtrl", "--T", str(T), "--repeats", str(repeats),
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
                    default=["lif_v:64", "alif_v:64", "lif_v:256", "lif_v:512"])
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
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.networks:
            variant, H = net.split(":")
            paths = {}
            for b in (B, B // 2):
                art = tracec.compile(make_model(int(H), variant, b), algorithm="es-d-rtrl",
                                     optimizer="adam", lr=1e-3, update_every=args.T)
                paths[b] = os.path.join(tmp, f"{variant}{H}_{b}.vmfb")
                art.save(paths[b])
            whole = tracec.runtime.load(paths[B])
            task = tracec.runtime.load(paths[B], driver="local-task")
            parts = [tracec.runtime.load(paths[B // 2]) for _ in range(2)]

            def run(learner, x, y):
                learner.reset()
                return learner.train_sequence(x, y)

            p0 = whole.params  # the same start everywhere (the same seed), checked
            for learner in (task, *parts):
                for k in p0:
                    assert np.array_equal(learner.params[k], p0[k]), (net, k)
            conns = []
            for _ in range(2):
                mine, theirs = ctx.Pipe()
                ctx.Process(target=_worker, args=(paths[B // 2], theirs), daemon=True).start()
                conns.append(mine)
            forms = {"threads": DataParallel(parts, args.T, pool),
                     "serial": DataParallel([tracec.runtime.load(paths[B // 2])
                                             for _ in range(2)], args.T),
                     "processes": DataParallel(conns, args.T, processes=True)}
            whole.reset()  # two windows: the same losses and parameters as the whole batch
            losses = whole.train_sequence(np.concatenate([xs, xs]), np.concatenate([ys, ys]))
            pw = whole.params
            for name, form in forms.items():
                form.reset()
                split = np.concatenate([form.window(xs, ys), form.window(xs, ys)])
                assert np.allclose(losses, split, rtol=1e-5, atol=1e-6), (net, name)
                ps = form.params()
                for k in pw:
                    assert np.allclose(pw[k], ps[k], rtol=1e-4,
                                       atol=1e-4 * np.abs(pw[k]).max()), (net, name, k)
            for learner in (whole, task):
                learner.set_params(p0)
            calls = {"local-sync": lambda: run(whole, xs, ys),
                     "local-task": lambda: run(task, xs, ys)}
            for name, form in forms.items():
                calls[name] = lambda form=form: (form.reset(), form.window(xs, ys))
            times, _ = interleaved(calls, args.rounds)
            med = {k: statistics.median(v[1:]) / args.T * 1e6 for k, v in times.items()}
            if bt_python is not None:
                for pinned in (False, True):
                    med[("bt", pinned)] = braintrace_pp_prop(bt_python, variant, int(H), args.T,
                                                            args.rounds, pinned)
            rows.append((net, med))
            for conn in conns:
                conn.send(None)
            print(net, {str(k): (round(v, 1) if v else v) for k, v in med.items()}, flush=True)
    pool.shutdown()
    version = braintrace_version(bt_python) if bt_python else None
    bt = f"braintrace {version} `pp_prop`" if version else "braintrace `pp_prop`"
    lines = ["# A learning step and the second core", "",
             f"Command: `python -m benchmarks.two_cores --networks {' '.join(args.networks)} "
             f"--T {args.T} --rounds {args.rounds}` ({time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} cores). ES-D-RTRL, B = {B}, T = {args.T}, Adam with one update "
             "per sequence, IREE llvm-cpu; µs per step, medians of the rounds after the "
             "first, tracec's forms interleaved. \"2 × B/2\": two learners on half the "
             "batch each, their gradients averaged and the parameters updated together once "
             "per window (a prototype, benchmarks/two_cores.py; checked equal to the "
             f"batch-32 artifact over two windows). {bt} in its own process, as its authors run "
             "it (XLA free to use every core) and pinned to core 0.", "",
             "| network | B = 32, local-sync (one core) | B = 32, local-task (both cores) | "
             "2 × B/2, two processes | 2 × B/2, two threads | 2 × B/2, one thread | "
             f"{bt}, both cores | {bt}, one core |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(v, base=None):
        if v is None:
            return "—"
        return f"{v:.1f}" + (f" ({base / v:.2f}×)" if base else "")

    for net, med in rows:
        sync = med["local-sync"]
        lines.append(f"| {net} | {cell(sync)} | {cell(med['local-task'], sync)} | "
                     f"{cell(med['processes'], sync)} | {cell(med['threads'], sync)} | "
                     f"{cell(med['serial'], sync)} | "
                     f"{cell(med.get(('bt', False)))} | {cell(med.get(('bt', True)))} |")
    lines += ["", "In brackets: the one-core step's time over the form's (> 1: faster than "
              "one core)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
