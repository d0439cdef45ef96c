import jax.numpy as jnp

import tracec
from common import INPUT, H, B, params


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"] + s["flat"].reshape(B, H)
    flat = 0.5 * s["flat"] + v.reshape(B * H)
    return {"v": v, "flat": flat}, v


model = tracec.Model(init_params=params,
                     init_state=lambda b: {"v": jnp.zeros((b, H)), "flat": jnp.zeros((b * H,))},
                     step=step, input=INPUT)
