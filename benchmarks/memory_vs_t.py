"""Peak memory of online training vs sequence length, tracec vs JAX BPTT, side by side.

    python -m benchmarks.memory_vs_t [--T 100 1000 10000] [--algorithm es-d-rtrl]

Each measurement runs in a fresh process (peak RSS from getrusage): tracec's
``train_sequence`` over T steps of examples/lif2.py, and ``jax.grad`` of the loss of a
``lax.scan`` over the same T steps (BPTT). The input array itself (T·B·I floats) is
reported separately, since both must hold it. Writes benchmarks/results/memory_vs_t.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import ROOT, write_text

CHILD = r"""
import json, resource, sys, numpy as np
kind, T, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
B, I = 32, 40  # examples/lif2.py (not imported: that would import jax into the tracec run)
xs = (rng.random((T, B, I)) < 0.2).astype(np.float32)
ys = rng.integers(0, 10, (T, B)).astype(np.int32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "tracec":
    import tracec.runtime
    l = tracec.runtime.load(path)
    l.train_sequence(xs, ys)
    carried = sum(int(np.prod(s["shape"])) * 4 for k in ("params", "state", "traces", "accumulators",
              "optimizer_state") for s in l.manifest.get(k, []))
else:
    sys.path.insert(0, "examples"); import lif2
    import jax, jax.numpy as jnp
    params = lif2.init_params(jax.random.PRNGKey(0))
    def total(p):
        def body(s, inp):
            s, out = lif2.step(p, s, inp[0])
            return s, lif2.loss(out, inp[1])
        return jnp.sum(jax.lax.scan(body, lif2.init_state(B), (xs, ys))[1])
    jax.block_until_ready(jax.jit(jax.grad(total))(params))
    carried = None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_mib": peak / 1024, "before_mib": base / 1024, "carried_bytes": carried,
                  "input_mib": xs.nbytes / 2**20}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--algorithm", default="es-d-rtrl")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "memory_vs_t.md"))
    args = ap.parse_args(argv)
    import tempfile

    import tracec

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.vmfb")
        tracec.compile(os.path.join(ROOT, "examples", "lif2.py"), algorithm=args.algorithm,
                       update_every=10**9).save(path)
        rows = []
        for T in args.T:
            for kind in ("tracec", "bptt"):
                out = subprocess.run([sys.executable, "-c", CHILD, kind, str(T), path], cwd=ROOT,
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((T, kind, r))
                print(T, kind, r, flush=True)
    lines = [f"# Peak memory vs T ({args.algorithm}, examples/lif2.py, batch 32)", "",
             f"Command: `python -m benchmarks.memory_vs_t --T {' '.join(map(str, args.T))}`", "",
             "| T | what | peak RSS MiB | of which input xs MiB | state carried by the binary (bytes) |",
             "|---|---|---|---|---|"]
    for T, kind, r in rows:
        name = f"tracec train_sequence ({args.algorithm})" if kind == "tracec" else "JAX BPTT (grad of scan)"
        lines.append(f"| {T} | {name} | {r['peak_mib']:.0f} | {r['input_mib']:.1f} | "
                     f"{r['carried_bytes'] if r['carried_bytes'] is not None else '—'} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
