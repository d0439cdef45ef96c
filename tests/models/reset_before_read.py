"""One LIF layer written as Norse writes it: the spike is computed from the membrane
*before* the hard reset and the state keeps the membrane *after* it, so the loss reads a
value of the step that is not a new state. A single neuron-intrinsic layer (no
recurrent weights): D-RTRL must equal the exact BPTT gradient."""
import jax
import jax.numpy as jnp

import tracec

B, N_IN, H, N_OUT = 4, 6, 8, 3


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": 2.0 * jax.random.normal(k1, (N_IN, H)) / jnp.sqrt(N_IN),
            "b": 0.1 * jnp.ones((H,)),
            "tau": 0.9 * jnp.ones((H,)),
            "w_out": jax.random.normal(k2, (H, N_OUT)) / jnp.sqrt(H)}


def step(p, s, x):
    v = p["tau"] * s["v"] + x @ p["w_in"] + p["b"]      # membrane before the reset
    z = tracec.spike(v - 1.0, "fast-sigmoid", 5.0)
    v_new = jnp.where(z > 0, 0.0, v)                     # hard reset
    return {"v": v_new}, z @ p["w_out"] + 0.1 * jnp.tanh(v) @ p["w_out"]


def loss(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(jnp.sum(jax.nn.one_hot(target, out.shape[-1]) * logp, axis=-1))


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": jnp.zeros((b, H))},
                     step=step, loss=loss, input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
                     target=jax.ShapeDtypeStruct((B,), jnp.int32))
