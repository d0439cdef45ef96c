"""LIF with a hard reset."""
import jax

import tracec
from common import INPUT, N_IN, TARGET, TAU, V_TH, H, dense, xent, zeros


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5)}


def step(p, s, x):
    z_prev = tracec.spike(s["v"] - V_TH)
    v = TAU * s["v"] + x @ p["w_in"] + z_prev @ p["w_rec"]
    z = tracec.spike(v - V_TH)
    v = v * (1.0 - z)
    return {"v": v}, v


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
