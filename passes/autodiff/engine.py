"""Automatic differentiation of straight-line StableHLO: the engine, as building blocks.

The ``differentiate`` pass and later passes (the hidden Jacobian ``D_t`` needs tangents
seeded at the old state, the learning signal ``δ_t`` a cotangent seeded at the new one,
docs/design.md section 3) use the same two functions on a one-block ``func.func``:

    tangents    = jvp(fn, seeds={value: tangent}, cut=..., wanted=None, emitter=None)
    cotangents  = vjp(fn, seeds={value: cotangent}, cut=..., wrt=None, emitter=None)

- ``seeds`` maps any value of ``fn`` (a block argument or an intermediate result) to
  an SSA value of the same type: a perturbation added at that value (forward) or a
  cotangent added to what flows back into it (reverse).
- ``cut`` holds ops, values or ``(op, input_index)`` edges through which nothing is
  propagated: a cut op passes no derivative from any input to its results (e.g. a
  ``dot_general`` with a parameter operand), a cut value is a constant to everything
  upstream of it (seeds placed on it still count), an edge cuts one input of one op
  (input indices follow the rule's inputs, normally the operands).
- ``jvp`` returns ``{value: tangent}`` for every value whose tangent is not zero (absent
  means zero); ``wanted`` (values) limits the work to ops that reach them.
- ``vjp`` returns ``{value: cotangent}`` for every value on a path from a ``wrt`` value
  (default: the block arguments) to a seed; absent means zero.

New ops are inserted before the block's terminator (or before ``emitter.before``), each
with the source location of the primal op it differentiates. The emitter folds zeros
(``x*0``, ``x+0``, ``x*1``, double negation, broadcasts of splats), never emits work for
values that do not depend on/affect the seeds, and reuses an existing op (primal or new)
with the same operands and properties (hash-consing, i.e. CSE of the new ops). A primal
op that repeats an earlier one (JAX's lowering repeats e.g. ``jnp.tanh(y)``) shares its
derivative (in ``vjp`` its cotangent is reported for both). Call
:func:`remove_dead_code` once the results are wired up.

Rules live in ``tracec.passes.ad_rules.RULES``, keyed by op type. An op on a derivative
path without a rule is a ``TracecError`` naming the op and the user's line. Warnings (a
bare Heaviside given the default surrogate) are collected in the module attribute
``tracec.warnings`` (an array of ``"file:line:col: warning: ..."`` strings); passes
never print, the driver shows them (:func:`module_warnings`, :func:`pop_warnings`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from xdsl.dialects import func as func_d
from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
    UnknownLoc,
    i64,
)
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.traits import IsTerminator, NoMemoryEffect, Pure

from tracec.diagnostics import Diagnostic
from tracec.dialects import stablehlo as shlo
from tracec.passes.builder import stablehlo_attr
from tracec.passes.common import op_error, source_loc

WARNINGS_ATTR = "tracec.warnings"

Cut = Iterable["Operation | SSAValue | tuple[Operation, int]"]


# ---------------------------------------------------------------------------------
# Types


def is_float(v: SSAValue) -> bool:
    t = v.type
    return isinstance(t, TensorType) and isinstance(t.element_type, AnyFloat)


def shape(v: SSAValue | TensorType) -> list[int]:
    t = v if isinstance(v, TensorType) else v.type
    return list(t.get_shape())


def _i64s(values) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(x) for x in values])


def ints(attr) -> list[int]:
    """The integers of a ``DenseArrayBase`` (or ``None`` -> ``[]``)."""
    if attr is None:
        return []
    return [int(x) for x in attr.get_values()]


def _dot_attr(lb, rb, lc, rc):
    return shlo.struct_attr("stablehlo.dot", {
        "lhs_batching_dimensions": list(lb), "rhs_batching_dimensions": list(rb),
        "lhs_contracting_dimensions": list(lc), "rhs_contracting_dimensions": list(rc)})


def _padding_attr(padding) -> DenseIntOrFPElementsAttr:
    """A ``[n, 2]`` i64 padding attribute (reduce_window, select_and_scatter, convolution)."""
    pairs = [(int(lo), int(hi)) for lo, hi in padding]
    return DenseIntOrFPElementsAttr.from_list(TensorType(i64, [len(pairs), 2]),
                                              [p for pair in pairs for p in pair])


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


def _conv_spec_text(spec: Sequence[int], letters: tuple[str, str]) -> str:
    tokens = [""] * len(spec)
    tokens[spec[0]], tokens[spec[1]] = letters
    for k, d in enumerate(spec[2:]):
        tokens[d] = str(k)
    return "[" + ", ".join(tokens) + "]"


def _dilate(n: int, d: int) -> int:
    return 0 if n == 0 else 1 + d * (n - 1)


# ---------------------------------------------------------------------------------
# Emitter: builds ops with folding and reuse


class Emitter:
    """Creates StableHLO ops before ``before`` in ``block``; ``None`` stands for zero.

    Every op gets ``self.loc`` (set by the engine to the location of the primal op being
    differentiated). Ops with the same name, operands, properties and result types are
    created once (existing primal ops before the insertion point are reused too).
    """

    def __init__(self, block: Block, before: Operation | None = None):
        self.block = block
        if before is None and block.last_op is not None and block.last_op.has_trait(IsTerminator):
            before = block.last_op
        self.before = before
        self.loc = UnknownLoc()
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

    def insert(self, op: Operation) -> SSAValue:
        """Place an op built elsewhere (e.g. a typed ``tracec`` op); returns its result."""
        op.location = self.loc
        if self.before is not None:
            self.block.insert_op_before(op, self.before)
        else:
            self.block.add_op(op)
        self.new_ops.append(op)
        self._new.add(op)
        return op.results[0]

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

    def constant(self, values, t: TensorType) -> SSAValue:
        """A constant of type ``t`` holding ``values`` (row-major, any length)."""
        values = [float(v) if isinstance(t.element_type, AnyFloat) else int(v)
                  for v in np.asarray(values).ravel()]
        if len(set(values)) == 1:
            return self.full(values[0], t)
        attr = DenseIntOrFPElementsAttr.from_list(t, values)
        return self.one(shlo.ConstantOp, [], t, {"value": attr})

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
                        self._compare_props(a.type.element_type, direction))

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
        return self.one(shlo.BroadcastInDimOp, [x], t, {"broadcast_dimensions": _i64s(dims)})

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
        return self.one(shlo.TransposeOp, [x], t, {"permutation": _i64s(perm)})

    def _swapped_dot(self, x, perm):
        """``transpose(dot_general(a, b))`` that only swaps the free dimensions of a new
        dot is ``dot_general(b, a)`` (the transposed dot is then dead)."""
        dot = x.owner
        if not isinstance(dot, shlo.DotGeneralOp) or dot not in self._new:
            return None
        from tracec.passes.ad_rules import dot_dims

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
            "start_indices": _i64s(start), "limit_indices": _i64s(limit), "strides": _i64s(strides)})

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
            "edge_padding_low": _i64s(low), "edge_padding_high": _i64s(high),
            "interior_padding": _i64s(interior)})

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
        return self.one(shlo.ReverseOp, [x], x.type, {"dimensions": _i64s(dims)})

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
                       {"dimensions": _i64s(dims)}, regions=lambda: [_binary_body(body_cls, et)],
                       key_extra=body_cls.name).results[0]

    def dot_general(self, a, b, lb, rb, lc, rc, precision=None):
        if a is None or b is None:
            return None
        sa, sb = shape(a), shape(b)
        free_a = [d for d in range(len(sa)) if d not in lb and d not in lc]
        free_b = [d for d in range(len(sb)) if d not in rb and d not in rc]
        out = [sa[d] for d in lb] + [sa[d] for d in free_a] + [sb[d] for d in free_b]
        props = {"dot_dimension_numbers": _dot_attr(lb, rb, lc, rc)}
        if precision is not None:
            props["precision_config"] = precision
        return self.one(shlo.DotGeneralOp, [a, b], TensorType(a.type.element_type, out), props)

    def dynamic_slice(self, x, indices, sizes):
        if x is None:
            return None
        return self.one(shlo.DynamicSliceOp, [x, *indices], TensorType(x.type.element_type, sizes),
                        {"slice_sizes": _i64s(sizes)})

    def dynamic_update_slice(self, x, update, indices):
        return self.one(shlo.DynamicUpdateSliceOp, [x, update, *indices], x.type)

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
            span = (_dilate(sl[lhs_spec[2 + k]], lhs_dilation[k]) + padding[k][0] + padding[k][1]
                    - _dilate(sr[rhs_spec[2 + k]], rhs_dilation[k]))
            out[out_spec[2 + k]] = max(0, span // strides[k] + 1) if span >= 0 else 0
        text = (f"#stablehlo.conv<{_conv_spec_text(lhs_spec, ('b', 'f'))}x"
                f"{_conv_spec_text(rhs_spec, ('o', 'i'))}->{_conv_spec_text(out_spec, ('b', 'f'))}>")
        props = {
            "dimension_numbers": stablehlo_attr(text),
            "feature_group_count": IntegerAttr(feature_group_count, i64),
            "batch_group_count": IntegerAttr(batch_group_count, i64),
            "window_strides": _i64s(strides),
            "lhs_dilation": _i64s(lhs_dilation),
            "rhs_dilation": _i64s(rhs_dilation),
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
                 "slice_sizes": _i64s(slice_sizes)}
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
        props = {"window_dimensions": _i64s(window),
                 "window_strides": _i64s(strides or [1] * n),
                 "padding": _padding_attr(padding or [(0, 0)] * n)}
        if base_dilations is not None:
            props["base_dilations"] = _i64s(base_dilations)
            props["window_dilations"] = _i64s(window_dilations or [1] * n)
        return props

    @staticmethod
    def window_shape(in_shape, window, strides, padding, base_dilations, window_dilations):
        """The result shape of a ``reduce_window`` (StableHLO's formula)."""
        out = []
        for n, w, s, (lo, hi), b, d in zip(in_shape, window, strides, padding, base_dilations,
                                           window_dilations):
            span = _dilate(n, b) + lo + hi - _dilate(w, d)
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
                                        properties=self._compare_props(et, direction))
            return [cmp], [cmp.results[0]]

        return _scalar_body([et, et], build)

    @staticmethod
    def _compare_props(et, direction):
        kind = "FLOAT" if isinstance(et, AnyFloat) else "SIGNED"
        return {"comparison_direction": stablehlo_attr(f"#stablehlo<comparison_direction {direction}>"),
                "compare_type": stablehlo_attr(f"#stablehlo<comparison_type {kind}>")}

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
                                            properties=self._compare_props(et, direction))
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
        props = {"window_dimensions": _i64s(window), "window_strides": _i64s(strides),
                 "padding": _padding_attr(padding)}
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


