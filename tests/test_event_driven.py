"""Relations fed by spikes, event-driven (event-driven-relations): the binary computes
what the model says with either form, and each form runs when it should: the
event-driven one on steps where every batch row has at most C nonzero entries, the dense
one otherwise. The oracle is the model's own JAX step on the binary's weights."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

B, N, H = 4, 16, 8
CAPACITY = 0.25  # 4 slots of 16 inputs; 2 of 8 hidden neurons

MODEL = textwrap.dedent(f'''
    import jax
    import jax.numpy as jnp
    import tracec

    B, N, H = {B}, {N}, {H}

    def init_params(key):
        k = jax.random.split(key, 4)
        return {{"w_in": jax.random.normal(k[0], (N, H)), "w_x": 0.1 * jax.random.normal(k[1], (N, H)),
                "w_rec": 0.5 * jax.random.normal(k[2], (H, H)), "w_out": jax.random.normal(k[3], (H, 3))}}

    def init_state(batch):
        return {{"v": jnp.zeros((batch, H)), "z": jnp.zeros((batch, H))}}

    def step(p, s, x):
        z_in = tracec.spike(x - 1.0)                      # a spike tensor: event-driven
        v = 0.8 * s["v"] + z_in @ p["w_in"] + s["z"] @ p["w_rec"] + x @ p["w_x"]  # x: dense
        z = tracec.spike(v - 1.0)
        v = v - z
        return {{"v": v, "z": z}}, z @ p["w_out"]

    def loss(y, target):
        return jnp.mean((y - target) ** 2)

    model = tracec.Model(init_params=init_params, init_state=init_state, step=step, loss=loss,
                         input=jax.ShapeDtypeStruct((B, N), jnp.float32),
                         target=jax.ShapeDtypeStruct((B, 3), jnp.float32))
''')


def _inputs(rng, T, active):
    """``T`` steps of inputs with exactly ``active`` inputs above threshold per row
    (value 2.0), never input ``N - 1``."""
    xs = np.zeros((T, B, N), np.float32)
    for t in range(T):
        for b in range(B):
            xs[t, b, rng.choice(N - 1, size=active, replace=False)] = 2.0
    return xs


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import tracec
    from tracec.frontends.model_loader import load_model

    d = tmp_path_factory.mktemp("event")
    path = d / "model.py"
    path.write_text(MODEL)
    out = {}
    for mode in ("always", "never"):
        for alg in ("forward", "es-d-rtrl"):
            art = tracec.compile(str(path), algorithm=alg, event_driven=mode,
                                 event_capacity=CAPACITY, optimizer="adam", lr=1e-2)
            vmfb = str(d / f"{mode}-{alg}.vmfb")
            art.save(vmfb)
            out[(mode, alg)] = (vmfb, art.ir["iree-input"])
    model, _ = load_model(str(path))
    out["model.py"] = str(path)
    return out, model


def _jax_outputs(model, params, xs):
    import jax

    step = jax.jit(model.step)
    state, ys = model.init_state(B), []
    for x in xs:
        state, y = step(params, state, x)
        ys.append(np.asarray(y))
    return np.stack(ys)


def test_relations_fed_by_spikes_are_found(compiled):
    """The input's spikes, the carried spikes and the new spikes feed event-driven
    relations; the plain input's relation stays dense; ``auto`` leaves N < 1024 alone."""
    import tracec

    arts, _ = compiled
    forward_ir = arts[("always", "forward")][1].split('sym_name = "forward_sequence"')[0]
    forward_ir = forward_ir.split('sym_name = "forward"')[1]
    assert forward_ir.count('"stablehlo.if"') == 3
    assert forward_ir.count('"stablehlo.dot_general"') == 4  # 3 dense fallbacks + x @ w_x
    assert '"stablehlo.if"' not in arts[("never", "forward")][1]
    auto = tracec.compile(arts["model.py"], algorithm="forward", emit="iree-input")
    assert '"stablehlo.if"' not in auto.ir["iree-input"]


@pytest.mark.parametrize("active", [3, 10])
def test_both_forms_equal_the_jax_step(compiled, active):
    """3 active inputs per row fit the capacity (4): the event-driven form runs; 10 do
    not: the dense one runs. Either way the outputs are the JAX step's."""
    import tracec

    arts, model = compiled
    xs = _inputs(np.random.default_rng(active), 20, active)
    for mode in ("always", "never"):
        learner = tracec.runtime.load(arts[(mode, "forward")][0])
        want = _jax_outputs(model, dict(learner.params), xs)
        np.testing.assert_allclose(learner.forward_sequence(xs), want, rtol=1e-5, atol=1e-5)


