"""One LIF layer without recurrent weights and a memoryless readout: the online rules'
approximations vanish here, so D-RTRL must equal the exact BPTT gradient."""
import jax
import jax.numpy as jnp

import tracec

B, N_IN, H, N_OUT = 4, 6, 8, 3


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": 2.0 * jax.random.normal(k1, (N_IN, H)) / jnp.sqrt(N_IN),
            "b": 0.1 * jnp.ones((H,)),
            "w_out": jax.random.normal(k2, (H, N_OUT)) / jnp.sqrt(H)}


def step(p, s, x):
    # The output reads only the new state.
    z_prev = tracec.spike(s["v"] - 1.0, "fast-sigmoid", 5.0)
    v = 0.9 * s["v"] + x @ p["w_in"] + p["b"] - z_prev
    z = tracec.spike(v - 1.0, "fast-sigmoid", 5.0)
    return {"v": v}, z @ p["w_out"] + 0.1 * v @ p["w_out"]


def loss(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, loss=loss, input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                     target=jax.ShapeDtypeStruct((B,), jnp.int32))
