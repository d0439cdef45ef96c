"""A step with a bare Heaviside (v > th).astype(f32): default surrogate and a warning."""
import jax, jax.numpy as jnp
import tracec
def step(p, s, x):
    v = 0.9 * s["v"] + x @ p["w"]
    z = (v > 1.0).astype(jnp.float32)
    v = v - z
    return {"v": v}, v
def loss(o, t):
    return jnp.mean((o - t) ** 2)
model = tracec.Model(init_params=lambda k: {"w": jnp.ones((3, 4))}, init_state=lambda b: {"v": jnp.zeros((b, 4))},
                     step=step, loss=loss, input=jax.ShapeDtypeStruct((2, 3), jnp.float32), target=jax.ShapeDtypeStruct((2, 4), jnp.float32))
