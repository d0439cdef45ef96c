"""What the ES-D-RTRL rule costs, part by part: a ladder of hand-written programs from
the bare products up to the whole rule, beside tracec's own step.

    python -m benchmarks.rule_floor [--H 64] [--B 32] [--T 180] [--rounds 9]

benchmarks/step_floor.py times the 12 matrix products an ES-D-RTRL step must run. A
learning step must also run the network's own element-wise step, its loss and the
rule's element-wise work. This script writes that work by hand in plain JAX, one part
more on each rung, on ``benchmarks/networks.py``'s ``lif_v`` network (2×H LIF neurons
as braintrace's examples write them, 40 inputs, 10 outputs, leaky readout, batch 32,
cross-entropy), each rung a time step whose state carries what the next step reads:

1. ``products``: step_floor's ES-D-RTRL floor (a linear network: no spike, no loss);
2. ``+ loss``: its readout's signal is the cross-entropy's derivative, and the step
   computes the loss (a log-softmax over the outputs, a mean over the batch);
3. ``+ spiking forward``: lif_v's forward step (membranes, spikes, soft reset, leaky
   readout) instead of the linear one; the gradient products read the spikes, and the
   biases get their gradient too (the signal summed over the batch);
4. ``+ surrogate``: the signals carry the spike's surrogate derivative back through
   both layers (as the exact gradient of one step does);
5. ``whole rule``: ES-D-RTRL itself: the input traces ``εx``, the neurons' ``εf``, the
   biases' exact traces and their gradients, the ``1/(1-α^{n+1})`` scale. Before
   timing, its gradient summed over the sequence is checked equal to what tracec's
   compiled ES-D-RTRL applies (SGD, lr 1, one update), so it does exactly tracec's work.

Each rung is written more than one way, the fastest counted: rungs 3 to 5 also with the
last spikes kept in the state instead of recomputed from the membranes (lif_v recomputes
them, as braintrace's examples do); rungs 1, 4 and 5 also with the weights' outer
products contracted once per chunk of 4 or 12 steps, over the chunk's rows (the same
FLOPs in larger products; memory still flat in T; checked equal to the rule per step).
Each program is compiled by tracec's forward path (the step as a ``tracec.Model``: it
runs in tracec's own time loop, 8 steps per iteration, with kernels fused across them
and without; a chunk, one per iteration) and by XLA (``jax.jit`` of a ``lax.scan``),
and timed interleaved with tracec's forward and ES-D-RTRL steps on the same network;
then braintrace's pp_prop (the newest benchmark venv, its own process). No learning
step that does a rung's work in these kernels is faster than the rung: when a rung
misses a target, the rule cannot meet it by changing what the passes emit. Writes
benchmarks/results/rule_floor.md. ``--B``: another batch (16: one of two parts of the batch,
what each core runs under ``--batch-shards 2``), for every program, tracec's included.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile

import numpy as np

from benchmarks.common import ROOT, interleaved, make_data, write_text
from benchmarks.step_floor import (B, CHUNKS, N_IN, N_OUT, braintrace_rows, chunked_es_step,
                                   floor_steps, weights, xla_sequence)

DECAY = 0.9  # tracec's default ES-D-RTRL trace decay α
RUNGS = ("products", "+ loss", "+ spiking forward", "+ surrogate", "whole rule")


def _sigmoid_surrogate(u, alpha=4.0):
    """tracec's sigmoid surrogate: α·e/(1+e)², e = exp(-α|u|)."""
    import jax.numpy as jnp

    e = jnp.exp(-alpha * jnp.abs(u))
    return alpha * e / ((1.0 + e) * (1.0 + e))


