"""Whole-brain scale: examples/connectome.py trained online with ES-D-RTRL at several
sizes, each in fresh processes, reporting for every size:

- compile time and the compiler's peak resident memory;
- time per online step (``train_sequence`` over chunks of T steps, median of the chunks
  after the first) and the learner's peak resident memory;
- the bytes of state the binary carries between steps (parameters, neuron state,
  traces, optimizer state, accumulated gradients), read from the manifest;
- the loss of the first and of the last chunk.

    .venv/bin/python -m benchmarks.scale                      # 10k, 50k, 139,255 neurons
    .venv/bin/python -m benchmarks.scale --sizes 2000:40000   # neurons:connections
    .venv/bin/python -m benchmarks.scale --braintrace         # and braintrace's pp_prop
    .venv/bin/python -m benchmarks.scale --braintrace --no-tracec   # braintrace's rows only

``--braintrace`` also runs benchmarks/scale_braintrace.py (the same network, connection
lists and training, written with braintrace's sparse ETP layers) at each size in a fresh
process of the benchmark venv (``--bench-python``, default .venv-bench312), under a time
limit per size (``--bt-timeout``); a size that fails, runs out of memory or out of time
gets a row saying "did not complete" and why.

Connections scale with the neurons (3 million at 139,255, as in the example).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks.common import ROOT

DEFAULT_SIZES = ["10000:215437", "50000:1077188", "139255:3000000"]


def _child(env: dict, code: str) -> dict:
    """Run ``code`` in a fresh Python with ``env``; it prints one JSON line last."""
    p = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


COMPILE = r"""
import json, sys, time
sys.path.insert(0, "benchmarks")
import tracec
from common import peak_rss_mib
t0 = time.perf_counter()
art = tracec.compile("examples/connectome.py", algorithm="es-d-rtrl", optimizer="adam",
                     lr=0.003, update_every=10, decay=0.9, use_cache=False)
seconds = time.perf_counter() - t0
art.save({path!r})
print(json.dumps({{"compile_s": seconds, "compile_rss_mib": peak_rss_mib()}}))
"""

TRAIN = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "examples")
import tracec.runtime
from common import peak_rss_mib
import connectome as C
learner = tracec.runtime.load({path!r})
m = learner.manifest
carried = sum(int(np.prod(e["shape"])) * np.dtype(e["dtype"]).itemsize
              for key in ("params", "state", "traces", "optimizer_state", "accumulators", "counters")
              for e in m[key])
traces = sum(int(np.prod(e["shape"])) * 4 for e in m["traces"])
T, chunks = {steps}, {chunks}
rng = np.random.default_rng(0)
targets = np.stack([C.target_activity(t) for t in range(T)])
times, losses = [], []
for k in range(chunks):
    xs = (rng.random((T, C.B, C.N_IN)) < 0.2).astype(np.float32)
    t0 = time.perf_counter()
    out = learner.train_sequence(xs, targets)
    times.append((time.perf_counter() - t0) / T)
    losses.append(float(np.mean(out)))
print(json.dumps({{"step_ms": float(np.median(times[1:] or times)) * 1e3,
                  "run_rss_mib": peak_rss_mib(), "carried_bytes": carried,
                  "trace_bytes": traces, "loss_first": losses[0], "loss_last": losses[-1]}}))
"""


def measure(neurons: int, connections: int, steps: int, chunks: int) -> dict:
    env = {"CONNECTOME_NEURONS": str(neurons), "CONNECTOME_CONNECTIONS": str(connections),
           "CONNECTOME_BATCH": "1"}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "connectome.vmfb")
        out = {"neurons": neurons, "connections": connections}
        out.update(_child(env, COMPILE.format(path=path)))
        out.update(_child(env, TRAIN.format(path=path, steps=steps, chunks=chunks)))
    return out


BT_HEADER = ("| neurons | connections | tool | ms / step | run peak MiB | first chunk s "
             "| loss first -> last chunk | completed |")


