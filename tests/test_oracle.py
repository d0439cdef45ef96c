"""The BPTT oracle: random one-layer models (tests/model_grammar.py) learn the exact
gradient. For each drawn model tracec compiles D-RTRL (and, for memoryless models,
ES-D-RTRL with decay 0); after T steps of SGD(lr=1, update-every=T) the parameter change
must equal minus jax.grad of Σ_t m_t L_t through time, to 1e-4.

The backend is not what this tests, so models compile for the XLA target (the fastest
compile); each compile is shared by two data draws. Hypothesis profiles (tests/conftest.py):
``ci`` (the default, 100 models) and ``thorough`` (1000 models):
``pytest tests/test_oracle.py --hypothesis-profile thorough``.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracec
import tracec.runtime
from model_grammar import (LOSSES, NONLINEAR, READS, RELATIONS, RESETS, SPIKE_SPELLINGS, SURROGATES,
                           USER_SURROGATES, VOCAB, source)
from reference_rules import bptt_function

T = 6
WORST: dict = {"error": 0.0, "models": 0, "where": None}


@st.composite
def models(draw):
    S = draw(st.integers(1, 3))
    memoryless = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False
    coupling = [draw(st.sampled_from([0.0, 0.3, -0.4])) for _ in range(S)]
    input_to = [True] + [draw(st.booleans()) for _ in range(S - 1)]
    for a in range(1, S):  # every state gets something: the input or its neighbour
        if not input_to[a] and not coupling[a]:
            coupling[a] = 0.5
    return {
        "n_states": S,
        "relation": draw(st.sampled_from(RELATIONS)),
        "bias": draw(st.booleans()),
        "learned_decay": draw(st.booleans()),
        "learned_threshold": draw(st.booleans()),
        "memoryless": memoryless,
        "decay": draw(st.sampled_from([0.5, 0.8, 0.95])),
        "decays": [None] + [draw(st.sampled_from([0.6, 0.9])) for _ in range(S - 1)],
        "coupling": coupling,
        "input_to": input_to,
        "nonlinear": [draw(st.sampled_from(NONLINEAR)) for _ in range(S)],
        "surrogate": draw(st.sampled_from(SURROGATES)),
        "alpha": draw(st.sampled_from([1.0, 2.0, 4.0])),
        "spike_spelling": draw(st.sampled_from(SPIKE_SPELLINGS)),
        "user_surrogate": draw(st.sampled_from(USER_SURROGATES)),
        "reset": draw(st.sampled_from(RESETS)),
        "spike_feeds_state": draw(st.booleans()),
        "reads": draw(st.sampled_from(READS)),
        "loss": draw(st.sampled_from(LOSSES)),
        "streams": draw(st.booleans()),
    }


def _build(spec: dict, directory) -> tuple[object, str]:
    path = os.path.join(str(directory), "model.py")
    with open(path, "w") as f:
        f.write(source(spec))
    namespace: dict = {"__name__": "oracle_model"}
    exec(compile(open(path).read(), path, "exec"), namespace)
    return namespace["model"], path


def _data(model, spec, seed):
    rng = np.random.default_rng(seed)
    if spec["relation"] == "embedding":
        xs = rng.integers(0, VOCAB, (T,) + tuple(model.input.shape)).astype(np.int32)
    elif spec["streams"]:
        xs = {k: rng.normal(0.3, 1.0, (T,) + tuple(v.shape)).astype(np.float32)
              for k, v in model.input.items()}
    else:
        xs = rng.normal(0.3, 1.0, (T,) + tuple(model.input.shape)).astype(np.float32)
    if spec["loss"] == "mse":
        targets = rng.normal(size=(T,) + tuple(model.target.shape)).astype(np.float32)
    else:
        targets = rng.integers(0, 3, (T,) + tuple(model.target.shape)).astype(np.int32)
    mask = (rng.random(T) < 0.8).astype(np.float32)
    return xs, targets, mask


def _check(spec, model, path, algorithm, tmp_path):
    out = str(tmp_path / f"{algorithm}.xla")
    tracec.compile(path, algorithm=algorithm, decay=0.0, optimizer="sgd", lr=1.0,
                   update_every=T, target="xla").save(out)
    params = model.init_params(jax.random.PRNGKey(0))
    bptt = bptt_function(model)
    learner = tracec.runtime.load(out)
    initial = learner.params
    for seed in (1, 2):  # one compile, two data draws
        learner.set_params(initial)
        learner.reset()
        xs, targets, mask = _data(model, spec, seed)
        learner.train_sequence(xs, targets, mask)
        after = learner.params
        want = bptt(params, xs, targets, mask)
        assert set(want) == set(initial)
        for k, g in want.items():
            got = initial[k] - after[k]
            scale = max(1e-2, float(np.abs(g).max()))
            err = float(np.abs(got - g).max()) / scale
            if err > WORST["error"]:
                WORST.update(error=err, where=f"{algorithm} {k} {json.dumps(spec)}")
            np.testing.assert_allclose(got, g, rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=f"{algorithm} {k}\n{source(spec)}")


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
@given(spec=models())
def test_generated_models_learn_the_bptt_gradient(spec, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("oracle")
    model, path = _build(spec, tmp_path)
    _check(spec, model, path, "d-rtrl", tmp_path)
    if spec["memoryless"]:
        _check(spec, model, path, "es-d-rtrl", tmp_path)
    WORST["models"] += 1


def test_report_the_worst_error():
    """Runs after the property test (file order): the number of models checked and the
    worst error (shown with ``pytest -s``)."""
    if not WORST["models"]:
        return
    print(f"\noracle: {WORST['models']} generated models, worst relative error "
          f"{WORST['error']:.2e} ({WORST['where']})")
    assert WORST["error"] <= 1e-4
