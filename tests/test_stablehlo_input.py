"""A StableHLO file with a step, a loss and init functions trains: examples/lif_step.mlir
(no role attributes: the documented defaults) compiled with D-RTRL learns exactly the
BPTT gradient of the same step written in JAX (one LIF layer with element-wise
recurrence and a readout without state), and compiles and trains under ES-D-RTRL.
Ill-formed files are one-line errors naming the file and what to add."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracec
import tracec.runtime
from reference_rules import bptt_gradient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIF_STEP = os.path.join(ROOT, "examples", "lif_step.mlir")
B, I, H, O = 2, 3, 4, 2
T = 6


def _spike(u):
    return tracec.spike(u, "fast-sigmoid", 5.0)


def _jax_model() -> tracec.Model:
    """examples/lif_step.mlir, written in JAX."""
    def step(p, s, x):
        v = s["v"]
        v_new = 0.9 * v + x @ p["w_in"] - _spike(v - 1.0)
        z = _spike(v_new - 1.0)
        return {"v": v_new}, (z + 0.1 * v_new) @ p["w_out"]

    return tracec.Model(
        init_params=lambda key: {"w_in": jnp.zeros((I, H)), "w_out": jnp.zeros((H, O))},
        init_state=lambda b: {"v": jnp.zeros((b, H))},
        step=step, loss=lambda y, t: jnp.mean((y - t) ** 2),
        input=jax.ShapeDtypeStruct((B, I), jnp.float32),
        target=jax.ShapeDtypeStruct((B, O), jnp.float32))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T, B, I)) < 0.6).astype(np.float32)
    targets = rng.normal(size=(T, B, O)).astype(np.float32)
    mask = np.array([1, 1, 0, 1, 1, 1], np.float32)
    return xs, targets, mask


@pytest.fixture(scope="module")
def d_rtrl(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lif_step") / "d.vmfb")
    tracec.compile(LIF_STEP, algorithm="d-rtrl", optimizer="sgd", lr=1.0,
                   update_every=T).save(path)
    return path


def test_defaults_name_the_roles(d_rtrl):
    m = tracec.runtime.load(d_rtrl).manifest
    assert [p["name"] for p in m["params"]] == ["w_in", "w_out"]
    assert [s["name"] for s in m["state"]] == ["v"]
    assert [o["name"] for o in m["outputs"]] == ["output"]
    assert m["source"]["file"].endswith("lif_step.mlir")
    assert m["source"]["target"] == {"name": "target", "shape": [B, O], "dtype": "float32"}


def test_forward_matches_the_jax_step(d_rtrl):
    learner = tracec.runtime.load(d_rtrl)
    model, params = _jax_model(), learner.params
    np.testing.assert_array_equal(params["w_in"][0], np.float32([1.00, -0.91, 0.75, 1.17]))
    xs, _, _ = _data()
    state, want = model.init_state(B), []
    for x in xs:
        state, y = model.step(params, state, x)
        want.append(y)
    np.testing.assert_allclose(learner.forward_sequence(xs), np.stack(want), rtol=1e-5, atol=1e-6)


def test_d_rtrl_learns_the_bptt_gradient(d_rtrl):
    """SGD(lr=1) updating once after T steps: the parameter change is minus the gradient
    of Σ_t m_t L_t through time, which D-RTRL computes exactly for this step."""
    learner = tracec.runtime.load(d_rtrl)
    xs, targets, mask = _data()
    before = learner.params
    losses = learner.train_sequence(xs, targets, mask)
    after = learner.params
    assert np.all(np.isfinite(losses))
    want = bptt_gradient(_jax_model(), before, xs, targets, mask)
    assert set(want) == {"w_in", "w_out"}
    assert np.abs(want["w_in"]).max() > 1e-3  # the surrogate carries gradient into w_in
    for k, g in want.items():
        scale = max(1e-3, float(np.abs(g).max()))
        np.testing.assert_allclose(before[k] - after[k], g, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=k)


def test_es_d_rtrl_trains(tmp_path):
    out = str(tmp_path / "es.vmfb")
    tracec.compile(LIF_STEP, algorithm="es-d-rtrl", optimizer="sgd", lr=0.05).save(out)
    learner = tracec.runtime.load(out)
    assert learner.manifest["algorithm"] == "es-d-rtrl"
    xs, targets, _ = _data(1)
    before = learner.params
    first = [learner.train_step(x, t)[0] for x, t in zip(xs, targets)]
    for _ in range(20):
        learner.reset()
        last = [learner.train_step(x, t)[0] for x, t in zip(xs, targets)]
    assert np.all(np.isfinite(first + last))
    assert any(not np.array_equal(before[k], learner.params[k]) for k in before)
    assert np.mean(last) < np.mean(first)


def test_a_step_exported_from_jax_trains_the_same(d_rtrl, tmp_path):
    """The JAX step as jax.jit(...).lower(...).as_text() writes it (public @main, no
    roles), with the example's @loss and init functions added, trains step for step
    like the hand-written file."""
    model = _jax_model()
    p = {"w_in": jnp.zeros((I, H)), "w_out": jnp.zeros((H, O))}
    text = jax.jit(model.step).lower(p, model.init_state(B), jnp.zeros((B, I))).as_text()
    example = _example()
    extra = example[example.index("// Per-step loss"):]
    path = _write(tmp_path, text[:text.rindex("}")] + extra + "}\n", "exported.mlir")
    out = str(tmp_path / "exported.vmfb")
    tracec.compile(path, algorithm="d-rtrl", optimizer="sgd", lr=1.0, update_every=T).save(out)
    exported, by_hand = tracec.runtime.load(out), tracec.runtime.load(d_rtrl)
    assert [p["name"] for p in exported.manifest["params"]] == ["param0", "param1"]
    xs, targets, mask = _data(2)
    np.testing.assert_allclose(exported.train_sequence(xs, targets, mask),
                               by_hand.train_sequence(xs, targets, mask), rtol=1e-6)
    for a, b in zip(("param0", "param1"), ("w_in", "w_out")):
        np.testing.assert_allclose(exported.params[a], by_hand.params[b], rtol=1e-6, atol=1e-7)


def _write(tmp_path, text, name="step.mlir"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _example():
    return open(LIF_STEP).read()


def _without_loss(text):
    start = text.index("// Per-step loss")
    end = text.index("// Initial parameters")
    return text[:start] + text[end:]


def _one_line(excinfo, *parts):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for p in parts:
        assert p in msg, msg
    return msg


def test_missing_loss_names_the_file_and_what_to_add(tmp_path):
    path = _write(tmp_path, _without_loss(_example()))
    tracec.compile(path, use_cache=False)  # forward needs no loss
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(path, algorithm="d-rtrl", use_cache=False)
    _one_line(e, "step.mlir has no @loss function", "--algorithm d-rtrl",
              "add func.func @loss(%out0: tensor<2x2xf32>, %target: tensor<...>) -> tensor<f32>")


LOSS = "func.func @loss(%y: tensor<2x2xf32>, %target: tensor<2x2xf32>) -> tensor<f32>"


@pytest.mark.parametrize("edits,parts", [
    # an extra argument
    ([(LOSS, LOSS.replace(")", ", %w: tensor<f32>)", 1))],
     ["@loss takes (tensor<2x2xf32>, tensor<2x2xf32>, tensor<f32>), but the step's outputs "
      "are (tensor<2x2xf32>)", "@loss(tensor<2x2xf32>, target) -> tensor<f32>"]),
    # not a scalar
    ([(LOSS, LOSS.replace("-> tensor<f32>", "-> tensor<2x2xf32>")),
      ("  return %mean : tensor<f32>", "  return %sq : tensor<2x2xf32>")],
     ["@loss returns (tensor<2x2xf32>), not one tensor<f32>"]),
    # the target first, marked as such
    ([(LOSS, LOSS.replace("%y: tensor<2x2xf32>", '%y: tensor<2x2xf32> {tracec.role = "target"}')
                 .replace("%target: tensor<2x2xf32>",
                          '%target: tensor<2x2xf32> {tracec.role = "output"}'))],
     ["the step's outputs in order, then the target"]),
])
def test_ill_formed_loss_is_one_line(tmp_path, edits, parts):
    text = _example()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = _write(tmp_path, text)
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(path, algorithm="es-d-rtrl", use_cache=False)
    _one_line(e, "step.mlir:", *parts)


def test_argument_roles_need_marks_or_init_functions(tmp_path):
    text = _example()
    no_init = text[:text.index("// Initial parameters")]
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(_write(tmp_path, no_init), use_cache=False)
    _one_line(e, "step.mlir:", "must mark every argument with tracec.role", "add @init_params()")
    # with the roles marked, the init functions may go (zeros)
    marked = (no_init.replace('{tracec.name = "w_in"}', '{tracec.role = "param", tracec.name = "w_in"}')
              .replace('{tracec.name = "w_out"}', '{tracec.role = "param", tracec.name = "w_out"}')
              .replace('{tracec.name = "v"}', '{tracec.role = "state", tracec.name = "v"}')
              .replace("%x: tensor<2x3xf32>)", '%x: tensor<2x3xf32> {tracec.role = "input"})'))
    out = str(tmp_path / "m.vmfb")
    tracec.compile(_write(tmp_path, marked, "marked.mlir"), use_cache=False).save(out)
    assert not tracec.runtime.load(out).params["w_in"].any()
    # an init function that does not match the arguments
    bad = text.replace("func.func @init_state() -> tensor<2x4xf32>", "func.func @init_state() -> tensor<2x3xf32>") \
              .replace("%v = stablehlo.constant dense<0.0> : tensor<2x4xf32>\n  return %v : tensor<2x4xf32>",
                       "%v = stablehlo.constant dense<0.0> : tensor<2x3xf32>\n  return %v : tensor<2x3xf32>")
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(_write(tmp_path, bad, "bad.mlir"), use_cache=False)
    _one_line(e, "bad.mlir:")


W_IN = "[[1.00, -0.91, 0.75, 1.17],\n                                    [-0.87, 0.59, 0.72, -1.03],\n                                    [1.66, 0.89, -1.29, 0.13]]"


def _as_torch_mlir_writes_it(text, w_in, key="torch_tensor_3_4_torch.float32"):
    """The example with constants as torch-mlir writes them: ``arith.constant``, the
    initial w_in as a ``dense_resource`` whose bytes are in the resource section (after
    MLIR's 4-byte alignment header), the step a public @main."""
    const = f"%w_in = stablehlo.constant dense<{W_IN}> : tensor<3x4xf32>"
    assert const in text and "func.func @step(" in text
    text = text.replace(const, f"%w_in = arith.constant dense_resource<{key}> : tensor<3x4xf32>")
    text = text.replace("func.func @step(", "func.func @main(")
    for name in ("%one", "%tau", "%tenth"):
        text = text.replace(f"{name} = stablehlo.constant", f"{name} = arith.constant")
    blob = (4).to_bytes(4, "little") + np.asarray(w_in, "<f4").tobytes()
    return text + ("{-#\n  dialect_resources: {\n    builtin: {\n"
                   f'      torch_tensor_3_4_torch.float32: "0x{blob.hex().upper()}"\n'
                   "    }\n  }\n#-}\n")


def test_torch_mlir_constants_are_read(d_rtrl, tmp_path):
    """arith.constant and dense_resource (torch-mlir's spelling of every constant) are
    stablehlo.constant with the data inline: the initial parameters are the resource's
    bytes and the step computes what the example computes with them."""
    w_in = np.arange(12, dtype=np.float32).reshape(I, H) / 10 - 0.5
    path = _write(tmp_path, _as_torch_mlir_writes_it(_example(), w_in))
    out = str(tmp_path / "m.vmfb")
    tracec.compile(path, use_cache=False).save(out)
    learner, reference = tracec.runtime.load(out), tracec.runtime.load(d_rtrl)
    np.testing.assert_array_equal(learner.params["w_in"], w_in)
    reference.set_params({"w_in": w_in})
    xs, _, _ = _data(3)
    np.testing.assert_allclose(learner.forward_sequence(xs), reference.forward_sequence(xs),
                               rtol=1e-6, atol=1e-7)
    ir = tracec.compile(path, emit="stablehlo", use_cache=False).ir["stablehlo"]
    assert "arith.constant" not in ir and "dense_resource" not in ir


def test_a_resource_without_data_is_one_line(tmp_path):
    text = _as_torch_mlir_writes_it(_example(), np.zeros((I, H)), key="__elided__")
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(_write(tmp_path, text), use_cache=False)
    _one_line(e, "step.mlir", "dense_resource<__elided__>", "not in the file")


def test_torch_dialect_is_refused_saying_how_to_export(tmp_path):
    """torch-mlir's other output types (here output_type="torch") are not StableHLO."""
    text = ("func.func @main(%arg0: !torch.vtensor<[2],f32>) -> !torch.vtensor<[2],f32> {\n"
            "  %none = torch.constant.none\n"
            "  return %arg0 : !torch.vtensor<[2],f32>\n"
            "}\n")
    with pytest.raises(tracec.TracecError) as e:
        tracec.compile(_write(tmp_path, text), use_cache=False)
    _one_line(e, "step.mlir:2:", "holds torch.constant.none, an op of the torch dialect, not "
              "StableHLO", 'output_type="stablehlo"')
