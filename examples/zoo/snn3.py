"""A 3-layer recurrent SNN with a leaky (non-spiking) readout."""
import jax
import jax.numpy as jnp

import tracec
from common import INPUT, N_IN, N_OUT, TARGET, TAU, V_TH, H, dense, xent, zeros

KAPPA = 0.8


def init_params(key):
    k = jax.random.split(key, 7)
    return {"l1": {"w_in": dense(k[0], N_IN, H, 2.0), "w_rec": dense(k[1], H, H, 0.5)},
            "l2": {"w_in": dense(k[2], H, H, 2.0), "w_rec": dense(k[3], H, H, 0.5)},
            "l3": {"w_in": dense(k[4], H, H, 2.0), "w_rec": dense(k[5], H, H, 0.5)},
            "out": {"w": dense(k[6], H, N_OUT), "b": jnp.zeros((N_OUT,), jnp.float32)}}


def lif(p, v, x):
    z_prev = tracec.spike(v - V_TH)
    v = TAU * v + x @ p["w_in"] + z_prev @ p["w_rec"] - z_prev * V_TH
    return v, tracec.spike(v - V_TH)


def step(p, s, x):
    v1, z1 = lif(p["l1"], s["v1"], x)
    v2, z2 = lif(p["l2"], s["v2"], z1)
    v3, z3 = lif(p["l3"], s["v3"], z2)
    y = KAPPA * s["y"] + z3 @ p["out"]["w"] + p["out"]["b"]
    return {"v1": v1, "v2": v2, "v3": v3, "y": y}, y


model = tracec.Model(init_params=init_params,
                     init_state=lambda b: {"v1": zeros(b), "v2": zeros(b), "v3": zeros(b),
                                           "y": zeros(b, N_OUT)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
