"""A whole-brain-sized spiking network that learns online: a synthetic connectome with
the size of the adult fly brain's (139,255 LIF neurons, over 3 million connections).

The connectome is generated here from a seed, nothing is downloaded: each neuron's
out-degree is drawn from a heavy-tailed (log-normal) distribution scaled to the total
number of connections, and its targets uniformly. The connections are a list
(``pre``, ``post``) with one trainable weight each, summed into the neurons with
``jax.ops.segment_sum``: tracec finds this *sparse relation* and keeps, under
ES-D-RTRL, a few vectors per neuron (no matrix anywhere). External input drives a
subset of neurons through a second list. The output is the firing rate (a leaky
average of spikes, a state of every neuron) of the first ``READOUT`` neurons, fitted to
a target activity pattern.

Sizes come from the environment so the same file serves the tests and the scaling
benchmark: ``CONNECTOME_NEURONS`` (default 139255), ``CONNECTOME_CONNECTIONS``
(default 3,000,000), ``CONNECTOME_BATCH`` (default 1).

    tracec examples/connectome.py -o connectome.vmfb --algorithm es-d-rtrl
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

import tracec

N = int(os.environ.get("CONNECTOME_NEURONS", 139_255))
NNZ = int(os.environ.get("CONNECTOME_CONNECTIONS", 3_000_000))
B = int(os.environ.get("CONNECTOME_BATCH", 1))
N_IN, FAN_OUT_IN = 64, 40         # input channels, neurons each one drives
READOUT = min(300, N)             # neurons whose rates are fitted
TAU_MEM, TAU_RATE, V_TH = 0.9, 0.95, 1.0
SEED = 0


def connectome(n: int, nnz: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``pre``, ``post`` (int32, sorted by ``pre``): log-normal out-degrees summing to
    ``nnz``, uniform targets, no self-connections."""
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mean=0.0, sigma=1.2, size=n)
    degree = np.floor(raw / raw.sum() * nnz).astype(np.int64)
    short = nnz - int(degree.sum())  # hand out the remainder to the largest fractions
    degree[np.argsort(raw)[::-1][:short]] += 1
    pre = np.repeat(np.arange(n, dtype=np.int32), degree)
    post = rng.integers(0, n - 1, size=nnz, dtype=np.int32)
    post += post >= pre  # skip self-connections
    return pre, post.astype(np.int32)


PRE, POST = connectome(N, NNZ, SEED)
_rng = np.random.default_rng(SEED + 1)
IN_PRE = np.repeat(np.arange(N_IN, dtype=np.int32), FAN_OUT_IN)
IN_POST = _rng.integers(0, N, size=N_IN * FAN_OUT_IN, dtype=np.int32)
IN_DEGREE = max(1.0, NNZ / N)


def init_params(key):
    k1, k2 = jax.random.split(key)
    return {
        "w_rec": jax.random.normal(k1, (NNZ,), jnp.float32) * (0.6 / np.sqrt(IN_DEGREE)),
        "w_in": jax.random.normal(k2, (N_IN * FAN_OUT_IN,), jnp.float32) * 0.8,
        "bias": jnp.zeros((N,), jnp.float32),
    }


def init_state(batch):
    zeros = jnp.zeros((batch, N), jnp.float32)
    return {"v": zeros, "rate": zeros}


def connect(x, w, pre, post):
    """Σ over the connections into each neuron: x[:, pre] * w summed at post."""
    return jax.vmap(lambda row: jax.ops.segment_sum(row[pre] * w, post, N))(x)


def step(params, state, x):
    v, rate = state["v"], state["rate"]
    z_old = tracec.spike(v - V_TH)
    v = (TAU_MEM * v + connect(z_old, params["w_rec"], PRE, POST)
         + connect(x, params["w_in"], IN_PRE, IN_POST) + params["bias"])
    z = tracec.spike(v - V_TH)
    v = v - z * V_TH
    rate = TAU_RATE * rate + (1.0 - TAU_RATE) * z
    return {"v": v, "rate": rate}, rate[:, :READOUT]


def loss(output, target):
    return jnp.mean((output - target) ** 2)


def target_activity(t: int, batch: int = B) -> np.ndarray:
    """The readout neurons' target rates at step ``t``: slow waves with a phase per
    neuron (the same for every sample)."""
    phase = np.linspace(0.0, 2.0 * np.pi, READOUT, endpoint=False)
    wave = 0.15 + 0.1 * np.sin(2.0 * np.pi * t / 50.0 + phase)
    return np.broadcast_to(wave, (batch, READOUT)).astype(np.float32)


model = tracec.Model(
    init_params=init_params,
    init_state=init_state,
    step=step,
    loss=loss,
    input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32),
    target=jax.ShapeDtypeStruct((B, READOUT), jnp.float32),
)
