import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    y = x @ p["w"]
    y = (y - jnp.mean(y, axis=-1, keepdims=True))
    v = 0.9 * s["v"] + y
    return {"v": v}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, input=INPUT)