# ---------------------------------------------------------------------------------
# The engine


def _rules():
    from tracec.passes.ad_rules import RULES, describe

    return RULES, describe


def rule_for(op: Operation):
    """The rule of ``op`` (refined by its attributes, e.g. a composite's name), or None."""
    rules, _ = _rules()
    rule = rules.get(type(op))
    while rule is not None and rule.select is not None:
        rule = rule.select(op)
    return rule


def _inputs(op: Operation, rule) -> list[SSAValue]:
    if rule is not None and rule.inputs is not None:
        return list(rule.inputs(op))
    return list(op.operands)


def _split_cut(cut: Cut | None):
    ops, values, edges = set(), set(), set()
    for c in cut or ():
        if isinstance(c, Operation):
            ops.add(c)
        elif isinstance(c, SSAValue):
            values.add(c)
        elif isinstance(c, tuple) and len(c) == 2:
            edges.add((c[0], int(c[1])))
        else:
            raise TypeError(f"cut: expected ops, values or (op, index) edges, got {c!r}")
    return ops, values, edges


def _body(fn: func_d.FuncOp) -> Block:
    if len(fn.body.blocks) != 1:
        raise op_error(fn, f"differentiate: @{fn.sym_name.data} has control flow between blocks; "
                           "only straight-line functions can be differentiated")
    return fn.body.block


