import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    c = jnp.tanh(p["u"][0]) * jnp.ones_like(s["c"])
    return {"v": v, "c": c}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H)), "c": jnp.zeros((b, H))},
                     step=step, input=INPUT)
