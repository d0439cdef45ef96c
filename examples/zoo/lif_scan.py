"""lif_recompute.py written as a sequence function with jax.lax.scan."""
import jax

import tracec
from common import INPUT, N_IN, TARGET, TAU, V_TH, H, dense, xent, zeros


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {"w_in": dense(k1, N_IN, H, 2.0), "w_rec": dense(k2, H, H, 0.5)}


def sequence(p, s, xs):
    def body(v, x):
        z_prev = tracec.spike(v - V_TH)
        v = TAU * v + x @ p["w_in"] + z_prev @ p["w_rec"] - z_prev * V_TH
        return v, v

    v, vs = jax.lax.scan(body, s["v"], xs)
    return {"v": v}, vs


model = tracec.Model(init_params=init_params, init_state=lambda b: {"v": zeros(b)},
                     sequence=sequence, loss=xent, input=INPUT, target=TARGET)
