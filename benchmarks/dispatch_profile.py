"""Where a time step goes: the IREE dispatches one step of each entry runs.

    python -m benchmarks.dispatch_profile [--model examples/lif2.py] [--T 300]
    python -m benchmarks.dispatch_profile --times [--algorithm es-d-rtrl]

IREE runs each fused kernel ("dispatch") of a loop body once per time step; on this
CPU each costs a few microseconds of fixed overhead besides its arithmetic, so for small
networks the number of dispatches per step, not the FLOPs, sets the time per step.
This script compiles the model (forward, ES-D-RTRL, D-RTRL), stops IREE at the stream
level, and counts the dispatches inside ``forward_sequence`` and ``train_sequence`` by
kind (matmul, elementwise, reduction, ...), next to the bytes of eligibility traces the
step reads and writes. Writes benchmarks/results/dispatch_profile.md.

``--times`` profiles one rule instead: every dispatch of one time step timed alone
(IREE's own dispatch benchmarks, dumped by iree-compile: the same kernel 100 times in
one command buffer, ``iree-benchmark-module`` on local-sync, median of 5), their sum
next to the measured time per step of ``train_sequence`` (or ``forward_sequence``)
from the same compile. The step is the loop body's largest block: the optimizer's
branches, which run once per T steps, are left out. Writes
benchmarks/results/dispatch_times_<rule>.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

from benchmarks.common import ROOT, write_text

_DISPATCH = re.compile(r"stream\.cmd\.dispatch @[\w$.-]+::@(\w+)")
_KIND = re.compile(r"_dispatch_\d+_([a-z_]+?)(?:_\d|$)")


def stream_ir(mlir_path: str, out_path: str, aggressive_fusion: bool = True) -> str:
    from tracec.backends import iree_flags
    from tracec.options import CompileOptions

    tool = os.path.join(os.path.dirname(sys.executable), "iree-compile")
    flags = iree_flags(CompileOptions(), aggressive_fusion) + ["--iree-input-type=stablehlo",
                                                                "--compile-to=stream"]
    subprocess.run([tool, mlir_path, *flags, "-o", out_path], check=True,
                   stderr=subprocess.DEVNULL)
    return open(out_path).read()


def dispatch_kinds(stream_text: str, entry: str) -> collections.Counter:
    """Dispatch kinds inside the public function ``entry`` (its loop body included)."""
    body = stream_text.split(f"util.func public @{entry}(", 1)[1].split("util.func public @", 1)[0]
    kinds = collections.Counter()
    for name in _DISPATCH.findall(body):
        m = _KIND.search(name)
        kinds[m.group(1) if m else name] += 1
    return kinds


def step_dispatches(stream_text: str, entry: str) -> list[str]:
    """The dispatches of one time step of ``entry``, in order: those of the largest
    block of its body (the loop body; the optimizer's branches are blocks of their own)."""
    body = stream_text.split(f"util.func public @{entry}(", 1)[1].split("util.func public @", 1)[0]
    blocks = re.split(r"\n\s*\^bb\d+[^\n]*:", body)
    return max((_DISPATCH.findall(b) for b in blocks), key=len)


def _benchmark_us(vmfb: str, export: str) -> float:
    """Median µs of one dispatch of ``export`` in IREE's dumped dispatch benchmark."""
    tool = os.path.join(os.path.dirname(sys.executable), "iree-benchmark-module")
    out = subprocess.run([tool, f"--module={vmfb}", "--device=local-sync", "--batch_size=100",
                          "--benchmark_repetitions=5", f"--benchmark_filter={export}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"real_time_median\s+([\d.]+) (ns|us|ms)", out)
    if m is None:
        raise SystemExit(f"dispatch_profile: no median in iree-benchmark-module's output for {export}")
    return float(m.group(1)) * {"ns": 1e-3, "us": 1.0, "ms": 1e3}[m.group(2)]


def dispatch_times(args) -> int:
    import statistics

    import numpy as np

    import tracec
    import tracec.runtime
    from benchmarks.common import make_data, timed_runs
    from tracec.backends import iree_flags
    from tracec.options import CompileOptions

    alg = args.algorithm
    entry = "forward_sequence" if alg == "forward" else "train_sequence"
    iree = os.path.join(os.path.dirname(sys.executable), "iree-compile")
    flags = iree_flags(CompileOptions()) + ["--iree-input-type=stablehlo"]
    with tempfile.TemporaryDirectory() as tmp:
        art = tracec.compile(args.model, algorithm=alg, optimizer="adam", update_every=args.T,
                             scan_unroll=1)
        mlir = os.path.join(tmp, "m.mlir")
        with open(mlir, "w") as f:
            f.write(art.ir["iree-input"])
        names = step_dispatches(stream_ir(mlir, os.path.join(tmp, "m.stream.mlir")), entry)
        dump = os.path.join(tmp, "dump")
        subprocess.run([iree, mlir, *flags, f"--iree-hal-dump-executable-benchmarks-to={dump}",
                        "-o", os.path.join(tmp, "m.vmfb")], check=True, stderr=subprocess.DEVNULL)
        alone = {}
        for name in dict.fromkeys(names):
            src = [os.path.join(dump, f) for f in os.listdir(dump)
                   if f.endswith("_benchmark.mlir") and f"@{name} " in open(os.path.join(dump, f)).read()]
            if not src:  # IREE dumps none where the workgroup count is a runtime value
                continue
            vmfb = os.path.join(tmp, f"{name}.vmfb")
            subprocess.run([iree, src[0], *iree_flags(CompileOptions()), "-o", vmfb], check=True,
                           stderr=subprocess.DEVNULL)
            alone[name] = _benchmark_us(vmfb, name)
        path = os.path.join(tmp, "a.vmfb")
        art.save(path)
        learner = tracec.runtime.load(path)
        xs, ys = make_data(args.T, learner.manifest["batch"] if "batch" in learner.manifest else 32)
        if alg == "forward":
            call = lambda: learner.forward_sequence(xs)  # noqa: E731
        else:
            def call():
                learner.reset()
                return np.asarray(learner.train_sequence(xs, ys))
        runs = timed_runs(call, 7)
        step_us, step_min = (statistics.median(runs) / args.T * 1e6, min(runs) / args.T * 1e6)
    total = sum(alone[n] for n in names if n in alone)
    untimed = [n for n in names if n not in alone]
    lines = [f"# One time step's dispatches, timed alone ({os.path.relpath(args.model, ROOT)}, {alg})",
             "", f"Command: `python -m benchmarks.dispatch_profile --times --algorithm {alg} --T "
             f"{args.T}`. Compiled with `--scan-unroll 1` (one time step per loop iteration), "
             "Adam, an update every T steps; each dispatch of the loop body timed alone by "
             "IREE's dumped dispatch benchmark (100 in one command buffer, local-sync, median "
             f"of 5); the measured step: `{entry}` over T = {args.T}, 7 calls.", "",
             "| # | dispatch | µs alone |", "|---|---|---|"]
    for i, n in enumerate(names, 1):
        lines.append(f"| {i} | `{n}` | {f'{alone[n]:.2f}' if n in alone else 'not timed'} |")
    lines += ["", f"{len(names)} dispatches; the {len(names) - len(untimed)} timed alone sum to "
              f"**{total:.1f} µs**; the measured step takes **{step_us:.1f} µs** (median; "
              f"fastest call {step_min:.1f}). Of the fastest, the other {step_min - total:.1f} µs "
              f"({(step_min - total) / step_min:.0%}) are the "
              f"{len(untimed)} dispatches IREE dumps no benchmark for (their workgroup count is "
              "a run-time value: the ones that read this step's input row or target), the time "
              "loop, issuing each dispatch, and what a kernel loses when its inputs come from "
              "the one before instead of a warm repeat of itself."]
    out = args.out or os.path.join(ROOT, "benchmarks", "results",
                                   f"dispatch_times_{alg.replace('-', '_')}.md")
    write_text(out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "lif2.py"))
    ap.add_argument("--T", type=int, default=300, help="update_every (the optimizer runs once)")
    ap.add_argument("--times", action="store_true", help="time one rule's dispatches alone")
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["forward", "es-d-rtrl", "d-rtrl"],
                    help="the rule --times profiles")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.times:
        return dispatch_times(args)
    args.out = args.out or os.path.join(ROOT, "benchmarks", "results", "dispatch_profile.md")
    import tracec
    import tracec.runtime

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for alg, entry in (("forward", "forward_sequence"), ("es-d-rtrl", "train_sequence"),
                           ("d-rtrl", "train_sequence")):
            # one step per loop iteration, so the loop body holds exactly one time step
            art = tracec.compile(args.model, algorithm=alg, update_every=args.T, scan_unroll=1)
            mlir = os.path.join(tmp, f"{alg}.mlir")
            with open(mlir, "w") as f:
                f.write(art.ir["iree-input"])
            kinds = dispatch_kinds(stream_ir(mlir, os.path.join(tmp, f"{alg}.stream.mlir")), entry)
            vmfb = os.path.join(tmp, f"{alg}.vmfb")
            art.save(vmfb)
            traces = tracec.runtime.load(vmfb).manifest.get("traces", [])
            trace_bytes = sum(4 * _numel(t["shape"]) for t in traces)
            rows.append((alg, entry, kinds, trace_bytes))
    lines = [f"# Dispatches per time step ({os.path.relpath(args.model, ROOT)})", "",
             f"Command: `python -m benchmarks.dispatch_profile --T {args.T}`. Counted in IREE's "
             "stream IR of the entry's loop body (compiled with `--scan-unroll 1`, so the body "
             "is one time step), the optimizer's per-parameter update "
             "counted too, though its branches run only every T-th step (7 of the learning "
             "rules' dispatches here).", "",
             "| rule | entry | dispatches | by kind | trace bytes read+written per step |",
             "|---|---|---|---|---|"]
    for alg, entry, kinds, nbytes in rows:
        by_kind = ", ".join(f"{k} {n}" for k, n in kinds.most_common())
        lines.append(f"| {alg} | `{entry}` | {sum(kinds.values())} | {by_kind} | "
                     f"{2 * nbytes / 1024:.0f} KiB |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


if __name__ == "__main__":
    sys.exit(main())
