"""Only a readout is trainable: no parameter reaches the recurrent state."""
import jax
import jax.numpy as jnp

import tracec


def step(p, s, x):
    v = 0.9 * s["v"] + x
    return {"v": v}, v @ p["w_out"]


model = tracec.Model(init_params=lambda k: {"w_out": jnp.ones((3, 2))},
                     init_state=lambda b: {"v": jnp.zeros((b, 3))}, step=step,
                     loss=lambda o, t: jnp.mean((o - t) ** 2),
                     input=jax.ShapeDtypeStruct((4, 3), jnp.float32),
                     target=jax.ShapeDtypeStruct((4, 2), jnp.float32))