def measure_braintrace(neurons: int, connections: int, steps: int, chunks: int,
                       python: str, timeout: float, backend: str = "numba") -> dict:
    """benchmarks/scale_braintrace.py at one size in a fresh process of the bench venv;
    never raises: a failure is returned as ``{"error": reason}``."""
    env = {**os.environ, "CONNECTOME_NEURONS": str(neurons),
           "CONNECTOME_CONNECTIONS": str(connections), "CONNECTOME_BATCH": "1"}
    cmd = [python, os.path.join("benchmarks", "scale_braintrace.py"), "--steps", str(steps),
           "--chunks", str(chunks), "--backend", backend]
    out = {"neurons": neurons, "connections": connections,
           "tool": f"braintrace pp_prop, brainevent {backend}"}
    try:
        p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        out["error"] = f"time limit of {timeout:.0f} s reached"
        return out
    except OSError as e:  # no bench venv
        out["error"] = f"could not start {python}: {e}"
        return out
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if p.returncode < 0:
            reason = f"killed by signal {-p.returncode} (out of memory?)"
        elif "MemoryError" in p.stderr or "RESOURCE_EXHAUSTED" in p.stderr:
            reason = f"out of memory: {last[:300]}"
        else:
            reason = f"exit {p.returncode}: {last[:300]}"
        out["error"] = reason
        out["stderr_tail"] = p.stderr[-3000:]
        return out
    out.update(json.loads(p.stdout.strip().splitlines()[-1]))
    return out


def bt_row(r: dict) -> str:
    n, c = r["neurons"], r["connections"]
    if "error" in r:
        return f"| {n:,} | {c:,} | {r['tool']} | | | | | did not complete: {r['error']} |"
    return (f"| {n:,} | {c:,} | {r['tool']} | {r['step_ms']:.2f} | {r['run_rss_mib']:.0f} | "
            f"{r['first_chunk_s']:.1f} | {r['loss_first']:.4f} -> {r['loss_last']:.4f} | yes |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", default=DEFAULT_SIZES, help="neurons:connections")
    ap.add_argument("--steps", type=int, default=50, help="steps per train_sequence chunk")
    ap.add_argument("--chunks", type=int, default=5, help="chunks (the first is not timed)")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--braintrace", action="store_true",
                    help="also run braintrace's pp_prop (benchmarks/scale_braintrace.py)")
    ap.add_argument("--no-tracec", action="store_true", help="skip tracec's rows")
    ap.add_argument("--bench-python", default=os.path.join(ROOT, ".venv-bench312", "bin", "python"),
                    help="the benchmark venv's Python for --braintrace")
    ap.add_argument("--bt-timeout", type=float, default=900.0,
                    help="seconds braintrace may take per size")
    ap.add_argument("--bt-backends", nargs="*", default=["numba", "jax_raw"],
                    choices=["numba", "jax_raw"],
                    help="brainevent CPU kernel backends to run braintrace with (numba is "
                         "brainevent's default)")
    args = ap.parse_args(argv)
    rows, bt_rows = [], []
    if args.no_tracec:
        print(BT_HEADER)
        print("|---|---|---|---|---|---|---|---|")
        for size in args.sizes:
            n, c = (int(v) for v in size.split(":"))
            for backend in args.bt_backends:
                r = measure_braintrace(n, c, args.steps, args.chunks, args.bench_python,
                                       args.bt_timeout, backend)
                bt_rows.append(r)
                print(bt_row(r), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"braintrace": bt_rows}, f, indent=1)
        return 0
    print("| neurons | connections | compile s | compile peak MiB | ms / step | run peak MiB "
          "| carried state MiB (of it traces) | loss first -> last chunk |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        n, c = (int(v) for v in size.split(":"))
        r = measure(n, c, args.steps, args.chunks)
        rows.append(r)
        carried = f"{r['carried_bytes'] / 2**20:.1f} ({r['trace_bytes'] / 2**20:.1f})"
        print(f"| {n:,} | {c:,} | {r['compile_s']:.0f} | {r['compile_rss_mib']:.0f} | "
              f"{r['step_ms']:.2f} | {r['run_rss_mib']:.0f} | {carried} | "
              f"{r['loss_first']:.4f} -> {r['loss_last']:.4f} |", flush=True)
        if args.braintrace:
            for backend in args.bt_backends:
                bt_rows.append(measure_braintrace(n, c, args.steps, args.chunks,
                                                  args.bench_python, args.bt_timeout, backend))
    if bt_rows:
        print("\nbraintrace:")
        print(BT_HEADER)
        print("|---|---|---|---|---|---|---|---|")
        for r in bt_rows:
            print(bt_row(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tracec": rows, "braintrace": bt_rows} if args.braintrace else rows,
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
