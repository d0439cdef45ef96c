"""A vanilla tanh RNN: recurrence only through weights (a zero-recurrence group)."""
import jax
import jax.numpy as jnp

import tracec
from common import INPUT, N_IN, TARGET, H, dense, xent, zeros


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w": dense(k1, N_IN, H), "u": dense(k2, H, H), "b": jnp.zeros((H,), jnp.float32)}


def step(p, s, x):
    h = jnp.tanh(x @ p["w"] + s["h"] @ p["u"] + p["b"])
    return {"h": h}, h


model = tracec.Model(init_params=init_params, init_state=lambda b: {"h": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
