"""The Done-when of the foundation: compile the LIF example, run it, compare with JAX."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES, ROOT

sys.path.insert(0, EXAMPLES)
import lif2  # noqa: E402  (the example model, used as the JAX reference)

STEPS = 200


def _reference(xs, seed=0):
    params = lif2.init_params(jax.random.PRNGKey(seed))
    state = lif2.init_state(lif2.B)
    step = jax.jit(lif2.step)
    outs = []
    for x in xs:
        state, y = step(params, state, x)
        outs.append(np.asarray(y))
    return np.stack(outs), state


def _inputs(steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, lif2.B, lif2.N_IN)) < 0.2).astype(np.float32)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, lif2_vmfb):
    d = tmp_path_factory.mktemp("targets")
    paths = {"llvm-cpu": lif2_vmfb}
    for target, ext in (("vmvx", "vmfb"), ("xla", "xla")):
        p = str(d / f"lif2-{target}.{ext}")
        tracec.compile(os.path.join(EXAMPLES, "lif2.py"), algorithm="forward", target=target).save(p)
        paths[target] = p
    return paths


@pytest.mark.parametrize("target", ["llvm-cpu", "vmvx", "xla"])
def test_forward_matches_jax_over_200_steps(artifacts, target):
    xs = _inputs()
    ref, ref_state = _reference(xs)
    learner = tracec.runtime.load(artifacts[target])
    outs = np.stack([learner.forward(x) for x in xs])
    np.testing.assert_allclose(outs, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(learner.state["l2/v"], ref_state["l2"]["v"], rtol=1e-5, atol=1e-6)
    assert learner.steps_since_reset == STEPS


@pytest.mark.parametrize("target", ["llvm-cpu", "xla"])
def test_forward_sequence_matches_jax_and_continues_state(artifacts, target):
    xs = _inputs()
    ref, _ = _reference(xs)
    learner = tracec.runtime.load(artifacts[target])
    first = learner.forward_sequence(xs[:77])
    rest = learner.forward_sequence(xs[77:])  # continues from the state left on the device
    np.testing.assert_allclose(np.concatenate([first, rest]), ref, rtol=1e-5, atol=1e-6)
    learner.reset()
    np.testing.assert_allclose(learner.forward_sequence(xs[:10]), ref[:10], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", [{"scan_unroll": 1}, {"fuse_steps": False}])
def test_scan_unroll_runs_the_same_steps(artifacts, tmp_path, variant):
    """A forward-only artifact runs 8 steps per loop iteration by default, fused, and the
    rest one at a time: 77 + 123 steps give the outputs of one step per iteration, bit for
    bit; with --no-fuse-steps the outputs agree to float rounding. A learning rule's
    default is 4 steps apart, or 8 fused where its updates are 64 or more steps apart."""
    assert (tracec.CompileOptions().scan_unroll, tracec.CompileOptions().fuse_steps) == (8, True)
    online = tracec.CompileOptions(algorithm="es-d-rtrl")
    assert (online.scan_unroll, online.fuse_steps, online.fused_steps()) == (4, None, False)
    windowed = tracec.CompileOptions(algorithm="es-d-rtrl", update_every=64)
    assert windowed.scan_unroll == 8 and windowed.fused_steps() and windowed.quiet_windows()
    assert tracec.CompileOptions(algorithm="d-rtrl", update_every=63).scan_unroll == 4
    path = str(tmp_path / "variant.vmfb")
    tracec.compile(os.path.join(EXAMPLES, "lif2.py"), **variant).save(path)
    other, default = tracec.runtime.load(path), tracec.runtime.load(artifacts["llvm-cpu"])
    assert default.manifest["options"]["scan_unroll"] == 8
    assert default.manifest["options"]["fuse_steps"] is True
    xs = _inputs()
    for part in (xs[:77], xs[77:]):  # the second part continues from the first's state
        if "fuse_steps" in variant:
            np.testing.assert_allclose(default.forward_sequence(part), other.forward_sequence(part),
                                       rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(default.forward_sequence(part),
                                          other.forward_sequence(part))


def test_caching_allocator_runs_the_same_steps(lif2_vmfb):
    """The runtime's default device reuses freed buffers (IREE's caching allocator); the
    plain allocator gives the same outputs bit for bit, call after call; an allocator
    IREE does not know is a one-line error."""
    xs = _inputs()
    cached, plain = tracec.runtime.load(lif2_vmfb), tracec.runtime.load(lif2_vmfb, allocator=None)
    for part in (xs[:77], xs[77:], xs[:50]):
        np.testing.assert_array_equal(cached.forward_sequence(part), plain.forward_sequence(part))
    with pytest.raises(tracec.runtime.ArtifactError, match="allocator 'bogus'.*unrecognized"):
        tracec.runtime.load(lif2_vmfb, allocator="bogus")


def test_params_are_arguments_named_by_path(lif2_vmfb):
    learner = tracec.runtime.load(lif2_vmfb)
    ref = lif2.init_params(jax.random.PRNGKey(0))
    assert set(learner.params) == {"l1/b", "l1/w_in", "l1/w_rec", "l2/b", "l2/w_in", "l2/w_rec", "out/w"}
    np.testing.assert_array_equal(learner.params["l1/w_rec"], ref["l1"]["w_rec"])
    # Replacing a parameter changes the computation (it is not folded in as a constant).
    x = _inputs(1)[0]
    learner.set_params({"out/w": np.zeros_like(learner.params["out/w"])})
    assert np.all(learner.forward(x) == 0)
    with pytest.raises(tracec.TracecError, match="unknown parameter"):
        learner.set_params({"nope": 1})
    with pytest.raises(tracec.TracecError, match="has shape"):
        learner.set_params({"out/w": np.zeros((2, 2), np.float32)})


def test_seed_changes_initial_params(tmp_path):
    a = tracec.compile(os.path.join(EXAMPLES, "lif2.py"), emit="tracec", seed=1)
    b = tracec.compile(os.path.join(EXAMPLES, "lif2.py"), emit="tracec", seed=2)
    assert a.ir["stablehlo"] != b.ir["stablehlo"]
    assert a.manifest["options"]["seed"] == 1


def test_wrong_input_shape_and_dtype_are_one_line_errors(lif2_vmfb):
    learner = tracec.runtime.load(lif2_vmfb)
    with pytest.raises(tracec.TracecError) as e:
        learner.forward(np.zeros((3, 40), np.float32))
    assert str(e.value) == "error: input x has shape [3, 40], expected [32, 40]"
    with pytest.raises(tracec.TracecError, match="dtype int32, expected float32"):
        learner.forward(np.zeros((32, 40), np.int32))
    with pytest.raises(tracec.TracecError, match=r"expected \[T, 32, 40\]"):
        learner.forward_sequence(np.zeros((32, 40), np.float32))
    with pytest.raises(tracec.TracecError, match="compiled with --algorithm forward"):
        learner.train_step(np.zeros((32, 40), np.float32), np.zeros((32,), np.int32))


def test_checkpoint_resumes_exactly(lif2_vmfb, tmp_path):
    xs = _inputs(30)
    a = tracec.runtime.load(lif2_vmfb)
    a.forward_sequence(xs[:10])
    ck = str(tmp_path / "ck.npz")
    a.save_checkpoint(ck)
    rest_a = a.forward_sequence(xs[10:])
    b = tracec.runtime.load(lif2_vmfb)
    b.load_checkpoint(ck)
    assert b.steps_since_reset == 10
    np.testing.assert_array_equal(b.forward_sequence(xs[10:]), rest_a)


def test_runtime_imports_no_jax_from_repo_root(lif2_vmfb):
    code = ("import sys, tracec.runtime as r; l = r.load(sys.argv[1]); "
            "import numpy as np; l.forward(np.zeros((32, 40), np.float32)); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'xdsl')]; "
            "assert not bad, bad; print('ok')")
    for cwd in (ROOT, "/"):
        out = subprocess.run([sys.executable, "-c", code, lif2_vmfb], cwd=cwd,
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "empty"])
def test_damaged_artifacts_are_one_line_errors(lif2_vmfb, tmp_path, damage):
    data = open(lif2_vmfb, "rb").read()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        mid = len(data) // 2
        data = data[:64] + bytes(b ^ 0xFF for b in data[64:mid]) + data[mid:]
    elif damage == "foreign":
        data = b"\x7fELF" + data[4:200]
    else:
        data = b""
    bad = tmp_path / "bad.vmfb"
    bad.write_bytes(data)
    code = "import sys, tracec.runtime as r; r.load(sys.argv[1])"
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True)
    assert out.returncode != 0
    # Run through the CLI-style handler: the exception's message is one line.
    try:
        tracec.runtime.load(str(bad))
    except tracec.TracecError as e:
        assert "\n" not in str(e) and str(bad) in str(e)
    else:
        pytest.fail("a damaged artifact loaded")


@pytest.mark.parametrize("suffix", [".mlir", ".mlirbc"])
def test_stablehlo_file_input_round_trip(tmp_path, suffix):
    """`--emit stablehlo` output (any producer's StableHLO with roles) compiles again."""
    art = tracec.compile(os.path.join(EXAMPLES, "lif2.py"), emit="stablehlo")
    path = tmp_path / f"lif2{suffix}"
    if suffix == ".mlir":
        path.write_text(art.ir["stablehlo"])
    else:
        from iree.compiler import ir

        with ir.Context() as ctx:
            ctx.allow_unregistered_dialects = True
            module = ir.Module.parse(art.ir["stablehlo"])
            with open(path, "wb") as f:
                module.operation.write_bytecode(f)
    out = tmp_path / "m.vmfb"
    tracec.compile(str(path)).save(str(out))
    xs = _inputs(20)
    ref, _ = _reference(xs)
    learner = tracec.runtime.load(str(out))
    assert learner.manifest["source"]["file"].endswith(suffix)
    np.testing.assert_allclose(learner.forward_sequence(xs), ref, rtol=1e-5, atol=1e-6)


def test_stablehlo_file_without_roles_is_a_clear_error(tmp_path):
    path = tmp_path / "bare.mlir"
    path.write_text("func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
                    "  return %x : tensor<2xf32>\n}\n")
    with pytest.raises(tracec.TracecError, match=r"must mark every argument with .*tracec.role"):
        tracec.compile(str(path))
    bad = tmp_path / "broken.mlir"
    bad.write_text("func.func @main(%x: tensor<2xf32> {\n")
    with pytest.raises(tracec.TracecError, match="broken.mlir is not valid MLIR"):
        tracec.compile(str(bad))
