"""A convolutional recurrent LIF layer: 4 channels on a 6×6 grid (NCHW), fed by a 3×3
convolution of a 2-channel input and by a 3×3 convolution of last step's spikes,
read out by a dense layer."""
import jax
import jax.numpy as jnp

import tracec
from common import B, N_OUT, TARGET, TAU, V_TH, dense, xent

C_IN, C, S = 2, 4, 6
INPUT = jax.ShapeDtypeStruct((B, C_IN, S, S), jnp.float32)


def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))


def init_params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"w_in": 2.0 * jax.random.normal(k1, (C, C_IN, 3, 3)) / jnp.sqrt(C_IN * 9.0),
            "w_rec": 0.5 * jax.random.normal(k2, (C, C, 3, 3)) / jnp.sqrt(C * 9.0),
            "w_out": dense(k3, C * S * S, N_OUT)}


def step(p, s, x):
    z_prev = tracec.spike(s["v"] - V_TH)
    v = TAU * s["v"] + conv(x, p["w_in"]) + conv(z_prev, p["w_rec"]) - z_prev * V_TH
    return {"v": v}, v.reshape(v.shape[0], -1) @ p["w_out"]


model = tracec.Model(init_params=init_params,
                     init_state=lambda b: {"v": jnp.zeros((b, C, S, S), jnp.float32)},
                     step=step, loss=xent, input=INPUT, target=TARGET)
