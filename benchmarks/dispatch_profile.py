"""Where a time step goes: the IREE dispatches one step of each entry runs.

    python -m benchmarks.dispatch_profile [--model examples/lif2.py] [--T 300]

IREE runs each fused kernel ("dispatch") of a loop body once per time step; on this
CPU each costs a few microseconds of fixed overhead besides its arithmetic, so for small
networks the number of dispatches per step, not the FLOPs, sets the time per step.
This script compiles the model (forward, ES-D-RTRL, D-RTRL), stops IREE at the stream
level, and counts the dispatches inside ``forward_sequence`` and ``train_sequence`` by
kind (matmul, elementwise, reduction, ...), next to the bytes of eligibility traces the
step reads and writes. Writes benchmarks/results/dispatch_profile.md.
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


def stream_ir(mlir_path: str, out_path: str) -> str:
    from tracec.backends import iree_flags
    from tracec.options import CompileOptions

    tool = os.path.join(os.path.dirname(sys.executable), "iree-compile")
    flags = iree_flags(CompileOptions()) + ["--iree-input-type=stablehlo", "--compile-to=stream"]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "lif2.py"))
    ap.add_argument("--T", type=int, default=300, help="update_every (the optimizer runs once)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "dispatch_profile.md"))
    args = ap.parse_args(argv)
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
