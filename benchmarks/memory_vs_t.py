"""Peak memory of online training vs sequence length, tracec vs JAX BPTT, side by side.

    python -m benchmarks.memory_vs_t [--T 100 1000 10000] [--algorithm es-d-rtrl]

Each measurement runs in a fresh process (peak RSS: its VmHWM; see
``common.peak_rss_mib``): tracec's
``train_sequence`` over T steps of examples/lif2.py, and ``jax.grad`` of the loss of a
``lax.scan`` over the same T steps (BPTT). The input array itself (T·B·I floats) is
reported separately, since both must hold it. Writes benchmarks/results/memory_vs_t.md.

``peak_rss(spec)`` is the measurement itself, also used by benchmarks/side_by_side.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks.common import ROOT, write_text

# One measurement in a fresh interpreter. The tracec side imports only tracec.runtime
# and numpy (no jax) so that its peak RSS is what a deployment would see.
CHILD = r"""
import json, sys
import numpy as np
from benchmarks.common import make_data, peak_rss_mib
spec = json.loads(sys.argv[1])
T, B, n_in, n_out = spec["T"], spec["batch"], spec["n_in"], spec["n_out"]
CHUNK = spec.get("chunk") or T
xs, ys = make_data(CHUNK, B, n_in, n_out)  # a streamed run holds one chunk at a time
input_mib = xs.nbytes / 2**20 * (T // CHUNK)
base = peak_rss_mib()
carried = None
if spec["kind"] == "tracec":
    import tracec.runtime
    l = tracec.runtime.load(spec["artifact"])
    for c in range(T // CHUNK):
        if c:
            xs, ys = make_data(CHUNK, B, n_in, n_out, seed=c)
        l.train_sequence(xs, ys)  # state, traces and counters carry over between calls
    carried = sum(int(np.prod(s["shape"])) * 4 for k in ("params", "state", "traces", "accumulators",
                  "optimizer_state") for s in l.manifest.get(k, []))
else:  # JAX BPTT: jax.grad of the summed loss of a lax.scan over the same T steps
    import jax, jax.numpy as jnp
    from benchmarks.networks import bptt_loss, make_model
    model = make_model(spec["H"], spec["variant"], B)
    params = model.init_params(jax.random.PRNGKey(0))
    grad = jax.jit(jax.grad(lambda p, xs, ys: bptt_loss(model, p, xs, ys, jnp.ones((T,), jnp.float32))))
    jax.block_until_ready(grad(params, xs, ys))
print(json.dumps({"peak_rss_mib": peak_rss_mib(), "before_mib": base, "carried_bytes": carried,
                  "input_mib": input_mib}))
"""


def peak_rss(kind: str, T: int, *, artifact: str | None = None, variant: str = "lif", H: int = 64,
             batch: int = 32, n_in: int = 40, n_out: int = 10, timeout: float | None = None,
             chunk: int | None = None) -> dict:
    """Peak RSS of one fresh process that trains once over T steps: ``kind`` "tracec"
    (``train_sequence`` of the compiled ``artifact``) or "bptt" (JAX, benchmarks/networks.py's
    ``variant``/``H`` network). Returns ``peak_rss_mib``, ``input_mib`` (the xs array),
    ``carried_bytes`` (tracec: params, state, traces, accumulators, optimizer state).
    ``chunk`` (tracec): feed the T steps as T/chunk ``train_sequence`` calls of ``chunk``
    steps each, generating each chunk when it is needed (the input streamed, as online)."""
    spec = dict(kind=kind, T=T, artifact=artifact, variant=variant, H=H, batch=batch,
                n_in=n_in, n_out=n_out, chunk=chunk)
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--algorithm", default="es-d-rtrl")
    ap.add_argument("--chunk", type=int, default=100,
                    help="also feed tracec the T steps as train_sequence calls of this many steps")
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
            for kind, chunk in (("tracec", None), ("tracec", args.chunk), ("bptt", None)):
                if chunk is not None and T % chunk:
                    continue
                r = peak_rss(kind, T, artifact=path, chunk=chunk)  # examples/lif2.py: lif, H=64
                rows.append((T, kind, chunk, r))
                print(T, kind, chunk, r, flush=True)
    lines = [f"# Peak memory vs T ({args.algorithm}, examples/lif2.py, batch 32)", "",
             f"Command: `python -m benchmarks.memory_vs_t --T {' '.join(map(str, args.T))} "
             f"--chunk {args.chunk}`. Peak RSS is each fresh process's own VmHWM. A single "
             "`train_sequence` call holds the whole input (the numpy array and its device "
             "copy), so its peak grows by about twice the input; fed in chunks, as online "
             "data arrives, the peak is flat: the binary's own state does not grow with T.", "",
             "| T | what | peak RSS MiB | of which input xs MiB | state carried by the binary (bytes) |",
             "|---|---|---|---|---|"]
    for T, kind, chunk, r in rows:
        name = (f"tracec train_sequence ({args.algorithm})" + (f", {chunk}-step chunks" if chunk else ", one call")
                if kind == "tracec" else "JAX BPTT (grad of scan)")
        lines.append(f"| {T} | {name} | {r['peak_rss_mib']:.0f} | {r['input_mib']:.1f} | "
                     f"{r['carried_bytes'] if r['carried_bytes'] is not None else '—'} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