def _cross_entropy(y, onehot):
    """The mean cross-entropy over the batch and its derivative by ``y``."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(y, axis=-1)
    loss = -jnp.mean(jnp.sum(onehot * logp, axis=-1))
    return loss.reshape(1), (jnp.exp(logp) - onehot) / y.shape[0]


def products_with_loss(H: int):
    """Rung 2: step_floor's ES-D-RTRL floor, its readout signal the loss's derivative."""
    import jax.numpy as jnp

    from benchmarks.step_floor import forward_body

    def step(p, s, inp):
        x, onehot = inp[:, :N_IN], inp[:, N_IN:]
        h1, h2, y = forward_body(p, s["z1"], s["z2"], x)
        loss, dy = _cross_entropy(y, onehot)
        d2 = dy @ p["Wo"].T
        d1 = d2 @ p["W2"].T
        g = {"W1": s["W1"] + x.T @ d1, "R1": s["R1"] + s["z1"].T @ d1,
             "W2": s["W2"] + h1.T @ d2, "R2": s["R2"] + s["z2"].T @ d2,
             "Wo": s["Wo"] + h2.T @ dy}
        return {"z1": h1, "z2": h2, **g}, loss

    init = floor_steps(H)["es-d-rtrl"][1]
    return step, lambda b: {k: jnp.asarray(v) for k, v in init(b).items()}


def lif_v_rule(H: int, surrogate: bool, traces: bool, carry_spikes: bool = False,
               chunk: int = 1):
    """Rungs 3 to 5 on lif_v (benchmarks/networks.py's equations, its parameter tree):
    the spiking forward and the loss; with ``surrogate`` the signals carry the spikes'
    surrogate derivatives; with ``traces`` the whole ES-D-RTRL rule (``G`` summed over
    the steps, as tracec accumulates it between updates). ``carry_spikes``: the last
    spikes kept in the state instead of recomputed from the membranes (the same values;
    another arrangement of the same work). ``chunk`` > 1: one call runs that many time
    steps (input ``[B, chunk, ·]``) and contracts the gradient's outer products once,
    over the chunk's ``chunk·B`` rows (the same FLOPs in larger products)."""
    import jax.numpy as jnp

    from benchmarks.networks import TAU_MEM, TAU_OUT, V_TH, _euler

    tau = -1.0 / math.log(TAU_MEM)
    euler = _euler(tau)
    leak = 1.0 + euler * (-1.0 / tau)  # dV/dV of the leak: 0.9
    a = DECAY
    inputs = {"W1": N_IN, "R1": H, "W2": H, "R2": H, "Wo": H}
    grads = {"W1": (N_IN, H), "R1": (H, H), "W2": (H, H), "R2": (H, H), "Wo": (H, N_OUT)}

    def init_state(b):
        z = lambda *shape: jnp.zeros(shape, jnp.float32)  # noqa: E731
        s = {"v1": z(b, H), "v2": z(b, H), "y": z(b, N_OUT),
             "G": {**{k: z(*v) for k, v in grads.items()}, "b1": z(H), "b2": z(H)}}
        if carry_spikes:
            s.update(z1=z(b, H), z2=z(b, H))
        if traces:
            s.update(ex={k: z(b, n) for k, n in inputs.items()}, ef1=z(b, H), ef2=z(b, H),
                     efy=z(b, N_OUT), eb1=z(b, H), eb2=z(b, H), pw=jnp.ones((1,), jnp.float32))
        return s

    def layer(p, v_old, x, z_old=None):
        if z_old is None:
            z_old = (v_old >= V_TH).astype(jnp.float32)
        v = v_old - z_old
        v = v + euler * (-v / tau)
        v = v + x @ p["w_in"] + z_old @ p["w_rec"] + p["b"]
        return z_old, v, (v >= V_TH).astype(jnp.float32)

    def one_step(p, s, inp):
        """One time step but the weights' outer products: (new state, loss, the products'
        left rows, their right rows)."""
        x, onehot = inp[:, :N_IN], inp[:, N_IN:]
        z1_old, v1, z1 = layer(p["l1"], s["v1"], x, s.get("z1"))
        z2_old, v2, z2 = layer(p["l2"], s["v2"], z1, s.get("z2"))
        y = TAU_OUT * s["y"] + z2 @ p["out"]["w"]
        loss, dy = _cross_entropy(y, onehot)
        d2 = dy @ p["out"]["w"].T
        if surrogate:
            d2 = d2 * _sigmoid_surrogate(v2 - V_TH)
        d1 = d2 @ p["l2"]["w_in"].T
        if surrogate:
            d1 = d1 * _sigmoid_surrogate(v1 - V_TH)
        ins = {"W1": x, "R1": z1_old, "W2": z1, "R2": z2_old, "Wo": z2}
        new = {"v1": v1, "v2": v2, "y": y, "G": dict(s["G"])}
        if carry_spikes:
            new.update(z1=z1, z2=z2)
        if not traces:
            new["G"]["b1"] = s["G"]["b1"] + jnp.sum(d1, axis=0)
            new["G"]["b2"] = s["G"]["b2"] + jnp.sum(d2, axis=0)
            return new, loss, ins, {"W1": d1, "R1": d1, "W2": d2, "R2": d2, "Wo": dy}
        D1 = leak * (1.0 - _sigmoid_surrogate(s["v1"] - V_TH))
        D2 = leak * (1.0 - _sigmoid_surrogate(s["v2"] - V_TH))
        ex = {k: a * s["ex"][k] + v for k, v in ins.items()}
        ef1 = a * D1 * s["ef1"] + (1.0 - a)
        ef2 = a * D2 * s["ef2"] + (1.0 - a)
        efy = a * TAU_OUT * s["efy"] + (1.0 - a)
        eb1, eb2 = D1 * s["eb1"] + 1.0, D2 * s["eb2"] + 1.0
        pw = s["pw"] * a
        scale = 1.0 / (1.0 - pw)
        g1, g2, gy = d1 * ef1 * scale, d2 * ef2 * scale, dy * efy * scale
        new["G"]["b1"] = s["G"]["b1"] + jnp.sum(d1 * eb1, axis=0)
        new["G"]["b2"] = s["G"]["b2"] + jnp.sum(d2 * eb2, axis=0)
        new.update(ex=ex, ef1=ef1, ef2=ef2, efy=efy, eb1=eb1, eb2=eb2, pw=pw)
        return new, loss, ex, {"W1": g1, "R1": g1, "W2": g2, "R2": g2, "Wo": gy}

    def step(p, s, inp):
        if chunk == 1:
            new, loss, left, right = one_step(p, s, inp)
        else:
            rows, losses = [], []
            for k in range(chunk):
                s, loss, left, right = one_step(p, s, inp[:, k])
                rows.append((left, right))
                losses.append(loss)
            new, loss = s, jnp.concatenate(losses)
            left = {k: jnp.concatenate([r[0][k] for r in rows]) for k in grads}
            right = {k: jnp.concatenate([r[1][k] for r in rows]) for k in grads}
        for k in grads:
            new["G"][k] = new["G"][k] + left[k].T @ right[k]
        return new, loss

    return step, init_state


#: tracec's parameter names -> the whole rule's gradient keys
TRACEC_NAMES = {"l1/w_in": "W1", "l1/w_rec": "R1", "l1/b": "b1", "l2/w_in": "W2",
                "l2/w_rec": "R2", "l2/b": "b2", "out/w": "Wo"}


def check_whole_rule(H: int, params, xs, ys, inp, tmp: str) -> float:
    """The largest difference, relative to the gradient's largest entry, of the whole
    rule's summed gradient from the parameter change of tracec's ES-D-RTRL (SGD, lr 1,
    one update after the sequence), and of the rule contracted per chunk of steps from
    the rule per step. Raises where either is not float rounding."""
    import jax

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    T = xs.shape[0]
    step, init_state = lif_v_rule(H, surrogate=True, traces=True)
    state, _ = xla_sequence(step, init_state)(params, inp)
    for K in (k for k in CHUNKS if T % k == 0):  # the chunked form sums the same products
        step_k, _ = lif_v_rule(H, surrogate=True, traces=True, chunk=K)
        state_k, _ = xla_sequence(step_k, init_state)(params, chunked(inp, K))
        for key, want in state["G"].items():
            err = float(np.abs(np.asarray(state_k["G"][key]) - np.asarray(want)).max())
            if err > 1e-4 * max(1e-6, float(np.abs(np.asarray(want)).max())):
                raise SystemExit(f"rule_floor: the rule per chunk of {K} steps differs "
                                 f"from the rule per step ({key}: {err:.1e})")
    path = os.path.join(tmp, "es-sgd.vmfb")
    tracec.compile(make_model(H, "lif_v", B), algorithm="es-d-rtrl", decay=DECAY,
                   optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    learner.set_params({k: np.asarray(v) for k, v in _flat(params).items()})
    before = learner.params
    learner.train_sequence(xs, ys)
    worst = 0.0
    for name, key in TRACEC_NAMES.items():
        want = np.asarray(jax.device_get(state["G"][key]))
        got = before[name] - learner.params[name]
        worst = max(worst, float(np.abs(got - want).max() / max(1e-6, np.abs(want).max())))
    if worst > 1e-4:
        raise SystemExit(f"rule_floor: the hand-written rule's gradient differs from tracec's "
                         f"by {worst:.1e} (relative); it would not time the same work")
    return worst


def _flat(params) -> dict:
    """A parameter tree as tracec names its leaves ("l1/w_in")."""
    return {f"{layer}/{k}": v for layer, d in params.items() for k, v in d.items()}


def rung_model(step, init_state, params, n_in: int, chunk: int = 1):
    """A rung's step as a tracec.Model (compiled for the forward pass: its
    ``forward_sequence`` runs the step in tracec's time loop)."""
    import jax
    import jax.numpy as jnp

    import tracec

    return tracec.Model(init_params=lambda key: params, init_state=init_state, step=step,
                        loss=lambda y, t: jnp.mean(y),
                        input=jax.ShapeDtypeStruct((B, chunk, n_in) if chunk > 1 else (B, n_in),
                                                   jnp.float32),
                        target=jax.ShapeDtypeStruct((B, N_OUT), jnp.float32))


def chunked(data, K: int):
    """``[T, B, n]`` as ``[T/K, B, K, n]``: a chunked program's input."""
    T, _, n = data.shape
    return np.ascontiguousarray(data.reshape(T // K, K, B, n).transpose(0, 2, 1, 3))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--H", type=int, default=64)
    ap.add_argument("--B", type=int, default=B)
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-braintrace", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "rule_floor.md"))
    args = ap.parse_args(argv)
    if args.B != B:  # every program of this script and of step_floor reads the module's B
        import benchmarks.step_floor as step_floor

        step_floor.B = args.B
        globals()["B"] = args.B
    import jax

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    H, T = args.H, args.T
    xs, ys = make_data(T, B)
    onehot = np.eye(N_OUT, dtype=np.float32)[ys]
    inp = np.ascontiguousarray(np.concatenate([xs, onehot], axis=-1))
    model = make_model(H, "lif_v", B)
    params = model.init_params(jax.random.PRNGKey(0))
    floor_w = {k: jax.numpy.asarray(v) for k, v in weights(H).items()}
    es_floor, es_init = floor_steps(H)["es-d-rtrl"]
    # (rung, how) -> (step, init_state, params, data, input width, chunk)
    programs = {("products", ""): (es_floor, es_init, floor_w, xs, N_IN, 1),
                ("+ loss", ""): (*products_with_loss(H), floor_w, inp, N_IN + N_OUT, 1)}
    for rung, sur, tr in (("+ spiking forward", False, False), ("+ surrogate", True, False),
                          ("whole rule", True, True)):
        programs[(rung, "")] = (*lif_v_rule(H, sur, tr), params, inp, N_IN + N_OUT, 1)
        programs[(rung, ", spikes carried")] = (*lif_v_rule(H, sur, tr, carry_spikes=True),
                                                params, inp, N_IN + N_OUT, 1)
    for K in (k for k in CHUNKS if T % k == 0):
        how = f", gradients per {K} steps"
        programs[("products", how)] = (*chunked_es_step(H, K), floor_w, chunked(xs, K), N_IN, K)
        for rung, sur, tr in (("+ surrogate", True, False), ("whole rule", True, True)):
            programs[(rung, how)] = (*lif_v_rule(H, sur, tr, chunk=K), params, chunked(inp, K),
                                     N_IN + N_OUT, K)
    os.environ["TRACEC_CACHE"] = "0"
    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        worst = check_whole_rule(H, params, xs, ys, inp, tmp)
        for i, ((rung, how), (step, init_state, p, data, n_in, K)) in enumerate(programs.items()):
            run = xla_sequence(step, init_state)
            calls[(rung, "XLA" + how)] = lambda r=run, p=p, d=data: jax.block_until_ready(r(p, d))
            # a chunk already runs K steps per call: tracec's loop runs one per iteration
            for fuse in (True, False) if K == 1 else (False,):
                path = os.path.join(tmp, f"{i}-{fuse}.vmfb")
                tracec.compile(rung_model(step, init_state, p, n_in, K), algorithm="forward",
                               scan_unroll=8 if K == 1 else 1, fuse_steps=fuse).save(path)
                learner = tracec.runtime.load(path)
                label = ("IREE, 8 steps " + ("fused" if fuse else "apart")) if K == 1 else "IREE"
                calls[(rung, label + how)] = lambda lr=learner, d=data: lr.forward_sequence(d)
        for alg in ("forward", "es-d-rtrl"):
            path = os.path.join(tmp, f"tracec-{alg}.vmfb")
            tracec.compile(model, algorithm=alg, optimizer="adam", update_every=T).save(path)
            learner = tracec.runtime.load(path)
            if alg == "forward":
                calls[("tracec forward", "IREE")] = lambda lr=learner: lr.forward_sequence(xs)
            else:
                def train(lr=learner):
                    lr.reset()
                    return lr.train_sequence(xs, ys)
                calls[("tracec ES-D-RTRL", "IREE")] = train
        for c in calls.values():  # first calls: compilation, first touch
            c()
        seconds, _ = interleaved(calls, args.rounds)
    bt = {} if args.no_braintrace else braintrace_rows(H, T, args.rounds).get("es-d-rtrl")
    us = {k: statistics.median(v) / T * 1e6 for k, v in seconds.items()}
    lo = {k: min(v) / T * 1e6 for k, v in seconds.items()}
    fwd = us[("tracec forward", "IREE")]
    es = us[("tracec ES-D-RTRL", "IREE")]
    lines = [f"# What the ES-D-RTRL rule costs, part by part (lif_v 2×{H}, batch {B}, T = {T})",
             "", f"Command: `python -m benchmarks.rule_floor --H {H} --B {B} --T {T} --rounds "
             f"{args.rounds}` (benchmarks/rule_floor.py says what each rung computes). One "
             f"process, {args.rounds} interleaved rounds, µs per time step, median [min]; IREE "
             f"llvm-cpu local-sync through tracec's time loop, XLA from jax {jax.__version__}. "
             f"The whole rule's gradient equals tracec's to {worst:.1e} (relative).", "",
             "| rung | program | µs/step median [min] | × tracec's forward |",
             "|---|---|---|---|"]
    for key in calls:
        lines.append(f"| {key[0]} | {key[1]} | {us[key]:.1f} [{lo[key]:.1f}] | "
                     f"{us[key] / fwd:.2f}× |")
    best = {r: min(us[k] for k in us if k[0] == r) for r in RUNGS}
    lines += ["", "The fastest program of each rung, against tracec's forward step "
              f"({fwd:.1f} µs) and its ES-D-RTRL step ({es:.1f} µs, {es / fwd:.2f}×):", ""]
    for r in RUNGS:
        lines.append(f"- {r}: {best[r]:.1f} µs, {best[r] / fwd:.2f}× the forward "
                     f"({best[r] / es:.2f}× tracec's ES-D-RTRL)")
    needs = [("ES-D-RTRL ≤ 2.5× tracec's forward", 2.5 * fwd)]
    if bt:
        lines += ["", f"braintrace {bt['version']} {bt['name']} on the same network, in its own "
                  f"process after these: {bt['us']:.1f} µs per step [{bt['min']:.1f}]."]
        needs.append((f"ES-D-RTRL ≥ 2× braintrace {bt['version']} {bt['name']}", bt["us"] / 2))
    lines += ["", "What the targets need:", ""]
    for what, need in needs:
        passed = [r for r in RUNGS if best[r] > need]
        lines.append(f"- {what} needs ≤ {need:.1f} µs per step; "
                     + (f"the rung \"{passed[0]}\" alone takes {best[passed[0]]:.1f}."
                        if passed else "every rung is faster."))
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
