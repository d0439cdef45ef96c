"""Where the elements of a gather or a scatter come from and go to, when the indices are
known at compile time (a connection list written as constants).

- :func:`static_value` evaluates a value computed from constants alone (the index
  arithmetic JAX emits around ``x[:, idx]``: negative-index wrapping, broadcasts);
- :func:`gather_sources`: for each element of a ``stablehlo.gather``'s result, the flat
  index of the operand element it reads;
- :func:`scatter_targets`: for each element of a ``stablehlo.scatter``'s updates, the flat
  index of the result element it goes to (-1: dropped, out of bounds).

Both follow the StableHLO specification's index arithmetic (batch, offset, collapsed and
batching dimensions), vectorised with numpy over all elements at once.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects.builtin import AnyFloat, TensorType
from xdsl.ir import Operation, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.attributes import compare_direction, ints

_COMPARE = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
            "GT": np.greater, "GE": np.greater_equal}
_BINARY = {shlo.AddOp: np.add, shlo.SubtractOp: np.subtract, shlo.MultiplyOp: np.multiply,
           shlo.MaximumOp: np.maximum, shlo.MinimumOp: np.minimum, shlo.AndOp: np.logical_and,
           shlo.OrOp: np.logical_or}


def _shape(v: SSAValue) -> list[int]:
    return list(v.type.get_shape())


def _dtype(t) -> type:
    et = t.element_type
    if isinstance(et, AnyFloat):
        return np.float64
    return np.bool_ if getattr(et, "width", None) is not None and et.width.data == 1 else np.int64


_REDUCE = {shlo.AndOp: np.logical_and, shlo.OrOp: np.logical_or, shlo.AddOp: np.add,
           shlo.MaximumOp: np.maximum, shlo.MinimumOp: np.minimum, shlo.MultiplyOp: np.multiply}


def _reduce(op, ins: list) -> np.ndarray | None:
    """A one-input ``stablehlo.reduce`` whose body is one binary op of ``_REDUCE``."""
    if len(ins) != 2:
        return None
    body = list(op.body.block.ops)
    if len(body) != 2 or type(body[0]) not in _REDUCE:
        return None
    fn = _REDUCE[type(body[0])]
    return fn(fn.reduce(ins[0], axis=tuple(ints(op.dimensions))), ins[1])


def static_value(v: SSAValue, cache: dict | None = None) -> np.ndarray | None:
    """The value of ``v`` when it is computed from constants alone by the ops index
    arithmetic uses; else None."""
    cache = {} if cache is None else cache
    if v in cache:
        return cache[v]
    if not isinstance(v.type, TensorType):  # an index, a token, ...: not index arithmetic
        return None
    op = v.owner
    out = None
    if isinstance(op, shlo.ReduceOp) and len(op.results) == 1:
        ins = [static_value(o, cache) for o in op.operands]
        out = _reduce(op, ins) if all(i is not None for i in ins) else None
    elif isinstance(op, Operation) and len(op.results) == 1 and not op.regions:
        if isinstance(op, shlo.ConstantOp):
            vals = np.asarray(op.value.get_values(), dtype=_dtype(v.type))
            if vals.size == 1:
                out = np.broadcast_to(vals.reshape(()), _shape(v))
            elif vals.size == math.prod(_shape(v)):
                out = vals.reshape(_shape(v))
        elif isinstance(op, shlo.IotaOp):
            shape = _shape(v)
            dim = op.iota_dimension.value.data
            out = np.broadcast_to(np.arange(shape[dim]).reshape(
                [n if d == dim else 1 for d, n in enumerate(shape)]), shape)
        else:
            ins = [static_value(o, cache) for o in op.operands]
            if all(i is not None for i in ins):
                out = _evaluate(op, ins)
    cache[v] = out
    return out


def _evaluate(op: Operation, ins: list) -> np.ndarray | None:
    shape = _shape(op.results[0])
    if type(op) in _BINARY:
        return _BINARY[type(op)](ins[0], ins[1])
    if isinstance(op, shlo.GatherOp):  # constants looked up at constant indices
        return ins[0].reshape(-1)[gather_sources(op, ins[1])]
    if isinstance(op, shlo.RemainderOp):
        return np.fmod(ins[0], ins[1])  # the dividend's sign, as StableHLO
    if isinstance(op, shlo.NegateOp):
        return -ins[0]
    if isinstance(op, shlo.ConvertOp):
        return ins[0].astype(_dtype(op.results[0].type))
    if isinstance(op, shlo.CompareOp):
        fn = _COMPARE.get(compare_direction(op) or "")
        return None if fn is None else fn(ins[0], ins[1])
    if isinstance(op, shlo.SelectOp):
        return np.where(ins[0], ins[1], ins[2])
    if isinstance(op, shlo.ClampOp):
        return np.clip(ins[1], ins[0], ins[2])
    if isinstance(op, shlo.BroadcastInDimOp):
        placed = [1] * len(shape)
        for d, n in zip(ints(op.broadcast_dimensions), ins[0].shape):
            placed[d] = n
        return np.broadcast_to(ins[0].reshape(placed), shape)
    if isinstance(op, shlo.ReshapeOp):
        return ins[0].reshape(shape)
    if isinstance(op, shlo.TransposeOp):
        return ins[0].transpose(ints(op.permutation))
    if isinstance(op, shlo.ConcatenateOp):
        return np.concatenate(ins, axis=op.dimension.value.data)
    if isinstance(op, shlo.SliceOp):
        return ins[0][tuple(slice(a, b, s) for a, b, s in zip(
            ints(op.start_indices), ints(op.limit_indices), ints(op.strides)))]
    return None


def _index_vectors(indices: np.ndarray, ivd: int) -> np.ndarray:
    """``indices`` with the index vector dimension moved last ([..., K])."""
    if ivd == indices.ndim:
        indices = indices[..., None]
    return np.moveaxis(indices, ivd, -1)


def _batch_position(j: int, ivd: int) -> int:
    """The position among the indices' batch dimensions of indices dimension ``j``."""
    return j if j < ivd else j - 1


