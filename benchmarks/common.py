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


# braintrace, the incumbent library, lives in its own venv (optional benchmark
# dependency; `make bench-venv`); benchmarks/braintrace_side.py runs there.
BENCH_PYTHON = os.environ.get("TRACEC_BENCH_PYTHON",
                              os.path.join(ROOT, ".venv-bench", "bin", "python"))
BRAINTRACE_SIDE = os.path.join(ROOT, "benchmarks", "braintrace_side.py")
BENCH_VENV_HOW = "make bench-venv   # .venv-bench from benchmarks/requirements-braintrace.txt"


def bench_python() -> str | None:
    """The benchmark venv's python, or None after saying (on stderr) how to create it."""
    if os.path.exists(BENCH_PYTHON):
        return BENCH_PYTHON
    import sys
    print(f"braintrace columns skipped: no benchmark venv at {BENCH_PYTHON}; create it with\n"
          f"  {BENCH_VENV_HOW}", file=sys.stderr)
    return None


def braintrace_side(args: list[str], timeout: float | None = None) -> list[dict] | None:
    """Run ``braintrace_side.py ARGS`` in the benchmark venv and return its JSON records
    (one per stdout line), or None when the venv is missing. Its stderr (progress) is
    passed through; a failed measurement is left out of the records."""
    import json
    import subprocess

    py = bench_python()
    if py is None:
        return None
    p = subprocess.run([py, BRAINTRACE_SIDE, *args], stdout=subprocess.PIPE, text=True,
                       timeout=timeout, cwd=ROOT)
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
