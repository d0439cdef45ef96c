"""A/B between two revisions of tracec: the same networks compiled by each, timed in one process.

    python -m benchmarks.revision_ab --base REV [--networks lif_v:64 alif_v:64]
        [--algorithms es-d-rtrl d-rtrl forward] [--T 180] [--rounds 15] [--out FILE]

For a change to the passes that has no switch of its own (a formula, where an op is
emitted), the fair comparison is the compiler before and after it, on the same
machine at the same time. This extracts revision ``REV`` of this repository (``git
archive``) into a temporary directory, lays its folders out as the ``tracec`` package
(pyproject's package-dir), and compiles each network of ``benchmarks/networks.py`` (this
checkout's, for both) with it in a subprocess, and again with this checkout; tracec's
cache is off for both. This process then loads the artifacts with this checkout's
runtime and, per network and algorithm, times ``train_sequence`` (``forward_sequence``
for ``forward``) over T steps, B = 32, Adam with an update every T steps, in interleaved rounds (the order
reversed every other round). It reports medians and minima per step, the ratio
base / this checkout, and the largest difference of the losses and trained parameters.
Writes benchmarks/results/revision_ab.md (or ``--out``).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile

from benchmarks.common import ROOT, interleaved, make_data, write_text

#: pyproject.toml's package-dir: package folder -> folder of the repository
_PACKAGE_DIRS = {"tracec": "tracec", "tracec/frontends": "frontends", "tracec/passes": "passes",
                 "tracec/runtime": "runtime"}

_COMPILE = """
import sys
import tracec
from benchmarks.networks import make_model
H, variant, alg, T, out = sys.argv[1:]
tracec.compile(make_model(int(H), variant, 32), algorithm=alg, optimizer="adam",
               update_every=int(T)).save(out)
import tracec.passes
print(tracec.passes.__path__[0])
"""


def _package_of(rev: str, tmp: str) -> str:
    """Revision ``rev`` laid out as an importable ``tracec`` package; the folder to put
    on ``PYTHONPATH``."""
    data = subprocess.run(["git", "-C", ROOT, "archive", rev], check=True,
                          capture_output=True).stdout
    src = os.path.join(tmp, "src")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(src, filter="data")
    pkg = os.path.join(tmp, "pkg")
    for dest, folder in _PACKAGE_DIRS.items():
        os.makedirs(os.path.join(pkg, dest), exist_ok=True)
        for name in os.listdir(os.path.join(src, folder)):
            target = os.path.join(pkg, dest, name)
            if not os.path.exists(target):
                os.symlink(os.path.join(src, folder, name), target)
    return pkg


def _compile(pythonpath: str, net: str, alg: str, T: int, out: str, tmp: str) -> str:
    """Compile ``net`` with the tracec found first on ``pythonpath``; that package's folder."""
    variant, H = net.split(":")
    env = dict(os.environ, PYTHONPATH=pythonpath, TRACEC_CACHE="0")
    # run outside the checkout: `python -c` puts its working folder first on sys.path
    return subprocess.run([sys.executable, "-c", _COMPILE, H, variant, alg, str(T), out],
                          check=True, env=env, cwd=tmp, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def _measure(base_pkg: str, net: str, alg: str, args, xs, ys, tmp: str):
    """Compile ``net`` for ``alg`` with both revisions and time them side by side:
    (form -> µs per step of each round, largest difference of the results)."""
    import numpy as np

    import tracec.runtime

    paths = {}
    for form, path in (("base", f"{base_pkg}{os.pathsep}{ROOT}"), ("this", ROOT)):
        paths[form] = os.path.join(tmp, f"{form}-{alg}-{net.replace(':', '')}.vmfb")
        used = _compile(path, net, alg, args.T, paths[form], tmp)
        expected = os.path.join(tmp, "pkg") if form == "base" else ROOT
        if not os.path.realpath(used).startswith(os.path.realpath(expected)):
            raise SystemExit(f"revision_ab: the {form} compile used the passes in {used}")
    learners = {form: tracec.runtime.load(p) for form, p in paths.items()}

    def call(learner):
        learner.reset()
        if alg == "forward":
            return np.asarray(learner.forward_sequence(xs))
        return np.asarray(learner.train_sequence(xs, ys))

    times, last = interleaved({form: (lambda l=l: call(l)) for form, l in learners.items()},
                              args.rounds)
    diff = float(np.max(np.abs(last["base"] - last["this"])))
    if alg != "forward":
        pb, pt = learners["base"].params, learners["this"].params
        diff = max([diff] + [float(np.max(np.abs(pb[k] - pt[k]))) for k in pb])
    return {form: [t / args.T * 1e6 for t in ts] for form, ts in times.items()}, diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the revision to compare against (git rev)")
    ap.add_argument("--networks", nargs="+", default=["lif_v:64", "alif_v:64"])
    ap.add_argument("--algorithms", nargs="+", default=["es-d-rtrl", "d-rtrl", "forward"],
                    choices=["forward", "es-d-rtrl", "d-rtrl"])
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "revision_ab.md"))
    args = ap.parse_args(argv)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           check=True, capture_output=True, text=True).stdout.strip()
    this = head + (" with uncommitted changes" if dirty else "")
    xs, ys = make_data(args.T, 32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base_pkg = _package_of(args.base, tmp)
        for alg in args.algorithms:
            for net in args.networks:
                rows.append((alg, net, *_measure(base_pkg, net, alg, args, xs, ys, tmp)))
    lines = [f"# Time per step: revision {args.base} against {this}", "",
             f"Command: `python -m benchmarks.revision_ab --base {args.base} --networks "
             f"{' '.join(args.networks)} --algorithms {' '.join(args.algorithms)} --T {args.T} "
             f"--rounds {args.rounds}`. Each network compiled by both revisions (IREE llvm-cpu, "
             f"Adam, an update every T steps, B = 32), timed in {args.rounds} interleaved rounds "
             f"of T = {args.T} steps in one process.", "",
             "| algorithm | network | base µs/step (median, min) | this µs/step (median, min) "
             "| base / this | largest difference (outputs or losses, trained parameters) |",
             "|---|---|---|---|---|---|"]
    for alg, net, us, diff in rows:
        b, t = statistics.median(us["base"]), statistics.median(us["this"])
        lines.append(f"| {alg} | `{net}` | {b:.1f} ({min(us['base']):.1f}) | {t:.1f} "
                     f"({min(us['this']):.1f}) | **{b / t:.3f}×** | {diff:.1e} |")
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
