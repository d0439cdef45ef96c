"""A GRU cell: h_new = (1 - z) * n + z * h keeps an element-wise path from h."""
import jax
import jax.numpy as jnp

import tracec
from common import INPUT, N_IN, TARGET, H, dense, xent, zeros


def init_params(key):
    k = jax.random.split(key, 6)
    return {name: dense(kk, N_IN if name.startswith("w") else H, H)
            for name, kk in zip(["wz", "wr", "wn", "uz", "ur", "un"], k)}


def step(p, s, x):
    h = s["h"]
    z = jax.nn.sigmoid(x @ p["wz"] + h @ p["uz"])
    r = jax.nn.sigmoid(x @ p["wr"] + h @ p["ur"])
    n = jnp.tanh(x @ p["wn"] + r * (h @ p["un"]))
    h = (1.0 - z) * n + z * h
    return {"h": h}, h


model = tracec.Model(init_params=init_params, init_state=lambda b: {"h": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
