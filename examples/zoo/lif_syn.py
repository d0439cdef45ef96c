"""LIF with an exponential synaptic current g: v and g merge into one group."""
import jax

import tracec
from common import INPUT, N_IN, TARGET, TAU, V_TH, H, dense, xent, zeros

BETA_SYN = 0.7


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5)}


def step(p, s, x):
    z_prev = tracec.spike(s["v"] - V_TH, surrogate="triangle", alpha=1.0)
    g = BETA_SYN * s["g"] + x @ p["w_in"] + z_prev @ p["w_rec"]
    v = TAU * s["v"] + g - z_prev * V_TH
    return {"v": v, "g": g}, v


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b), "g": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
