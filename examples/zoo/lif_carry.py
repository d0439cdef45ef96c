"""Recurrent LIF keeping its spikes in the carry: z_t = spike(v_t) is a derived state."""
import jax

import tracec
from common import INPUT, N_IN, TARGET, TAU, V_TH, H, dense, xent, zeros


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5)}


def step(p, s, x):
    v = TAU * s["v"] + x @ p["w_in"] + s["z"] @ p["w_rec"] - s["z"] * V_TH
    z = tracec.spike(v - V_TH)
    return {"v": v, "z": z}, v


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b), "z": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
