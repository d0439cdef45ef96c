"""Index vectors of gathers and scatters: their bounds, clamped as a gather reads them,
and whether each whole window lies in the operand (XLA's rule, which JAX's ``mode="drop"``
relies on). Shared by the derivative rules of gather and scatter and by
guard-scatter-indices."""

from __future__ import annotations

import numpy as np
from xdsl.dialects.builtin import TensorType

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.builder import shape


def constant_array(v):
    owner = v.owner
    if not isinstance(owner, shlo.ConstantOp):
        return None
    values = np.asarray(owner.value.get_values())
    return np.broadcast_to(values, shape(v)) if values.size == 1 else values.reshape(shape(v))


def index_bounds(em, indices, ivd, bounds):
    """``bounds`` (the largest start per index component) as a tensor like ``indices``."""
    ish = shape(indices)
    if ivd == len(ish):  # an implicit trailing index vector of one component
        return em.full(bounds[0], indices)
    vec = em.constant(bounds, TensorType(indices.type.element_type, [len(bounds)]))
    return em.broadcast_in_dim(vec, ish, [ivd])


def values_in_bounds(lo: np.ndarray, hi: np.ndarray, ivd: int, bounds) -> bool:
    """Every index vector of ``lo`` is >= 0 and every one of ``hi`` <= ``bounds``
    (component-wise; ``ivd``: the index vector dimension of both)."""
    def vectors(values):
        return np.moveaxis(values[..., None] if ivd == values.ndim else values, ivd, -1)

    return bool((vectors(lo) >= 0).all() and (vectors(hi) <= np.asarray(bounds)).all())


def statically_in_bounds(indices, ivd, bounds) -> bool:
    values = constant_array(indices)
    return values is not None and values_in_bounds(values, values, ivd, bounds)


def clamped_indices(em, indices, ivd, index_map, operand_shape, sizes):
    """The start indices as a gather uses them: clamped so the window fits."""
    bounds = [operand_shape[d] - sizes[d] for d in index_map]
    if statically_in_bounds(indices, ivd, bounds):
        return indices
    return em.clamp(em.zeros(indices), indices, index_bounds(em, indices, ivd, bounds))


def in_bounds(em, indices, ivd, index_map, operand_shape, sizes):
    """Per index vector (``indices`` without ``index_vector_dim``): whether its whole
    window lies in the operand (i1), or None when the indices are constants that do."""
    bounds = [operand_shape[d] - sizes[d] for d in index_map]
    if statically_in_bounds(indices, ivd, bounds):
        return None
    hi = index_bounds(em, indices, ivd, bounds)
    ok = em.logical_and(em.compare(indices, em.zeros(indices), "GE"), em.compare(indices, hi, "LE"))
    return em.reduce(ok, [ivd], shlo.AndOp, 1) if ivd < len(shape(indices)) else ok


def scatter_as_gather(s: dict, operand_shape, updates_shape):
    """The gather that reads where a scatter writes, and its slice sizes (JAX's
    transpose of scatter-add)."""
    window = s.get("update_window_dims", [])
    inserted = s.get("inserted_window_dims", [])
    batching = s.get("input_batching_dims", [])
    dims = {"offset_dims": window, "collapsed_slice_dims": inserted,
            "operand_batching_dims": batching,
            "start_indices_batching_dims": s.get("scatter_indices_batching_dims", []),
            "start_index_map": s.get("scatter_dims_to_operand_dims", []),
            "index_vector_dim": s.get("index_vector_dim", 0)}
    sizes, pos = [], 0
    for d in range(len(operand_shape)):
        if d in inserted or d in batching:
            sizes.append(1)
        else:
            sizes.append(updates_shape[window[pos]])
            pos += 1
    return dims, sizes
