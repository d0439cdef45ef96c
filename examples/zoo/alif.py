"""Adaptive LIF: membrane v and adaptation a in one hidden group."""
import jax
import jax.numpy as jnp

import tracec
from common import INPUT, N_IN, RHO, TARGET, TAU, V_TH, H, dense, xent, zeros

BETA = 1.8


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5),
            "b": jnp.zeros((H,), jnp.float32)}


def step(p, s, x):
    thr = V_TH + BETA * s["a"]
    z_prev = tracec.spike(s["v"] - thr)
    v = TAU * s["v"] + x @ p["w_in"] + z_prev @ p["w_rec"] + p["b"] - z_prev * thr
    a = RHO * s["a"] + z_prev
    return {"v": v, "a": a}, v


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b), "a": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
