"""Each input current feeds two neighbouring neurons (jnp.roll): one column of the
relation's output reaches several neurons, which the online rules cannot trace."""
import jax
import jax.numpy as jnp

import tracec


def step(p, s, x):
    y = x @ p["w"]
    v = 0.9 * s["v"] + y + jnp.roll(y, 1, axis=-1)
    return {"v": v}, v


model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 5))},
                     init_state=lambda b: {"v": jnp.zeros((b, 5))}, step=step,
                     loss=lambda o, t: jnp.mean((o - t) ** 2),
                     input=jax.ShapeDtypeStruct((4, 3), jnp.float32),
                     target=jax.ShapeDtypeStruct((4, 5), jnp.float32))
