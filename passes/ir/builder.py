"""Build StableHLO ops in xDSL without repeating property plumbing in every pass.

Every op built here gets the location given to the :class:`Builder`, so IR a pass
creates still points at the user's line (xDSL does not copy locations by itself).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from xdsl.dialects.builtin import (
    BytesAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    LocationAttr,
    TensorType,
    UnknownLoc,
    UnregisteredOp,
    f32,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.parser import Parser
from xdsl.traits import IsTerminator

from tracec.dialects import make_context
from tracec.dialects import stablehlo as shlo

@lru_cache(maxsize=1)
def _context():
    return make_context()


@lru_cache(maxsize=None)
def stablehlo_attr(text: str) -> Attribute:
    """A StableHLO dialect attribute, e.g. ``#stablehlo<comparison_direction LT>``."""
    return Parser(_context(), text).parse_attribute()


class Builder:
    """Appends ops to a block; every op gets ``loc``."""

    def __init__(self, block: Block, loc: LocationAttr | None = None,
                 before: Operation | None = None):
        self.block = block
        self.loc = loc or UnknownLoc()
        self.before = before

    def add(self, op: Operation) -> Operation:
        op.location = self.loc
        if self.before is not None:
            self.block.insert_op_before(op, self.before)
        else:
            self.block.add_op(op)
        return op

    def raw(self, name: str, operands, result_types, properties=None, regions=()) -> Operation:
        """An op tracec has no typed definition for (printed generically, as parsed)."""
        cls = _context().get_optional_op(name) or UnregisteredOp.with_name(name)
        op = cls.create(operands=[SSAValue.get(o) for o in operands], result_types=result_types,
                        properties=properties or {}, regions=list(regions))
        return self.add(op)

    def constant(self, value: np.ndarray) -> SSAValue:
        arr = np.asarray(value)  # tobytes() is C order; ascontiguousarray would make 0-d arrays 1-d
        etype = {np.dtype(np.float32): f32, np.dtype(np.int32): i32,
                 np.dtype(np.int64): i64}[arr.dtype]
        attr = DenseIntOrFPElementsAttr(TensorType(etype, list(arr.shape)), BytesAttr(arr.tobytes()))
        return self.add(shlo.ConstantOp(attr)).results[0]

    def i32(self, v: int) -> SSAValue:
        return self.constant(np.array(v, np.int32))

    def add_(self, a, b) -> SSAValue:
        return self.add(shlo.AddOp.create(operands=[SSAValue.get(a), SSAValue.get(b)],
                                          result_types=[SSAValue.get(a).type])).results[0]

    def compare(self, a, b, direction: str, kind: str = "SIGNED") -> SSAValue:
        ta = SSAValue.get(a).type
        return self.raw("stablehlo.compare", [a, b], [TensorType(IntegerType(1), ta.get_shape())], {
            "comparison_direction": stablehlo_attr(f"#stablehlo<comparison_direction {direction}>"),
            "compare_type": stablehlo_attr(f"#stablehlo<comparison_type {kind}>"),
        }).results[0]

    def reshape(self, v, shape) -> SSAValue:
        t = SSAValue.get(v).type
        return self.add(shlo.ReshapeOp.create(operands=[SSAValue.get(v)],
                                              result_types=[TensorType(t.element_type, list(shape))])).results[0]

    def dynamic_slice(self, v, starts, sizes) -> SSAValue:
        t = SSAValue.get(v).type
        return self.add(shlo.DynamicSliceOp.create(
            operands=[SSAValue.get(v), *[SSAValue.get(s) for s in starts]],
            result_types=[TensorType(t.element_type, list(sizes))],
            properties={"slice_sizes": DenseArrayBase.from_list(i64, list(sizes))})).results[0]

    def dynamic_update_slice(self, v, update, starts) -> SSAValue:
        return self.add(shlo.DynamicUpdateSliceOp.create(
            operands=[SSAValue.get(v), SSAValue.get(update), *[SSAValue.get(s) for s in starts]],
            result_types=[SSAValue.get(v).type])).results[0]

    def dimension_size(self, v, dim: int) -> SSAValue:
        return self.add(shlo.GetDimensionSizeOp.create(
            operands=[SSAValue.get(v)], result_types=[TensorType(i32, [])],
            properties={"dimension": IntegerAttr(dim, i64)})).results[0]

    def concatenate(self, values, dim: int, result_type) -> SSAValue:
        return self.add(shlo.ConcatenateOp.create(
            operands=[SSAValue.get(v) for v in values], result_types=[result_type],
            properties={"dimension": IntegerAttr(dim, i64)})).results[0]

    def dynamic_broadcast(self, scalar, shape_tensor, result_type) -> SSAValue:
        return self.add(shlo.DynamicBroadcastInDimOp.create(
            operands=[SSAValue.get(scalar), SSAValue.get(shape_tensor)], result_types=[result_type],
            properties={"broadcast_dimensions": DenseArrayBase.from_list(i64, [])})).results[0]

    def broadcast(self, scalar, result_type) -> SSAValue:
        return self.add(shlo.BroadcastInDimOp.create(
            operands=[SSAValue.get(scalar)], result_types=[result_type],
            properties={"broadcast_dimensions": DenseArrayBase.from_list(i64, [])})).results[0]

    def ret(self, values, kind=shlo.ReturnOp) -> Operation:
        return self.add(kind(list(values)) if kind is shlo.ReturnOp else kind(*values))


def clone_block_ops(block: Block, builder: Builder, args: list[SSAValue],
                    value_map: dict | None = None) -> list[SSAValue]:
    """Copy ``block``'s ops (not its terminator) to ``builder`` with its arguments bound to
    ``args``; return the terminator's operands mapped. Each op keeps its own location."""
    value_map = dict(value_map or {})
    value_map.update(zip(block.args, args))
    for op in block.ops:
        if op is block.last_op and op.has_trait(IsTerminator):
            return [value_map.get(v, v) for v in op.operands]
        clone = op.clone(value_mapper=value_map)
        if builder.before is not None:
            builder.block.insert_op_before(clone, builder.before)
        else:
            builder.block.add_op(clone)
        for old, new in zip(op.results, clone.results):
            value_map[old] = new
    raise ValueError("block has no terminator")


def captured_values(region) -> list[SSAValue]:
    """Values used inside ``region`` but defined outside it, in first-use order."""
    inside = set()
    for op in region.walk():
        inside.update(op.results)
        for r in op.regions:
            for b in r.blocks:
                inside.update(b.args)
    for b in region.blocks:
        inside.update(b.args)
    seen: dict[SSAValue, None] = {}
    for op in region.walk():
        for v in op.operands:
            if v not in inside and v not in seen:
                seen[v] = None
    return list(seen)
