"""examples/lif2.py with the reset NIR's LIF node has: to zero (`v * (1 - z)`).

`tracec export-nir examples/nir/lif_hard.py -o lif_hard.nir` writes it as a NIR graph
(Affine/Linear weights, LIF layers with recurrent edges, an LI readout); lif2.py itself
resets by subtraction, which NIR does not express (docs/nir.md, "NIR out").
"""

import jax
import jax.numpy as jnp

import tracec

B, N_IN, H, N_OUT = 4, 12, 16, 3
TAU_MEM, TAU_OUT, V_TH = 0.9, 0.8, 1.0


def init_params(key):
    k = jax.random.split(key, 5)

    def dense(key, fan_in, fan_out, gain=1.0):
        return gain * jax.random.normal(key, (fan_in, fan_out), jnp.float32) / jnp.sqrt(fan_in)

    return {
        "l1": {"w_in": dense(k[0], N_IN, H, 3.0), "w_rec": dense(k[1], H, H, 0.5),
               "b": jnp.full((H,), 0.05, jnp.float32)},
        "l2": {"w_in": dense(k[2], H, H, 3.0), "w_rec": dense(k[3], H, H, 0.5),
               "b": jnp.zeros((H,), jnp.float32)},
        "out": {"w": dense(k[4], H, N_OUT)},
    }


def init_state(batch):
    zeros = lambda n: jnp.zeros((batch, n), jnp.float32)
    return {"l1": {"v": zeros(H), "z": zeros(H)},
            "l2": {"v": zeros(H), "z": zeros(H)},
            "out": {"y": zeros(N_OUT)}}


def lif_layer(p, s, x):
    v = TAU_MEM * s["v"] + x @ p["w_in"] + s["z"] @ p["w_rec"] + p["b"]
    z = tracec.spike(v - V_TH, surrogate="sigmoid", alpha=4.0)
    v = v * (1.0 - z)
    return {"v": v, "z": z}


def step(params, state, x):
    s1 = lif_layer(params["l1"], state["l1"], x)
    s2 = lif_layer(params["l2"], state["l2"], s1["z"])
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
