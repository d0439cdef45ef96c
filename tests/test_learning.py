"""Online learning: the compiled rules equal the reference written from
docs/design.md section 3, on the model zoo, for both algorithms.

With ``--optimizer sgd --lr 1 --update-every T`` the parameter change after T steps is
minus the summed gradient ``Σ_t m_t G_t``; the reference (tests/reference_rules.py) is
an independent JAX implementation working on the model's jaxpr.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES, MODELS, zoo_module
from reference_rules import rules_gradient

ZOO = os.path.join(EXAMPLES, "zoo")
sys.path.insert(0, ZOO)
T = 6

# Groups as in tests/test_recurrence.py (written from the models' equations).
STRUCTURE = {
    "lif_carry": ([{"states": ["v"], "derived": {"z": ["v"]}}], ["v", "z"]),
    "lif_recompute": ([{"states": ["v"]}], ["v"]),
    "lif_scan": ([{"states": ["v"]}], ["v"]),
    "alif": ([{"states": ["a", "v"]}], ["a", "v"]),
    "gif3": ([{"states": ["i1", "i2", "v"]}], ["i1", "i2", "v"]),
    "lif_syn": ([{"states": ["g", "v"]}], ["g", "v"]),
    "lif_soft": ([{"states": ["v"]}], ["v"]),
    "lif_soft_sg": ([{"states": ["v"]}], ["v"]),
    "lif_hard": ([{"states": ["v"]}], ["v"]),
    "lif_hard_sg": ([{"states": ["v"]}], ["v"]),
    "lif_readout": ([{"states": ["v"]}], ["v"]),
    "rnn_tanh": ([{"states": ["h"]}], ["h"]),
    "gru": ([{"states": ["h"]}], ["h"]),
    "lstm": ([{"states": ["c", "h"]}], ["c", "h"]),
    "conv_lif": ([{"states": ["v"]}], ["v"]),
    "snn3": ([{"states": ["v1"]}, {"states": ["v2"]}, {"states": ["v3"]}, {"states": ["y"]}],
             ["v1", "v2", "v3", "y"]),
}


def test_every_zoo_model_is_checked():
    models = {f[:-3] for f in os.listdir(ZOO) if f.endswith(".py") and f != "common.py"}
    assert models == set(STRUCTURE)


def _data(model, seed=0):
    rng = np.random.default_rng(seed)
    xs = (rng.random((T,) + tuple(model.input.shape)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 4, (T, model.input.shape[0])).astype(np.int32)
    mask = np.array([1, 0, 1, 1, 0, 1], np.float32)
    return xs, targets, mask


def _module(name):
    return zoo_module(name)


@pytest.mark.parametrize("algorithm", ["d-rtrl", "es-d-rtrl"])
@pytest.mark.parametrize("name", sorted(STRUCTURE))
def test_parameter_change_is_minus_the_reference_gradient(name, algorithm, tmp_path):
    m = _module(name)
    model = m.model
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, f"{name}.py"), algorithm=algorithm, decay=0.8,
                   optimizer="sgd", lr=1.0, update_every=T).save(path)
    learner = tracec.runtime.load(path)
    xs, targets, mask = _data(model)
    before = learner.params
    losses = learner.train_sequence(xs, targets, mask)
    after = learner.params
    groups, names = STRUCTURE[name]
    params = model.init_params(jax.random.PRNGKey(0))
    # The reference works on a step function: lif_scan's loop body is lif_recompute's step.
    ref_model = _module("lif_recompute").model if name == "lif_scan" else model
    ref, ref_losses = rules_gradient(ref_model, params, xs, targets, mask, algorithm=algorithm,
                                     decay=0.8, groups=groups, state_names=names)
    np.testing.assert_allclose(losses * mask, ref_losses, rtol=1e-5, atol=1e-6)
    for pname, g in ref.items():
        scale = max(1.0, float(np.max(np.abs(g))))
        np.testing.assert_allclose(before[pname] - after[pname], g, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{name} {algorithm} {pname}")


def test_train_step_equals_train_sequence_and_update_every(tmp_path):
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, "alif.py"), algorithm="es-d-rtrl", optimizer="sgd", lr=0.1,
                   update_every=3).save(path)
    xs, targets, mask = _data(_module("alif").model, seed=1)
    a = tracec.runtime.load(path)
    la = [a.train_step(x, y, m)[0] for x, y, m in zip(xs, targets, mask)]
    b = tracec.runtime.load(path)
    lb = b.train_sequence(xs, targets, mask)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-5, atol=1e-6)
    # Parameters change only at steps 3 and 6 (K = 3).
    c = tracec.runtime.load(path)
    p0 = c.params["w_in"]
    c.train_step(xs[0], targets[0])
    c.train_step(xs[1], targets[1])
    np.testing.assert_array_equal(c.params["w_in"], p0)
    c.train_step(xs[2], targets[2])
    assert not np.array_equal(c.params["w_in"], p0)


@pytest.mark.parametrize("fuse_steps", [False, None])
@pytest.mark.parametrize("algorithm", ["es-d-rtrl", "d-rtrl"])
def test_train_sequence_between_updates_equals_train_step(tmp_path, algorithm, fuse_steps):
    # With update_every at least 8 unrolled iterations, train_sequence runs the unrolled
    # iterations in which no update falls without the optimizer's branches, and the steps
    # around an update one at a time. Chunks of uneven lengths put the updates at every
    # position of an unrolled iteration and leave some chunks with none; the result must
    # be that of train_step, which has no loop, step by step. With the steps apart the
    # kernels are train_step's; fused (the default there) IREE's kernels span the steps
    # and round differently, so the states after 70 steps agree to 1e-5 of their range.
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, "alif.py"), algorithm=algorithm, optimizer="adam", lr=0.05,
                   update_every=16, scan_unroll=2, fuse_steps=fuse_steps).save(path)
    model = _module("alif").model
    rng = np.random.default_rng(3)
    steps = 70
    xs = (rng.random((steps,) + tuple(model.input.shape)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 4, (steps, model.input.shape[0])).astype(np.int32)
    mask = (rng.random(steps) < 0.8).astype(np.float32)
    a = tracec.runtime.load(path)
    p0 = a.params
    la = [a.train_step(x, y, m)[0] for x, y, m in zip(xs, targets, mask)]
    b = tracec.runtime.load(path)
    lb, start = [], 0
    for n in (1, 6, 9, 2, 4, 12, 6, 12, 5, 13):  # 70 steps
        lb.extend(b.train_sequence(xs[start:start + n], targets[start:start + n],
                                   mask[start:start + n]))
        start += n
    assert start == steps
    np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-7)
    for k in p0:
        assert not np.array_equal(a.params[k], p0[k]), k  # four updates happened
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for k in a.state:
        atol = 1e-6 if fuse_steps is False else 1e-5 * float(np.max(np.abs(a.state[k])))
        np.testing.assert_allclose(a.state[k], b.state[k], rtol=1e-5, atol=atol, err_msg=k)


def test_reset_discards_a_partial_window_and_keeps_params(tmp_path):
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, "lif_recompute.py"), algorithm="d-rtrl", lr=0.5,
                   update_every=4).save(path)
    xs, targets, _ = _data(_module("lif_recompute").model)
    learner = tracec.runtime.load(path)
    p0, s0 = learner.params, learner.state
    learner.train_sequence(xs[:3], targets[:3])
    assert any(np.any(t != 0) for t in learner.traces.values())
    assert any(not np.array_equal(learner.state[k], s0[k]) for k in s0)
    learner.reset()  # the same initial values as at load, whatever training did since
    assert all(np.all(t == 0) for t in learner.traces.values())
    for k in s0:
        np.testing.assert_array_equal(learner.state[k], s0[k])
    learner.train_sequence(xs[:3], targets[:3])  # 3 < K steps since reset: no update yet
    for k in p0:
        np.testing.assert_array_equal(learner.params[k], p0[k])


def test_checkpoint_resume_is_bit_identical(tmp_path):
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, "lif_syn.py"), algorithm="es-d-rtrl", optimizer="adam",
                   lr=0.01, update_every=2).save(path)
    xs, targets, mask = _data(_module("lif_syn").model, seed=3)
    ck = str(tmp_path / "ck.npz")
    a = tracec.runtime.load(path)
    a.train_sequence(xs[:3], targets[:3])
    a.save_checkpoint(ck)
    a.train_sequence(xs[3:], targets[3:])
    code = ("import sys, numpy as np, tracec.runtime as r\n"
            "l = r.load(sys.argv[1]); l.load_checkpoint(sys.argv[2])\n"
            "d = np.load(sys.argv[3]); l.train_sequence(d['xs'], d['ys'])\n"
            "np.savez(sys.argv[4], **l.params)\n")
    np.savez(tmp_path / "data.npz", xs=xs[3:], ys=targets[3:])
    out = tmp_path / "resumed.npz"
    proc = subprocess.run([sys.executable, "-c", code, path, ck, str(tmp_path / "data.npz"), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    resumed = np.load(out)
    for k, v in a.params.items():
        np.testing.assert_array_equal(resumed[k], v)


def test_bad_training_inputs(tmp_path):
    path = str(tmp_path / "m.vmfb")
    tracec.compile(os.path.join(ZOO, "lif_recompute.py"), algorithm="es-d-rtrl").save(path)
    learner = tracec.runtime.load(path)
    xs, targets, _ = _data(_module("lif_recompute").model)
    p0 = learner.params
    bad = xs[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(tracec.TracecError, match="NaN or Inf; nothing was updated"):
        learner.train_step(bad, targets[0])
    with pytest.raises(tracec.TracecError, match="dtype float32, expected int32"):
        learner.train_step(xs[0], targets[0].astype(np.float32))
    for k in p0:
        np.testing.assert_array_equal(learner.params[k], p0[k])
    forward_only = tmp_path / "f.vmfb"
    tracec.compile(os.path.join(ZOO, "lif_recompute.py")).save(str(forward_only))
    with pytest.raises(tracec.TracecError, match="compiled with --algorithm forward"):
        tracec.runtime.load(str(forward_only)).train_step(xs[0], targets[0])


def test_a_relation_column_feeding_several_neurons_is_a_clear_error():
    with pytest.raises(tracec.TracecError, match="an element of the output of the dense "
                                                 "relation of 'w' reaches several neurons") as e:
        tracec.compile(os.path.join(MODELS, "shared_column.py"), algorithm="d-rtrl", emit="tracec")
    assert e.value.loc is not None and e.value.loc.file.endswith("shared_column.py")
    assert e.value.loc.line == 10


def test_training_example_runs_and_saves_a_png(tmp_path):
    out = tmp_path / "curve.png"
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "train_online.py"),
                           "--iterations", "2", "--task", "evidence_accumulation",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "iteration    2/2" in proc.stdout
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data[-12:]


def test_es_d_rtrl_dense_trace_is_linear_in_size(tmp_path):
    """ES-D-RTRL's trace of a dense relation holds B·(I + H·S) floats (docs/design.md §3);
    D-RTRL's holds B·I·H·S. Read from the manifest of the compiled artifact."""
    import math

    B, I, H, S = 8, 12, 16, 2  # alif: group {a, v}
    sizes = {}
    for alg in ("es-d-rtrl", "d-rtrl"):
        art = tracec.compile(os.path.join(ZOO, "alif.py"), algorithm=alg, emit="tracec")
        import json
        import re

        text = art.ir["tracec"]
        manifest = json.loads(re.search(r'tracec.manifest = "((?:[^"\\]|\\.)*)"', text).group(1)
                              .replace('\\22', '"'))
        sizes[alg] = {t["name"]: math.prod(t["shape"]) for t in manifest["traces"]}
        shapes = {t["name"]: t["shape"] for t in manifest["traces"]}
    es = sizes["es-d-rtrl"]
    assert es["ex/w_in"] + sum(es[f"ef/w_in/{s}"] for s in ("a", "v")) == B * (I + H * S)
    d = sizes["d-rtrl"]
    assert sum(d[f"eps/w_in/{s}"] for s in ("a", "v")) == B * I * H * S
    # D-RTRL's weight traces are neuron-major [H, B, I] (lower-traces-to-stablehlo fuses
    # the gradient's batch sum with the update in that order; docs/abi.md).
    assert {tuple(shapes[f"eps/w_in/{s}"]) for s in ("a", "v")} == {(H, B, I)}


