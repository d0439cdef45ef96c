"""Data parallelism over the batch (``--batch-shards N``): the model at ``B / N`` rows.

The compiler lowers the step at ``B / N`` rows; the runtime runs N such parts side by
side and sums or averages their accumulated gradients once per update window
(docs/design.md, "Data parallelism over the batch"). That gives the whole batch's
gradient only when the rows never meet: the step must treat every row on its own, and
the loss must be the mean or the sum of what it is on each part. Both are checked here
before anything is lowered, by running the model in JAX on random values: the whole
batch against its N parts. What the runtime needs to put the parts together (the batch
axis of each state leaf, the loss's reduction) goes into the manifest.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from tracec.diagnostics import SourceLoc, TracecError
from tracec.frontends.jax_frontend import Model
from tracec.frontends.stablehlo_io import display_path
from tracec.frontends.streams import is_spec

#: rows of a leaf that may differ between the whole batch and its parts: a spike whose
#: membrane lies within float32 rounding of the threshold can flip when a matmul sums
#: its rows in another order; a step that mixes rows changes nearly every entry
FLIP_FRACTION = 1e-3


def _rebatch(tree, rows: int):
    return jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct((rows,) + tuple(s.shape[1:]), s.dtype), tree,
        is_leaf=is_spec)


def _random(spec_or_value, rng: np.random.Generator):
    """A random value like ``spec_or_value``: floats normal, integers and booleans 0/1."""
    shape, dtype = tuple(spec_or_value.shape), np.dtype(spec_or_value.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 2, shape).astype(dtype)


def _state_axes(full, part, shards: int, where: SourceLoc) -> list[int | None]:
    """The batch axis of every state leaf: where init_state(B) is N times init_state(B/N)
    (None for a leaf without one, which must then be the same in every part)."""
    axes = []
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(part)):
        sa, sb = np.shape(a), np.shape(b)
        diff = [i for i, (x, y) in enumerate(zip(sa, sb)) if x != y]
        if len(sa) != len(sb) or len(diff) > 1 or (diff and sa[diff[0]] != shards * sb[diff[0]]):
            raise TracecError(f"batch_shards (--batch-shards) {shards}: init_state gives a state "
                              f"leaf of shape {list(sa)} for the whole batch and {list(sb)} for "
                              "a part, which is not a split along one axis", loc=where,
                              hint="give every state leaf the batch as one of its axes")
        axes.append(diff[0] if diff else None)
    return axes


def _take(tree, axis_of, i: int, rows: int):
    """Part ``i`` (``rows`` rows) of every leaf of ``tree`` along its batch axis."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    out = []
    for leaf, axis in zip(leaves, axis_of(len(leaves))):
        out.append(leaf if axis is None else
                   jax.lax.slice_in_dim(leaf, i * rows, (i + 1) * rows, axis=axis))
    return jax.tree_util.tree_unflatten(treedef, out)


def _rows_agree(whole, parts: list, axis_of, what: str, shards: int, where: SourceLoc) -> None:
    """``whole`` equals the parts put back together, leaf by leaf, to float32 rounding
    (and at most ``FLIP_FRACTION`` of a leaf's entries off by more: flipped spikes)."""
    w_leaves = jax.tree_util.tree_leaves(whole)
    p_leaves = [jax.tree_util.tree_leaves(p) for p in parts]
    for j, (w, axis) in enumerate(zip(w_leaves, axis_of(len(w_leaves)))):
        w = np.asarray(w)
        if axis is None:
            got = np.asarray(p_leaves[0][j])
        else:
            got = np.concatenate([np.asarray(p[j]) for p in p_leaves], axis=axis)
        if got.shape != w.shape:
            raise TracecError(f"batch_shards (--batch-shards) {shards}: {what} has shape "
                              f"{list(w.shape)} for the whole batch, but the parts' put "
                              f"together make {list(got.shape)}", loc=where,
                              hint="outputs must be batch first, like the input")
        scale = max(1.0, float(np.max(np.abs(w)))) if w.size and w.dtype.kind == "f" else 1.0
        off = ~np.isclose(got, w, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)
        if np.count_nonzero(off) > max(1, FLIP_FRACTION * w.size):
            raise TracecError(f"batch_shards (--batch-shards) {shards}: the rows of the batch "
                              f"meet in the step ({what} differs when the batch is computed in "
                              "parts)", loc=where,
                              hint="a step that mixes rows (a batch norm, a mean over the "
                                   "batch) cannot be split; compile without --batch-shards")


