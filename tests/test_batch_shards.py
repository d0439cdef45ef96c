"""Data parallelism over the batch (``--batch-shards N``): the parts of the batch, run
side by side and updated together, learn what the whole batch learns.

The oracle is the same model compiled for the whole batch: after the same calls, both
artifacts must give the same losses, outputs, state and parameters to float32 rounding
(the batch's sums are taken in another order). Models are generated (tests/model_grammar.py,
the BPTT oracle's grammar, drawn at a batch of 4) and the bundled two-layer example.
Models whose rows meet, or whose loss is not a mean or a sum over the batch, are refused
before anything is lowered.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model_grammar
import tracec
import tracec.runtime
from conftest import EXAMPLES, run_cli
from test_oracle import _data, models
from tracec.diagnostics import TracecError

T = 9


def _source(spec: dict, batch: int) -> str:
    """The grammar's model file at ``batch`` rows (the grammar's own batch is 3)."""
    saved, model_grammar.B = model_grammar.B, batch
    try:
        return model_grammar.source(spec)
    finally:
        model_grammar.B = saved


def _load_model(text: str, directory) -> tuple[object, str]:
    path = os.path.join(str(directory), "model.py")
    with open(path, "w") as f:
        f.write(text)
    namespace: dict = {"__name__": "sharded_model"}
    exec(compile(text, path, "exec"), namespace)
    return namespace["model"], path


def _pair(path: str, tmp, shards: int, **options):
    """The whole-batch learner and the data-parallel one, compiled alike."""
    learners = []
    os.makedirs(str(tmp), exist_ok=True)
    for n in (1, shards):
        out = os.path.join(str(tmp), f"b{n}.vmfb")
        tracec.compile(path, batch_shards=n, **options).save(out)
        learners.append(tracec.runtime.load(out))
    return learners


def _close(a, b, what: str, rtol: float = 2e-4) -> None:
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1e-3, float(np.abs(a).max())) if a.size else 1.0
    np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * scale, err_msg=what)


def _same_learning(whole, split, xs, targets, mask, cuts) -> None:
    """The same calls on both: ``train_sequence`` over the pieces ``cuts`` of the data
    (windows are cut anywhere), a ``train_step``, then the results compared."""
    lo = 0
    for hi in list(cuts) + [len(mask)]:
        sl = (lambda v: {k: a[lo:hi] for k, a in v.items()}) if isinstance(xs, dict) else \
             (lambda v: v[lo:hi])
        _close(whole.train_sequence(sl(xs), targets[lo:hi], mask[lo:hi]),
               split.train_sequence(sl(xs), targets[lo:hi], mask[lo:hi]), f"losses {lo}:{hi}")
        lo = hi
    one = (lambda v: {k: a[0] for k, a in v.items()}) if isinstance(xs, dict) else (lambda v: v[0])
    (lw, ow), (ls, os_) = whole.train_step(one(xs), targets[0]), split.train_step(one(xs), targets[0])
    _close(lw, ls, "train_step loss")
    _close(ow, os_, "train_step output")
    for k, v in whole.params.items():
        _close(v, split.params[k], f"parameter {k}")
    for k, v in whole.state.items():
        _close(v, split.state[k], f"state {k}")
    assert whole.steps_since_reset == split.steps_since_reset


@settings(deadline=None, max_examples=5,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=models(), algorithm=st.sampled_from(["d-rtrl", "es-d-rtrl"]),
       optimizer=st.sampled_from(["sgd", "adam"]), update_every=st.sampled_from([2, 3, 5]))
def test_generated_models_learn_as_the_whole_batch(spec, algorithm, optimizer, update_every,
                                                    tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    model, path = _load_model(_source(spec, 4), tmp)
    options = dict(algorithm=algorithm, optimizer=optimizer, lr=0.05, update_every=update_every)
    if spec["loss"] == "xent-arange":  # jnp.arange(B): the loss fixes the batch
        with pytest.raises(TracecError, match="batch_shards"):
            tracec.compile(path, batch_shards=2, **options)
        return
    whole, split = _pair(path, tmp, 2, **options)
    assert split.manifest["batch_shards"]["loss"] == "mean"
    xs, targets, mask = _data(model, spec, 1)
    xs2, targets2, mask2 = _data(model, spec, 2)
    cat = (lambda a, b: {k: np.concatenate([a[k], b[k]]) for k in a}) if isinstance(xs, dict) \
        else (lambda a, b: np.concatenate([a, b]))
    _same_learning(whole, split, cat(xs, xs2), np.concatenate([targets, targets2]),
                   np.concatenate([mask, mask2]), cuts=[1, 4, 9])


def test_two_layers_in_four_parts_checkpoint_and_forward(tmp_path):
    """The bundled example (two recurrent layers, Adam) in four parts of its batch of 32:
    forward_sequence, training over windows, and a checkpoint saved mid-run and resumed."""
    whole, split = _pair(os.path.join(EXAMPLES, "lif2.py"), tmp_path, 4,
                         algorithm="es-d-rtrl", optimizer="adam", lr=1e-2, update_every=7,
                         skip_masked_steps=True)
    assert len(split.parts) == 4 and split.parts[0].manifest["input"]["shape"] == [8, 40]
    assert "apply_update" in split.manifest["entries"]
    rng = np.random.default_rng(0)
    xs = rng.normal(0.5, 1.0, (3 * T, 32, 40)).astype(np.float32)
    ys = rng.integers(0, 10, (3 * T, 32)).astype(np.int32)
    mask = np.ones(3 * T, np.float32)
    mask[5:] = 0  # a long masked run goes through advance_sequence
    mask[-2:] = 1
    _close(whole.forward_sequence(xs[:4]), split.forward_sequence(xs[:4]), "forward_sequence")
    _close(whole.forward(xs[4]), split.forward(xs[4]), "forward")
    whole.reset()
    split.reset()
    _same_learning(whole, split, xs, ys, mask, cuts=[3, 10])
    ckpt = str(tmp_path / "split.npz")
    split.save_checkpoint(ckpt)
    after = split.train_sequence(xs[:T], ys[:T])
    params, state = split.params, split.state
    split.reset()
    split.train_sequence(xs[T:], ys[T:])  # moves everything on
    split.load_checkpoint(ckpt)
    np.testing.assert_array_equal(split.train_sequence(xs[:T], ys[:T]), after)
    for k, v in params.items():
        np.testing.assert_array_equal(split.params[k], v)
    with pytest.raises(TracecError, match="different model"):
        whole.load_checkpoint(ckpt)
    traces = split.traces
    assert all(v.shape[0] == 4 for v in traces.values())
    # Fewer threads than parts (each running its parts one after the other): the same
    # computation, bit for bit, with the parts put back in their order.
    for threads in (1, 3):
        fewer = tracec.runtime.load(str(tmp_path / "b4.vmfb"), threads=threads)
        assert fewer.threads == threads
        fewer.load_checkpoint(ckpt)
        np.testing.assert_array_equal(fewer.train_sequence(xs[:T], ys[:T]), after)
        for k, v in state.items():
            np.testing.assert_array_equal(fewer.state[k], v)
        for k, v in params.items():
            np.testing.assert_array_equal(fewer.params[k], v)


def test_a_summed_loss_is_summed_over_the_parts(tmp_path):
    """A loss summed over the batch: the parts' gradients are summed; and the same model
    forward only, in two parts."""
    spec = {**_MSE_SPEC}
    text = _source(spec, 4).replace("jnp.mean((out - target) ** 2)", "jnp.sum((out - target) ** 2)")
    model, path = _load_model(text, tmp_path)
    whole, split = _pair(path, tmp_path, 2, algorithm="d-rtrl", optimizer="sgd", lr=0.01,
                         update_every=3)
    assert split.manifest["batch_shards"]["loss"] == "sum"
    xs, targets, mask = _data(model, spec, 3)
    _same_learning(whole, split, xs, targets, mask, cuts=[2])
    fwd_whole, fwd_split = _pair(path, tmp_path / "fwd", 2, algorithm="forward")
    assert "apply_update" not in fwd_split.manifest["entries"]
    _close(fwd_whole.forward_sequence(xs), fwd_split.forward_sequence(xs), "forward_sequence")
    _close(fwd_whole.state["s0"], fwd_split.state["s0"], "state after forward_sequence")


_MSE_SPEC = {"n_states": 1, "memoryless": False, "coupling": [0.0], "input_to": [True],
             "relation": "dense", "bias": True, "learned_decay": False,
             "learned_threshold": False, "decay": 0.8, "decays": [None],
             "nonlinear": ["none"], "surrogate": "sigmoid", "alpha": 2.0,
             "spike_spelling": "tracec", "user_surrogate": "sigmoid", "reset": "soft",
             "spike_feeds_state": False, "reads": "new", "loss": "mse", "streams": False}


@pytest.mark.parametrize("edit, message", [
    (("}, out\n", "}, out - jnp.mean(out, axis=0)\n"), "rows of the batch meet"),
    (("jnp.mean((out - target) ** 2)", "jnp.mean(out - target) ** 2"),
     "neither the mean nor the sum"),
    (("y = x @ p['w_in']", "y = x.reshape(B, N_IN) @ p['w_in']"), r"model.py:\d+: .*the step at 2 rows"),
    (("jnp.mean((out - target) ** 2)", "jnp.mean((out - target.reshape(B, N_OUT)) ** 2)"),
     r"model.py:\d+: .*the loss at 2 rows"),
])
def test_models_that_cannot_be_split_are_refused(tmp_path, edit, message):
    text = _source(_MSE_SPEC, 4)
    assert edit[0] in text
    _, path = _load_model(text.replace(edit[0], edit[1], 1), tmp_path)
    with pytest.raises(TracecError, match=message) as e:
        tracec.compile(path, algorithm="d-rtrl", batch_shards=2)
    assert "model.py" in str(e.value)


def test_refusals_name_what_to_do(tmp_path):
    _, path = _load_model(_source(_MSE_SPEC, 4), tmp_path)
    with pytest.raises(TracecError, match="does not divide the batch 4"):
        tracec.compile(path, algorithm="d-rtrl", batch_shards=3)
    with pytest.raises(TracecError, match="needs an IREE target"):
        tracec.compile(path, algorithm="d-rtrl", batch_shards=2, target="xla")
    with pytest.raises(TracecError, match="integer >= 1"):
        tracec.compile(path, algorithm="d-rtrl", batch_shards=0)
    with pytest.raises(TracecError, match="a .mlir step fixes its batch"):
        tracec.compile(os.path.join(EXAMPLES, "lif_step.mlir"), algorithm="d-rtrl",
                       batch_shards=2)
    art = tracec.compile(path, algorithm="d-rtrl", batch_shards=2, update_every=1)
    assert any("--update-every 1" in w for w in art.warnings)
    art.save(str(tmp_path / "s.vmfb"))
    for threads in (0, 3, True):
        with pytest.raises(TracecError, match="from 1 to the artifact's 2 parts"):
            tracec.runtime.load(str(tmp_path / "s.vmfb"), threads=threads)
    tracec.compile(path, algorithm="d-rtrl").save(str(tmp_path / "w.vmfb"))
    with pytest.raises(TracecError, match="compile it with --batch-shards N"):
        tracec.runtime.load(str(tmp_path / "w.vmfb"), threads=2)
    r = run_cli("plan", str(tmp_path / "s.vmfb"), "-o", str(tmp_path / "plan"))
    assert r.returncode != 0 and "in tracec.runtime only" in r.stderr
    r = run_cli(path, "-o", str(tmp_path / "m.vmfb"), "--algorithm", "d-rtrl",
                "--batch-shards", "3")
    assert r.returncode != 0 and "does not divide the batch 4" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2
    assert not os.path.exists(tmp_path / "m.vmfb")


@pytest.mark.parametrize("source", ["sequence", "nir"])
def test_a_sequence_model_and_a_nir_graph(tmp_path, source):
    """A model written as a lax.scan over time (the zoo's lif_scan, batch 8) and a NIR
    graph (recurrent LIF, --batch 4 and a cross-entropy loss) in two parts."""
    options = dict(algorithm="d-rtrl", optimizer="adam", lr=1e-2, update_every=4)
    if source == "sequence":
        path = os.path.join(EXAMPLES, "zoo", "lif_scan.py")
    else:
        import nir
        from test_nir import DT, DTS, GRAPHS

        from tracec.frontends.nir_input import NirOptions

        graph, _ = GRAPHS["rec_lif"]()
        path = str(tmp_path / "rec_lif.nir")
        nir.write(path, graph)
        options["nir_options"] = NirOptions(dt=DTS.get("rec_lif", DT), batch=4,
                                            loss="cross-entropy")
    whole, split = _pair(path, tmp_path, 2, **options)
    rng = np.random.default_rng(5)
    m = whole.manifest
    xs = (rng.random((T, *m["input"]["shape"])) < 0.5).astype(np.float32) * 1.5
    n_out = m["outputs"][0]["shape"][-1]
    ys = rng.integers(0, n_out, (T, *m["source"]["target"]["shape"])).astype(np.int32)
    _same_learning(whole, split, xs, ys, np.ones(T, np.float32), cuts=[5])
