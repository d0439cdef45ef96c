"""The event-driven relation in a compiled model: --event-driven auto (the default) against never.

    python -m benchmarks.event_driven_model [--sizes 256,1024,2048] [--rates 0.01,0.05,0.2]

The model (written here, compiled by tracec for IREE llvm-cpu): an input layer spikes
where its input exceeds a threshold, so the data sets its firing rate exactly; a
recurrent LIF layer of H = N neurons reads it through ``z_in @ W_in`` and its own
spikes through ``z @ W_rec``; a leaky readout of 10. Both relations are fed by spikes.
For each N and firing rate, the same model is compiled with ``--event-driven auto``
(``--mode``; capacity ``--capacity``, default 2 % of N: ``auto`` rewrites the two N x N
relations and leaves the narrow readout dense) and ``never``, and ``forward_sequence`` and
``train_sequence`` (ES-D-RTRL, Adam) are timed per step in one process: interleaved,
medians of ``--repeats`` runs of T = 100 steps, B = 32. Outputs and losses of the two
forms are compared (they must agree to 1e-5). Writes benchmarks/results/event_driven_model.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from benchmarks.common import ROOT, interleaved, write_text

MODEL = '''
import jax, jax.numpy as jnp, tracec
B, N, N_OUT = {batch}, {n}, 10


def init_params(key):
    k = jax.random.split(key, 3)
    return {{"w_in": 1.0 * jax.random.normal(k[0], (N, N)) / jnp.sqrt({rate} * N + 1.0),
            "w_rec": 0.2 * jax.random.normal(k[1], (N, N)) / jnp.sqrt(N),
            "w_out": jax.random.normal(k[2], (N, N_OUT)) / jnp.sqrt(N)}}


def init_state(batch):
    return {{"v": jnp.zeros((batch, N)), "z": jnp.zeros((batch, N)), "y": jnp.zeros((batch, N_OUT))}}


def step(p, s, x):
    z_in = tracec.spike(x - 1.0)  # the data sets the input's firing rate
    v = 0.9 * s["v"] + z_in @ p["w_in"] + s["z"] @ p["w_rec"]
    z = tracec.spike(v - 1.0)
    v = v - z
    y = 0.8 * s["y"] + z @ p["w_out"]
    return {{"v": v, "z": z, "y": y}}, y


def loss(y, target):
    return jnp.mean((y - target) ** 2)


model = tracec.Model(init_params=init_params, init_state=init_state, step=step, loss=loss,
                     input=jax.ShapeDtypeStruct((B, N), jnp.float32),
                     target=jax.ShapeDtypeStruct((B, N_OUT), jnp.float32))
'''


def main(argv=None) -> int:
    import tracec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,1024,2048", help="N = H of the layers")
    ap.add_argument("--rates", default="0.01,0.05,0.2", help="input firing rates")
    ap.add_argument("--capacity", type=float, default=0.02)
    ap.add_argument("--mode", default="auto", choices=["auto", "always"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "event_driven_model.md"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    lines = ["# The event-driven relation in a compiled model (IREE llvm-cpu)", "",
             f"Command: `python -m benchmarks.event_driven_model --sizes {args.sizes} --rates "
             f"{args.rates} --capacity {args.capacity} --mode {args.mode}`; B = {args.batch}, "
             f"T = {args.T}; µs per step, medians of {args.repeats} interleaved runs in one "
             f"process; ratio = never / {args.mode} (> 1: event-driven wins). Rates: the input "
             "layer's firing rate (set by the "
             "data); the recurrent layer's own rate is measured and shown.", "",
             f"| N = H | input rate | recurrent rate | forward never | forward {args.mode} | ratio "
             f"| ES-D-RTRL never | ES-D-RTRL {args.mode} | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            for rate in (float(r) for r in args.rates.split(",")):
                path = os.path.join(tmp, f"m{n}_{rate:g}.py")
                with open(path, "w") as f:
                    f.write(MODEL.format(batch=args.batch, n=n, rate=rate))
                xs = np.where(rng.random((args.T, args.batch, n)) < rate, 2.0, 0.0).astype(np.float32)
                ys = rng.standard_normal((args.T, args.batch, 10)).astype(np.float32)
                learners = {}
                for mode in ("never", args.mode):
                    for alg in ("forward", "es-d-rtrl"):
                        art = tracec.compile(path, algorithm=alg, optimizer="adam",
                                             event_driven=mode, event_capacity=args.capacity)
                        vmfb = os.path.join(tmp, f"{mode}-{alg}.vmfb")
                        art.save(vmfb)
                        learners[(mode, alg)] = tracec.runtime.load(vmfb)
                outs = {}
                for mode in ("never", args.mode):
                    fwd = learners[(mode, "forward")]
                    outs[mode] = fwd.forward_sequence(xs)
                    zrate = float(fwd.state["z"].mean())
                    tr = learners[(mode, "es-d-rtrl")]
                    outs[mode + "-loss"] = np.asarray(tr.train_sequence(xs, ys))
                np.testing.assert_allclose(outs[args.mode], outs["never"], rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(outs[args.mode + "-loss"], outs["never-loss"],
                                           rtol=1e-5, atol=1e-5)

                def run(key, lr):
                    lr.reset()
                    return lr.forward_sequence(xs) if key[1] == "forward" else lr.train_sequence(xs, ys)

                seconds, _ = interleaved({k: (lambda k=k, lr=lr: run(k, lr))
                                          for k, lr in learners.items()}, args.repeats)
                med = {k: float(np.median(v)) / args.T * 1e6 for k, v in seconds.items()}
                row = [str(n), f"{rate:g}", f"{zrate:.3f}"]
                for alg in ("forward", "es-d-rtrl"):
                    a, b = med[("never", alg)], med[(args.mode, alg)]
                    row += [f"{a:.0f}", f"{b:.0f}", f"{a / b:.2f}×"]
                lines.append("| " + " | ".join(row) + " |")
                print(lines[-1], flush=True)
    write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
