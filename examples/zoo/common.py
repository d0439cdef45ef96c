"""Shared sizes and initialisers of the model zoo (each model file stays short)."""

import jax
import jax.numpy as jnp

B, N_IN, H, N_OUT = 8, 12, 16, 4
TAU, RHO, V_TH = 0.9, 0.95, 1.0


def dense(key, fan_in, fan_out, gain=1.0):
    return gain * jax.random.normal(key, (fan_in, fan_out), jnp.float32) / jnp.sqrt(fan_in)


def zeros(batch, n=H):
    return jnp.zeros((batch, n), jnp.float32)


def xent(output, target):
    logp = jax.nn.log_softmax(output, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))


INPUT = jax.ShapeDtypeStruct((B, N_IN), jnp.float32)
TARGET = jax.ShapeDtypeStruct((B,), jnp.int32)
