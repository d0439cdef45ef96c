"""A/B of the optimizer's form with --update-every K > 1, in one process: the update
computed every step and selected (the form before) against the update inside a
``stablehlo.if`` per updated tensor (passes/insert_optimizer.py). The "select" artifact
is built by the same compiler with the pass's update as it was at commit 7bb8c13 (read
with git, so this runs in a checkout with history).

    .venv/bin/python -m benchmarks.optimizer_branch_ab connectome --neurons 10000
    .venv/bin/python -m benchmarks.optimizer_branch_ab lif2      # K = 1: same IR?

connectome: examples/connectome.py (ES-D-RTRL, Adam lr 0.003, K = 10, decay 0.9, batch 1)
trained with train_sequence over chunks of --steps steps, the two learners interleaved,
--rounds rounds; prints the median ms per step of each (the first round left out) and
whether the parameters after the same chunks are equal. lif2: examples/lif2.py with K = 1
compiled both ways; prints whether the IREE input is the same text, and the medians.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT, interleaved


BEFORE = "7bb8c13"  # the select form, the last version before the branches


def _before_update():
    """``InsertOptimizerPass._update`` as it was at ``BEFORE``."""
    import subprocess
    import types

    text = subprocess.run(["git", "show", f"{BEFORE}:passes/insert_optimizer.py"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    mod = types.ModuleType("insert_optimizer_before")
    sys.modules[mod.__name__] = mod
    exec(compile(text, f"{BEFORE}:passes/insert_optimizer.py", "exec"), mod.__dict__)
    return mod.InsertOptimizerPass._update


def _compile(source, form, path, emit=None, **options):
    import tracec
    from tracec.passes.insert_optimizer import InsertOptimizerPass

    update = InsertOptimizerPass._update
    if form == "select":
        InsertOptimizerPass._update = _before_update()
    try:
        if emit:
            return tracec.compile(source, emit=emit, use_cache=False, **options)
        tracec.compile(source, use_cache=False, **options).save(path)
    finally:
        InsertOptimizerPass._update = update


def _text(art) -> str:
    return art.ir["iree-input"]


def connectome(args) -> None:
    connections = args.connections or round(args.neurons * 21.5437)
    os.environ.update(CONNECTOME_NEURONS=str(args.neurons),
                      CONNECTOME_CONNECTIONS=str(connections), CONNECTOME_BATCH="1")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import connectome as C
    import tracec.runtime

    opts = dict(algorithm="es-d-rtrl", optimizer="adam", lr=0.003, update_every=args.k, decay=0.9)
    learners = {}
    with tempfile.TemporaryDirectory() as d:
        for form in ("select", "branch"):
            path = os.path.join(d, f"{form}.vmfb")
            t0 = time.perf_counter()
            _compile(os.path.join(ROOT, "examples", "connectome.py"), form, path, **opts)
            print(f"{form}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
            learners[form] = tracec.runtime.load(path)
    T = args.steps
    targets = np.stack([C.target_activity(t) for t in range(T)])
    rng = np.random.default_rng(0)
    seconds, _ = interleaved({f: (lambda xs, lr=lr: lr.train_sequence(xs, targets))
                              for f, lr in learners.items()}, args.rounds,
                             lambda r: ((rng.random((T, C.B, C.N_IN)) < 0.2).astype(np.float32),))
    times = {f: [s / T * 1e3 for s in ts] for f, ts in seconds.items()}
    for form, ts in times.items():
        print(f"{form}: median {np.median(ts[1:]):.2f} ms/step over {len(ts) - 1} rounds "
              f"({' '.join(f'{t:.2f}' for t in ts)})")
    a, b = learners["select"].params, learners["branch"].params
    same = all(np.array_equal(a[k], b[k]) for k in a)
    worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    print(f"parameters after {args.rounds * T} steps bit-identical: {same} "
          f"(max |diff| {worst:.3g})")


def lif2(args) -> None:
    import tracec.runtime

    src = os.path.join(ROOT, "examples", "lif2.py")
    opts = dict(algorithm="es-d-rtrl", optimizer="adam", lr=0.01, update_every=1)
    texts = {f: _text(_compile(src, f, None, emit="iree-input", **opts))
             for f in ("select", "branch")}
    print("K = 1: IREE input identical:", texts["select"] == texts["branch"],
          "; stablehlo.if in it:", "stablehlo.if" in texts["branch"])
    learners = {}
    with tempfile.TemporaryDirectory() as d:
        for form in ("select", "branch"):
            path = os.path.join(d, f"{form}.vmfb")
            _compile(src, form, path, **opts)
            learners[form] = tracec.runtime.load(path)
    m = learners["select"].manifest
    x_shape = tuple(m["input"]["shape"])
    T = args.steps
    rng = np.random.default_rng(0)
    tgt = learners["select"]._target

    def data(r):
        return ((rng.random((T,) + x_shape) < 0.3).astype(np.float32),
                rng.integers(0, 2, (T,) + tuple(tgt["shape"])).astype(tgt["dtype"]))

    seconds, _ = interleaved({f: lr.train_sequence for f, lr in learners.items()}, args.rounds,
                             data)
    times = {f: [s / T * 1e6 for s in ts] for f, ts in seconds.items()}
    for form, ts in times.items():
        print(f"{form}: median {np.median(ts[1:]):.1f} us/step over {len(ts) - 1} rounds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["connectome", "lif2"])
    ap.add_argument("--neurons", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=None, help="default: 21.5 per neuron")
    ap.add_argument("--k", type=int, default=10, help="--update-every of the connectome run")
    ap.add_argument("--steps", type=int, default=20, help="steps per train_sequence call")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    (connectome if args.what == "connectome" else lif2)(args)


if __name__ == "__main__":
    main()
