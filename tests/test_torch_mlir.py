"""A LIF step written in PyTorch (examples/torch/lif.py) and exported to StableHLO with
torch-mlir (examples/torch/export.py, run in the torch venv) compiles with tracec as
torch-mlir writes it (a public @main with unnamed arguments, constants as arith.constant,
parameters frozen as dense_resource): its spikes, written (v > thr).float(), get the
default surrogate with tracec's warning at the PyTorch source line, D-RTRL and ES-D-RTRL
both lower the loss, and the compiled forward equals PyTorch's own on the same inputs.

Needs the torch venv (`make torch-venv`, or TRACEC_TORCH_PYTHON naming its python);
without it every test here skips and says so."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

import tracec.runtime
from conftest import ROOT, run_cli

TORCH_DIR = os.path.join(ROOT, "examples", "torch")
TORCH_PYTHON = os.environ.get("TRACEC_TORCH_PYTHON",
                              os.path.join(ROOT, ".venv-torch", "bin", "python"))
ALGORITHMS = ("es-d-rtrl", "d-rtrl")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the .mlir torch-mlir wrote, PyTorch's reference arrays)."""
    if not os.access(TORCH_PYTHON, os.X_OK):
        shown = os.path.relpath(TORCH_PYTHON, ROOT) if TORCH_PYTHON.startswith(ROOT) else TORCH_PYTHON
        pytest.skip(f"no torch venv ({shown} is absent): make torch-venv, or set "
                    "TRACEC_TORCH_PYTHON")
    out = tmp_path_factory.mktemp("torch_export")
    proc = subprocess.run([TORCH_PYTHON, os.path.join(TORCH_DIR, "export.py"), str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = str(out / "lif_torch.mlir")
    assert proc.stdout.strip() == path
    return path, dict(np.load(out / "reference.npz"))


@pytest.fixture(scope="module")
def compiled(exported, tmp_path_factory):
    """algorithm -> (artifact path, tracec's stderr); compiled once each, cached in a
    directory of this module's own."""
    path, _ = exported
    out = tmp_path_factory.mktemp("torch_vmfb")
    env = {"TRACEC_CACHE_DIR": str(out / "cache")}
    arts = {}
    for algorithm in ALGORITHMS:
        vmfb = str(out / f"{algorithm}.vmfb")
        proc = run_cli(path, "-o", vmfb, "--algorithm", algorithm, "--optimizer", "adam",
                       "--lr", "1e-2", env=env)
        assert proc.returncode == 0, proc.stderr
        arts[algorithm] = (vmfb, proc.stderr)
    return arts


def _line_of(text: str) -> int:
    lines = open(os.path.join(TORCH_DIR, "lif.py")).read().splitlines()
    found = [i + 1 for i, line in enumerate(lines) if text in line]
    assert len(found) == 1, (text, found)
    return found[0]


def test_the_export_is_torch_mlirs_own_form(exported):
    """What this file tests is torch-mlir's output as it comes, not a tidied copy."""
    text = open(exported[0]).read()
    assert "func.func @main(%arg0: tensor<32x10xf32>" in text
    assert "arith.constant" in text and "dense_resource<" in text
    assert "tracec.role" not in text and "tracec.spike" not in text


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_comparison_spikes_get_the_default_surrogate_and_a_warning(compiled, algorithm):
    stderr = compiled[algorithm][1]
    shown = os.path.join("examples", "torch", "lif.py")
    for spike in ("z_prev = (v > self.threshold).float()", "z = (v_new > self.threshold).float()"):
        assert (f"{shown}:{_line_of(spike)}: warning: a bare Heaviside (x > y converted to "
                "float) is differentiated with the default surrogate (sigmoid, alpha 4.0)") in stderr


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_roles_and_names(compiled, algorithm):
    m = tracec.runtime.load(compiled[algorithm][0]).manifest
    assert m["algorithm"] == algorithm
    assert [(p["name"], p["shape"]) for p in m["params"]] == [("w_in", [32, 10]), ("w_out", [3, 32])]
    assert [(s["name"], s["shape"]) for s in m["state"]] == [("v", [4, 32])]
    assert m["input"]["name"] == "x" and m["input"]["shape"] == [4, 10]
    assert [o["name"] for o in m["outputs"]] == ["output"]
    assert m["source"]["target"] == {"name": "target", "shape": [4, 3], "dtype": "float32"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_forward_equals_pytorchs(exported, compiled, algorithm):
    ref = exported[1]
    learner = tracec.runtime.load(compiled[algorithm][0])
    for name in ("w_in", "w_out"):  # @init_params: PyTorch's initial values, bit for bit
        np.testing.assert_array_equal(learner.params[name], ref[name])
    ys = learner.forward_sequence(ref["xs"])
    assert 0 < float(np.mean(ref["v"] > 1.0)) < 1  # some neurons spike, not all
    np.testing.assert_allclose(ys, ref["ys"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(learner.state["v"], ref["v"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_training_lowers_the_loss(exported, compiled, algorithm):
    xs = exported[1]["xs"]
    T, B, O = len(xs), 4, 3
    t = np.arange(T, dtype=np.float32)[:, None, None]
    targets = np.broadcast_to(np.sin(0.5 * t + np.arange(O)), (T, B, O)).astype(np.float32)
    learner = tracec.runtime.load(compiled[algorithm][0])
    before = learner.params
    epochs = []
    for _ in range(40):
        learner.reset()
        epochs.append(float(np.mean(learner.train_sequence(xs, targets))))
    assert np.all(np.isfinite(epochs))
    assert not np.array_equal(before["w_in"], learner.params["w_in"])  # through the surrogate
    assert np.mean(epochs[-5:]) < 0.5 * epochs[0], epochs