def test_a_trace_nothing_reads_is_not_carried():
    """lif2's spike z reaches the next step only through w_rec (cut), so no update reads
    z's traces: they live within their step and are not carried (the gradient through
    z still counts: test_learning's zoo models with a carried spike check the numbers)."""
    import json
    import re

    art = tracec.compile(os.path.join(EXAMPLES, "lif2.py"), algorithm="d-rtrl", emit="tracec")
    manifest = json.loads(re.search(r'tracec.manifest = "((?:[^"\\]|\\.)*)"', art.ir["tracec"])
                          .group(1).replace('\\22', '"'))
    names = {t["name"] for t in manifest["traces"]}
    assert "eps/l1/w_rec/l1/v" in names and "ep/l1/b/l1/v" in names
    assert not {n for n in names if n.endswith("/l1/z") or n.endswith("/l2/z")}


def test_no_trainable_relation_is_a_clear_error():
    with pytest.raises(tracec.TracecError, match="no trainable relation") as e:
        tracec.compile(os.path.join(MODELS, "no_relation.py"), algorithm="es-d-rtrl", emit="tracec")
    assert e.value.loc is not None and e.value.loc.file.endswith("no_relation.py")


def test_xla_target_trains_like_iree(tmp_path):
    xs, targets, mask = _data(_module("lif_recompute").model, seed=5)
    learners = []
    for target, ext in (("llvm-cpu", "vmfb"), ("xla", "xla")):
        path = str(tmp_path / f"m.{ext}")
        tracec.compile(os.path.join(ZOO, "lif_recompute.py"), algorithm="es-d-rtrl", lr=0.5,
                       update_every=4, target=target).save(path)
        learners.append(tracec.runtime.load(path))
    a, b = learners
    np.testing.assert_allclose(a.train_sequence(xs, targets, mask),
                               b.train_sequence(xs, targets, mask), rtol=1e-5, atol=1e-6)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("update_every", [1, 3])