def _no_rule(op: Operation):
    _, describe = _rules()
    hint = ("run inline-private-functions first" if isinstance(op, func_d.CallOp) else
            "use ops tracec can differentiate: tracec has no derivative rule for this op yet, "
            "so write this computation with ops that have one (docs/passes.md, section "
            "differentiate, lists them)")
    return op_error(op, f"differentiate: no derivative rule for {describe(op)}", hint=hint)


def _body_ops(block: Block) -> list[Operation]:
    ops = list(block.ops)
    if ops and ops[-1].has_trait(IsTerminator):
        ops = ops[:-1]
    return ops


def _record_warnings(block: Block, em: Emitter) -> None:
    if not em.warnings:
        return
    module = block.parent_op()
    while module is not None and not isinstance(module, ModuleOp):
        module = module.parent_op()
    if module is not None:
        for w in em.warnings:
            add_warning(module, str(w))
    em.warnings.clear()


def _value_numbering(ops, keep: set) -> dict:
    """``{result: representative}`` for results of side-effect-free ops that repeat an
    earlier op (same name, properties, result types and operand representatives), so
    their derivatives are built once (JAX's lowering repeats e.g. ``jnp.tanh(y)``).
    Ops and values in ``keep`` (seeds, cuts) keep their own identity."""
    rep: dict = {}
    seen: dict = {}
    for op in ops:
        if op in keep or op.regions or any(r in keep for r in op.results):
            continue
        if not (op.has_trait(NoMemoryEffect) or op.has_trait(Pure)):
            continue
        key = Emitter._key(op.name, [rep.get(o, o) for o in op.operands],
                           [r.type for r in op.results], dict(op.properties))
        if key is None:
            continue
        first = seen.setdefault(key, op)
        if first is not op:
            rep.update(zip(op.results, first.results))
    return rep


