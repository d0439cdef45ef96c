"""A 2-layer recurrent ALIF network (LSNN) for the synthetic tasks of examples/tasks.py.

As in Bellec et al.'s LSNN, each layer has two halves: 16 plain LIF neurons and 16
adaptive ones, whose threshold rises by 0.1 with every spike and relaxes with a time
constant of 500 steps; the membrane time constant is 30 steps for all. The adaptation
`a` is kept for every neuron (state shapes are [B, H]) but only moves the threshold of
the adaptive half. The trained networks use both the adaptation and the recurrence:
with the adaptation switched off after training (BETA = 0) test accuracy falls from
98-100 % to 48-74 % on delayed match and to 90-95 % on evidence accumulation; with
`w_rec` zeroed, to 55-60 %.

Soft reset by the current threshold through `tracec.stop_gradient`, and e-prop's
triangular pseudo-derivative (`triangle`, width 1 = the threshold); with it and the
30-step membrane this network trained more reliably in our sweeps than with the
sigmoid surrogate of examples/lif2.py and 20 steps. Two outputs, batch 64, leaky
readout of layer 2. Trained by examples/train_online.py and tests/test_accuracy.py.
"""

import jax
import jax.numpy as jnp
import numpy as np

import tracec

B, N_IN, H, N_OUT = 64, 40, 32, 2
V_TH = 1.0
TAU_MEM = float(np.exp(-1.0 / 30.0))
RHO = float(np.exp(-1.0 / 500.0))          # adaptation decay
# Threshold increase per unit of adaptation: 0 for the first (LIF) half, 0.1 for the rest.
BETA = jnp.where(jnp.arange(H) < H // 2, 0.0, 0.1).astype(jnp.float32)
TAU_OUT = float(np.exp(-1.0 / 5.0))


def init_params(key):
    k = jax.random.split(key, 5)

    def dense(key, fan_in, fan_out, gain=1.0):
        return gain * jax.random.normal(key, (fan_in, fan_out), jnp.float32) / jnp.sqrt(fan_in)

    return {
        "l1": {"w_in": dense(k[0], N_IN, H, 2.0), "w_rec": dense(k[1], H, H, 0.5),
               "b": jnp.zeros((H,), jnp.float32)},
        "l2": {"w_in": dense(k[2], H, H, 2.0), "w_rec": dense(k[3], H, H, 0.5),
               "b": jnp.zeros((H,), jnp.float32)},
        "out": {"w": dense(k[4], H, N_OUT)},
    }


def init_state(batch):
    zeros = lambda n: jnp.zeros((batch, n), jnp.float32)
    layer = lambda: {"v": zeros(H), "a": zeros(H), "z": zeros(H)}
    return {"l1": layer(), "l2": layer(), "out": {"y": zeros(N_OUT)}}


def alif_layer(p, s, x):
    v = TAU_MEM * s["v"] + x @ p["w_in"] + s["z"] @ p["w_rec"] + p["b"]
    thr = V_TH + BETA * s["a"]
    z = tracec.spike(v - thr, surrogate="triangle", alpha=1.0)
    v = v - tracec.stop_gradient(z) * thr
    a = RHO * s["a"] + z
    return {"v": v, "a": a, "z": z}


def step(params, state, x):
    s1 = alif_layer(params["l1"], state["l1"], x)
    s2 = alif_layer(params["l2"], state["l2"], s1["z"])
    y = TAU_OUT * state["out"]["y"] + s2["z"] @ params["out"]["w"]
    return {"l1": s1, "l2": s2, "out": {"y": y}}, y


def loss(output, target):
    logp = jax.nn.log_softmax(output, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))


model = tracec.Model(
    init_params=init_params,
    init_state=init_state,
    step=step,
    loss=loss,
    input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
    target=jax.ShapeDtypeStruct((B,), jnp.int32),
)
