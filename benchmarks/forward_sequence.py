"""forward_sequence vs jax.jit(lax.scan), side by side, same model, same inputs.

    python -m benchmarks.forward_sequence [--T 1000] [--repeats 7] [--model examples/lif2.py]

Measures the time of T steps inside one call for: tracec llvm-cpu (IREE, local-sync),
tracec xla (jax.export artifact) and jax.jit of the equivalent `lax.scan` (the
reference). Reports medians and spreads (min..max) of `--repeats` runs after a
warm-up, checks that all three give the same outputs, and writes a markdown table
to benchmarks/results/forward_sequence.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.common import ROOT, timed_runs, write_text



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "lif2.py"))
    ap.add_argument("--T", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "forward_sequence.md"))
    args = ap.parse_args(argv)

    import jax

    import tracec
    import tracec.runtime

    spec = importlib.util.spec_from_file_location("bench_model", args.model)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.model
    B = model.input.shape[0]
    rng = np.random.default_rng(0)
    xs = (rng.random((args.T, *model.input.shape)) < 0.2).astype(np.float32)

    rows = []
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("llvm-cpu", "xla"):
            path = os.path.join(tmp, f"m.{target}")
            tracec.compile(args.model, algorithm="forward", target=target).save(path)
            learner = tracec.runtime.load(path)

            def run(learner=learner):
                learner.reset()
                return learner.forward_sequence(xs)

            results[target] = run()
            rows.append((f"tracec forward_sequence ({target})", timed_runs(run, args.repeats)))

    params = model.init_params(jax.random.PRNGKey(0))
    state0 = model.init_state(B)

    @jax.jit
    def scan(params, state, xs):
        return jax.lax.scan(lambda s, x: model.step(params, s, x), state, xs)

    def run_jax():
        _, ys = scan(params, state0, xs)
        return np.asarray(jax.block_until_ready(ys))

    results["jax"] = run_jax()
    rows.append(("jax.jit(lax.scan) (reference)", timed_runs(run_jax, args.repeats)))

    for k in ("llvm-cpu", "xla"):
        np.testing.assert_allclose(results[k], results["jax"], rtol=1e-5, atol=1e-5)

    ref = statistics.median(rows[-1][1])
    lines = [
        f"# forward_sequence, T={args.T}, batch {B}, model {os.path.relpath(args.model, ROOT)}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; {args.repeats} runs after a warm-up; "
        "outputs checked equal (rtol 1e-5).",
        f"Command: `python -m benchmarks.forward_sequence --T {args.T} --repeats {args.repeats}`",
        "",
        "| what | median ms | min..max ms | µs/step | ratio to jax.jit(scan) |",
        "|---|---|---|---|---|",
    ]
    for name, ts in rows:
        med = statistics.median(ts)
        lines.append(f"| {name} | {med * 1e3:.2f} | {min(ts) * 1e3:.2f}..{max(ts) * 1e3:.2f} | "
                     f"{med / args.T * 1e6:.1f} | {med / ref:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
