"""Two spiking layers, each with its spike computed before its reset: the second layer
reads the first layer's pre-reset spike, the readout the second's. The loss reaches the
first layer's parameters and old state through values that are not new states."""
import jax
import jax.numpy as jnp

import tracec

B, N_IN, H1, H2, N_OUT = 4, 6, 8, 5, 3


def init_params(key):
    k = jax.random.split(key, 4)
    return {"w1": 2.0 * jax.random.normal(k[0], (N_IN, H1)) / jnp.sqrt(N_IN),
            "w2": 2.0 * jax.random.normal(k[1], (H1, H2)) / jnp.sqrt(H1),
            "u2": 0.5 * jax.random.normal(k[2], (H2, H2)) / jnp.sqrt(H2),
            "th2": 0.8 * jnp.ones((H2,)),
            "w_out": jax.random.normal(k[3], (H2, N_OUT)) / jnp.sqrt(H2)}


def step(p, s, x):
    v1 = 0.9 * s["v1"] + x @ p["w1"]
    z1 = tracec.spike(v1 - 1.0, "sigmoid", 4.0)
    v1 = jnp.where(z1 > 0, 0.0, v1)                       # hard reset, after the spike
    z2_prev = tracec.spike(s["v2"] - p["th2"], "arctan", 2.0)
    v2 = 0.8 * s["v2"] + z1 @ p["w2"] + z2_prev @ p["u2"]
    z2 = tracec.spike(v2 - p["th2"], "arctan", 2.0)
    v2 = v2 - z2 * p["th2"]                                # soft reset, after the spike
    return {"v1": v1, "v2": v2}, z2 @ p["w_out"]


def loss(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, out.shape[-1]) * logp, axis=-1))


model = tracec.Model(init_params=init_params,
                     init_state=lambda b: {"v1": jnp.zeros((b, H1)), "v2": jnp.zeros((b, H2))},
                     step=step, loss=loss, input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                     target=jax.ShapeDtypeStruct((B,), jnp.int32))
