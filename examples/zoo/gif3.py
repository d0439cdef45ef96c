"""A 3-state neuron (GIF-like): membrane v and two adaptation currents i1, i2."""
import jax

import tracec
from common import INPUT, N_IN, TARGET, TAU, V_TH, H, dense, xent, zeros

K1, K2, A1, A2 = 0.8, 0.98, -0.3, -0.05


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5)}


def step(p, s, x):
    z_prev = tracec.spike(s["v"] - V_TH, surrogate="fast-sigmoid", alpha=10.0)
    i1 = K1 * s["i1"] + A1 * z_prev
    i2 = K2 * s["i2"] + A2 * z_prev
    v = TAU * s["v"] + x @ p["w_in"] + z_prev @ p["w_rec"] + i1 + i2 - z_prev * V_TH
    return {"v": v, "i1": i1, "i2": i2}, v


model = tracec.Model(init_params=init_params,
                     init_state=lambda b: {"v": zeros(b), "i1": zeros(b), "i2": zeros(b)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
