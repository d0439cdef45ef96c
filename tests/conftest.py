"""Shared fixtures: compiled artifacts are cached per session (and by tracec's own
compile cache across sessions, under .cache/ in the repository)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
MODELS = os.path.join(ROOT, "tests", "models")

os.environ.setdefault("TRACEC_CACHE_DIR", os.path.join(ROOT, ".cache", "tracec"))

# Hypothesis profiles: `ci` (the default) and `thorough` for long runs on demand
# (`pytest --hypothesis-profile thorough`), e.g. 1000 generated models in test_oracle.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=100, derandomize=True, database=None)
_hypothesis_settings.register_profile("thorough", max_examples=1000, derandomize=True,
                                      database=None)
_hypothesis_settings.load_profile("ci")


def run_cli(*args, cwd=ROOT, input=None, prog="tracec", env=None):
    """Run a tracec command line in a fresh process; returns CompletedProcess."""
    exe = os.path.join(os.path.dirname(sys.executable), prog)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, input=input,
                          env=full_env, timeout=600)


@pytest.fixture(scope="session")
def lif2_vmfb(tmp_path_factory):
    import tracec

    path = str(tmp_path_factory.mktemp("art") / "lif2.vmfb")
    tracec.compile(os.path.join(EXAMPLES, "lif2.py"), algorithm="forward").save(path)
    return path


def zoo_module(name: str):
    """Import a model of examples/zoo; its helper ``common`` must be the zoo's, not a
    same-named module another test directory put in ``sys.modules`` first."""
    import sys

    zoo = os.path.join(EXAMPLES, "zoo")
    if zoo not in sys.path:
        sys.path.insert(0, zoo)
    common = sys.modules.get("common")
    if common is not None and os.path.dirname(os.path.abspath(common.__file__)) != zoo:
        del sys.modules["common"]
        sys.modules.pop(name, None)
    __import__(name)
    return sys.modules[name]