def _failed(err: Exception, what: str, model_file: str) -> TracecError:
    """A step or loss that fails at the part's batch: the user's line, what to do."""
    from tracec.frontends.lower_jax import _user_error

    located = _user_error(model_file, what, err)
    return TracecError(located.message, loc=located.loc,
                       hint="the batch size must come from the shapes of the arguments, "
                            "not a constant (jnp.arange(B), a reshape to B rows)")


def shard_model(model: Model, shards: int, *, seed: int, model_file: str) -> tuple[Model, dict]:
    """The model at ``B / shards`` rows and the manifest's ``batch_shards`` record
    (``parts``, ``batch``, ``loss``: ``mean`` or ``sum``, ``state_axes``)."""
    where = SourceLoc(display_path(model_file))
    B = model.batch
    if B % shards:
        raise TracecError(f"batch_shards (--batch-shards) {shards} does not divide the "
                          f"batch {B}", loc=where,
                          hint=f"choose a number of parts that divides {B}")
    rows = B // shards
    part = dataclasses.replace(model, input=_rebatch(model.input, rows),
                               target=None if model.target is None
                               else _rebatch(model.target, rows))
    try:
        params = model.init_params(jax.random.PRNGKey(seed))
        state0 = model.init_state(B)
        state_part = model.init_state(rows)
    except Exception as e:
        raise TracecError(f"batch_shards (--batch-shards) {shards}: init_params or "
                          f"init_state failed: {type(e).__name__}: {e}", loc=where) from e
    axes = _state_axes(state0, state_part, shards, where)
    rng = np.random.default_rng(seed)
    state = jax.tree_util.tree_map(lambda v: _random(v, rng) * 0.5 + np.asarray(v)
                                   if np.dtype(v.dtype).kind == "f" else np.asarray(v), state0)
    seq = model.sequence is not None
    fn = model.sequence or model.step
    lead = (3,) if seq else ()  # a sequence model runs three steps
    x = jax.tree_util.tree_map(
        lambda s: _random(jax.ShapeDtypeStruct(lead + tuple(s.shape), s.dtype), rng),
        model.input, is_leaf=is_spec)
    in_axis, out_axis = (1, 1) if seq else (0, 0)
    run = jax.jit(fn)
    try:
        new_state, out = run(params, state, x)
        parts = [run(params, _take(state, lambda n: axes, i, rows),
                     _take(x, lambda n: [in_axis] * n, i, rows)) for i in range(shards)]
    except Exception as e:
        raise _failed(e, f"batch_shards (--batch-shards) {shards}: the step at {rows} rows",
                      model_file) from e
    _rows_agree(new_state, [p[0] for p in parts], lambda n: axes, "the new state", shards, where)
    _rows_agree(out, [p[1] for p in parts], lambda n: [out_axis] * n, "the output", shards, where)
    record = {"parts": shards, "batch": B, "state_axes": axes}
    if model.loss is None or model.target is None:
        return part, record
    target = jax.tree_util.tree_map(
        lambda s: _random(s, rng) if np.dtype(s.dtype).kind == "f"
        else np.zeros(s.shape, s.dtype), model.target, is_leaf=is_spec)
    loss = jax.jit(model.loss)
    if seq:  # the loss sees one step's output
        out = jax.tree_util.tree_map(lambda o: o[-1], out)
    try:
        whole = float(loss(out, target))
        each = [float(loss(_take(out, lambda n: [0] * n, i, rows),
                           _take(target, lambda n: [0] * n, i, rows))) for i in range(shards)]
    except Exception as e:
        raise _failed(e, f"batch_shards (--batch-shards) {shards}: the loss at {rows} rows",
                      model_file) from e

    def close(a: float) -> bool:
        return bool(np.isclose(whole, a, rtol=1e-4, atol=1e-6 * max(1.0, abs(whole))))

    if whole != 0 and close(sum(each) / shards):
        record["loss"] = "mean"
    elif whole != 0 and close(sum(each)):
        record["loss"] = "sum"
    else:
        raise TracecError(f"batch_shards (--batch-shards) {shards}: the loss is neither the "
                          f"mean nor the sum of its value on the parts of the batch ({whole:g} "
                          f"for the whole batch, {', '.join(f'{v:g}' for v in each)} for the "
                          "parts)", loc=where,
                          hint="average or sum a per-row loss over the batch, or compile "
                               "without --batch-shards")
    return part, record
