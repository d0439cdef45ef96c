"""Ordinary JAX idioms learn the exact gradient: each model of tests/idioms.py is one
neuron-intrinsic layer, so tracec's D-RTRL after T steps of SGD(lr=1, update-every=T)
must equal minus jax.grad of Σ_t m_t L_t through time (BPTT)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import tracec
import tracec.runtime
from idioms import IDIOMS
from reference_rules import bptt_gradient

T = 7


def _data(model, seed):
    rng = np.random.default_rng(seed)
    shape = (T,) + tuple(model.input.shape)
    xs = (rng.random(shape) < 0.5).astype(np.float32)
    targets = rng.integers(0, 3, (T,) + tuple(model.target.shape)).astype(np.int32)
    mask = (rng.random(T) < 0.8).astype(np.float32)
    return xs, targets, mask


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_idiom_learns_the_bptt_gradient(name, tmp_path):
    model = IDIOMS[name]()
    path = str(tmp_path / "m.vmfb")
    tracec.compile(model, algorithm="d-rtrl", optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    xs, targets, mask = _data(model, sum(map(ord, name)))
    before = learner.params
    learner.train_sequence(xs, targets, mask)
    after = learner.params
    want = bptt_gradient(model, model.init_params(jax.random.PRNGKey(0)), xs, targets, mask)
    assert set(want) == set(before)
    for k, g in want.items():
        scale = max(1e-3, float(np.abs(g).max()))
        np.testing.assert_allclose(before[k] - after[k], g, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{name}: {k}")
