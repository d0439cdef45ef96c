import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    v = jnp.tanh(x @ p["w"])
    return {"v": v}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, input=INPUT)