def test_the_event_driven_form_runs_when_the_spikes_fit(compiled):
    """A NaN in the weights of an input that never fires tells the forms apart: the dense
    product multiplies it by 0 (NaN in the membrane), the event-driven one never reads
    it. So with few spikes the membrane stays finite (and the outputs equal JAX's with
    that row zeroed); with many, the dense fallback runs and the NaN comes through;
    never event-driven, it always does."""
    import tracec

    arts, model = compiled
    rng = np.random.default_rng(7)
    sparse, dense = _inputs(rng, 6, 3), _inputs(rng, 1, 10)
    for mode in ("always", "never"):
        learner = tracec.runtime.load(arts[(mode, "forward")][0])
        w_in = np.array(learner.params["w_in"])
        clean = dict(learner.params, w_in=w_in.copy())
        clean["w_in"][N - 1] = 0.0
        w_in[N - 1] = np.nan
        learner.set_params({"w_in": w_in})
        got = learner.forward_sequence(sparse)
        if mode == "always":
            assert np.isfinite(learner.state["v"]).all()
            np.testing.assert_allclose(got, _jax_outputs(model, clean, sparse), rtol=1e-5, atol=1e-5)
            learner.forward_sequence(dense)
        assert np.isnan(learner.state["v"]).all()


def test_training_is_the_same_with_either_form(compiled):
    """ES-D-RTRL with Adam over 30 steps, half of them sparse: the same losses and the
    same trained weights with and without the event-driven form."""
    import tracec

    arts, _ = compiled
    rng = np.random.default_rng(3)
    xs = np.concatenate([_inputs(rng, 15, 2), _inputs(rng, 15, 9)])
    ys = rng.standard_normal((30, B, 3)).astype(np.float32)
    initial = dict(tracec.runtime.load(arts[("never", "es-d-rtrl")][0]).params)
    runs = {}
    for mode in ("always", "never"):
        learner = tracec.runtime.load(arts[(mode, "es-d-rtrl")][0])
        losses = np.asarray(learner.train_sequence(xs, ys))
        runs[mode] = (losses, {k: np.array(v) for k, v in learner.params.items()})
    np.testing.assert_allclose(runs["always"][0], runs["never"][0], rtol=1e-5, atol=1e-6)
    for k, v in runs["never"][1].items():
        np.testing.assert_allclose(runs["always"][1][k], v, rtol=1e-5, atol=1e-6)
    assert not np.allclose(runs["never"][1]["w_in"], initial["w_in"])  # it did learn


@pytest.mark.parametrize("kw, match", [({"event_driven": "sometimes"}, "--event-driven"),
                                       ({"event_capacity": 0.0}, "--event-capacity"),
                                       ({"event_capacity": 1.5}, "--event-capacity")])
def test_bad_event_options_say_what_to_do(kw, match):
    import tracec

    with pytest.raises(tracec.TracecError, match=match):
        tracec.CompileOptions(**kw)


BOOL_MODEL = textwrap.dedent(f'''
    import jax
    import jax.numpy as jnp
    import tracec

    B, N, H = {B}, {N}, {H}

    def init_params(key):
        return {{"w": jax.random.normal(key, (N, H))}}

    def init_state(batch):
        return {{"v": jnp.zeros((batch, H))}}

    def step(p, s, x):                       # x: declared boolean, so spikes
        v = 0.9 * s["v"] + x.astype(jnp.float32) @ p["w"]
        return {{"v": v}}, v

    model = tracec.Model(init_params=init_params, init_state=init_state, step=step,
                         input=jax.ShapeDtypeStruct((B, N), jnp.bool_))
''')


def test_an_input_declared_boolean_is_event_driven(tmp_path):
    import tracec
    from tracec.frontends.model_loader import load_model

    path = tmp_path / "model.py"
    path.write_text(BOOL_MODEL)
    art = tracec.compile(str(path), event_driven="always", event_capacity=CAPACITY)
    forward_ir = art.ir["iree-input"].split('sym_name = "forward_sequence"')[0]
    assert forward_ir.split('sym_name = "forward"')[1].count('"stablehlo.if"') == 1
    art.save(str(tmp_path / "m.vmfb"))
    learner = tracec.runtime.load(str(tmp_path / "m.vmfb"))
    rng = np.random.default_rng(5)
    xs = np.concatenate([_inputs(rng, 5, 2), _inputs(rng, 5, 9)]) > 0  # fits, then not
    model, _ = load_model(str(path))
    np.testing.assert_allclose(learner.forward_sequence(xs),
                               _jax_outputs(model, dict(learner.params), xs), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target, given, runs", [("llvm-cpu", "auto", "auto"),
                                                 ("cuda", "auto", "never"),
                                                 ("vulkan", "auto", "never"),
                                                 ("cuda", "always", "always")])
def test_auto_is_for_the_cpu_where_it_was_measured(target, given, runs):
    import tracec
    from tracec.driver import stage_passes

    passes = stage_passes(tracec.CompileOptions(target=target, event_driven=given), "iree-input")
    (event,) = [p for p in passes if p.name == "event-driven-relations"]
    assert event.mode == runs
