"""Sparse connectivity: connection lists written with gather/scatter (``x[:, pre] * w``
summed into ``post`` with ``segment_sum`` or ``.at[...].add``) or as a
``jax.experimental.sparse`` BCOO matrix with trainable data.

- The compile-time index maps of gather and scatter equal what JAX computes (JAX
  evaluates the same ops on an iota);
- sparse relations are found, shown by ``tracec inspect`` with their nnz, and learn
  the gradient BPTT gives where the rule is exact (D-RTRL with element-wise recurrence);
- a recurrent sparse network learns the same gradient as the same network written
  densely (a matrix with zeros off the connection list) under both rules.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tracec.dialects import make_context
from tracec.dialects import stablehlo as shlo
from tracec.frontends.stablehlo_io import import_text, mlir_to_generic
from tracec.passes import PASSES
from tracec.passes.analysis.index_maps import gather_sources, scatter_targets, static_value
from tracec.passes.ir.module import functions


def _lower(fn, *shapes):
    specs = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    generic = mlir_to_generic(jax.jit(fn).lower(*specs).compiler_ir("stablehlo"))
    module = import_text(generic, source_file=None, source_name="t")
    PASSES["inline-private-functions"]()().apply(make_context(), module)
    return functions(module)["main"]


def _only(fn_op, cls):
    ops = [o for o in fn_op.body.block.ops if isinstance(o, cls)]
    assert len(ops) == 1, [o.name for o in fn_op.body.block.ops]
    return ops[0]


RNG = np.random.default_rng(0)
PRE = RNG.integers(-5, 5, 11)    # negative indices too: JAX wraps them
POST = RNG.integers(0, 5, 11)
ROWS = RNG.integers(0, 5, (3, 2))

GATHERS = {
    "columns": (lambda x: x[:, PRE], (4, 5)),
    "rows": (lambda x: x[PRE], (5, 3)),
    "take_along": (lambda x: jnp.take_along_axis(x, jnp.asarray(ROWS) % 4, axis=0), (4, 2)),
    "vmapped": (lambda x: jax.vmap(lambda r: r[PRE])(x), (4, 5)),
    "pairs": (lambda x: x[POST % 4, PRE], (4, 5)),
}


@pytest.mark.parametrize("name", sorted(GATHERS))
def test_gather_index_map_equals_jax(name):
    f, shape = GATHERS[name]
    g = _only(_lower(f, shape), shlo.GatherOp)
    idx = static_value(g.operands[1])
    assert idx is not None
    iota = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    expected = np.asarray(f(jnp.asarray(iota))).astype(np.int64)
    np.testing.assert_array_equal(gather_sources(g, idx), expected)


SCATTERS = {
    "at_columns": (lambda u: jnp.zeros((4, 5)).at[:, POST].add(u), (4, 11)),
    "segment_sum": (lambda u: jax.ops.segment_sum(u, POST, 5), (11, 4)),
    "vmapped_segment_sum": (lambda u: jax.vmap(lambda r: jax.ops.segment_sum(r, POST, 5))(u),
                            (4, 11)),
    "out_of_bounds_dropped": (lambda u: jnp.zeros((4, 5)).at[:, POST + 3].add(u, mode="drop"),
                              (4, 11)),
}


@pytest.mark.parametrize("name", sorted(SCATTERS))
def test_scatter_index_map_equals_jax(name):
    f, shape = SCATTERS[name]
    s = _only(_lower(f, shape), shlo.ScatterOp)
    idx = static_value(s.operands[1])
    assert idx is not None
    targets = scatter_targets(s, idx)
    assert targets.shape == tuple(shape)
    # scatter each update's own one-hot: where it lands is where JAX puts it
    n = int(np.prod(shape))
    for e in RNG.choice(n, size=min(n, 12), replace=False):
        onehot = np.zeros(n, np.float32)
        onehot[e] = 1.0
        landed = np.flatnonzero(np.asarray(f(jnp.asarray(onehot.reshape(shape)))).ravel())
        want = [-1] if landed.size == 0 else list(landed)
        assert [int(targets.ravel()[e])] == want, (e, targets.ravel()[e], landed)


# ---------------------------------------------------------------------------------
# Models with connection lists, generated from a seed: sizes, connections (with
# repeats), how the sum into the neurons is written, the nonlinearity.

T = 6


def _connect(y_gathered_times_w, post, B, H, form):
    """Σ over connections into their neurons, written the ways JAX users write it."""
    u = y_gathered_times_w
    if form == "at_add":
        return jnp.zeros((B, H), u.dtype).at[:, post].add(u)
    if form == "segment_sum":
        return jax.ops.segment_sum(u.T, post, H).T
    return jax.vmap(lambda r: jax.ops.segment_sum(r, post, H))(u)


def sparse_model(seed: int, *, recurrent: bool, dense: bool = False):
    """One layer of H neurons fed by I inputs through a connection list (``recurrent``:
    the neurons also feed each other through a second list). ``dense``: the same
    network with each list written as a dense matrix, zero off the list."""
    import tracec

    rng = np.random.default_rng(seed)
    B, I, H = int(rng.integers(2, 4)), int(rng.integers(3, 7)), int(rng.integers(3, 8))
    nnz_in, nnz_rec = int(rng.integers(I, 3 * I * H // 2)), int(rng.integers(H, 2 * H * H))
    pre_in, post_in = rng.integers(0, I, nnz_in), rng.integers(0, H, nnz_in)
    pre_rec, post_rec = rng.integers(0, H, nnz_rec), rng.integers(0, H, nnz_rec)
    form = ["at_add", "segment_sum", "vmapped", "bcoo"][seed % 4]
    spiking = (seed // 4) % 2 == 0
    w_in0 = rng.normal(size=nnz_in).astype(np.float32) * 0.8
    w_rec0 = rng.normal(size=nnz_rec).astype(np.float32) * 0.4
    w_out0 = rng.normal(size=(H, 2)).astype(np.float32)

    def as_dense(w, pre, post, rows, cols):
        return jnp.zeros((rows, cols), jnp.float32).at[pre, post].add(w)

    def init_params(key):
        p = {"tau": jnp.full((H,), 0.8, jnp.float32), "w_out": jnp.asarray(w_out0)}
        if dense:
            p["w_in"] = as_dense(w_in0, pre_in, post_in, I, H)
            if recurrent:
                p["w_rec"] = as_dense(w_rec0, pre_rec, post_rec, H, H)
        else:
            p["w_in"] = jnp.asarray(w_in0)
            if recurrent:
                p["w_rec"] = jnp.asarray(w_rec0)
        return p

    def init_state(batch):
        return {"v": jnp.zeros((batch, H), jnp.float32)}

    def syn(x, w, pre, post):
        if dense:
            return x @ w
        if form == "bcoo":  # jax.experimental.sparse: the weights as a BCOO matrix's data
            from jax.experimental import sparse

            indices = np.stack([pre, post], axis=1).astype(np.int32)
            return x @ sparse.BCOO((w, indices), shape=(x.shape[1], H))
        return _connect(x[:, pre] * w, post, B, H, form)

    def step(p, s, x):
        v = s["v"]
        act = tracec.spike(v - 0.5) if spiking else jnp.tanh(v)
        drive = syn(x, p["w_in"], pre_in, post_in)
        if recurrent:
            drive = drive + syn(act, p["w_rec"], pre_rec, post_rec)
        v = p["tau"] * v + drive
        return {"v": v}, (tracec.spike(v - 0.5) if spiking else jnp.tanh(v)) @ p["w_out"]

    def loss(out, target):
        return jnp.mean((out - target) ** 2)

    model = tracec.Model(init_params=init_params, init_state=init_state, step=step, loss=loss,
                         input=jax.ShapeDtypeStruct((B, I), jnp.float32),
                         target=jax.ShapeDtypeStruct((B, 2), jnp.float32))
    return model, (pre_in, post_in, pre_rec, post_rec)


def _learn(model, algorithm, tmp_path, seed):
    """Parameter changes after T steps of SGD(lr=1, one update at the end), and the data."""
    import tracec
    import tracec.runtime

    path = str(tmp_path / f"{algorithm}.vmfb")
    tracec.compile(model, algorithm=algorithm, optimizer="sgd", lr=1.0, update_every=T,
                   decay=0.6).save(path)
    learner = tracec.runtime.load(path)
    rng = np.random.default_rng(seed)
    xs = (rng.random((T,) + tuple(model.input.shape)) < 0.6).astype(np.float32)
    targets = rng.normal(size=(T,) + tuple(model.target.shape)).astype(np.float32)
    mask = (rng.random(T) < 0.85).astype(np.float32)
    before = learner.params
    learner.train_sequence(xs, targets, mask)
    after = learner.params
    return {k: before[k] - after[k] for k in before}, (xs, targets, mask)


@pytest.mark.parametrize("seed", range(8))
def test_sparse_input_learns_the_bptt_gradient(seed, tmp_path):
    """One neuron-intrinsic layer fed through a connection list: D-RTRL is exact."""
    from reference_rules import bptt_gradient

    model, _ = sparse_model(seed, recurrent=False)
    got, (xs, targets, mask) = _learn(model, "d-rtrl", tmp_path, seed)
    want = bptt_gradient(model, model.init_params(jax.random.PRNGKey(0)), xs, targets, mask)
    for k, g in want.items():
        scale = max(1e-3, float(np.abs(g).max()))
        np.testing.assert_allclose(got[k], g, rtol=1e-4, atol=1e-4 * scale, err_msg=k)


@pytest.mark.parametrize("algorithm", ["d-rtrl", "es-d-rtrl"])
@pytest.mark.parametrize("seed", range(4))
def test_recurrent_sparse_network_equals_its_dense_form(seed, algorithm, tmp_path):
    """Both rules give each connection the gradient of its entry of the dense matrix."""
    sparse, (pre_in, post_in, pre_rec, post_rec) = sparse_model(seed, recurrent=True)
    dense, _ = sparse_model(seed, recurrent=True, dense=True)
    got, _ = _learn(sparse, algorithm, tmp_path, seed)
    want, _ = _learn(dense, algorithm, tmp_path, seed)
    # the same numbers up to float32 summation order (a scatter-add against a matmul)
    for k, ref in (("tau", want["tau"]), ("w_out", want["w_out"]),
                   ("w_in", want["w_in"][pre_in, post_in]),
                   ("w_rec", want["w_rec"][pre_rec, post_rec])):
        scale = max(1e-3, float(np.abs(ref).max()))
        np.testing.assert_allclose(got[k], ref, rtol=1e-5, atol=1e-5 * scale, err_msg=k)


def test_inspect_shows_sparse_relations_with_their_nnz(tmp_path):
    import tracec.inspect as ti

    model, (pre_in, _, pre_rec, _) = sparse_model(4, recurrent=True)
    info = ti.analyse(model)
    rels = {r["param"]: r for r in info["relations"]}
    assert rels["w_in"]["kind"] == rels["w_rec"]["kind"] == "sparse"
    assert rels["w_in"]["nnz"] == len(pre_in) and rels["w_rec"]["nnz"] == len(pre_rec)
    assert "nnz %d" % len(pre_rec) in ti.as_table(info)


def test_connectome_example_learns_online_at_a_small_size(tmp_path, monkeypatch):
    """examples/connectome.py (the whole-brain-sized example) at 400 neurons: the
    readout's loss falls over a few passes of online ES-D-RTRL."""
    import importlib.util
    import os

    import tracec
    import tracec.runtime
    from conftest import EXAMPLES

    monkeypatch.setenv("CONNECTOME_NEURONS", "400")
    monkeypatch.setenv("CONNECTOME_CONNECTIONS", "6000")
    monkeypatch.setenv("CONNECTOME_BATCH", "2")
    path = os.path.join(EXAMPLES, "connectome.py")
    spec = importlib.util.spec_from_file_location("connectome_small", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert (example.N, example.NNZ, len(example.PRE)) == (400, 6000, 6000)
    assert not (example.PRE == example.POST).any()
    tracec.compile(path, algorithm="es-d-rtrl", optimizer="adam", lr=0.01, update_every=10,
                   decay=0.9).save(str(tmp_path / "c.vmfb"))
    learner = tracec.runtime.load(str(tmp_path / "c.vmfb"))
    rng = np.random.default_rng(0)
    T = 60
    targets = np.stack([example.target_activity(t) for t in range(T)])
    means = []
    for _ in range(4):
        xs = (rng.random((T, example.B, example.N_IN)) < 0.2).astype(np.float32)
        learner.reset()
        means.append(float(np.mean(learner.train_sequence(xs, targets))))
    assert means[-1] < 0.7 * means[0], means
