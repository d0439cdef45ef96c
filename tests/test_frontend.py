"""The JAX frontend: spike/stop_gradient composites, surrogate gradients, Model lowering."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracec
from tracec.diagnostics import TracecError

X = jnp.linspace(-3.0, 3.0, 61, dtype=jnp.float32)


def _reference(name, x, a):
    """The formulas of docs/design.md section 2, written out independently in numpy."""
    x = np.asarray(x, np.float64)
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-a * x))
        return a * s * (1 - s)
    if name == "fast-sigmoid":
        return 1 / (1 + a * np.abs(x)) ** 2
    if name == "triangle":
        return np.maximum(0, 1 - np.abs(x) / a) / a
    if name == "arctan":
        return (a / 2) / (1 + (math.pi * a * x / 2) ** 2)
    if name == "gaussian":
        return np.exp(-x ** 2 / (2 * a ** 2)) / (math.sqrt(2 * math.pi) * a)
    raise KeyError(name)


@pytest.mark.parametrize("surrogate", sorted(tracec.SURROGATES))
@pytest.mark.parametrize("alpha", [0.5, 2.0, 4.0])
def test_surrogate_gradients_match_design_formulas(surrogate, alpha):
    grad = jax.vmap(jax.grad(lambda v: tracec.spike(v, surrogate, alpha)))(X)
    np.testing.assert_allclose(grad, _reference(surrogate, X, alpha), rtol=1e-5, atol=1e-7)


def test_spike_forward_is_heaviside_strictly_positive():
    out = tracec.spike(jnp.array([-1.0, 0.0, 1e-7, 2.0]))
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_spike_lowers_to_composite_with_attributes():
    text = jax.jit(lambda v: tracec.spike(v, "triangle", 0.5)).lower(X).as_text()
    assert 'stablehlo.composite "tracec.spike"' in text
    assert 'surrogate = "triangle"' in text and "alpha = 5.000000e-01" in text


def test_stop_gradient_survives_lowering_and_blocks_gradients():
    f = lambda v: jnp.sum(tracec.stop_gradient(v) * v)
    assert 'stablehlo.composite "tracec.stop_gradient"' in jax.jit(f).lower(X).as_text()
    np.testing.assert_allclose(jax.grad(f)(X), X)  # d/dv (sg(v) * v) = sg(v)


def test_jax_stop_gradient_survives_while_tracec_lowers_a_model():
    """A step's jax.lax.stop_gradient (a detached reset) reaches the passes as the
    stop-gradient composite; outside tracec's lowering, and after an error inside it,
    JAX lowers stop_gradient as it always does."""
    import tracec.driver as driver
    from idioms import IDIOMS
    from tracec.frontends.jax_frontend import stop_gradients_survive

    art = driver.compile(IDIOMS["detached_reset"](), emit="stablehlo", use_cache=False)
    assert 'name = "tracec.stop_gradient"' in art.ir["stablehlo"]
    plain = lambda v: jnp.sum(jax.lax.stop_gradient(v) * v)
    assert "composite" not in jax.jit(plain).lower(X).as_text()
    with pytest.raises(ZeroDivisionError):
        with stop_gradients_survive():
            assert "tracec.stop_gradient" in jax.jit(lambda v: plain(v)).lower(X).as_text()
            1 / 0
    assert "composite" not in jax.jit(lambda v: plain(v)).lower(X).as_text()


def test_loss_keeps_its_own_stop_gradient_and_drops_log_softmax_shift():
    """In the loss, the user's jax.lax.stop_gradient (a detached weight) reaches the passes
    as the stop-gradient composite; the one jax.nn.log_softmax applies to its maximum
    (no gradient flows through it anyway) lowers to nothing, as JAX lowers it."""
    import tracec.driver as driver
    from idioms import IDIOMS

    def loss_function(model):
        text = driver.compile(model, emit="stablehlo", use_cache=False).ir["stablehlo"]
        start = text.index('sym_name = "loss"')
        end = text.find('sym_name = "', start + 20)
        return text[start:end if end > 0 else len(text)]

    detached = loss_function(IDIOMS["detached_loss_weight"]())
    plain = loss_function(IDIOMS["detached_reset"]())  # the same cross-entropy, no weight
    assert detached.count('name = "tracec.stop_gradient"') == 1
    assert "tracec.stop_gradient" not in plain
    assert "stablehlo.reduce" in plain and "stablehlo.maximum" in plain  # the max is there


def test_own_derivative_rule_in_the_loss_is_kept_or_a_warning():
    """A derivative rule of the model's own in the loss (jax.custom_jvp) reaches the passes
    as a tracec.custom_derivative composite when it acts element by element on one array
    (its gradient is checked against jax.grad by test_idioms.py's own_rule_in_loss); one
    of two arguments cannot be kept: a warning names its line. JAX's own rules
    (jax.nn.relu) are the functions' derivatives: no composite, no warning."""
    import tracec.driver as driver
    from idioms import IDIOMS, _model

    @jax.custom_jvp
    def clip_to(x, limit):
        return jnp.clip(x, -limit, limit)

    @clip_to.defjvp
    def _clip_to_jvp(primals, tangents):
        return clip_to(*primals), tangents[0]

    step = IDIOMS["detached_reset"]().step

    def compiled(f):
        loss = lambda out, target: -jnp.mean(  # noqa: E731
            jax.nn.log_softmax(f(out))[jnp.arange(out.shape[0]), target])
        return driver.compile(_model(step, loss=loss), emit="stablehlo", use_cache=False)

    kept = driver.compile(IDIOMS["own_rule_in_loss"](), emit="stablehlo", use_cache=False)
    assert kept.warnings == [] and 'name = "tracec.custom_derivative"' in kept.ir["stablehlo"]
    two = compiled(lambda out: clip_to(out, 0.5))
    assert len(two.warnings) == 1, two.warnings
    assert "custom_jvp rule of clip_to in the loss is not used" in two.warnings[0]
    assert "test_frontend.py:" in two.warnings[0]
    assert "tracec.custom_derivative" not in two.ir["stablehlo"]
    relu = compiled(jax.nn.relu)
    assert relu.warnings == [] and "tracec.custom_derivative" not in relu.ir["stablehlo"]


def _with_superspike(primal):
    """``primal`` under a custom_jvp whose derivative is SuperSpike's."""
    @jax.custom_jvp
    def f(v):
        return primal(v)

    @f.defjvp
    def _jvp(primals, tangents):
        (v,), (t,) = primals, tangents
        return f(v), t / (1.0 + 25.0 * jnp.abs(v)) ** 2

    return f


@jax.custom_jvp
def _sum_jvp_step(v):
    return (v > 0).astype(v.dtype)


@_sum_jvp_step.defjvp
def _sum_jvp_step_jvp(primals, tangents):
    (v,), (t,) = primals, tangents
    return _sum_jvp_step(v), jnp.broadcast_to(jnp.sum(t), v.shape)


def test_custom_derivative_heaviside_keeps_its_derivative_while_tracec_lowers_a_model():
    """A Heaviside under the model's own jax.custom_jvp or jax.custom_vjp reaches the passes as a spike
    whose second result is the user's derivative, with no default-surrogate warning;
    a smooth function under the model's own rule as a tracec.custom_derivative carrying
    it; JAX's own rules (jax.nn.relu) and one whose jvp mixes elements lower as JAX
    lowers them; outside tracec's lowering, and after an error inside it, JAX's rule is
    back."""
    import tracec.driver as driver
    from idioms import IDIOMS, _superspike, _vjp_spike
    from tracec.frontends.jax_frontend import custom_surrogates_survive

    art = driver.compile(IDIOMS["custom_jvp_surrogate"](), algorithm="d-rtrl", emit="tracec",
                         use_cache=False)
    spikes = [line for line in art.ir["stablehlo"].splitlines()
              if '"stablehlo.composite"' in line and 'name = "tracec.spike"' in line]
    assert len(spikes) == 2 and all('surrogate = "custom"' in line for line in spikes), spikes
    assert all("-> (tensor<4x8xf32>, tensor<4x8xf32>)" in line for line in spikes), spikes
    assert not any("Heaviside" in w for w in art.warnings), art.warnings

    with custom_surrogates_survive():
        assert "tracec.spike" in jax.jit(lambda v: _superspike(v)).lower(X).as_text()
        assert "tracec.spike" in jax.jit(lambda v: _vjp_spike(v)).lower(X).as_text()
        for primal in (lambda v: jnp.heaviside(v, 1.0), lambda v: jnp.array(v >= 0.0, dtype=v.dtype),
                       lambda v: jnp.floor(jnp.clip(v, 0.0, 1.0))):
            assert "tracec.spike" in jax.jit(lambda v: _with_superspike(primal)(v)).lower(X).as_text()
        for left_alone in (jax.nn.relu, _sum_jvp_step):
            assert "composite" not in jax.jit(lambda v: left_alone(v)).lower(X).as_text()
        for smooth in (_with_superspike(lambda v: jnp.where(v > 0, v, 0.0)),
                       _with_superspike(lambda v: jnp.where(v != v, 0.0, v))):
            text = jax.jit(lambda v: smooth(v)).lower(X).as_text()
            assert "tracec.custom_derivative" in text and "tracec.spike" not in text
    with pytest.raises(ZeroDivisionError):
        with custom_surrogates_survive():
            1 / 0
    assert "composite" not in jax.jit(lambda v: _superspike(v)).lower(X).as_text()
    assert "composite" not in jax.jit(lambda v: _vjp_spike(v)).lower(X).as_text()


@jax.custom_jvp
def _two_input_step(v, th):
    return (v > th).astype(v.dtype)


@_two_input_step.defjvp
def _two_input_step_jvp(primals, tangents):
    (v, th), (tv, tth) = primals, tangents
    return _two_input_step(v, th), (tv - tth) / (1.0 + 5.0 * jnp.abs(v - th)) ** 2


def test_a_surrogate_tracec_cannot_keep_is_a_warning_that_says_why():
    """A custom_jvp step of two arguments is lowered as JAX lowers it; the warning names
    its line and says why its surrogate is not used, besides the default-surrogate one."""
    import tracec.driver as driver
    from idioms import IDIOMS, _model, _readout

    def step(p, s, x):
        v = 0.9 * s["v"] + x @ p["w_in"] + p["b"]
        z = _two_input_step(v, 1.0)
        return {"v": v - z}, _readout(p, v, z)

    art = driver.compile(_model(step), algorithm="d-rtrl", emit="tracec", use_cache=False)
    line = _two_input_step.fun.__code__.co_firstlineno + 2  # decorator, def, return
    notes = [w for w in art.warnings if "surrogate of this custom_jvp is not used" in w]
    assert len(notes) == 1 and notes[0].startswith(f"tests/test_frontend.py:{line}:"), art.warnings
    assert "several inputs" in notes[0]
    assert any("bare Heaviside" in w for w in art.warnings)
    kept = driver.compile(IDIOMS["custom_jvp_surrogate"](), algorithm="d-rtrl", emit="tracec",
                          use_cache=False)
    assert not kept.warnings


def test_bad_surrogate_is_a_clear_error():
    with pytest.raises(TracecError, match="unknown surrogate 'relu'"):
        tracec.spike(X, "relu")
    with pytest.raises(TracecError, match="alpha must be a positive number"):
        tracec.spike(X, "sigmoid", -1.0)


def test_model_lowering_names_and_roles():
    from tracec.frontends.assemble import assemble
    from tracec.frontends.lower_jax import lower_model
    from tracec.frontends.model_loader import load_model
    from tracec.frontends.stablehlo_io import print_generic

    model, name = load_model("examples/lif2.py")
    assert name == "model"
    lowered = lower_model(model, seed=3, model_file="examples/lif2.py")
    assert [s.name for s in lowered.params] == ["l1/b", "l1/w_in", "l1/w_rec", "l2/b", "l2/w_in",
                                               "l2/w_rec", "out/w"]
    assert [s.name for s in lowered.state] == ["l1/v", "l1/z", "l2/v", "l2/z", "out/y"]
    ref = model.init_params(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(lowered.param_values[1], ref["l1"]["w_in"])
    text = print_generic(assemble(lowered))
    assert 'tracec.role = "param", tracec.name = "l1/w_in"' in text
    assert '"stablehlo.composite"' in text and 'surrogate = "sigmoid"' in text


def test_user_ops_keep_user_locations():
    """No op that came from a line of the model ends up with loc(unknown)."""
    from xdsl.dialects.builtin import FileLineColLoc

    import tracec.driver as driver

    art = driver.compile("examples/lif2.py", emit="tracec", use_cache=False)
    from tracec.frontends.stablehlo_io import parse_generic

    module = parse_generic(art.ir["tracec"])
    checked = 0
    for op in module.walk():
        if op.name in ("stablehlo.dot_general", "stablehlo.composite", "stablehlo.multiply"):
            assert isinstance(op.location, FileLineColLoc), op
            assert op.location.filename.data == "examples/lif2.py"
            checked += 1
    assert checked >= 10


def test_loss_is_lowered_next_to_the_step():
    """`@loss(outputs..., target)` is in the module and computes the model's loss."""
    import iree.compiler as ic
    import iree.runtime as rt
    from xdsl.dialects import func
    from xdsl.dialects.builtin import StringAttr

    import tracec.driver as driver
    from tracec.frontends.stablehlo_io import print_generic

    art = driver.compile("examples/lif2.py", emit="stablehlo", keep_module=True, use_cache=False)
    module = art.module
    fns = {f.sym_name.data: f for f in module.ops if isinstance(f, func.FuncOp)}
    assert "loss" in fns and not any(n.startswith("loss.") for n in fns)  # helpers inlined
    assert 'tracec.role = "target"' in print_generic(module)
    for name, f in fns.items():
        if name != "loss":
            f.detach()
    fns["loss"].sym_visibility = StringAttr("public")
    vm = ic.compile_str(print_generic(module), target_backends=["llvm-cpu"], input_type="stablehlo")
    ctx = rt.SystemContext(config=rt.Config("local-sync"))
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vm))
    rng = np.random.default_rng(0)
    out = rng.normal(size=(32, 10)).astype(np.float32)
    target = rng.integers(0, 10, 32).astype(np.int32)
    import sys

    sys.path.insert(0, "examples")
    import lif2

    got = ctx.modules.module.loss(out, target).to_host()
    np.testing.assert_allclose(got, lif2.loss(out, target), rtol=1e-6)
