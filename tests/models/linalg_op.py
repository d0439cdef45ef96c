"""A step with an op IREE cannot compile (a LAPACK custom call from jnp.linalg)."""
import jax
import jax.numpy as jnp

import tracec


def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    m = jnp.linalg.inv(p["a"])
    return {"v": v @ m}, v


model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 4)), "a": jnp.eye(4)},
                     init_state=lambda b: {"v": jnp.zeros((b, 4))},
                     step=step,
                     input=jax.ShapeDtypeStruct((2, 3), jnp.float32))
