"""A memoryless spiking layer (the new membrane does not depend on the old one) whose
readout also reads the *old* state: the loss reaches the previous state without passing
through a new one. With nothing remembered, ES-D-RTRL with decay 0 is exact."""
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
    v = x @ p["w_in"] + p["b"] + 0.0 * s["v"]   # a recurrence that remembers nothing
    z = tracec.spike(v - 0.5, "triangle", 1.0)
    return {"v": v}, z @ p["w_out"] + jnp.tanh(s["v"]) @ p["w_out"]


def loss(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, out.shape[-1]) * logp, axis=-1))


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, loss=loss, input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                     target=jax.ShapeDtypeStruct((B,), jnp.int32))
