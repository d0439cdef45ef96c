"""An LSTM cell: cell c and output h in one group (h reads c element-wise)."""
import jax
import jax.numpy as jnp

import tracec
from common import INPUT, N_IN, TARGET, H, dense, xent, zeros


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w": dense(k1, N_IN, 4 * H), "u": dense(k2, H, 4 * H),
            "b": jnp.zeros((4 * H,), jnp.float32)}


def step(p, s, x):
    gates = x @ p["w"] + s["h"] @ p["u"] + p["b"]
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * s["c"] + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return {"c": c, "h": h}, h


model = tracec.Model(init_params=init_params, init_state=lambda b: {"c": zeros(b), "h": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
