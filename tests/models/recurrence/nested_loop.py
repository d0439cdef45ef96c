import jax
import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    v = jax.lax.fori_loop(0, 3, lambda i, v: jnp.tanh(v @ p["u"]), v)
    return {"v": v}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, input=INPUT)