def test_adam_applies_the_accumulated_gradient(tmp_path, update_every):
    """Adam's first update equals numpy's Adam on the gradient SGD(lr=1) applies after
    the same K steps (with K > 1 the optimizer runs inside branches taken only when due)."""
    model = _module("lif_recompute").model
    xs, targets, _ = _data(model)
    K = update_every
    changes = {}
    for opt, lr in (("sgd", 1.0), ("adam", 0.01)):
        path = str(tmp_path / f"{opt}.vmfb")
        tracec.compile(os.path.join(ZOO, "lif_recompute.py"), algorithm="es-d-rtrl",
                       optimizer=opt, lr=lr, update_every=K).save(path)
        learner = tracec.runtime.load(path)
        p0 = learner.params
        learner.train_sequence(xs[:K], targets[:K])
        changes[opt] = {k: learner.params[k] - p0[k] for k in p0}
    b1, b2, eps = 0.9, 0.999, 1e-8
    for k, neg_g in changes["sgd"].items():
        g = -neg_g.astype(np.float64)
        mhat = (1 - b1) * g / (1 - b1)
        vhat = (1 - b2) * g * g / (1 - b2)
        want = -0.01 * mhat / (np.sqrt(vhat) + eps)
        np.testing.assert_allclose(changes["adam"][k], want, rtol=1e-4, atol=1e-6, err_msg=k)