def _keep(seeds, cut_ops, cut_values, cut_edges) -> set:
    return set(seeds) | cut_ops | cut_values | {op for op, _ in cut_edges}


def jvp(fn: func_d.FuncOp, seeds: dict, cut: Cut | None = None, *,
        wanted: Iterable[SSAValue] | None = None, emitter: Emitter | None = None) -> dict:
    """Forward mode: tangents of the values of ``fn`` given tangents ``seeds``.

    Returns ``{value: tangent}`` (absent = zero). See the module docstring.
    """
    block = _body(fn)
    em = emitter or Emitter(block)
    cut_ops, cut_values, cut_edges = _split_cut(cut)
    seeds = {SSAValue.get(k): SSAValue.get(v) for k, v in seeds.items() if v is not None}
    ops = _body_ops(block)
    rep = _value_numbering(ops, _keep(seeds, cut_ops, cut_values, cut_edges))

    relevant: set | None = None
    if wanted is not None:
        relevant = set()
        need = {SSAValue.get(v) for v in wanted}
        for op in reversed(ops):
            if any(r in need for r in op.results):
                relevant.add(op)
                need.update(_inputs(op, rule_for(op)))
                need.update(op.operands)
                need.update(rep.get(r, r) for r in op.results)

    tangents: dict[SSAValue, SSAValue] = {}
    for arg in block.args:
        if arg in seeds:
            tangents[arg] = seeds[arg]
    for op in ops:
        if relevant is not None and op not in relevant:
            continue
        out: list = [None] * len(op.results)
        if op.results and op.results[0] in rep:  # a repeat: the same tangents
            out = [tangents.get(rep[r]) for r in op.results]
        elif op not in cut_ops and any(is_float(r) for r in op.results):
            rule = rule_for(op)
            inputs = _inputs(op, rule)
            ts = [tangents.get(x) if is_float(x) and (op, i) not in cut_edges else None
                  for i, x in enumerate(inputs)]
            if any(t is not None for t in ts):
                if rule is None:
                    # as in reverse mode, an op is only an error where a derivative flows
                    # out of it: float results nothing reads (the sorted values of an
                    # argsort) carry none
                    if any(is_float(r) and (r.uses or r in seeds) for r in op.results):
                        raise _no_rule(op)
                elif not rule.zero:
                    em.loc = op.location
                    out = list(rule.jvp(em, op, ts))
        for r, t in zip(op.results, out):
            if not is_float(r) or r in cut_values:
                t = None
            if r in seeds:
                em.loc = op.location
                t = em.add(t, seeds[r])
            if t is not None:
                tangents[r] = t
    _record_warnings(block, em)
    return tangents


