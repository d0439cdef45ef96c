"""The one IR builder of the passes: StableHLO ops with folding, reuse and locations.

``Builder(block, before=None, loc=None)`` appends ops before ``before`` (default: the
block's terminator). Element-wise arithmetic folds zeros (``None`` stands for zero),
ones, double negations and broadcasts of splats; an op equal to one already built or
already in the block before the insertion point is reused (hash-consing, i.e. CSE of new
ops); every new op gets ``builder.loc``. The autodiff engine, the learning rules and
the rewriting passes all build IR through it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    LocationAttr,
    TensorType,
    UnknownLoc,
    UnitAttr,
    UnregisteredOp,
    f32,
    i32,
    i64,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.traits import IsTerminator, NoMemoryEffect, Pure

from tracec.diagnostics import Diagnostic
from tracec.dialects import make_context
from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.attributes import compare_props, dot_attr, dot_dims, i64s, ints, padding_attr
from tracec.passes.ir.module import source_loc

#: The attribute that marks an optimization barrier as a fusion barrier only.
FUSION_BARRIER = "tracec.fusion_barrier"
#: where a step counter stops (``Builder.next_count``): 2^30, exact in f32, and far past
#: the count at which any bias correction 1/(1-α^n) with α ≤ 1 - 1e-7 is 1 in f32
COUNT_LIMIT = 2 ** 30

_ELEMENT_TYPES = {np.dtype(np.float32): f32, np.dtype(np.int32): i32, np.dtype(np.int64): i64}


@lru_cache(maxsize=1)
def _context():
    return make_context()


# ---------------------------------------------------------------------------------
# Types


def is_float(v: SSAValue) -> bool:
    t = v.type
    return isinstance(t, TensorType) and isinstance(t.element_type, AnyFloat)


def shape(v: SSAValue | TensorType) -> list[int]:
    t = v if isinstance(v, TensorType) else v.type
    return list(t.get_shape())


def _scalar_body(types, build) -> Region:
    """A reduce-style region over scalar block arguments of ``types``; ``build(args)``
    returns the ops and the values to return."""
    block = Block(arg_types=[TensorType(t, []) for t in types])
    ops, results = build(list(block.args))
    block.add_ops([*ops, shlo.ReturnOp(results)])
    return Region(block)


def _binary_body(cls, et) -> Region:
    def build(args):
        op = cls.create(operands=args, result_types=[TensorType(et, [])])
        return [op], [op.results[0]]

    return _scalar_body([et, et], build)


def dilate(n: int, d: int) -> int:
    return 0 if n == 0 else 1 + d * (n - 1)


# ---------------------------------------------------------------------------------
# The builder: ops with folding, reuse (CSE) and the location of what they stand for


class Builder:
    """Creates ops before ``before`` in ``block`` (default: before the block's terminator,
    or at its end while it has none). In the arithmetic, ``None`` stands for zero.

    Every op gets ``self.loc``, the location of what it stands for (a pass sets it to the
    op it rewrites or differentiates, so new IR still points at the user's line; xDSL
    does not copy locations by itself). Ops with the same name, operands, properties and
    result types are created once (side-effect-free ops already before the insertion
    point are reused too).
    """

    def __init__(self, block: Block, before: Operation | None = None,
                 loc: LocationAttr | None = None):
        self.block = block
        if before is None and block.last_op is not None and block.last_op.has_trait(IsTerminator):
            before = block.last_op
        self.before = before
        self.loc = loc or UnknownLoc()
        self.new_ops: list[Operation] = []
        self._new: set[Operation] = set()
        self.warnings: list[Diagnostic] = []
        self._memo: dict = {}
        for op in block.ops:
            if op is before:
                break
            key = self._key_of(op)
            if key is not None:
                self._memo.setdefault(key, op)

    # -- creation

    @staticmethod
    def _key(name, operands, result_types, properties, extra=None):
        try:
            key = (name, tuple(operands), tuple(result_types),
                   tuple(sorted(properties.items(), key=lambda kv: kv[0])), extra)
            hash(key)
            return key
        except TypeError:
            return None

    def _key_of(self, op: Operation):
        if op.regions or not (op.has_trait(NoMemoryEffect) or op.has_trait(Pure)):
            return None
        return self._key(op.name, op.operands, [r.type for r in op.results], dict(op.properties))

    def op(self, cls, operands, result_types, properties=None, regions=None,
           key_extra=None) -> Operation:
        operands = [SSAValue.get(o) for o in operands]
        properties = dict(properties or {})
        key = self._key(cls.name, operands, result_types, properties, key_extra)
        if key is not None and key in self._memo:
            return self._memo[key]
        op = cls.create(operands=operands, result_types=list(result_types),
                        properties=properties, regions=list(regions() if regions else []))
        for inner in op.walk():
            inner.location = self.loc
        if self.before is not None:
            self.block.insert_op_before(op, self.before)
        else:
            self.block.add_op(op)
        self.new_ops.append(op)
        self._new.add(op)
        if key is not None:
            self._memo[key] = op
        return op

    def insert(self, op: Operation) -> Operation:
        """Place an op built elsewhere (a typed ``tracec`` op, a ``func.return``) as it is,
        with the builder's location."""
        op.location = self.loc
        if self.before is not None:
            self.block.insert_op_before(op, self.before)
        else:
            self.block.add_op(op)
        self.new_ops.append(op)
        self._new.add(op)
        return op

    def raw(self, name: str, operands, result_types, properties=None, regions=()) -> Operation:
        """An op tracec has no typed definition for (printed generically, as parsed)."""
        cls = _context().get_optional_op(name) or UnregisteredOp.with_name(name)
        return self.insert(cls.create(operands=[SSAValue.get(o) for o in operands],
                                      result_types=list(result_types),
                                      properties=properties or {}, regions=list(regions)))

    def fusion_barrier(self, values) -> list[SSAValue]:
        """``values`` behind one ``stablehlo.optimization_barrier`` marked
        ``tracec.fusion_barrier``: a barrier that is there only to keep a backend from
        fusing the ops on either side into one kernel (fusion-barriers-to-iree makes it
        IREE's compute barrier, which costs nothing at run time)."""
        values = [SSAValue.get(v) for v in values]
        op = self.op(shlo.OptimizationBarrierOp, values, [v.type for v in values])
        op.attributes[FUSION_BARRIER] = UnitAttr()
        return list(op.results)

    def ret(self, values, kind=shlo.ReturnOp) -> Operation:
        """The block's terminator (``stablehlo.return`` unless ``kind`` says otherwise)."""
        return self.insert(kind(list(values)) if kind is shlo.ReturnOp else kind(*values))

    def one(self, cls, operands, result_type, properties=None) -> SSAValue:
        return self.op(cls, operands, [result_type], properties).results[0]

    def warn(self, op: Operation, message: str) -> None:
        self.warnings.append(Diagnostic("warning", message, source_loc(op)))

    # -- constants and their recognition

    def full(self, value: float, like: SSAValue | TensorType) -> SSAValue:
        """A splat constant of ``like``'s type (shape and element type; integer and
        boolean types take ``int(value)``)."""
        t = like if isinstance(like, TensorType) else like.type
        if not isinstance(t.element_type, AnyFloat):
            value = int(value)
        attr = DenseIntOrFPElementsAttr.from_list(t, [value])
        return self.one(shlo.ConstantOp, [], t, {"value": attr})

    def constant(self, values, t: TensorType | None = None) -> SSAValue:
        """A constant of type ``t`` holding ``values`` (row-major, any length); without
        ``t``, ``values`` is a numpy array and gives the type (f32, i32 or i64)."""
        if t is None:
            arr = np.asarray(values)
            t = TensorType(_ELEMENT_TYPES[arr.dtype], list(arr.shape))
        values = [float(v) if isinstance(t.element_type, AnyFloat) else int(v)
                  for v in np.asarray(values).ravel()]
        if len(set(values)) == 1:
            return self.full(values[0], t)
        attr = DenseIntOrFPElementsAttr.from_list(t, values)
        return self.one(shlo.ConstantOp, [], t, {"value": attr})

    def i32(self, v: int) -> SSAValue:
        return self.full(int(v), TensorType(i32, []))

    def next_count(self, n) -> SSAValue:
        """``n + 1`` for a rank-0 i32 step counter, held at ``COUNT_LIMIT`` so that it
        never wraps to a negative count (2^31 steps are a day of online learning)."""
        return self.select(self.compare(n, self.i32(COUNT_LIMIT), "LT"),
                           self.add(n, self.i32(1)), n)

    def iota(self, t: TensorType, dim: int) -> SSAValue:
        return self.one(shlo.IotaOp, [], t, {"iota_dimension": IntegerAttr(int(dim), i64)})

    def zeros(self, like) -> SSAValue:
        return self.full(0.0, like)

    def scalar(self, value: float, like) -> SSAValue:
        t = like if isinstance(like, TensorType) else like.type
        return self.full(value, TensorType(t.element_type, []))

    @staticmethod
    def splat_value(v: SSAValue | None):
        """The value of a splat float constant (seen through broadcasts), else None."""
        while v is not None:
            owner = v.owner
            if isinstance(owner, shlo.ConstantOp):
                attr = owner.value
                if not isinstance(attr.get_element_type(), AnyFloat):
                    return None
                if attr.is_splat() or int(np.prod(attr.get_shape() or [1])) == 1:
                    return float(attr.get_values()[0])
                return None
            if isinstance(owner, (shlo.BroadcastInDimOp, shlo.ReshapeOp)):
                v = owner.operand
                continue
            return None
        return None

    def is_zero(self, v) -> bool:
        return v is None or self.splat_value(v) == 0.0

    def is_one(self, v) -> bool:
        return v is not None and self.splat_value(v) == 1.0

    # -- element-wise arithmetic (None = zero)

    def add(self, a, b):
        if self.is_zero(a):
            return b
        if self.is_zero(b):
            return a
        return self.one(shlo.AddOp, [a, b], a.type)

    def sub(self, a, b):
        if self.is_zero(b):
            return a
        if self.is_zero(a):
            return self.neg(b)
        if a is b:
            return None
        return self.one(shlo.SubtractOp, [a, b], a.type)

    def neg(self, a):
        if self.is_zero(a):
            return None
        if isinstance(a.owner, shlo.NegateOp):
            return a.owner.operand
        return self.one(shlo.NegateOp, [a], a.type)

    def mul(self, a, b):
        if self.is_zero(a) or self.is_zero(b):
            return None
        if self.is_one(a):
            return b
        if self.is_one(b):
            return a
        if self.splat_value(a) == -1.0:
            return self.neg(b)
        if self.splat_value(b) == -1.0:
            return self.neg(a)
        return self.one(shlo.MultiplyOp, [a, b], a.type)

    def div(self, a, b):
        if self.is_zero(a):
            return None
        if self.is_one(b):
            return a
        return self.one(shlo.DivideOp, [a, b], a.type)

    def val(self, v, like):
        """``v`` as a value (a folded zero becomes a zero constant of ``like``'s type),
        for operands of non-linear ops."""
        return v if v is not None else self.zeros(like)

    def unary(self, cls, x):
        return self.one(cls, [x], x.type)

    def binary(self, cls, a, b):
        return self.one(cls, [a, b], a.type)

    def compare(self, a, b, direction: str):
        return self.one(shlo.CompareOp, [a, b], TensorType(IntegerType(1), shape(a)),
                        compare_props(a.type.element_type, direction))

    def select(self, pred, a, b):
        if a is None and b is None:
            return None
        like = a if a is not None else b
        a = a if a is not None else self.zeros(like)
        b = b if b is not None else self.zeros(like)
        if a is b:
            return a
        return self.one(shlo.SelectOp, [pred, a, b], a.type)

    def clamp(self, lo, x, hi):
        return self.one(shlo.ClampOp, [lo, x, hi], x.type)

    def logical_and(self, a, b):
        return self.one(shlo.AndOp, [a, b], a.type)

    def convert(self, x, t: TensorType):
        if x is None or x.type == t:
            return x
        return self.one(shlo.ConvertOp, [x], t)

    # -- shapes

    def broadcast_in_dim(self, x, out_shape, dims):
        if x is None:
            return None
        out_shape, dims = [int(d) for d in out_shape], [int(d) for d in dims]
        if shape(x) == out_shape and dims == list(range(len(out_shape))):
            return x
        t = TensorType(x.type.element_type, out_shape)
        value = self.splat_value(x)
        if value is not None:
            return self.full(value, t)
        if isinstance(x.owner, shlo.BroadcastInDimOp):  # a broadcast of a broadcast is one
            inner = x.owner
            return self.broadcast_in_dim(inner.operand, out_shape,
                                         [dims[d] for d in ints(inner.broadcast_dimensions)])
        return self.one(shlo.BroadcastInDimOp, [x], t, {"broadcast_dimensions": i64s(dims)})

    def reshape(self, x, out_shape):
        if x is None:
            return None
        out_shape = [int(d) for d in out_shape]
        if shape(x) == out_shape:
            return x
        if isinstance(x.owner, shlo.ReshapeOp):
            return self.reshape(x.owner.operand, out_shape)
        t = TensorType(x.type.element_type, out_shape)
        value = self.splat_value(x)
        if value is not None:
            return self.full(value, t)
        return self.one(shlo.ReshapeOp, [x], t)

    def transpose(self, x, perm):
        if x is None:
            return None
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        if isinstance(x.owner, shlo.TransposeOp):
            inner = ints(x.owner.permutation)
            return self.transpose(x.owner.operand, [inner[p] for p in perm])
        swapped = self._swapped_dot(x, perm)
        if swapped is not None:
            return swapped
        s = shape(x)
        t = TensorType(x.type.element_type, [s[p] for p in perm])
        value = self.splat_value(x)
        if value is not None:
            return self.full(value, t)
        return self.one(shlo.TransposeOp, [x], t, {"permutation": i64s(perm)})

    def _swapped_dot(self, x, perm):
        """``transpose(dot_general(a, b))`` that only swaps the free dimensions of a new
        dot is ``dot_general(b, a)`` (the transposed dot is then dead)."""
        dot = x.owner
        if not isinstance(dot, shlo.DotGeneralOp) or dot not in self._new:
            return None
        lb, rb, lc, rc = dot_dims(dot)
        na = len(shape(dot.lhs)) - len(lb) - len(lc)
        nb = len(shape(dot.rhs)) - len(rb) - len(rc)
        k = len(lb)
        if perm != list(range(k)) + list(range(k + na, k + na + nb)) + list(range(k, k + na)):
            return None
        precision = dot.precision_config
        return self.dot_general(dot.rhs, dot.lhs, rb, lb, rc, lc,
                                ArrayAttr(list(reversed(precision.data))) if precision else None)

    def slice(self, x, start, limit, strides=None):
        if x is None:
            return None
        s = shape(x)
        strides = list(strides) if strides is not None else [1] * len(s)
        if list(start) == [0] * len(s) and list(limit) == s and strides == [1] * len(s):
            return x
        out = [max(0, -(-(hi - lo) // st)) for lo, hi, st in zip(start, limit, strides)]
        return self.one(shlo.SliceOp, [x], TensorType(x.type.element_type, out), {
            "start_indices": i64s(start), "limit_indices": i64s(limit), "strides": i64s(strides)})

    def pad(self, x, value, low, high, interior):
        if x is None:
            return None
        if value is None:
            value = self.scalar(0.0, x)
        n = len(shape(x))
        if list(low) == [0] * n and list(high) == [0] * n and list(interior) == [0] * n:
            return x
        out = [lo + hi + d + max(d - 1, 0) * it for d, lo, hi, it in zip(shape(x), low, high, interior)]
        return self.one(shlo.PadOp, [x, value], TensorType(x.type.element_type, out), {
            "edge_padding_low": i64s(low), "edge_padding_high": i64s(high),
            "interior_padding": i64s(interior)})

    def concatenate(self, xs, dim: int):
        if len(xs) == 1:
            return xs[0]
        s = shape(xs[0])
        s[dim] = sum(shape(x)[dim] for x in xs)
        return self.one(shlo.ConcatenateOp, xs, TensorType(xs[0].type.element_type, s),
                        {"dimension": IntegerAttr(dim, i64)})

    def reverse(self, x, dims):
        if x is None or not len(dims):
            return x
        return self.one(shlo.ReverseOp, [x], x.type, {"dimensions": i64s(dims)})

    def reduce_sum(self, x, dims):
        """Sum over ``dims`` (the remaining dimensions keep their order)."""
        if x is None:
            return None
        dims = sorted(int(d) for d in dims)
        if not dims:
            return x
        et = x.type.element_type
        value = self.splat_value(x)
        out_shape = [d for i, d in enumerate(shape(x)) if i not in dims]
        if any(shape(x)[d] == 1 for d in dims):  # summing over size-1 dimensions is a reshape
            big = [d for d in dims if shape(x)[d] != 1]
            return self.reshape(self.reduce_sum(x, big), out_shape)
        if value is not None:
            return self.full(value * int(np.prod([shape(x)[d] for d in dims])),
                             TensorType(et, out_shape))
        return self.reduce(x, dims, shlo.AddOp, 0)

    def reduce(self, x, dims, body_cls, init):
        """``stablehlo.reduce`` of ``x`` over ``dims`` whose body is ``body_cls(a, b)``
        (e.g. ``AddOp``, ``AndOp``), starting from the scalar ``init``."""
        dims = sorted(int(d) for d in dims)
        et = x.type.element_type
        out_shape = [d for i, d in enumerate(shape(x)) if i not in dims]
        init_v = self.full(init, TensorType(et, []))
        return self.op(shlo.ReduceOp, [x, init_v], [TensorType(et, out_shape)],
                       {"dimensions": i64s(dims)}, regions=lambda: [_binary_body(body_cls, et)],
                       key_extra=body_cls.name).results[0]

    def dot_general(self, a, b, lb, rb, lc, rc, precision=None):
        if a is None or b is None:
            return None
        sa, sb = shape(a), shape(b)
        free_a = [d for d in range(len(sa)) if d not in lb and d not in lc]
        free_b = [d for d in range(len(sb)) if d not in rb and d not in rc]
        out = [sa[d] for d in lb] + [sa[d] for d in free_a] + [sb[d] for d in free_b]
        props = {"dot_dimension_numbers": dot_attr(lb, rb, lc, rc)}
        if precision is not None:
            props["precision_config"] = precision
        return self.one(shlo.DotGeneralOp, [a, b], TensorType(a.type.element_type, out), props)

    def dynamic_slice(self, x, indices, sizes):
        if x is None:
            return None
        return self.one(shlo.DynamicSliceOp, [x, *indices], TensorType(x.type.element_type, sizes),
                        {"slice_sizes": i64s(sizes)})

    def dynamic_update_slice(self, x, update, indices):
        return self.one(shlo.DynamicUpdateSliceOp, [x, update, *indices], x.type)

    def dimension_size(self, x, dim: int) -> SSAValue:
        return self.one(shlo.GetDimensionSizeOp, [x], TensorType(i32, []),
                        {"dimension": IntegerAttr(dim, i64)})

    def dynamic_broadcast(self, scalar, shape_tensor, result_type) -> SSAValue:
        """``scalar`` broadcast to the run-time shape ``shape_tensor``."""
        return self.one(shlo.DynamicBroadcastInDimOp, [scalar, shape_tensor], result_type,
                        {"broadcast_dimensions": i64s([])})

    def convolution(self, lhs, rhs, *, lhs_spec, rhs_spec, out_spec, strides, padding,
                    lhs_dilation, rhs_dilation, feature_group_count=1, batch_group_count=1,
                    precision=None):
        """``stablehlo.convolution`` with JAX-style dimension specs (batch/feature first,
        then spatial dimensions); the result shape follows from the operands."""
        sl, sr = shape(lhs), shape(rhs)
        nsp = len(lhs_spec) - 2
        out = [0] * len(out_spec)
        out[out_spec[0]] = sl[lhs_spec[0]] // batch_group_count
        out[out_spec[1]] = sr[rhs_spec[0]]
        for k in range(nsp):
            span = (dilate(sl[lhs_spec[2 + k]], lhs_dilation[k]) + padding[k][0] + padding[k][1]
                    - dilate(sr[rhs_spec[2 + k]], rhs_dilation[k]))
            out[out_spec[2 + k]] = max(0, span // strides[k] + 1) if span >= 0 else 0
        props = {
            "dimension_numbers": shlo.conv_dims_attr(lhs_spec, rhs_spec, out_spec),
            "feature_group_count": IntegerAttr(feature_group_count, i64),
            "batch_group_count": IntegerAttr(batch_group_count, i64),
            "window_strides": i64s(strides),
            "lhs_dilation": i64s(lhs_dilation),
            "rhs_dilation": i64s(rhs_dilation),
            "padding": DenseIntOrFPElementsAttr.from_list(
                TensorType(i64, [nsp, 2]), [int(p) for pair in padding for p in pair])
            if nsp else DenseIntOrFPElementsAttr.from_list(TensorType(i64, [0, 2]), []),
        }
        if precision is not None:
            props["precision_config"] = precision
        return self.one(shlo.ConvolutionOp, [lhs, rhs], TensorType(lhs.type.element_type, out), props)

    # -- gather, scatter, windows (dimension numbers as ``shlo.struct_fields`` dicts)

    def gather(self, x, indices, dims: dict, slice_sizes, result_shape, sorted_attr=None):
        """``stablehlo.gather`` of ``x`` at ``indices`` (``dims``: the fields of
        ``#stablehlo.gather`` as a dict, or the attribute itself)."""
        if x is None:
            return None
        if isinstance(dims, dict):
            dims = shlo.struct_attr("stablehlo.gather", dims)
        props = {"dimension_numbers": dims,
                 "slice_sizes": i64s(slice_sizes)}
        if sorted_attr is not None:
            props["indices_are_sorted"] = sorted_attr
        return self.one(shlo.GatherOp, [x, indices], TensorType(x.type.element_type, result_shape),
                        props)

    def scatter(self, x, indices, updates, dims: dict, combine: str = "add", sorted_attr=None):
        """``stablehlo.scatter`` of ``updates`` into ``x`` at ``indices`` whose body adds
        (``combine="add"``) or overwrites (``"set"``); ``dims``: the fields of
        ``#stablehlo.scatter`` as a dict, or the attribute itself."""
        et = x.type.element_type
        if isinstance(dims, dict):
            dims = shlo.struct_attr("stablehlo.scatter", dims)
        props = {"scatter_dimension_numbers": dims,
                 "unique_indices": IntegerAttr(0, IntegerType(1))}
        if sorted_attr is not None:
            props["indices_are_sorted"] = sorted_attr

        def body():
            if combine == "add":
                return [_binary_body(shlo.AddOp, et)]
            return [_scalar_body([et, et], lambda args: ([], [args[1]]))]

        return self.op(shlo.ScatterOp, [x, indices, updates], [x.type], props, regions=body,
                       key_extra="scatter-" + combine).results[0]

    @staticmethod
    def _window_props(window, strides, padding, base_dilations=None, window_dilations=None):
        n = len(window)
        props = {"window_dimensions": i64s(window),
                 "window_strides": i64s(strides or [1] * n),
                 "padding": padding_attr(padding or [(0, 0)] * n)}
        if base_dilations is not None:
            props["base_dilations"] = i64s(base_dilations)
            props["window_dilations"] = i64s(window_dilations or [1] * n)
        return props

    @staticmethod
    def window_shape(in_shape, window, strides, padding, base_dilations, window_dilations):
        """The result shape of a ``reduce_window`` (StableHLO's formula)."""
        out = []
        for n, w, s, (lo, hi), b, d in zip(in_shape, window, strides, padding, base_dilations,
                                           window_dilations):
            span = dilate(n, b) + lo + hi - dilate(w, d)
            out.append(span // s + 1 if span >= 0 else 0)
        return out

    def reduce_window(self, x, init, region, window, strides, padding, base_dilations,
                      window_dilations, key):
        """A one-input ``stablehlo.reduce_window`` with the body ``region()`` (``key``
        names the body, for reuse of equal ops)."""
        out = self.window_shape(shape(x), window, strides, padding, base_dilations, window_dilations)
        props = self._window_props(window, strides, padding, base_dilations, window_dilations)
        return self.op(shlo.ReduceWindowOp, [x, init], [TensorType(x.type.element_type, out)], props,
                       regions=lambda: [region()], key_extra=key).results[0]

    def reduce_window_sum(self, x, window, strides, padding, base_dilations, window_dilations):
        if x is None:
            return None
        et = x.type.element_type
        return self.reduce_window(x, self.scalar(0.0, x), lambda: _binary_body(shlo.AddOp, et),
                                  window, strides, padding, base_dilations, window_dilations, "sum")

    def _select_body(self, et, direction):
        def build(args):
            cmp = shlo.CompareOp.create(operands=[args[0], args[1]],
                                        result_types=[TensorType(IntegerType(1), [])],
                                        properties=compare_props(et, direction))
            return [cmp], [cmp.results[0]]

        return _scalar_body([et, et], build)

    def select_and_gather(self, x, t, direction, window, strides, padding, base_dilations=None,
                          window_dilations=None, worst_index=0):
        """Per window of ``x``, the value of ``t`` where ``x`` is selected (``GE``: the
        first maximum, ``LE``: the first minimum): a two-input ``reduce_window`` over
        ``(x, t)`` pairs, as JAX differentiates a max/min pooling. Padding and holes
        hold the worst ``x`` and ``t = 0`` (``worst_index`` for an integer ``t``)."""
        if t is None:
            return None
        n = len(window)
        base_dilations = base_dilations or [1] * n
        window_dilations = window_dilations or [1] * n
        et, tt = x.type.element_type, t.type.element_type
        out = self.window_shape(shape(x), window, strides, padding, base_dilations, window_dilations)
        worst = -np.inf if direction == "GE" else np.inf
        inits = [self.scalar(worst, x),
                 self.scalar(0.0 if isinstance(tt, AnyFloat) else worst_index, t)]

        def body():
            def build(args):
                xa, ta, xb, tb = args
                cmp = shlo.CompareOp.create(operands=[xa, xb],
                                            result_types=[TensorType(IntegerType(1), [])],
                                            properties=compare_props(et, direction))
                sx = shlo.SelectOp.create(operands=[cmp.results[0], xa, xb],
                                          result_types=[TensorType(et, [])])
                st = shlo.SelectOp.create(operands=[cmp.results[0], ta, tb],
                                          result_types=[TensorType(tt, [])])
                return [cmp, sx, st], [sx.results[0], st.results[0]]

            return [_scalar_body([et, tt, et, tt], build)]

        props = self._window_props(window, strides, padding, base_dilations, window_dilations)
        op = self.op(shlo.ReduceWindowOp, [x, t, *inits],
                     [TensorType(et, out), TensorType(tt, out)], props, regions=body,
                     key_extra="select-" + direction)
        return op.results[1]

    def select_and_scatter(self, x, source, direction, window, strides, padding):
        """``stablehlo.select_and_scatter`` of ``source`` into zeros shaped like ``x``:
        each source element is added where its window of ``x`` is selected (``GE``: the
        first maximum, ``LE``: the first minimum)."""
        if source is None:
            return None
        et = x.type.element_type
        props = {"window_dimensions": i64s(window), "window_strides": i64s(strides),
                 "padding": padding_attr(padding)}
        return self.op(shlo.SelectAndScatterOp, [x, source, self.scalar(0.0, source)],
                       [TensorType(source.type.element_type, shape(x))], props,
                       regions=lambda: [self._select_body(et, direction),
                                        _binary_body(shlo.AddOp, source.type.element_type)],
                       key_extra="select-scatter-" + direction).results[0]

    def sum_all(self, values: list):
        total = None
        for v in values:
            total = self.add(total, v)
        return total




def clone_block_ops(block: Block, builder: Builder, args: list[SSAValue],
                    value_map: dict | None = None, clones: dict | None = None) -> list[SSAValue]:
    """Copy ``block``'s ops (not its terminator) to ``builder`` with its arguments bound to
    ``args``; return the terminator's operands mapped. Each op keeps its own location.
    ``clones``, if given, receives each copied op's copy."""
    value_map = dict(value_map or {})
    value_map.update(zip(block.args, args))
    for op in block.ops:
        if op is block.last_op and op.has_trait(IsTerminator):
            return [value_map.get(v, v) for v in op.operands]
        clone = op.clone(value_mapper=value_map)
        if clones is not None:
            clones[op] = clone
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


def replace_op(op: Operation, build) -> None:
    """Replace the one result of ``op`` by ``build(em)``, ``em`` a Builder placed before
    ``op`` with its location, and erase ``op``."""
    em = Builder(op.parent_block(), before=op)
    em.loc = op.location
    op.results[0].replace_all_uses_with(SSAValue.get(build(em)))
    op.detach()
    op.erase()
