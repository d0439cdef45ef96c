import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    v = v / jnp.sum(jnp.abs(v), axis=-1, keepdims=True)
    return {"v": v}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, input=INPUT)
