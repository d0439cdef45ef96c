"""The runtime installs alone: ``pip install tracec`` (no extras) into a fresh venv gives
``tracec.runtime`` with IREE's runtime and numpy only, without jax, xDSL or IREE's
compiler, and it trains an artifact to the parameters the full install reaches; the
``tracec`` command there says in one line how to get the compiler."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES, ROOT

TRAIN = r"""
import importlib.util, json, sys
import numpy as np
import tracec.runtime
missing = [m for m in ("jax", "xdsl") if importlib.util.find_spec(m) is None]
compiler = importlib.util.find_spec("iree.compiler") is not None
learner = tracec.runtime.load(sys.argv[1])
data = np.load(sys.argv[2])
losses = learner.train_sequence(data["xs"], data["targets"])
print(json.dumps({"missing": missing, "iree_compiler": compiler,
                  "losses": [float(v) for v in losses],
                  "params": {k: np.asarray(v).ravel()[:64].tolist()
                             for k, v in learner.params.items()}}))
"""


def _source_copy(dest):
    """What a distribution of this checkout is built from (so the build writes nothing
    into the checkout)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("tracec", "runtime", "frontends", "passes"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(dest, name), ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), dest)


def test_runtime_installs_and_trains_without_the_compiler(tmp_path):
    src, venv = tmp_path / "src", tmp_path / "venv"
    _source_copy(str(src))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    install = subprocess.run([py, "-m", "pip", "install", "-q", str(src)],
                             capture_output=True, text=True)
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.skip(f"the package registry is not reachable: {install.stderr.strip()[-200:]}")
    assert install.returncode == 0, install.stderr[-2000:]

    path = str(tmp_path / "lif2.vmfb")
    tracec.compile(os.path.join(EXAMPLES, "lif2.py"), algorithm="es-d-rtrl",
                   optimizer="adam").save(path)
    rng = np.random.default_rng(0)
    learner = tracec.runtime.load(path)
    xs = (rng.random((6,) + tuple(learner.manifest["input"]["shape"])) < 0.3).astype(np.float32)
    targets = rng.integers(0, 10, (6,) + tuple(learner.manifest["source"]["target"]["shape"]))
    np.savez(tmp_path / "data.npz", xs=xs, targets=targets.astype(np.int32))
    want_losses = learner.train_sequence(xs, targets.astype(np.int32))

    run = subprocess.run([py, "-c", TRAIN, path, str(tmp_path / "data.npz")], cwd=str(tmp_path),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["missing"] == ["jax", "xdsl"] and not got["iree_compiler"]
    np.testing.assert_allclose(got["losses"], want_losses, rtol=1e-6, atol=1e-7)
    for k, v in learner.params.items():
        np.testing.assert_allclose(got["params"][k], np.asarray(v).ravel()[:64], rtol=1e-6,
                                   atol=1e-7, err_msg=k)

    cli = subprocess.run([str(venv / "bin" / "tracec"), os.path.join(EXAMPLES, "lif2.py"),
                          "-o", str(tmp_path / "x.vmfb")], capture_output=True, text=True)
    assert cli.returncode == 1 and not (tmp_path / "x.vmfb").exists()
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'tracec[compiler]'" in lines[0], cli.stderr
