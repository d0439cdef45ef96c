"""guard-scatter-indices: a scatter index out of range is dropped, never written past its buffer.

StableHLO's scatter drops an update whose window would fall outside the result, and JAX
relies on it: ``x.at[i].add(u)`` and ``segment_sum`` skip an ``i`` outside ``x`` (JAX's
default ``mode="drop"``), and XLA does so. IREE 3.13's llvm-cpu code writes such an
update wherever the index points: a model whose indices come from data (a token, a
class, a bin computed from the input) corrupts the heap of the process that runs it
("free(): invalid next size"). This pass makes the drop explicit, so the binary does
what the model says on every backend.

Before: any module. After: every ``stablehlo.scatter`` whose indices are not known to
be in range reads only in-range indices:
- a scatter that adds (one input, body ``add``): an index vector whose window would
  leave the result becomes all zeros, and its update becomes 0 (no copy of the result);
- any other scatter: its inputs are padded by the window size on each indexed
  dimension, an out-of-range index vector points into the padding, and the result is
  the slice of the original shape.
A scatter is left as it is when its indices are constants in range, or a
``stablehlo.clamp`` whose constant bounds keep them in range (JAX's ``mode="clip"``,
and the scatters tracec's own derivative rules emit), or when a shape is dynamic.
In range means, as in XLA: ``0 <= i[k] <= dim - window`` for every component ``k``
(the whole update window inside the result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import IntegerAttr, IntegerType, ModuleOp, TensorType
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.dataflow import is_scatter_add
from tracec.passes.analysis.index_maps import static_value
from tracec.passes.ir.builder import Builder, shape


@dataclass(frozen=True)
class _Layout:
    """What a scatter's dimension numbers say about its indices."""

    ivd: int            # index_vector_dim (== rank of the indices: scalar index vectors)
    to_operand: list    # component k indexes result dimension to_operand[k]
    highest: list       # the largest in-range value of component k
    update_scatter_dims: list  # the updates' dimensions that follow the index batch


def _layout(op: Operation) -> _Layout | None:
    f = shlo.struct_fields(op.scatter_dimension_numbers)
    n_in = (len(op.operands) - 1) // 2
    result, idx, updates = (shape(op.operands[0]), shape(op.operands[n_in]),
                            shape(op.operands[n_in + 1]))
    if any(d < 0 for d in result + idx + updates):
        return None
    window_dims = list(f.get("update_window_dims", []))
    excluded = set(f.get("inserted_window_dims", [])) | set(f.get("input_batching_dims", []))
    window = [1] * len(result)
    for d, ud in zip([d for d in range(len(result)) if d not in excluded], window_dims):
        window[d] = updates[ud]
    to_operand = list(f.get("scatter_dims_to_operand_dims", []))
    highest = [result[d] - window[d] for d in to_operand]
    if any(h < 0 for h in highest):
        return None  # no index is in range: the verifier's business, not ours
    return _Layout(int(f.get("index_vector_dim", len(idx))), to_operand, highest,
                   [d for d in range(len(updates)) if d not in window_dims])


def _components(values: np.ndarray, lay: _Layout) -> list[np.ndarray]:
    if lay.ivd == values.ndim:
        return [values]
    return [np.take(values, k, axis=lay.ivd) for k in range(len(lay.to_operand))]


def _known_in_range(idx, lay: _Layout) -> bool:
    def within(lo: np.ndarray, hi: np.ndarray) -> bool:
        return all(np.all(a >= 0) and np.all(b <= h)
                   for a, b, h in zip(_components(lo, lay), _components(hi, lay), lay.highest))

    values = static_value(idx)
    if values is not None:
        return within(values, values)
    if isinstance(idx.owner, shlo.ClampOp):
        lo, _, hi = idx.owner.operands
        lo_v, hi_v = static_value(lo), static_value(hi)
        if lo_v is not None and hi_v is not None:
            full = shape(idx)
            return within(np.broadcast_to(lo_v, full), np.broadcast_to(hi_v, full))
    return False


def _in_range(em: Builder, idx, lay: _Layout):
    """i1, shaped like the indices with the index-vector dimension kept at size 1 (or
    like the indices when index vectors are scalars): the whole vector is in range."""
    full = shape(idx)
    ok = None
    for k, top in enumerate(lay.highest):
        if lay.ivd == len(full):
            comp = idx
        else:
            start = [0] * len(full)
            limit = list(full)
            start[lay.ivd], limit[lay.ivd] = k, k + 1
            comp = em.slice(idx, start, limit)
        inside = em.logical_and(em.compare(comp, em.zeros(comp), "GE"),
                                em.compare(comp, em.full(top, comp), "LE"))
        ok = inside if ok is None else em.logical_and(ok, inside)
    return ok


def guard(op: Operation) -> bool:
    """Rewrite one scatter; False (and no change) where its indices are safe already."""
    n_in = (len(op.operands) - 1) // 2
    idx = op.operands[n_in]
    lay = _layout(op)
    if lay is None or _known_in_range(idx, lay):
        return False
    em = Builder(op.parent_block(), before=op)
    em.loc = op.location
    full = shape(idx)
    ok = _in_range(em, idx, lay)
    ok_full = em.broadcast_in_dim(ok, full, range(len(full)))
    props = dict(op.properties)
    for claim in ("indices_are_sorted", "unique_indices"):  # redirected indices repeat
        if claim in props:
            props[claim] = IntegerAttr(0, IntegerType(1))
    if is_scatter_add(op):
        batch = [n for d, n in enumerate(full) if d != lay.ivd]
        ok_batch = em.reshape(ok, batch)
        upd = op.operands[2]
        upd_ok = em.broadcast_in_dim(ok_batch, shape(upd), lay.update_scatter_dims)
        op.operands = [op.operands[0], em.select(ok_full, idx, em.zeros(idx)),
                       em.select(upd_ok, upd, em.zeros(upd))]
        op.properties.update(props)
        return True
    # any other combiner: out-of-range vectors land in padding that is sliced away
    outside = np.zeros(full, np.int64)
    for k, d in enumerate(lay.to_operand):
        if lay.ivd == len(full):
            outside[...] = shape(op.operands[0])[d]
        else:
            outside[(slice(None),) * lay.ivd + (k,)] = shape(op.operands[0])[d]
    safe = em.select(ok_full, idx, em.constant(outside, idx.type))
    inputs = list(op.operands[:n_in])
    res_shape = shape(inputs[0])
    high = [0] * len(res_shape)
    for d, top in zip(lay.to_operand, lay.highest):
        high[d] = res_shape[d] - top  # the window size on that dimension
    padded = [em.pad(x, em.zeros(TensorType(x.type.element_type, [])), [0] * len(res_shape),
                     high, [0] * len(res_shape)) for x in inputs]
    new = em.insert(shlo.ScatterOp.create(
        operands=[*padded, safe, *op.operands[n_in + 1:]],
        result_types=[x.type for x in padded], properties=props,
        regions=[op.regions[0].clone()]))
    for old, value in zip(op.results, new.results):
        old.replace_all_uses_with(em.slice(value, [0] * len(res_shape), res_shape))
    op.detach()
    op.erase()
    return True


@dataclass(frozen=True)
class GuardScatterIndicesPass(ModulePass):
    name = "guard-scatter-indices"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for scatter in [o for o in op.walk() if isinstance(o, shlo.ScatterOp)]:
            guard(scatter)
