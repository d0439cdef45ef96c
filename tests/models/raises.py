import jax
import jax.numpy as jnp

import tracec


def init_state(batch):
    return {"v": jnp.zeros((batch, 4))}


def step(p, s, x):
    v = s["v"] + x @ p["w"]   # (2,3) @ (5,4): shapes do not match
    return {"v": v}, v


model = tracec.Model(init_params=lambda k: {"w": jnp.ones((5, 4))}, init_state=init_state,
                     step=step, input=jax.ShapeDtypeStruct((2, 3), jnp.float32))
