import jax
import jax.numpy as jnp

B, N_IN, H = 4, 6, 8
INPUT = jax.ShapeDtypeStruct((B, N_IN), jnp.float32)


def params(key):
    k1, k2 = jax.random.split(key)
    return {"w": jax.random.normal(k1, (N_IN, H)), "u": jax.random.normal(k2, (H, H))}
