"""A loss written the usual JAX way, with a gather (``jnp.take_along_axis``, integer-array
indexing), trains with the exact gradient: tests/models/exact_lif.py is one
neuron-intrinsic layer with a memoryless readout, so tracec's D-RTRL after T steps of
SGD(lr=1, update-every=T) must equal minus jax.grad of Σ_t m_t L_t through time (BPTT)."""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import MODELS
from reference_rules import bptt_gradient

sys.path.insert(0, MODELS)
T = 6


def _indexed_loss(out, target):
    logp = jax.nn.log_softmax(out, axis=-1)
    return -jnp.mean(logp[jnp.arange(out.shape[0]), target])


def _segment_loss(out, target):
    # per-class sums of the outputs of the samples of that class, read back by class
    sums = jax.ops.segment_sum(out, target, num_segments=out.shape[-1])
    logp = jax.nn.log_softmax(out + 0.1 * sums[target], axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))


LOSSES = {"take_along_axis": None, "integer_indexing": _indexed_loss,
          "segment_sum": _segment_loss}


def _data(model, seed):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T,) + tuple(model.input.shape)) < 0.5).astype(np.float32)
    targets = rng.integers(0, 3, (T,) + tuple(model.target.shape)).astype(np.int32)
    mask = (rng.random(T) < 0.8).astype(np.float32)
    mask[0] = 1.0
    return xs, targets, mask


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_gather_in_the_loss_gives_the_bptt_gradient(loss, tmp_path):
    import exact_lif

    model = exact_lif.model
    if LOSSES[loss] is not None:
        model = tracec.Model(init_params=model.init_params, init_state=model.init_state,
                             step=model.step, loss=LOSSES[loss], input=model.input,
                             target=model.target)
    path = str(tmp_path / "m.vmfb")
    source = os.path.join(MODELS, "exact_lif.py") if LOSSES[loss] is None else model
    tracec.compile(source, algorithm="d-rtrl", optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    xs, targets, mask = _data(model, sum(map(ord, loss)))
    before = learner.params
    learner.train_sequence(xs, targets, mask)
    after = learner.params
    want = bptt_gradient(model, model.init_params(jax.random.PRNGKey(0)), xs, targets, mask)
    assert set(want) == set(before)
    for k, g in want.items():
        assert np.abs(g).max() > 1e-3, f"{loss}: {k}: the check needs a gradient"
        scale = float(np.abs(g).max())
        np.testing.assert_allclose(before[k] - after[k], g, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{loss}: {k}")
