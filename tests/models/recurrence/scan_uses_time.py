import jax
import jax.numpy as jnp

import tracec
from common import INPUT, H, params


def sequence(p, s, xs):
    def body(carry, x):
        v, t = carry
        v = 0.9 * v + x @ p["w"] * t
        return (v, t + 1.0), v
    (v, _), vs = jax.lax.scan(body, (s["v"], 0.0), xs)
    return {"v": v}, vs


model = tracec.Model(init_params=params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     sequence=sequence, input=INPUT)