def _read_ck(path):
    import json
    d = np.load(path)
    meta = json.loads(bytes(d["__meta__"]).decode())
    return meta, {k: d[f"v{i}"] for i, k in enumerate(meta["keys"])}


def _write_ck(path, meta, arrays):
    import json
    meta = dict(meta, keys=sorted(arrays))
    np.savez(path, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **{f"v{i}": arrays[k] for i, k in enumerate(meta["keys"])})


@pytest.mark.parametrize("name,target", [("alif", "llvm-cpu"), ("lif_recompute", "llvm-cpu"),
                                         ("alif", "xla")])
def test_train_step_update_every_against_numpy_adam(tmp_path, name, target):
    """train_step with Adam and K = 3 over three windows: the parameters, Adam's m, v and
    t stay as they were on the steps in between and on the K-th step equal numpy's Adam
    applied to the window's summed gradient (so each optimizer branch runs both ways,
    several times, in the train_step entry). The summed gradient comes from an SGD
    artifact that never updates (K = 1000), started each window from the Adam learner's
    checkpoint, whose accumulators then hold exactly the sum."""
    K, lr, b1, b2, eps = 3, 0.01, 0.9, 0.999, 1e-8
    model = _module(name).model
    rng = np.random.default_rng(7)
    n = 3 * K
    xs = (rng.random((n,) + tuple(model.input.shape)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 4, (n, model.input.shape[0])).astype(np.int32)
    paths = {}
    for opt, every in (("adam", K), ("sgd", 1000)):
        paths[opt] = str(tmp_path / f"{opt}.{'xla' if target == 'xla' else 'vmfb'}")
        tracec.compile(os.path.join(ZOO, f"{name}.py"), algorithm="es-d-rtrl", optimizer=opt,
                       lr=lr, update_every=every, target=target).save(paths[opt])
    adam = tracec.runtime.load(paths["adam"])
    probe = tracec.runtime.load(paths["sgd"])
    ck, pk = str(tmp_path / "adam.npz"), str(tmp_path / "probe.npz")
    names = list(adam.params)
    t = 0
    for w in range(3):
        adam.save_checkpoint(ck)
        meta, before = _read_ck(ck)
        # The probe starts the window where Adam starts it, with an empty accumulator.
        start = {k: (np.zeros_like(v) if k.startswith("accum:") else v)
                 for k, v in before.items() if not k.startswith("opt:")}
        _write_ck(pk, meta, start)
        probe.load_checkpoint(pk)
        for s in range(K):
            i = w * K + s
            la = adam.train_step(xs[i], targets[i])[0]
            lp = probe.train_step(xs[i], targets[i])[0]
            np.testing.assert_allclose(la, lp, rtol=1e-6)
            adam.save_checkpoint(ck)
            _, now = _read_ck(ck)
            if s < K - 1:  # not due: nothing the optimizer owns has changed
                for k in now:
                    if k.startswith(("param:", "opt:")):
                        np.testing.assert_array_equal(now[k], before[k], err_msg=f"{k} step {i}")
        probe.save_checkpoint(pk)
        _, summed = _read_ck(pk)
        t += 1
        assert now["opt:t"] == t
        for p in names:
            g = summed[f"accum:{p}"].astype(np.float64)
            m = b1 * before[f"opt:m/{p}"] + (1 - b1) * g
            v = b2 * before[f"opt:v/{p}"] + (1 - b2) * g * g
            mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            want = before[f"param:{p}"] - lr * mhat / (np.sqrt(vhat) + eps)
            assert not np.array_equal(now[f"param:{p}"], before[f"param:{p}"]), p
            np.testing.assert_allclose(now[f"opt:m/{p}"], m, rtol=1e-5, atol=1e-9, err_msg=p)
            np.testing.assert_allclose(now[f"opt:v/{p}"], v, rtol=1e-5, atol=1e-12, err_msg=p)
            np.testing.assert_allclose(now[f"param:{p}"], want, rtol=1e-6, atol=1e-6, err_msg=p)
            assert np.all(now[f"accum:{p}"] == 0)


@pytest.mark.parametrize("algorithm,optimizer,update_every,target", [
    ("es-d-rtrl", "sgd", 1, "llvm-cpu"),
    ("d-rtrl", "adam", 3, "llvm-cpu"),
    ("es-d-rtrl", "adam", 1, "xla"),
])
def test_skipped_masked_steps_equal_train_step(tmp_path, algorithm, optimizer, update_every,
                                               target):
    # --skip-masked-steps: train_step with a mask of 0, and each long run of such steps in
    # train_sequence, run through advance_step / advance_sequence, which compute no
    # gradient. train_sequence must give the parameters, state, traces and losses of the
    # same artifact with the advance entries hidden, and one masked train_step those of
    # train_step itself, to the rounding of one step's kernels. Over the whole sequence
    # step by step the two ways agree to that rounding as amplified by 80 steps of
    # learning (ALIF's bias traces reach 10^5). Updates fall inside the skipped runs
    # (Adam moves a parameter there on its moments alone).
    path = str(tmp_path / "m.vmfb")
    art = tracec.compile(os.path.join(ZOO, "alif.py"), algorithm=algorithm, optimizer=optimizer,
                         lr=0.05, update_every=update_every, target=target,
                         skip_masked_steps=True)
    art.save(path)
    # D-RTRL's masked step still updates every weight's trace: measured no faster, said so
    assert any("--skip-masked-steps does not pay" in w for w in art.warnings) == (
        algorithm == "d-rtrl")
    model = _module("alif").model
    rng = np.random.default_rng(4)
    from tracec.runtime.learner import MIN_SKIPPED_RUN as M

    runs = [(1, 3), (0, M + 2), (1, 2), (0, M - 3), (1, 4), (0, M + 1)]  # (mask, steps)
    mask = np.concatenate([np.full(n, m, np.float32) for m, n in runs])
    steps = len(mask)
    xs = (rng.random((steps,) + tuple(model.input.shape)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 4, (steps, model.input.shape[0])).astype(np.int32)

    def load(skipping: bool):
        learner = tracec.runtime.load(path)
        assert {"advance_step", "advance_sequence"} <= set(learner.manifest["entries"])
        if not skipping:
            del learner.manifest["entries"]["advance_step"]
            del learner.manifest["entries"]["advance_sequence"]
        called = learner.called = []
        call = learner._exec.call
        learner._exec.call = lambda entry, args: called.append(entry) or call(entry, args)
        return learner

    def assert_same(a, b, rtol, atol, what_for):
        for what in ("params", "state", "traces"):
            for k, v in getattr(a, what).items():
                scale = max(1.0, float(np.max(np.abs(v))))
                np.testing.assert_allclose(v, getattr(b, what)[k], rtol=rtol, atol=atol * scale,
                                           err_msg=f"{what} {k} ({what_for})")

    seq, whole, by_step, by_step_skip = load(True), load(False), load(False), load(True)
    p0 = seq.params
    losses = seq.train_sequence(xs, targets, mask)
    assert seq.called == ["train_sequence", "advance_sequence", "train_sequence",
                          "advance_sequence"]
    assert all(not np.array_equal(v, p0[k]) for k, v in seq.params.items())
    np.testing.assert_allclose(losses, whole.train_sequence(xs, targets, mask), rtol=1e-6,
                               atol=1e-7)
    assert_same(seq, whole, 1e-6, 1e-7, "advance_sequence")
    step_losses, skip_losses = [], []
    for t, (x, y, m) in enumerate(zip(xs, targets, mask)):
        step_losses.append(by_step.train_step(x, y, m)[0])
        skip_losses.append(by_step_skip.train_step(x, y, m)[0])
        if t == 3:  # the first masked step, from the same state
            assert by_step_skip.called[-1] == "advance_step"
            assert_same(by_step_skip, by_step, 1e-5, 1e-6, "one advance_step")
    assert by_step_skip.called == ["train_step" if m else "advance_step" for m in mask]
    np.testing.assert_allclose(skip_losses, step_losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses, step_losses, rtol=1e-4, atol=1e-5)
    assert_same(by_step_skip, by_step, 1e-3, 1e-4, "advance_step")
    assert_same(seq, by_step, 1e-3, 1e-4, "train_step")
    assert seq.steps_since_reset == by_step_skip.steps_since_reset == steps


def test_mask_runs_leave_short_runs_to_train_sequence():
    from tracec.runtime.learner import MIN_SKIPPED_RUN, mask_runs

    n = MIN_SKIPPED_RUN
    mask = np.concatenate([np.zeros(n), np.ones(2), np.zeros(n - 1), [0.5], np.zeros(n + 3)])
    assert mask_runs(mask, skip=True) == [("advance_sequence", 0, n),
                                          ("train_sequence", n, 2 * n + 2),
                                          ("advance_sequence", 2 * n + 2, 3 * n + 5)]
    assert mask_runs(mask, skip=False) == [("train_sequence", 0, len(mask))]
    assert mask_runs(np.ones(3 * n), skip=True) == [("train_sequence", 0, 3 * n)]
