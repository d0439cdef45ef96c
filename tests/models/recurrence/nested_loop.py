import jax
import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    v = jax.lax.while_loop(lambda v: jnp.sum(v) < 3.0, lambda v: jnp.tanh(v @ p["u"]), v)
    return {"v": v}, v


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, input=INPUT)
