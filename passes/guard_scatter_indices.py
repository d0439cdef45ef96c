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
from tracec.passes.ir.indexing import in_bounds, scatter_as_gather, values_in_bounds


def _clamped_in_range(idx, ivd: int, bounds: list) -> bool:
    """``idx`` is a ``stablehlo.clamp`` whose constant bounds keep every component ``k``
    in ``[0, bounds[k]]`` (JAX's ``mode="clip"``, tracec's own derivative rules)."""
    if not isinstance(idx.owner, shlo.ClampOp):
        return False
    lo, _, hi = idx.owner.operands
    lo_v, hi_v = static_value(lo), static_value(hi)
    if lo_v is None or hi_v is None:
        return False
    full = shape(idx)
    return values_in_bounds(np.broadcast_to(lo_v, full), np.broadcast_to(hi_v, full), ivd, bounds)


def guard(op: Operation) -> bool:
    """Rewrite one scatter; False (and no change) where its indices are safe already."""
    n_in = (len(op.operands) - 1) // 2
    inputs, idx, upd = list(op.operands[:n_in]), op.operands[n_in], op.operands[n_in + 1]
    res_shape = shape(inputs[0])
    if any(d < 0 for d in res_shape + shape(idx) + shape(upd)):
        return False
    fields = shlo.struct_fields(op.scatter_dimension_numbers)
    dims, sizes = scatter_as_gather(fields, res_shape, shape(upd))
    ivd, index_map = dims["index_vector_dim"], dims["start_index_map"]
    bounds = [res_shape[d] - sizes[d] for d in index_map]
    if any(b < 0 for b in bounds) or _clamped_in_range(idx, ivd, bounds):
        return False  # no index fits (the verifier's business), or every index does
    em = Builder(op.parent_block(), before=op)
    em.loc = op.location
    ok = in_bounds(em, idx, ivd, index_map, res_shape, sizes)  # per index vector
    if ok is None:  # constants in range
        return False
    full = shape(idx)
    batch_dims = [d for d in range(len(full)) if d != ivd]
    ok_full = em.broadcast_in_dim(ok, full, batch_dims)
    props = dict(op.properties)
    for claim in ("indices_are_sorted", "unique_indices"):  # redirected indices repeat
        if claim in props:
            props[claim] = IntegerAttr(0, IntegerType(1))
    if is_scatter_add(op):
        window = fields.get("update_window_dims", [])
        upd_ok = em.broadcast_in_dim(ok, shape(upd), [d for d in range(len(shape(upd)))
                                                      if d not in window])
        op.operands = [inputs[0], em.select(ok_full, idx, em.zeros(idx)),
                       em.select(upd_ok, upd, em.zeros(upd))]
        op.properties.update(props)
        return True
    # any other combiner: out-of-range vectors point into padding that is sliced away
    outside = np.zeros(full, np.int64)
    for k, d in enumerate(index_map):
        if ivd == len(full):
            outside[...] = res_shape[d]
        else:
            outside[(slice(None),) * ivd + (k,)] = res_shape[d]
    safe = em.select(ok_full, idx, em.constant(outside, idx.type))
    high = [0] * len(res_shape)
    for d in index_map:
        high[d] = sizes[d]  # room for a whole window past the end
    zeros = [0] * len(res_shape)
    padded = [em.pad(x, em.zeros(TensorType(x.type.element_type, [])), zeros, high, zeros)
              for x in inputs]
    new = em.insert(shlo.ScatterOp.create(
        operands=[*padded, safe, *op.operands[n_in + 1:]],
        result_types=[x.type for x in padded], properties=props,
        regions=[op.regions[0].clone()]))
    for old, value in zip(op.results, new.results):
        old.replace_all_uses_with(em.slice(value, zeros, res_shape))
    op.detach()
    op.erase()
    return True


@dataclass(frozen=True)
class GuardScatterIndicesPass(ModulePass):
    name = "guard-scatter-indices"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for scatter in [o for o in op.walk() if isinstance(o, shlo.ScatterOp)]:
            guard(scatter)