def _varied(ops, block, wrt, cut_ops, cut_values, cut_edges) -> set:
    varied = set(block.args) if wrt is None else {SSAValue.get(v) for v in wrt}
    for op in ops:
        if op in cut_ops:
            continue
        inputs = _inputs(op, rule_for(op))
        if any(x in varied and is_float(x) and (op, i) not in cut_edges
               for i, x in enumerate(inputs)):
            varied.update(r for r in op.results if is_float(r) and r not in cut_values)
    return varied


def vjp(fn: func_d.FuncOp, seeds: dict, cut: Cut | None = None, *,
        wrt: Iterable[SSAValue] | None = None, emitter: Emitter | None = None) -> dict:
    """Reverse mode: cotangents of the values of ``fn`` given cotangents ``seeds``.

    Returns ``{value: cotangent}`` for values on a path from ``wrt`` (default: the
    block arguments) to a seed; absent = zero. See the module docstring.
    """
    block = _body(fn)
    em = emitter or Emitter(block)
    cut_ops, cut_values, cut_edges = _split_cut(cut)
    ops = _body_ops(block)
    varied = _varied(ops, block, wrt, cut_ops, cut_values, cut_edges)
    seeds = {SSAValue.get(k): SSAValue.get(v) for k, v in seeds.items() if v is not None}
    rep = _value_numbering(ops, _keep(seeds, cut_ops, cut_values, cut_edges))

    pending: dict[SSAValue, list] = {}
    for k, v in seeds.items():
        pending.setdefault(k, []).append(v)
    cotangents: dict[SSAValue, SSAValue] = {}

    def settle(value, loc):
        parts = pending.pop(value, [])
        if not parts:
            return None
        em.loc = loc
        c = em.sum_all(parts)
        if c is not None:
            cotangents[value] = c
        return c

    for op in reversed(ops):
        cots = [settle(r, op.location) for r in op.results]
        if op in cut_ops:
            continue
        cots = [None if (r in cut_values or not is_float(r)) else c for r, c in zip(op.results, cots)]
        if all(c is None for c in cots):
            continue
        rule = rule_for(op)
        inputs = _inputs(op, rule)
        needed = [is_float(x) and x in varied and (op, i) not in cut_edges
                  for i, x in enumerate(inputs)]
        if not any(needed):
            continue
        if rule is None:
            raise _no_rule(op)
        if rule.zero:
            continue
        em.loc = op.location
        for x, c, n in zip(inputs, rule.vjp(em, op, cots, needed), needed):
            if n and c is not None:  # a repeated value's cotangent goes to its first copy
                pending.setdefault(rep.get(x, x), []).append(c)
    for value in list(pending):
        settle(value, value.owner.location if isinstance(value.owner, Operation) else fn.location)
    for value, first in rep.items():
        if first in cotangents:
            cotangents[value] = cotangents[first]
    _record_warnings(block, em)
    return cotangents


# ---------------------------------------------------------------------------------
# Clean-up and warnings


def remove_dead_code(block: Block) -> int:
    """Erase side-effect-free ops without uses (repeatedly); returns how many."""
    removed = 0
    changed = True
    while changed:
        changed = False
        for op in reversed(list(block.ops)):
            if op.has_trait(IsTerminator):
                continue
            if not (op.has_trait(NoMemoryEffect) or op.has_trait(Pure)):
                continue
            if any(r.uses for r in op.results):
                continue
            op.detach()
            op.erase()
            removed += 1
            changed = True
    return removed


def add_warning(module: ModuleOp, text: str) -> None:
    """Append ``text`` to the module's ``tracec.warnings`` (once)."""
    current = module_warnings(module)
    if text not in current:
        module.attributes[WARNINGS_ATTR] = ArrayAttr([StringAttr(s) for s in current + [text]])


def module_warnings(module: ModuleOp) -> list[str]:
    attr = module.attributes.get(WARNINGS_ATTR)
    return [s.data for s in attr.data] if isinstance(attr, ArrayAttr) else []


def pop_warnings(module: ModuleOp) -> list[str]:
    """The module's warnings, removing the attribute (for the driver, before a backend)."""
    out = module_warnings(module)
    module.attributes.pop(WARNINGS_ATTR, None)
    return out
