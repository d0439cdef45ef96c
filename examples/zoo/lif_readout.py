"""Recurrent LIF with a memoryless linear readout: w_out reaches no hidden state."""
import jax

import tracec
from common import INPUT, N_IN, N_OUT, TARGET, TAU, V_TH, H, dense, xent, zeros


def init_params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5),
            "w_out": dense(k3, H, N_OUT)}


def step(p, s, x):
    z_prev = tracec.spike(s["v"] - V_TH)
    v = TAU * s["v"] + x @ p["w_in"] + z_prev @ p["w_rec"] - z_prev * V_TH
    return {"v": v}, tracec.spike(v - V_TH) @ p["w_out"]


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
