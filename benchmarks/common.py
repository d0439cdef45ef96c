"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed_calls(fn, repeats: int) -> tuple[float, list[float]]:
    """Seconds of the first call of ``fn`` (compilation, first-touch) and of each of
    ``repeats`` further calls."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return first, out


def timed_runs(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    return timed_calls(fn, repeats)[1]


def interleaved(calls: dict, rounds: int, inputs=None) -> tuple[dict, dict]:
    """Time the variants ``calls`` (key -> function) side by side: each round calls every
    variant once, in reverse order every other round, so that a change in the machine's
    load hits all of them alike. ``inputs(r)`` gives round ``r``'s arguments (default:
    none). Returns (key -> seconds per round, key -> what its last call returned)."""
    times: dict = {k: [] for k in calls}
    last: dict = {}
    for r in range(rounds):
        args = inputs(r) if inputs is not None else ()
        for key in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            t0 = time.perf_counter()
            last[key] = calls[key](*args)
            times[key].append(time.perf_counter() - t0)
    return times, last


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM from /proc/self/status on Linux.
    Not getrusage's ru_maxrss: for a child of a large process (fork + exec) that reports
    at least the parent's peak at the fork, whatever the child uses."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(T: int, batch: int, n_in: int = 40, n_out: int = 10, seed: int = 0):
    """Random input spikes ``xs [T, batch, n_in]`` (rate 0.2) and labels ``ys [T, batch]``:
    the same arrays as benchmarks/braintrace_side.py's make_data (numpy only)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xs = (rng.random((T, batch, n_in)) < 0.2).astype(np.float32)
    ys = rng.integers(0, n_out, (T, batch)).astype(np.int32)
    return xs, ys


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# braintrace, the incumbent library, lives in its own venvs (optional benchmark
# dependency): .venv-bench, braintrace 0.2.6 on Python 3.11 (`make bench-venv`), and
# .venv-bench312, its newest release on Python 3.12 (`make bench-venv-312`);
# benchmarks/braintrace_side.py runs there. TRACEC_BENCH_PYTHON names one python instead,
# TRACEC_BENCH_PYTHONS several (separated by os.pathsep).
BENCH_VENVS = {".venv-bench": "make bench-venv       # .venv-bench from benchmarks/requirements-braintrace.txt",
               ".venv-bench312": "make bench-venv-312   # .venv-bench312 from "
                                 "benchmarks/requirements-braintrace-312.txt"}
BENCH_PYTHON = os.environ.get("TRACEC_BENCH_PYTHON",
                              os.path.join(ROOT, ".venv-bench", "bin", "python"))
BRAINTRACE_SIDE = os.path.join(ROOT, "benchmarks", "braintrace_side.py")
BENCH_VENV_HOW = BENCH_VENVS[".venv-bench"]


def bench_python() -> str | None:
    """The first benchmark venv's python, or None after saying (on stderr) how to create it."""
    pys = bench_pythons()
    return pys[0] if pys else None


def bench_pythons() -> list[str]:
    """Every benchmark venv's python that exists (braintrace 0.2.6, then the newest), after
    saying (on stderr) how to create each one that does not."""
    import sys

    if os.environ.get("TRACEC_BENCH_PYTHONS"):
        return [p for p in os.environ["TRACEC_BENCH_PYTHONS"].split(os.pathsep) if p]
    if os.environ.get("TRACEC_BENCH_PYTHON"):
        return [BENCH_PYTHON] if os.path.exists(BENCH_PYTHON) else []
    out = []
    for venv, how in BENCH_VENVS.items():
        py = os.path.join(ROOT, venv, "bin", "python")
        if os.path.exists(py):
            out.append(py)
        else:
            print(f"braintrace columns of {venv} skipped: no benchmark venv at {py}; create it "
                  f"with\n  {how}", file=sys.stderr)
    return out


def braintrace_version(python: str) -> str | None:
    """The braintrace version installed in the venv of ``python`` (read from its metadata,
    without starting it)."""
    import glob

    venv = os.path.dirname(os.path.dirname(python))
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "braintrace-*.dist-info"))
    return os.path.basename(found[0])[len("braintrace-"):-len(".dist-info")] if found else None


def braintrace_side(args: list[str], timeout: float | None = None,
                    python: str | None = None) -> list[dict] | None:
    """Run ``braintrace_side.py ARGS`` in a benchmark venv (``python``, default the first)
    and return its JSON records (one per stdout line), or None when the venv is missing.
    Its stderr (progress) is passed through; a failed measurement is left out of the
    records."""
    import json
    import subprocess

    py = python or bench_python()
    if py is None:
        return None
    p = subprocess.run([py, BRAINTRACE_SIDE, *args], stdout=subprocess.PIPE, text=True,
                       timeout=timeout, cwd=ROOT)
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
