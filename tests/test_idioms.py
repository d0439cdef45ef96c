"""Ordinary JAX idioms learn the exact gradient: each model of tests/idioms.py is one
neuron-intrinsic layer, so tracec's D-RTRL after T steps of SGD(lr=1, update-every=T)
must equal minus jax.grad of Σ_t m_t L_t through time (BPTT)."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES
from idioms import IDIOMS
from reference_rules import bptt_gradient

T = 7


def _draw(rng, spec, steps=T):
    """``steps`` steps of data for one spec or a pytree of specs (several streams)."""
    if isinstance(spec, dict):
        return {k: _draw(rng, v, steps) for k, v in spec.items()}
    shape = (steps,) + tuple(spec.shape)
    if np.dtype(spec.dtype).kind == "i":
        return rng.integers(0, 3, shape).astype(spec.dtype)
    return (rng.random(shape) < 0.5).astype(np.float32)


def _data(model, seed, steps=T):
    rng = np.random.default_rng(seed)
    mask = (rng.random(steps) < 0.8).astype(np.float32)
    return _draw(rng, model.input, steps), _draw(rng, model.target, steps), mask


def _learns_bptt(learner, model, name, data):
    """One train_sequence with SGD(lr=1) over ``data`` moves each parameter by minus
    jax.grad of Σ_t m_t L_t through time."""
    xs, targets, mask = data
    before = learner.params
    learner.train_sequence(xs, targets, mask)
    after = learner.params
    want = bptt_gradient(model, model.init_params(jax.random.PRNGKey(0)), xs, targets, mask)
    assert set(want) == set(before)
    for k, g in want.items():
        scale = max(1e-3, float(np.abs(g).max()))
        np.testing.assert_allclose(before[k] - after[k], g, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{name}: {k}")


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_idiom_learns_the_bptt_gradient(name, tmp_path):
    model = IDIOMS[name]()
    path = str(tmp_path / "m.vmfb")
    tracec.compile(model, algorithm="d-rtrl", optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    _learns_bptt(learner, model, name, _data(model, sum(map(ord, name))))


@pytest.mark.parametrize("name,per_row,parts", [
    ("einsum_hi", {"w_in"}, 1), ("min_gru", {"w_in", "w_z"}, 1), ("min_gru", {"w_in", "w_z"}, 2),
    ("embedding", {"w_in"}, 1), ("dale", set(), 1)])
def test_gradient_kept_per_batch_row_learns_the_bptt_gradient(name, per_row, parts, tmp_path,
                                                              monkeypatch):
    """insert-eligibility-traces' ``row_gradients`` (off by default): a dense weight's
    accumulator laid out as its trace, ``[M, B, I]``, summed over the batch when the
    optimizer runs (in 2 parts: ``apply_update`` sums the parts' rows). The weight stored
    [M, I] (einsum_hi) or [I, M]; a gathered relation (embedding) and a weight used
    through a transform (dale: abs(W) * sign) keep the contracted form."""
    import tracec.options
    monkeypatch.setattr(tracec.options, "ROW_GRADIENTS", True)
    model = IDIOMS[name]()
    path = str(tmp_path / "m.vmfb")
    art = tracec.compile(model, algorithm="d-rtrl", optimizer="sgd", lr=1.0, update_every=T,
                         batch_shards=parts, use_cache=False)
    art.save(path)
    learner = tracec.runtime.load(path)
    params = {p["name"]: p["shape"] for p in learner.manifest["params"]}
    rows = [a for a in learner.manifest["accumulators"] if "batch_rows" in a]
    assert {a["name"] for a in rows} == per_row
    for a in rows:  # [M, B, I], the parameter once summed over axis 1 and permuted
        M, _, I = a["shape"]
        assert params[a["name"]] == ([I, M] if a["batch_rows"] == [1, 0] else [M, I]), a
    _learns_bptt(learner, model, name, _data(model, sum(map(ord, name))))


def test_streams_are_packed_and_checked_by_the_runtime(tmp_path):
    """A dict input is packed by the runtime; a missing stream, a wrong shape or an
    integer too large for the packed float32 tensor is a clear error."""
    model = IDIOMS["two_streams"]()
    path = str(tmp_path / "m.vmfb")
    tracec.compile(model, algorithm="forward").save(path)
    learner = tracec.runtime.load(path)
    leaves = learner.manifest["source"]["input_leaves"]
    assert [leaf["name"] for leaf in leaves] == ["gain", "spikes"]
    rng = np.random.default_rng(0)
    x = {"spikes": (rng.random((4, 6)) < 0.5).astype(np.float32),
         "gain": rng.random(4).astype(np.float32)}
    y = learner.forward(x)
    learner.reset()
    assert np.array_equal(learner.forward({"gain": x["gain"], "spikes": x["spikes"]}), y)
    with pytest.raises(tracec.TracecError, match="missing spikes"):
        learner.forward({"gain": x["gain"]})
    with pytest.raises(tracec.TracecError, match="stream 'spikes' has shape"):
        learner.forward({"gain": x["gain"], "spikes": x["spikes"][:, :3]})
    ys = learner.forward_sequence({"gain": np.stack([x["gain"]] * 3),
                                   "spikes": np.stack([x["spikes"]] * 3)})
    assert ys.shape == (3, 4, 3)


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_idiom_compiles_under_es_d_rtrl(name):
    """Every idiom also compiles under ES-D-RTRL: the learning step with its factorised
    traces (the numbers of ES-D-RTRL are checked against the reference on the zoo and in
    tests/test_learning_signal.py; memoryless models against BPTT in tests/test_oracle.py)."""
    art = tracec.compile(IDIOMS[name](), algorithm="es-d-rtrl", decay=0.8, emit="tracec")
    traces = [t["name"] for t in art.manifest["traces"]]
    assert any(t.startswith(("ex/", "ef/", "ep/")) for t in traces), traces
    assert not any(t.startswith("eps/") for t in traces), traces
    assert '"tracec.input_trace"' in art.ir["tracec"] or '"tracec.neuron_trace"' in art.ir["tracec"]


@pytest.mark.parametrize("algorithm", ["es-d-rtrl", "d-rtrl"])
def test_own_surrogate_trains_like_tracec_spike_with_the_same_formula(algorithm, tmp_path):
    """Where no rule is exact (two recurrent layers, ES-D-RTRL's approximation), a spike
    written with the model's own jax.custom_jvp must train exactly as tracec.spike with
    the same surrogate formula (fast-sigmoid, 1/(1+α|x|)²): the bundled example both ways."""
    given = open(os.path.join(EXAMPLES, "lif2.py")).read()
    given = given.replace('surrogate="sigmoid", alpha=4.0', 'surrogate="fast-sigmoid", alpha=5.0')
    own = given.replace("import tracec\n", """import tracec


@jax.custom_jvp
def own_spike(x):
    return (x > 0).astype(x.dtype)


@own_spike.defjvp
def _own_spike_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return own_spike(x), t / (1.0 + 5.0 * jnp.abs(x)) ** 2
""", 1).replace('tracec.spike(v - V_TH, surrogate="fast-sigmoid", alpha=5.0)', "own_spike(v - V_TH)")
    assert "own_spike(v - V_TH)" in own and "fast-sigmoid" in given
    rng = np.random.default_rng(11)
    xs = (rng.random((T, 32, 40)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 10, (T, 32)).astype(np.int32)
    trained = {}
    for name, source in (("given", given), ("own", own)):
        (tmp_path / f"{name}.py").write_text(source)
        art = tracec.compile(str(tmp_path / f"{name}.py"), algorithm=algorithm, optimizer="sgd",
                             lr=1.0, update_every=T)
        assert not any("Heaviside" in w for w in art.warnings), art.warnings
        art.save(str(tmp_path / f"{name}.vmfb"))
        learner = tracec.runtime.load(str(tmp_path / f"{name}.vmfb"))
        before = learner.params
        learner.train_sequence(xs, targets, np.ones(T, np.float32))
        trained[name] = {k: before[k] - v for k, v in learner.params.items()}
    for k, change in trained["given"].items():
        assert np.abs(change).max() > 1e-4, k  # the gradient reaches every parameter
        np.testing.assert_allclose(trained["own"][k], change, rtol=1e-4,
                                   atol=1e-5 * float(np.abs(change).max()), err_msg=k)


@pytest.mark.parametrize("name,windowed", [
    ("einsum_hi", {"w_in"}), ("transposed", {"w_in"}), ("min_gru", {"w_in", "w_z"}),
    ("masked", set()), ("dale", set()), ("vmapped_per_sample", {"w_in"})])
def test_traces_carried_over_windows_learn_the_bptt_gradient(name, windowed, tmp_path,
                                                             monkeypatch):
    """window-param-traces (tracec.options.WINDOW_TRACES): over the unrolled steps of a
    quiet window (40 steps, the loop unrolled 4 times, one update at the end) a dense
    weight's trace is carried in closed form and its gradient added once per window.
    Held to BPTT like the per-step form; ``windowed`` names the weights whose traces the
    pass rewrote (used as stored or transposed; a weight used through a mask or abs(W)
    keeps the per-step form)."""
    import tracec.options
    from tracec.dialects.tracec import TraceGradOp

    monkeypatch.setattr(tracec.options, "WINDOW_TRACES", True)
    monkeypatch.setattr(tracec.options, "WINDOW_MIN_BYTES", 0)  # these traces are small
    steps = 40
    model = IDIOMS[name]()
    counts = {}

    def seen(stage, pass_name, ir):
        if pass_name in ("lower-scan-to-iree", "window-param-traces"):
            counts[pass_name] = ir.count(f'"{TraceGradOp.name}"')

    path = str(tmp_path / "m.vmfb")
    art = tracec.compile(model, algorithm="d-rtrl", optimizer="sgd", lr=1.0,
                         update_every=steps, scan_unroll=4, callback=seen)
    art.save(path)
    # each windowed weight: 4 gradients per window become 1 (one window body)
    assert counts["lower-scan-to-iree"] - counts["window-param-traces"] == 3 * len(windowed)
    learner = tracec.runtime.load(path)
    _learns_bptt(learner, model, name, _data(model, sum(map(ord, name)), steps))
