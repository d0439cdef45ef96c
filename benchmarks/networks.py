"""The benchmark networks as ``tracec.Model``s, for any width H.

``make_model(H, variant="lif", batch=32)``: examples/lif2.py (2 layers of H recurrent
LIF neurons, soft reset, sigmoid surrogate α=4, membrane decay 0.9, threshold 1, leaky
readout decay 0.8, 40 inputs, 10 outputs, cross-entropy); with H=64 and batch 32 it is
that file's model, step for step. ``variant="alif"`` adds a threshold adaptation a per
neuron (the {v, a, z} hidden group of examples/zoo/alif.py's constants)::

    th = 1 + 1.8 a;  v = 0.9 v + x W_in + z W_rec + b;  z = spike(v - th);  v = v - z th;
    a = 0.95 a + z

``variant="lif_v"`` is the same function as ``lif`` written as braintrace's own examples
write it (benchmarks/braintrace_side.py's ``build_idiomatic_net``): the membrane V (before
the reset) is a layer's only state and the last spike is recomputed from it::

    z' = spike(V - 1);  V = 0.9 (V - z') + x W_in + z' W_rec + b;  z = spike(V - 1)

(0.9 (V - z') as brainpy's exponential Euler step computes it: V - z' + c (-(V - z') / tau)
with exp(-1/tau) = 0.9, so that tracec's D-RTRL equals braintrace's D_RTRL on it).
``variant="alif_v"`` is the ALIF network as braintrace's examples write it: brainpy's ALIF
neuron (``build_idiomatic_net(adaptive=True)``), hidden states V and a, alif's constants::

    z' = spike(V - 1 - 1.8 a);  V = 0.9 (V - z') + x W_in + z' W_rec + b;  a = 0.95 (a + z');
    z = spike(V - 1 - 1.8 a)

(the soft reset subtracts the fixed threshold, and a decays by brainpy's exponential Euler
step too).

benchmarks/braintrace_side.py builds the same networks with brainstate + braintrace
(it cannot import this file: it runs in the benchmark venv, without tracec).
``bptt_grads(...)`` is the exact gradient (jax.grad through lax.scan) of the summed loss
``bptt_loss(...)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

import tracec

N_IN, N_OUT = 40, 10
TAU_MEM, TAU_OUT, V_TH = 0.9, 0.8, 1.0
BETA, RHO = 1.8, 0.95
VARIANTS = ("lif", "alif", "lif_v", "alif_v")


def _dense(key, fan_in, fan_out, gain=1.0):
    return gain * jax.random.normal(key, (fan_in, fan_out), jnp.float32) / jnp.sqrt(fan_in)


def make_model(H: int = 64, variant: str = "lif", batch: int = 32) -> tracec.Model:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    alif = variant == "alif"
    if variant in ("lif_v", "alif_v"):
        return _make_lif_v(H, batch, adaptive=variant == "alif_v")

    def init_state(b):
        zeros = lambda n: jnp.zeros((b, n), jnp.float32)  # noqa: E731
        layer = lambda: ({"v": zeros(H), "z": zeros(H), "a": zeros(H)} if alif  # noqa: E731
                         else {"v": zeros(H), "z": zeros(H)})
        return {"l1": layer(), "l2": layer(), "out": {"y": zeros(N_OUT)}}

    def layer(p, s, x):
        v = TAU_MEM * s["v"] + x @ p["w_in"] + s["z"] @ p["w_rec"] + p["b"]
        th = V_TH + BETA * s["a"] if alif else V_TH
        z = tracec.spike(v - th, surrogate="sigmoid", alpha=4.0)
        new = {"v": v - z * th, "z": z}
        if alif:
            new["a"] = RHO * s["a"] + z
        return new

    def step(params, state, x):
        s1 = layer(params["l1"], state["l1"], x)
        s2 = layer(params["l2"], state["l2"], s1["z"])
        y = TAU_OUT * state["out"]["y"] + s2["z"] @ params["out"]["w"]
        return {"l1": s1, "l2": s2, "out": {"y": y}}, y

    return tracec.Model(init_params=_init_params(H), init_state=init_state, step=step, loss=_loss,
                        input=jax.ShapeDtypeStruct((batch, N_IN), jnp.float32),
                        target=jax.ShapeDtypeStruct((batch,), jnp.int32))


def _init_params(H: int):
    def init_params(key):
        k = jax.random.split(key, 5)
        return {"l1": {"w_in": _dense(k[0], N_IN, H, 2.0), "w_rec": _dense(k[1], H, H, 0.5),
                       "b": jnp.zeros((H,), jnp.float32)},
                "l2": {"w_in": _dense(k[2], H, H, 2.0), "w_rec": _dense(k[3], H, H, 0.5),
                       "b": jnp.zeros((H,), jnp.float32)},
                "out": {"w": _dense(k[4], H, N_OUT)}}
    return init_params


def _loss(output, target):
    logp = jax.nn.log_softmax(output, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, output.shape[-1]) * logp, axis=-1))


def _euler(tau: float) -> float:
    """brainpy's exponential Euler factor for dv/dt = -v/tau over dt = 1: dt * phi(dt J),
    J = -1/tau, phi(z) = (e^z - 1)/z, in float32 as brainpy computes it."""
    return float(jnp.expm1(jnp.float32(-1.0 / tau)) / jnp.float32(-1.0 / tau))


def _make_lif_v(H: int, batch: int, adaptive: bool = False) -> tracec.Model:
    tau = -1.0 / math.log(TAU_MEM)  # brainpy's LIF: tau with exp(-dt/tau) = 0.9, dt = 1
    tau_a = -1.0 / math.log(RHO)    # its ALIF: exp(-dt/tau_a) = 0.95
    euler, euler_a = _euler(tau), _euler(tau_a)

    def init_state(b):
        zeros = lambda n: jnp.zeros((b, n), jnp.float32)  # noqa: E731
        layer = lambda: {"v": zeros(H), "a": zeros(H)} if adaptive else {"v": zeros(H)}  # noqa: E731
        return {"l1": layer(), "l2": layer(), "out": {"y": zeros(N_OUT)}}

    def spike(s):  # brainpy's (V - V_th - beta a) / (V_th - V_reset), V_reset = 0
        v = s["v"] - V_TH - BETA * s["a"] if adaptive else s["v"] - V_TH
        return tracec.spike(v, surrogate="sigmoid", alpha=4.0)

    def layer(p, s, x):
        z_last = spike(s)                                                 # recomputed from V (and a)
        v = s["v"] - z_last                                               # soft reset
        v = v + euler * (-v / tau)                                        # leak: 0.9 v
        v = v + x @ p["w_in"] + z_last @ p["w_rec"] + p["b"]              # delta input
        new = {"v": v}
        if adaptive:
            a = s["a"] + z_last
            new["a"] = a + euler_a * (-a / tau_a)                         # 0.95 (a + z')
        return new, spike(new)

    def step(params, state, x):
        s1, z1 = layer(params["l1"], state["l1"], x)
        s2, z2 = layer(params["l2"], state["l2"], z1)
        y = TAU_OUT * state["out"]["y"] + z2 @ params["out"]["w"]
        return {"l1": s1, "l2": s2, "out": {"y": y}}, y

    return tracec.Model(init_params=_init_params(H), init_state=init_state, step=step, loss=_loss,
                        input=jax.ShapeDtypeStruct((batch, N_IN), jnp.float32),
                        target=jax.ShapeDtypeStruct((batch,), jnp.int32))


def sequence_losses(model: tracec.Model, params, xs, ys):
    """The per-step losses ``[T]`` of one sequence from the initial state (lax.scan)."""
    def body(s, inp):
        s, out = model.step(params, s, inp[0])
        return s, model.loss(out, inp[1])
    return jax.lax.scan(body, model.init_state(xs.shape[1]), (xs, ys))[1]


def bptt_loss(model: tracec.Model, params, xs, ys, mask):
    """sum_t mask_t loss_t: what tracec's online rules accumulate; its jax.grad is BPTT."""
    return jnp.sum(sequence_losses(model, params, xs, ys) * mask)


def bptt_grads(model: tracec.Model, params, xs, ys, mask=None):
    """d/dparams of sum_t mask_t loss_t over one sequence from the initial state."""
    mask = jnp.ones((xs.shape[0],), jnp.float32) if mask is None else jnp.asarray(mask)
    return jax.jit(jax.grad(lambda p: bptt_loss(model, p, xs, ys, mask)))(params)
