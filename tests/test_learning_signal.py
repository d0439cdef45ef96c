"""The learning signal's second part, δ⁻ (docs/design.md, "Learning signal"): a loss that
reads values of the step that are not new states (a spike computed before a hard reset,
an old state read by the readout) reaches the previous state without passing through a
new one. The compiled rules are checked against jax.grad through time where they are
exact, and against the independent reference (tests/reference_rules.py) elsewhere."""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import MODELS
from reference_rules import bptt_gradient, rules_gradient

sys.path.insert(0, MODELS)
T = 8


def _data(model, seed):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T,) + tuple(model.input.shape)) < 0.5).astype(np.float32)
    targets = rng.integers(0, 3, (T, model.input.shape[0])).astype(np.int32)
    mask = (rng.random(T) < 0.8).astype(np.float32)
    mask[1] = 1.0
    return xs, targets, mask


def _compiled_gradient(name, algorithm, decay, xs, targets, mask, tmp_path):
    """Minus the parameter change of T steps of SGD(lr=1) applied once: Σ_t m_t G_t."""
    path = str(tmp_path / f"{name}-{algorithm}.vmfb")
    tracec.compile(os.path.join(MODELS, f"{name}.py"), algorithm=algorithm, decay=decay,
                   optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    before = learner.params
    learner.train_sequence(xs, targets, mask)
    return {k: before[k] - v for k, v in learner.params.items()}


def _close(got, want, what):
    for k in want:
        scale = max(1e-3, float(np.abs(want[k]).max()))
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{what}: {k}")


def test_reference_equals_bptt_when_the_loss_reads_the_spike_before_the_reset():
    import reset_before_read as m

    params = m.init_params(jax.random.PRNGKey(0))
    xs, ys, mask = _data(m.model, 1)
    ref, _ = rules_gradient(m.model, params, xs, ys, mask, algorithm="d-rtrl", decay=0.0,
                            groups=[{"states": ["v"]}], state_names=["v"])
    _close(ref, bptt_gradient(m.model, params, xs, ys, mask), "reference vs BPTT")


@pytest.mark.parametrize("algorithm, decay", [("d-rtrl", 0.0), ("es-d-rtrl", 0.8)])
def test_spike_read_before_a_hard_reset(algorithm, decay, tmp_path):
    """Norse's LIF: z from the membrane before the reset, the state after it. D-RTRL is
    exact here (one neuron-intrinsic layer); ES-D-RTRL equals the reference."""
    import reset_before_read as m

    params = m.init_params(jax.random.PRNGKey(0))
    xs, ys, mask = _data(m.model, 2)
    got = _compiled_gradient("reset_before_read", algorithm, decay, xs, ys, mask, tmp_path)
    ref, _ = rules_gradient(m.model, params, xs, ys, mask, algorithm=algorithm, decay=decay,
                            groups=[{"states": ["v"]}], state_names=["v"])
    _close(got, ref, f"{algorithm} vs reference")
    if algorithm == "d-rtrl":
        _close(got, bptt_gradient(m.model, params, xs, ys, mask), "d-rtrl vs BPTT")


@pytest.mark.parametrize("algorithm", ["d-rtrl", "es-d-rtrl"])
def test_readout_of_the_old_state_without_memory_is_exact(algorithm, tmp_path):
    """Nothing is remembered, so both rules (ES-D-RTRL with decay 0) equal BPTT; the
    readout's path from the old state is all δ⁻."""
    import memoryless_reads_old as m

    params = m.init_params(jax.random.PRNGKey(0))
    xs, ys, mask = _data(m.model, 3)
    bptt = bptt_gradient(m.model, params, xs, ys, mask)
    ref, _ = rules_gradient(m.model, params, xs, ys, mask, algorithm=algorithm, decay=0.0,
                            groups=[{"states": ["v"]}], state_names=["v"])
    _close(ref, bptt, f"reference {algorithm} vs BPTT")
    got = _compiled_gradient("memoryless_reads_old", algorithm, 0.0, xs, ys, mask, tmp_path)
    _close(got, bptt, f"{algorithm} vs BPTT")


@pytest.mark.parametrize("algorithm", ["d-rtrl", "es-d-rtrl"])
def test_a_later_layer_reading_a_pre_reset_spike(algorithm, tmp_path):
    """Layer 2 reads layer 1's spike from before its reset: layer 1's weight reaches the
    loss through layer 2 within the step (its direct gradient holds only layer 1's new
    state) and layer 1's old state reaches it through that spike (δ⁻)."""
    import two_layer_pre_reset as m

    params = m.init_params(jax.random.PRNGKey(0))
    xs, ys, mask = _data(m.model, 4)
    got = _compiled_gradient("two_layer_pre_reset", algorithm, 0.7, xs, ys, mask, tmp_path)
    ref, _ = rules_gradient(m.model, params, xs, ys, mask, algorithm=algorithm, decay=0.7,
                            groups=[{"states": ["v1"]}, {"states": ["v2"]}],
                            state_names=["v1", "v2"])
    assert np.abs(ref["w1"]).max() > 1e-4  # layer 1 learns through the pre-reset spike
    _close(got, ref, f"{algorithm} vs reference")


@pytest.mark.parametrize("name, states", [("conv_reset_before_read", ["v"]),
                                          ("fused_gates_read_before_update", ["c", "h"])])
def test_es_d_rtrl_with_the_second_signal_on_convolution_and_fused_gates(name, states, tmp_path):
    """δ⁻ with ES-D-RTRL's previous factors on a convolution (kernel cotangent of
    conv(εx_{t-1}, ·)) and on fused gates (δ⁻ spread over the columns) equals the
    reference; (D-RTRL == BPTT on both is in tests/test_idioms.py)."""
    from idioms import IDIOMS

    model = IDIOMS[name]()
    rng = np.random.default_rng(5)
    xs = (rng.random((T,) + tuple(model.input.shape)) < 0.5).astype(np.float32)
    ys = rng.integers(0, 3, (T,) + tuple(model.target.shape)).astype(np.int32)
    mask = np.ones(T, np.float32)
    path = str(tmp_path / "m.vmfb")
    tracec.compile(model, algorithm="es-d-rtrl", decay=0.7, optimizer="sgd", lr=1.0,
                   update_every=T).save(path)
    learner = tracec.runtime.load(path)
    before = learner.params
    learner.train_sequence(xs, ys, mask)
    got = {k: before[k] - v for k, v in learner.params.items()}
    ref, _ = rules_gradient(model, model.init_params(jax.random.PRNGKey(0)), xs, ys, mask,
                            algorithm="es-d-rtrl", decay=0.7, groups=[{"states": states}],
                            state_names=states)
    _close(got, ref, f"{name} es-d-rtrl vs reference")
