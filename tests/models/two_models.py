import jax
import jax.numpy as jnp

import tracec


def _make():
    return tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 4))},
                        init_state=lambda b: {"v": jnp.zeros((b, 4))},
                        step=lambda p, s, x: ({"v": s["v"] + x @ p["w"]}, s["v"]),
                        input=jax.ShapeDtypeStruct((2, 3), jnp.float32))


model_a = _make()
model_b = _make()