def gather_sources(op, indices: np.ndarray) -> np.ndarray:
    """Result-shaped: the flat operand index each result element reads."""
    f = shlo.struct_fields(op.dimension_numbers)
    offset_dims = list(f.get("offset_dims", []))
    collapsed = list(f.get("collapsed_slice_dims", []))
    op_batch = list(f.get("operand_batching_dims", []))
    idx_batch = list(f.get("start_indices_batching_dims", []))
    start_map = list(f.get("start_index_map", []))
    ivd = int(f.get("index_vector_dim", indices.ndim))
    sizes = ints(op.slice_sizes)
    operand, result = _shape(op.operands[0]), _shape(op.results[0])
    grid = np.indices(result, dtype=np.int64)
    batch_dims = [d for d in range(len(result)) if d not in offset_dims]
    vectors = _index_vectors(np.asarray(indices, np.int64), ivd)
    start = vectors[tuple(grid[d] for d in batch_dims)]  # [*result, K]
    full = np.zeros(result + [len(operand)], np.int64)
    for k, d in enumerate(start_map):
        full[..., d] = np.clip(start[..., k], 0, operand[d] - sizes[d])
    for d, j in zip(op_batch, idx_batch):
        full[..., d] = grid[batch_dims[_batch_position(j, ivd)]]
    window = [d for d in range(len(operand)) if d not in collapsed and d not in op_batch]
    for d, od in zip(window, offset_dims):
        full[..., d] += grid[od]
    return np.ravel_multi_index(tuple(np.moveaxis(full, -1, 0)), operand)


def scatter_targets(op, indices: np.ndarray) -> np.ndarray:
    """Updates-shaped: the flat result index each update element goes to (-1: dropped)."""
    f = shlo.struct_fields(op.scatter_dimension_numbers)
    window_dims = list(f.get("update_window_dims", []))
    inserted = list(f.get("inserted_window_dims", []))
    in_batch = list(f.get("input_batching_dims", []))
    idx_batch = list(f.get("scatter_indices_batching_dims", []))
    to_operand = list(f.get("scatter_dims_to_operand_dims", []))
    ivd = int(f.get("index_vector_dim", indices.ndim))
    n_in = (len(op.operands) - 1) // 2
    result, updates = _shape(op.operands[0]), _shape(op.operands[1 + n_in])
    grid = np.indices(updates, dtype=np.int64)
    scatter_dims = [d for d in range(len(updates)) if d not in window_dims]
    vectors = _index_vectors(np.asarray(indices, np.int64), ivd)
    start = vectors[tuple(grid[d] for d in scatter_dims)]
    full = np.zeros(updates + [len(result)], np.int64)
    for k, d in enumerate(to_operand):
        full[..., d] = start[..., k]
    for d, j in zip(in_batch, idx_batch):
        full[..., d] = grid[scatter_dims[_batch_position(j, ivd)]]
    window = [d for d in range(len(result)) if d not in inserted and d not in in_batch]
    for d, ud in zip(window, window_dims):
        full[..., d] += grid[ud]
    inside = np.all((full >= 0) & (full < np.asarray(result)), axis=-1)
    flat = np.ravel_multi_index(tuple(np.moveaxis(np.where(inside[..., None], full, 0), -1, 0)),
                                result)
    return np.where(inside, flat, -1)
