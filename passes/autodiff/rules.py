"""Derivative rules of StableHLO ops, one table keyed by op type (docs/design.md section 6).

``RULES[OpType]`` is a :class:`Rule` with

- ``jvp(em, op, tangents) -> [tangent per result]``: ``tangents`` has one entry per
  input (``None`` = zero tangent);
- ``vjp(em, op, cotangents, needed) -> [cotangent per input]``: ``cotangents`` has one
  entry per result (``None`` = zero); only inputs with ``needed[i]`` are used;
- ``inputs(op)``: the differentiable inputs (default: the operands; the bare
  Heaviside ``convert(compare(a, b))`` has ``a`` and ``b``);
- ``select(op)``: a refinement by the op's attributes (a composite's name, a reduce's
  body, the Heaviside pattern), returning another rule or ``None`` (no rule);
- ``zero``: the derivative is zero (compare, sign, floor, round, iota, integer ops).

``em`` is a :class:`tracec.passes.ir.builder.Builder`: it builds the StableHLO ops (with the
location of the differentiated op) and folds zeros, which stand as ``None``.
Surrogate derivatives of ``tracec.spike`` are ``tracec.surrogates``' formulas (the same
text the JAX frontend evaluates), emitted as StableHLO ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from xdsl.dialects.builtin import IntegerType, StringAttr, TensorType
from xdsl.ir import Operation, Region, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.attributes import (ConvParams, compare_direction, conv_params, dot_dims, ints,
                                         uniform_precision)
from tracec.passes.ir.builder import Builder, dilate, is_float, shape
from tracec.passes.ir.indexing import clamped_indices, in_bounds, scatter_as_gather
from tracec.passes.ir.module import op_error
from tracec.surrogates import CUSTOM_SURROGATE, DEFAULT_ALPHA, DEFAULT_SURROGATE, SURROGATES, problem


@dataclass(frozen=True)
class Rule:
    jvp: Callable | None = None
    vjp: Callable | None = None
    inputs: Callable[[Operation], list[SSAValue]] | None = None
    select: Callable[[Operation], "Rule | None"] | None = None
    zero: bool = False


ZERO = Rule(zero=True)


def _res(op):
    return op.results[0]


# ---------------------------------------------------------------------------------
# Element-wise


def _unary(deriv: Callable[[Builder, Operation], SSAValue]) -> Rule:
    """z = f(x) with f'(x) = deriv(em, op): t_z = t·f', c_x = c·f'."""
    return Rule(jvp=lambda em, op, t: [em.mul(t[0], deriv(em, op))],
                vjp=lambda em, op, c, n: [em.mul(c[0], deriv(em, op))])


def _x(op):
    return op.operands[0]


def _one(em, v):
    return em.full(1.0, v)


ADD = Rule(jvp=lambda em, op, t: [em.add(t[0], t[1])],
           vjp=lambda em, op, c, n: [c[0], c[0]])
SUBTRACT = Rule(jvp=lambda em, op, t: [em.sub(t[0], t[1])],
                vjp=lambda em, op, c, n: [c[0], em.neg(c[0])])
NEGATE = Rule(jvp=lambda em, op, t: [em.neg(t[0])],
              vjp=lambda em, op, c, n: [em.neg(c[0])])


def _mul_jvp(em, op, t):
    x, y = op.operands
    return [em.add(em.mul(t[0], y), em.mul(x, t[1]))]


def _mul_vjp(em, op, c, n):
    x, y = op.operands
    return [em.mul(c[0], y) if n[0] else None, em.mul(x, c[0]) if n[1] else None]


MULTIPLY = Rule(jvp=_mul_jvp, vjp=_mul_vjp)


def _div_jvp(em, op, t):
    # z = x / y: t_z = (t_x - z·t_y) / y
    _, y = op.operands
    return [em.div(em.sub(t[0], em.mul(_res(op), t[1])), y)]


def _div_vjp(em, op, c, n):
    _, y = op.operands
    cx = em.div(c[0], y)
    return [cx, em.neg(em.mul(cx, _res(op))) if n[1] else None]


DIVIDE = Rule(jvp=_div_jvp, vjp=_div_vjp)


def _abs_rule() -> Rule:
    # JAX's rule: select(x >= 0, t, -t)
    def nonneg(em, op):
        return em.compare(_x(op), em.zeros(_x(op)), "GE")

    return Rule(jvp=lambda em, op, t: [em.select(nonneg(em, op), t[0], em.neg(t[0]))],
                vjp=lambda em, op, c, n: [em.select(nonneg(em, op), c[0], em.neg(c[0]))])


EXP = _unary(lambda em, op: _res(op))
LOG = Rule(jvp=lambda em, op, t: [em.div(t[0], _x(op))],
           vjp=lambda em, op, c, n: [em.div(c[0], _x(op))])
LOG1P = Rule(jvp=lambda em, op, t: [em.div(t[0], em.add(_one(em, _x(op)), _x(op)))],
             vjp=lambda em, op, c, n: [em.div(c[0], em.add(_one(em, _x(op)), _x(op)))])
EXPM1 = _unary(lambda em, op: em.add(_res(op), _one(em, _res(op))))
TANH = _unary(lambda em, op: em.sub(_one(em, _res(op)), em.mul(_res(op), _res(op))))
LOGISTIC = _unary(lambda em, op: em.mul(_res(op), em.sub(_one(em, _res(op)), _res(op))))
SQRT = _unary(lambda em, op: em.div(em.full(0.5, _res(op)), _res(op)))
RSQRT = _unary(lambda em, op: em.mul(em.div(_res(op), _x(op)), em.full(-0.5, _res(op))))
SINE = _unary(lambda em, op: em.unary(shlo.CosineOp, _x(op)))
COSINE = _unary(lambda em, op: em.neg(em.unary(shlo.SineOp, _x(op))))


def _pow_dx(em, op):
    x, y = op.operands  # y·x^(y-1)
    return em.mul(y, em.binary(shlo.PowerOp, x, em.val(em.sub(y, _one(em, y)), y)))


def _pow_dy(em, op):
    x, _ = op.operands  # log(x)·x^y
    return em.mul(em.unary(shlo.LogOp, x), _res(op))


POWER = Rule(
    jvp=lambda em, op, t: [em.add(em.mul(t[0], _pow_dx(em, op)) if t[0] is not None else None,
                                  em.mul(t[1], _pow_dy(em, op)) if t[1] is not None else None)],
    vjp=lambda em, op, c, n: [em.mul(c[0], _pow_dx(em, op)) if n[0] else None,
                              em.mul(c[0], _pow_dy(em, op)) if n[1] else None])


def _rem_dy(em, op):
    # z = x - y·trunc(x/y): dz/dy = -trunc(x/y) = -sign(x/y)·floor(|x/y|) (JAX's rule)
    x, y = op.operands
    q = em.binary(shlo.DivideOp, x, y)
    return em.neg(em.mul(em.unary(shlo.SignOp, q), em.unary(shlo.FloorOp, em.unary(shlo.AbsOp, q))))


REMAINDER = Rule(
    jvp=lambda em, op, t: [em.add(t[0], em.mul(t[1], _rem_dy(em, op)) if t[1] is not None else None)],
    vjp=lambda em, op, c, n: [c[0], em.mul(c[0], _rem_dy(em, op)) if n[1] else None])


def _is_constant(v) -> bool:
    while isinstance(v.owner, (shlo.BroadcastInDimOp, shlo.ReshapeOp, shlo.ConvertOp)):
        v = v.owner.operands[0]
    return isinstance(v.owner, shlo.ConstantOp)


def _choice(strictly: str) -> Rule:
    """maximum (``strictly`` GT) / minimum (LT): the derivative follows the chosen
    operand. Where the operands are equal: JAX's jnp.maximum gives half to each,
    jax.nn.relu (max(x, 0), whose custom_jvp is gone in StableHLO) gives x none; so a
    tie with a constant operand passes nothing (relu, clipping at a bound), a tie of
    two computed values half to each."""

    def pick(em, op, a, b):
        """a where x is chosen, b where y is."""
        x, y = op.operands
        if _is_constant(y):
            return em.select(em.compare(x, y, strictly), a, b)
        if _is_constant(x):
            return em.select(em.compare(y, x, strictly), b, a)
        z = _res(op)
        half = em.mul(em.add(a, b), em.full(0.5, z))
        return em.select(em.compare(x, z, "NE"), b, em.select(em.compare(y, z, "NE"), a, half))

    def vjp(em, op, c, n):
        return [pick(em, op, c[0], None) if n[0] else None,
                pick(em, op, None, c[0]) if n[1] else None]

    return Rule(jvp=lambda em, op, t: [pick(em, op, t[0], t[1])], vjp=vjp)


def _full_shape(em, v, like):
    """A clamp bound (scalar or full) broadcast to ``like``'s shape."""
    return em.broadcast_in_dim(v, shape(like), []) if v is not None and shape(v) != shape(like) else v


def _clamp_masks(em, op):
    lo, x, hi = op.operands
    above = em.compare(x, _full_shape(em, hi, x), "GT")
    below = em.compare(x, _full_shape(em, lo, x), "LT")
    return above, below


def _clamp_jvp(em, op, t):
    # z = min(max(x, lo), hi): hi where x > hi, else lo where x < lo, else x
    above, below = _clamp_masks(em, op)
    tlo, tx, thi = (_full_shape(em, v, op.operands[1]) for v in t)
    return [em.select(above, thi, em.select(below, tlo, tx))]


def _clamp_vjp(em, op, c, n):
    lo, x, hi = op.operands
    above, below = _clamp_masks(em, op)
    rest = em.select(above, None, c[0])

    def fit(v, bound):  # sum back to a scalar bound
        return em.reduce_sum(v, range(len(shape(x)))) if v is not None and shape(bound) != shape(x) else v

    return [fit(em.select(below, rest, None), lo) if n[0] else None,
            em.select(below, None, rest),
            fit(em.select(above, c[0], None), hi) if n[2] else None]


CLAMP = Rule(jvp=_clamp_jvp, vjp=_clamp_vjp)


def _select_inputs(op):
    return list(op.operands[1:])


SELECT = Rule(inputs=_select_inputs,
              jvp=lambda em, op, t: [em.select(op.operands[0], t[0], t[1])],
              vjp=lambda em, op, c, n: [em.select(op.operands[0], c[0], None) if n[0] else None,
                                        em.select(op.operands[0], None, c[0]) if n[1] else None])

CONVERT_FLOAT = Rule(jvp=lambda em, op, t: [em.convert(t[0], _res(op).type)],
                     vjp=lambda em, op, c, n: [em.convert(c[0], _x(op).type)])


# ---------------------------------------------------------------------------------
# tracec.spike surrogates (tracec.surrogates, docs/design.md section 2), as StableHLO ops


class _BuilderMath:
    """The arithmetic ``tracec.surrogates``' formulas are written against, emitted as
    StableHLO ops with the builder (``like``: the value whose type constants take)."""

    def __init__(self, em: Builder, like):
        self.em, self.like = em, like

    def _v(self, v):
        return self.em.val(v, self.like)

    def const(self, value, like):
        return self.em.full(value, like)

    def add(self, a, b):
        return self._v(self.em.add(a, b))

    def sub(self, a, b):
        return self._v(self.em.sub(a, b))

    def neg(self, a):
        return self._v(self.em.neg(a))

    def mul(self, a, b):
        return self._v(self.em.mul(a, b))

    def div(self, a, b):
        return self._v(self.em.div(a, b))

    def abs(self, a):
        return self.em.unary(shlo.AbsOp, a)

    def exp(self, a):
        return self.em.unary(shlo.ExpOp, a)

    def maximum(self, a, b):
        return self.em.binary(shlo.MaximumOp, a, b)


def surrogate_derivative(em: Builder, x, surrogate: str, alpha: float):
    """d/dx of the Heaviside at ``x`` under ``surrogate`` (``tracec.surrogates``)."""
    return SURROGATES[surrogate](_BuilderMath(em, x), x, alpha)


def _spike_params(op) -> tuple[str, float]:
    attrs = op.composite_attributes.data if op.composite_attributes is not None else {}
    surrogate = attrs.get("surrogate")
    surrogate = surrogate.data if isinstance(surrogate, StringAttr) else DEFAULT_SURROGATE
    alpha = attrs.get("alpha")
    alpha = float(alpha.value.data) if alpha is not None else DEFAULT_ALPHA
    wrong = problem(surrogate, alpha)
    if wrong is not None:
        raise op_error(op, f"differentiate: {wrong[0]} on tracec.spike", hint=wrong[1])
    return surrogate, alpha


def _custom_surrogate(op) -> bool:
    """A spike from the model's own ``jax.custom_jvp`` or ``jax.custom_vjp``: its second
    result is the derivative the user's rule gives at the input (frontends/jax_frontend.py)."""
    attrs = op.composite_attributes.data if op.composite_attributes is not None else {}
    kind = attrs.get("surrogate")
    return (isinstance(kind, StringAttr) and kind.data == CUSTOM_SURROGATE
            and len(op.results) == 2)


def _spike_deriv(em, op):
    if _custom_surrogate(op):
        return op.results[1]
    surrogate, alpha = _spike_params(op)
    x = op.inputs[0]
    return em.convert(surrogate_derivative(em, x, surrogate, alpha), _res(op).type)


def _spike_jvp(em, op, t):
    return [em.mul(_spike_deriv(em, op), t[0])] + [None] * (len(op.results) - 1)


# The derivative result of a custom surrogate is not differentiated (a second derivative
# of the spike is never needed): its cotangent is dropped.
SPIKE = Rule(jvp=_spike_jvp, vjp=lambda em, op, c, n: [
    None if c[0] is None else em.mul(_spike_deriv(em, op), c[0])])

# An element-wise function with the model's own derivative rule (custom_jvp/custom_vjp):
# the second result is that derivative at the input; it is not differentiated itself.
CUSTOM_DERIVATIVE = Rule(
    jvp=lambda em, op, t: [em.mul(op.results[1], t[0]), None],
    vjp=lambda em, op, c, n: [None if c[0] is None else em.mul(op.results[1], c[0])])

#: composite name -> rule
COMPOSITE_RULES: dict[str, Rule] = {
    "tracec.spike": SPIKE,
    "tracec.stop_gradient": ZERO,
    "tracec.custom_derivative": CUSTOM_DERIVATIVE,
}

COMPOSITE = Rule(select=lambda op: COMPOSITE_RULES.get(op.composite_name.data))


# ---------------------------------------------------------------------------------
# A bare Heaviside: convert(compare(a, b)) from i1 to float


def _direction(op) -> str:
    return compare_direction(op) or ""


_HEAVISIDE_SIGN = {"GT": 1.0, "GE": 1.0, "LT": -1.0, "LE": -1.0}
_SYMBOL = {"GT": ">", "GE": ">=", "LT": "<", "LE": "<="}


def _heaviside_compare(op):
    src = op.operands[0].owner
    if (isinstance(src, shlo.CompareOp) and _direction(src) in _HEAVISIDE_SIGN
            and is_float(src.lhs) and is_float(_res(op))):
        return src
    return None


def _heaviside_u(em, op):
    """The surrogate's argument u (H(u) is the convert's value) and its sign in a - b."""
    cmp = _heaviside_compare(op)
    sign = _HEAVISIDE_SIGN[_direction(cmp)]
    a, b = cmp.lhs, cmp.rhs
    u = em.sub(a, b) if sign > 0 else em.sub(b, a)
    if u is None:
        u = em.zeros(a)
    em.warn(op, f"a bare Heaviside (x {_SYMBOL[_direction(cmp)]} y converted to float) is "
                f"differentiated with the default surrogate ({DEFAULT_SURROGATE}, alpha "
                f"{DEFAULT_ALPHA}); write tracec.spike(v, surrogate=..., alpha=...) to choose one")
    return u, sign


def _heaviside_jvp(em, op, t):
    u, sign = _heaviside_u(em, op)
    tu = em.sub(t[0], t[1]) if sign > 0 else em.sub(t[1], t[0])
    d = surrogate_derivative(em, u, DEFAULT_SURROGATE, DEFAULT_ALPHA)
    return [em.convert(em.mul(d, tu), _res(op).type)]


def _heaviside_vjp(em, op, c, n):
    u, sign = _heaviside_u(em, op)
    cu = em.mul(surrogate_derivative(em, u, DEFAULT_SURROGATE, DEFAULT_ALPHA), em.convert(c[0], u.type))
    return [cu, em.neg(cu)] if sign > 0 else [em.neg(cu), cu]


HEAVISIDE = Rule(inputs=lambda op: [_heaviside_compare(op).lhs, _heaviside_compare(op).rhs],
                 jvp=_heaviside_jvp, vjp=_heaviside_vjp)

CONVERT = Rule(select=lambda op: HEAVISIDE if _heaviside_compare(op) is not None else CONVERT_FLOAT)


# ---------------------------------------------------------------------------------
# Shapes and data movement


def _bcast_jvp(em, op, t):
    return [em.broadcast_in_dim(t[0], shape(_res(op)), ints(op.broadcast_dimensions))]


def _bcast_vjp(em, op, c, n):
    """Sum over the new and the expanded (size 1 -> n) dimensions, then back to the
    operand's dimension order and shape."""
    x = _x(op)
    dims = ints(op.broadcast_dimensions)
    xs, zs = shape(x), shape(_res(op))
    summed = [d for d in range(len(zs)) if d not in dims]
    summed += [dims[i] for i in range(len(xs)) if xs[i] == 1 and zs[dims[i]] != 1]
    reduced = em.reduce_sum(c[0], summed)
    kept = sorted(d for d in dims if d not in summed)        # result order
    order = [dims[i] for i in range(len(xs)) if dims[i] in kept]  # operand order
    reduced = em.transpose(reduced, [kept.index(d) for d in order])
    return [em.reshape(reduced, xs)]


BROADCAST_IN_DIM = Rule(jvp=_bcast_jvp, vjp=_bcast_vjp)
RESHAPE = Rule(jvp=lambda em, op, t: [em.reshape(t[0], shape(_res(op)))],
               vjp=lambda em, op, c, n: [em.reshape(c[0], shape(_x(op)))])
TRANSPOSE = Rule(jvp=lambda em, op, t: [em.transpose(t[0], ints(op.permutation))],
                 vjp=lambda em, op, c, n: [em.transpose(c[0], np.argsort(ints(op.permutation)))])
REVERSE = Rule(jvp=lambda em, op, t: [em.reverse(t[0], ints(op.dimensions))],
               vjp=lambda em, op, c, n: [em.reverse(c[0], ints(op.dimensions))])


def _slice_vjp(em, op, c, n):
    """Zeros around (and between, for strides > 1) the cotangent.

    Strided dimensions are spread by a reshape and an edge pad rather than by interior
    padding: IREE 3.13 drops the interior padding of a ``pad`` whose result feeds
    another ``pad`` or a ``dynamic_update_slice`` into zeros (wrong numbers)."""
    start, strides = ints(op.start_indices), ints(op.strides)
    xs = shape(_x(op))
    g = c[0]
    rank = len(xs)
    for dim, st in enumerate(strides):
        s = shape(g)
        if st > 1 and s[dim] > 1:  # [.., n, ..] -> [.., n, st, ..] (zeros after each) -> [.., n*st, ..]
            g = em.reshape(g, s[:dim + 1] + [1] + s[dim + 1:])
            g = em.pad(g, None, [0] * (rank + 1), [st - 1 if k == dim + 1 else 0 for k in range(rank + 1)],
                       [0] * (rank + 1))
            g = em.reshape(g, s[:dim] + [s[dim] * st] + s[dim + 1:])
    s = shape(g)
    high = [d - lo - n_ for d, lo, n_ in zip(xs, start, s)]
    # trailing zeros of the last spread element past the operand's end: drop them
    g = em.slice(g, [0] * rank, [n_ + min(h, 0) for n_, h in zip(s, high)])
    return [em.pad(g, None, start, [max(h, 0) for h in high], [0] * rank)]


SLICE = Rule(jvp=lambda em, op, t: [em.slice(t[0], ints(op.start_indices), ints(op.limit_indices),
                                             ints(op.strides))],
             vjp=_slice_vjp)


def _pad_props(op):
    return ints(op.edge_padding_low), ints(op.edge_padding_high), ints(op.interior_padding)


def _pad_jvp(em, op, t):
    x, _ = op.operands
    tx, tv = t
    if tx is None:
        tx = em.zeros(x)
    return [em.pad(tx, tv, *_pad_props(op))]


def _pad_vjp(em, op, c, n):
    """Crop the padding (negative padding becomes zeros), then take every
    (interior+1)-th element; the padding value gets what is left."""
    x = _x(op)
    lo, hi, interior = _pad_props(op)
    grown = em.pad(c[0], None, [max(-v, 0) for v in lo], [max(-v, 0) for v in hi], [0] * len(lo))
    gs = shape(grown)
    cx = em.slice(grown, [max(v, 0) for v in lo], [d - max(v, 0) for d, v in zip(gs, hi)],
                  [i + 1 for i in interior])
    assert cx is None or shape(cx) == shape(x), (shape(cx), shape(x))
    cv = None
    if n[1]:
        everything = range(len(shape(x)))
        cv = em.sub(em.reduce_sum(c[0], everything), em.reduce_sum(cx, everything))
    return [cx, cv]


PAD = Rule(jvp=_pad_jvp, vjp=_pad_vjp)


def _concat_jvp(em, op, t):
    if all(v is None for v in t):
        return [None]
    parts = [v if v is not None else em.zeros(x) for v, x in zip(t, op.operands)]
    return [em.concatenate(parts, op.dimension.value.data)]


def _concat_vjp(em, op, c, n):
    dim = op.dimension.value.data
    out, offset = [], 0
    zs = shape(_res(op))
    for x, need in zip(op.operands, n):
        size = shape(x)[dim]
        if need:
            start = [0] * len(zs)
            limit = list(zs)
            start[dim], limit[dim] = offset, offset + size
            out.append(em.slice(c[0], start, limit))
        else:
            out.append(None)
        offset += size
    return out


CONCATENATE = Rule(jvp=_concat_jvp, vjp=_concat_vjp)

DYNAMIC_SLICE = Rule(
    inputs=lambda op: [op.operand],
    jvp=lambda em, op, t: [em.dynamic_slice(t[0], list(op.start_indices), shape(_res(op)))],
    vjp=lambda em, op, c, n: [em.dynamic_update_slice(em.zeros(op.operand), c[0],
                                                      list(op.start_indices))])


def _dus_jvp(em, op, t):
    tx, tu = t
    return [em.dynamic_update_slice(tx if tx is not None else em.zeros(op.operand),
                                    tu if tu is not None else em.zeros(op.update),
                                    list(op.start_indices))]


def _dus_vjp(em, op, c, n):
    idx = list(op.start_indices)
    return [em.dynamic_update_slice(c[0], em.zeros(op.update), idx) if n[0] else None,
            em.dynamic_slice(c[0], idx, shape(op.update)) if n[1] else None]


DYNAMIC_UPDATE_SLICE = Rule(inputs=lambda op: [op.operand, op.update], jvp=_dus_jvp, vjp=_dus_vjp)


# ---------------------------------------------------------------------------------
# reduce (add, max, min)


def _reduce_parts(op):
    return op.operands[0], op.operands[1], ints(op.dimensions)


def _kept(x, dims):
    return [d for d in range(len(shape(x))) if d not in dims]


def _reduce_sum_jvp(em, op, t):
    x, _, dims = _reduce_parts(op)
    tz = em.reduce_sum(t[0], dims)
    if t[1] is not None:
        tz = em.add(tz, em.broadcast_in_dim(t[1], shape(_res(op)), []))
    return [tz]


def _reduce_sum_vjp(em, op, c, n):
    x, _, dims = _reduce_parts(op)
    return [em.broadcast_in_dim(c[0], shape(x), _kept(x, dims)) if n[0] else None,
            em.reduce_sum(c[0], range(len(shape(_res(op))))) if n[1] else None]


def _tie_share(em, x, z, dims):
    """JAX's rule for max/min reductions: the derivative is shared among the tied
    positions: mask = (x == bcast(z)), counts = Σ mask."""
    zb = em.broadcast_in_dim(z, shape(x), _kept(x, dims))
    mask = em.convert(em.compare(x, zb, "EQ"), x.type)
    return mask, em.reduce_sum(mask, dims)


def _chooser(em, op):
    x, _, dims = _reduce_parts(op)
    return _tie_share(em, x, _res(op), dims)


def _init_not_differentiable(op):
    return op_error(op, f"differentiate: the initial value of a {op.name} depends on the "
                        "differentiated inputs", hint="use a constant initial value")


def _reduce_choose_jvp(em, op, t):
    if t[1] is not None:
        raise _init_not_differentiable(op)
    x, _, dims = _reduce_parts(op)
    mask, counts = _chooser(em, op)
    return [em.div(em.reduce_sum(em.mul(t[0], mask), dims), counts)]


def _reduce_choose_vjp(em, op, c, n):
    if n[1]:
        raise _init_not_differentiable(op)
    x, _, dims = _reduce_parts(op)
    mask, counts = _chooser(em, op)
    return [em.mul(em.broadcast_in_dim(em.div(c[0], counts), shape(x), _kept(x, dims)), mask), None]


REDUCE_SUM = Rule(jvp=_reduce_sum_jvp, vjp=_reduce_sum_vjp)
REDUCE_CHOOSE = Rule(jvp=_reduce_choose_jvp, vjp=_reduce_choose_vjp)

#: the combining op of a single-input reduce's body -> rule
REDUCE_BODIES: dict[type, Rule] = {
    shlo.AddOp: REDUCE_SUM,
    shlo.MaximumOp: REDUCE_CHOOSE,
    shlo.MinimumOp: REDUCE_CHOOSE,
}

SECOND = "second"


def body_op(region: Region):
    """What a reduce-style body does with its two scalar arguments ``(a, b)``: the op
    of ``return f(a, b)`` (either order), :data:`SECOND` for ``return b`` (a scatter
    that overwrites), else None."""
    block = region.block
    ops, args = list(block.ops), list(block.args)
    if len(args) != 2:
        return None
    if len(ops) == 1 and list(ops[0].operands) == [args[1]]:
        return SECOND
    if len(ops) != 2 or len(ops[0].operands) != 2 or set(ops[0].operands) != set(args):
        return None
    if list(ops[1].operands) != list(ops[0].results):
        return None
    return ops[0]


def reduce_body_op(op):
    """The combining op of a one-input reduce whose body is ``return f(a, b)``."""
    if len(op.operands) != 2:
        return None
    found = body_op(op.body)
    return found if isinstance(found, Operation) else None


# argmax / argmin: a two-input reduce over (values, iota) whose body keeps one of the
# two values (a select) and its index. The index has no derivative; the value is a
# max/min and gets its rule (shared among ties).


def _arg_reduce(op):
    if len(op.operands) != 4:
        return None
    x, i = op.operands[0], op.operands[1]
    if not is_float(x) or is_float(i) or is_float(op.results[1]):
        return None
    args = list(op.body.block.args)
    kept = op.body.block.last_op.operands[0].owner
    if isinstance(kept, shlo.SelectOp) and {kept.operands[1], kept.operands[2]} == {args[0], args[2]}:
        return ARG_REDUCE
    return None


def _arg_reduce_jvp(em, op, t):
    if t[1] is not None:
        raise _init_not_differentiable(op)
    z = op.results[0]
    if not z.uses:  # jnp.argmax: only the index is read
        return [None, None]
    x, dims = op.operands[0], ints(op.dimensions)
    mask, counts = _tie_share(em, x, z, dims)
    return [em.div(em.reduce_sum(em.mul(t[0], mask), dims), counts), None]


def _arg_reduce_vjp(em, op, c, n):
    if n[1]:
        raise _init_not_differentiable(op)
    x, dims = op.operands[0], ints(op.dimensions)
    mask, counts = _tie_share(em, x, op.results[0], dims)
    return [em.mul(em.broadcast_in_dim(em.div(c[0], counts), shape(x), _kept(x, dims)), mask), None]


ARG_REDUCE = Rule(inputs=lambda op: [op.operands[0], op.operands[2]],
                  jvp=_arg_reduce_jvp, vjp=_arg_reduce_vjp)

REDUCE = Rule(select=lambda op: REDUCE_BODIES.get(type(reduce_body_op(op))) or _arg_reduce(op))


# ---------------------------------------------------------------------------------
# gather and scatter
#
# Indices get no derivative. A gather clamps its start indices into the operand, so its
# transpose scatters at the clamped indices; a scatter drops a window that does not fit
# (XLA's semantics, which JAX's "drop" mode relies on), so what is read back from it
# is zero there.


def _gather_jvp(em, op, t):
    return [em.gather(t[0], op.start_indices, op.dimension_numbers, ints(op.slice_sizes),
                      shape(_res(op)), op.indices_are_sorted)]


#: Largest number of classes the derivative of a per-row pick (``take_along_axis``)
#: writes as a one-hot select instead of a scatter.
ONE_HOT_MAX_CLASSES = 1024


def _per_row_pick(op) -> bool:
    """A gather that picks ``K`` elements of each row of a ``[B, C]`` operand by
    ``indices [B, K(, 1)]`` (``jnp.take_along_axis(x, i, axis=1)``, a loss's
    ``logp[target]``)."""
    g = shlo.struct_fields(op.dimension_numbers)
    xs, ish = shape(op.operand), shape(op.start_indices)
    ivd = g.get("index_vector_dim", 0)
    return (len(xs) == 2 and xs[1] <= ONE_HOT_MAX_CLASSES and ints(op.slice_sizes) == [1, 1]
            and g.get("operand_batching_dims", []) == [0]
            and g.get("start_indices_batching_dims", []) == [0]
            and g.get("collapsed_slice_dims", []) == [1] and g.get("start_index_map", []) == [1]
            and not g.get("offset_dims", []) and len(ish) in (2, 3) and ish[0] == xs[0]
            and (ivd == 2 and (len(ish) == 2 or ish[2] == 1)))


def _per_row_pick_vjp(em, op, ct):
    """``dx[b, c] = sum_k ct[b, k] * (i[b, k] == c)``: element-wise selects that fuse
    with their neighbours (a scatter is a kernel of its own, with a copy to build its
    index vectors, on IREE)."""
    x = op.operand
    b, classes = shape(x)
    idx = clamped_indices(em, op.start_indices, 2, [1], [b, classes], [1, 1])
    k = shape(idx)[1]
    idx = em.reshape(idx, [b, k])
    grid = [b, k, classes]
    hit = em.compare(em.broadcast_in_dim(idx, grid, [0, 1]),
                     em.iota(TensorType(idx.type.element_type, grid), 2), "EQ")
    picked = em.select(hit, em.broadcast_in_dim(em.reshape(ct, [b, k]), grid, [0, 1]), None)
    return em.reshape(picked, [b, classes]) if k == 1 else em.reduce_sum(picked, [1])


def _gather_vjp(em, op, c, n):
    """Scatter-add of the cotangent into zeros at the (clamped) indices the gather used,
    built in the one form IREE's scatter takes in every case: the operand's indexed
    dimensions first and all inserted (batching dimensions become an index component
    from an iota, a window along an indexed dimension becomes one index vector per
    window position), the other windows whole (padded with zeros), updates
    ``[batch.., window..]``; the result is transposed back."""
    if _per_row_pick(op):
        return [_per_row_pick_vjp(em, op, c[0])]
    g = shlo.struct_fields(op.dimension_numbers)
    x, sizes, ct = op.operand, ints(op.slice_sizes), c[0]
    xs = shape(x)
    collapsed = g.get("collapsed_slice_dims", [])
    index_map = list(g.get("start_index_map", []))
    ivd = g.get("index_vector_dim", 0)
    offset = g.get("offset_dims", [])
    batching = g.get("operand_batching_dims", [])
    idx = clamped_indices(em, op.start_indices, ivd, index_map, xs, sizes)
    it = idx.type.element_type
    # indices -> [b.., K]
    ish = shape(idx)
    if ivd == len(ish):
        idx, ish = em.reshape(idx, ish + [1]), ish + [1]
    batch = [i for i in range(len(ish)) if i != ivd]
    idx = em.transpose(idx, batch + [ivd])
    bsh = [ish[i] for i in batch]
    m = len(batch)
    # a batching dimension pair is an index component: the position along the indices' dimension
    for ob, ib in zip(batching, g.get("start_indices_batching_dims", [])):
        pos = em.iota(TensorType(it, bsh + [1]), batch.index(ib))
        idx = em.concatenate([idx, pos], m)
        index_map.append(ob)
    window_of = dict(zip([d for d in range(len(xs)) if d not in collapsed and d not in batching],
                         offset))  # operand dimension -> its window dimension in the result
    # a window along an indexed dimension: one index vector per position in it
    moved = sorted(d for d in index_map if d in window_of)
    spans, k, q = [sizes[d] for d in moved], len(index_map), len(moved)
    if moved:
        offsets = np.zeros(spans + [k], dtype=np.int64)
        for p, d in enumerate(moved):
            offsets[..., index_map.index(d)] += np.arange(spans[p]).reshape(
                [-1 if j == p else 1 for j in range(q)])
        full = bsh + spans + [k]
        idx = em.add(em.broadcast_in_dim(idx, full, list(range(m)) + [m + q]),
                     em.broadcast_in_dim(em.constant(offsets, TensorType(it, spans + [k])), full,
                                         list(range(m, m + q + 1))))
    # a partial window along a dimension that is not indexed starts at 0: pad it to the whole
    rest = [d for d in range(len(xs)) if d not in index_map]
    grow = [0] * len(shape(ct))
    for d in rest:
        grow[window_of[d]] = xs[d] - sizes[d]
    ct = em.pad(ct, None, [0] * len(grow), grow, [0] * len(grow))
    out_batch = [d for d in range(len(shape(ct))) if d not in offset]
    ct = em.transpose(ct, out_batch + [window_of[d] for d in moved + rest])
    order = index_map + rest  # the operand's dimensions, indexed ones first
    dims = {"update_window_dims": list(range(m + q, m + q + len(rest))),
            "inserted_window_dims": list(range(k)),
            "scatter_dims_to_operand_dims": list(range(k)),
            "index_vector_dim": m + q}
    zeros = em.zeros(TensorType(x.type.element_type, [xs[d] for d in order]))
    out = em.scatter(zeros, idx, ct, dims, "add", None)
    return [em.transpose(out, np.argsort(order))]


GATHER = Rule(inputs=lambda op: [op.operand], jvp=_gather_jvp, vjp=_gather_vjp)


def _scatter_parts(op):
    """(operand, indices, updates, scatter fields) of a one-input scatter."""
    x, idx, u = op.operands
    return x, idx, u, shlo.struct_fields(op.scatter_dimension_numbers)


def _read_back(em, op, c, mask_dropped=True):
    """``c`` gathered where the scatter wrote (the updates' shape); zero for windows
    the scatter dropped unless ``mask_dropped`` is False."""
    x, idx, u, s = _scatter_parts(op)
    dims, sizes = scatter_as_gather(s, shape(x), shape(u))
    g = em.gather(c, idx, dims, sizes, shape(u), op.indices_are_sorted)
    if not mask_dropped or g is None:
        return g
    ok = in_bounds(em, idx, dims["index_vector_dim"], dims["start_index_map"], shape(x), sizes)
    if ok is None:
        return g
    scatter_dims = [d for d in range(len(shape(u))) if d not in s.get("update_window_dims", [])]
    return em.select(em.broadcast_in_dim(ok, shape(u), scatter_dims), g, None)


def _scatter_add_jvp(em, op, t):
    x, idx, u, _ = _scatter_parts(op)
    tx, tu = t
    if tu is None:
        return [tx]
    return [em.scatter(em.val(tx, x), idx, tu, op.scatter_dimension_numbers, "add",
                       op.indices_are_sorted)]


def _scatter_add_vjp(em, op, c, n):
    return [c[0], _read_back(em, op, c[0]) if n[1] else None]


def _winners(em, op):
    """JAX's scheme for an overwriting scatter whose indices may repeat (which update
    wins is the scatter's own choice): scatter an id per update, read the ids back.
    Returns (i1 like the operand: not overwritten, i1 like the updates: this update
    is the one that stays)."""
    x, idx, u, s = _scatter_parts(op)
    us = shape(u)
    window = s.get("update_window_dims", [])
    ids_shape = [1 if d in window else n for d, n in enumerate(us)]
    i32 = IntegerType(32)
    count = int(np.prod(ids_shape))
    ids = em.add(em.iota(TensorType(i32, [count]), 0), em.full(1, TensorType(i32, [count])))
    ids = em.broadcast_in_dim(em.reshape(ids, ids_shape), us, range(len(us)))
    scattered = em.scatter(em.zeros(TensorType(i32, shape(x))), idx, ids,
                           op.scatter_dimension_numbers, "set", op.indices_are_sorted)
    dims, sizes = scatter_as_gather(s, shape(x), us)
    back = em.gather(scattered, idx, dims, sizes, us, op.indices_are_sorted)
    return em.compare(scattered, em.zeros(scattered), "EQ"), em.compare(ids, back, "EQ")


def _scatter_set_jvp(em, op, t):
    x, idx, u, _ = _scatter_parts(op)
    kept, won = _winners(em, op)
    tx, tu = em.select(kept, t[0], None), em.select(won, t[1], None)
    if tu is None:
        return [tx]
    return [em.scatter(em.val(tx, x), idx, tu, op.scatter_dimension_numbers, "add",
                       op.indices_are_sorted)]


def _scatter_set_vjp(em, op, c, n):
    kept, won = _winners(em, op)
    return [em.select(kept, c[0], None) if n[0] else None,
            em.select(won, _read_back(em, op, c[0], mask_dropped=False), None) if n[1] else None]


SCATTER_ADD = Rule(inputs=lambda op: [op.operands[0], op.operands[2]],
                   jvp=_scatter_add_jvp, vjp=_scatter_add_vjp)
SCATTER_SET = Rule(inputs=lambda op: [op.operands[0], op.operands[2]],
                   jvp=_scatter_set_jvp, vjp=_scatter_set_vjp)


def _scatter_select(op):
    if len(op.operands) != 3:
        return None
    found = body_op(op.update_computation)
    if found == SECOND:
        return SCATTER_SET
    return SCATTER_ADD if isinstance(found, shlo.AddOp) else None


SCATTER = Rule(select=_scatter_select)


# ---------------------------------------------------------------------------------
# reduce_window (sum, max, min, product) and select_and_scatter


def window_params(op) -> dict:
    """window, strides, padding (pairs), base_dilations, window_dilations of a
    reduce_window (defaults filled in)."""
    rank = len(shape(op.operands[0]))
    pad = [int(v) for v in op.padding.get_values()] if op.padding is not None else [0] * (2 * rank)
    return {"window": ints(op.window_dimensions),
            "strides": ints(op.window_strides) or [1] * rank,
            "padding": [(pad[2 * k], pad[2 * k + 1]) for k in range(rank)],
            "base_dilations": ints(op.base_dilations) or [1] * rank,
            "window_dilations": ints(op.window_dilations) or [1] * rank}


def _window_sum_jvp(em, op, t):
    if t[1] is not None:
        raise _init_not_differentiable(op)
    return [em.reduce_window_sum(t[0], **window_params(op))]


def _window_sum_vjp(em, op, c, n):
    """JAX's transpose of a windowed sum: the cotangent spread by the strides, padded,
    summed over the same windows with the base dilation as strides."""
    if n[1]:
        raise _init_not_differentiable(op)
    p = window_params(op)
    in_shape = shape(op.operands[0])
    rank = len(in_shape)
    ld = [dilate(d, b) for d, b in zip(in_shape, p["base_dilations"])]
    wd = [dilate(w, d) for w, d in zip(p["window"], p["window_dilations"])]
    od = [dilate(o, s) for o, s in zip(shape(c[0]), p["strides"])]
    before = [w - lo - 1 for w, (lo, _) in zip(wd, p["padding"])]
    after = [l + w - 1 - o - b for l, w, o, b in zip(ld, wd, od, before)]
    g = em.pad(c[0], None, before, after, [s - 1 for s in p["strides"]])
    out = em.reduce_window_sum(g, p["window"], p["base_dilations"], [(0, 0)] * rank, [1] * rank,
                               p["window_dilations"])
    assert shape(out) == in_shape, (shape(out), in_shape)
    return [out, None]


def _window_choose(op) -> str:
    return "GE" if isinstance(body_op(op.body), shlo.MaximumOp) else "LE"


def _window_choose_jvp(em, op, t):
    """The tangent at the position each window selects (the first maximum/minimum)."""
    if t[1] is not None:
        raise _init_not_differentiable(op)
    return [em.select_and_gather(op.operands[0], t[0], _window_choose(op), **window_params(op))]


def _window_choose_vjp(em, op, c, n):
    """JAX's select_and_scatter of the cotangent (GE/LE select, add scatter) where the
    windows tile the operand (strides = window, no padding or dilation: max pooling),
    the only form IREE compiles. Otherwise (overlapping windows, padding, dilations:
    cummax, 'SAME' pooling) the same selection made explicit: a two-input reduce_window
    over ``(x, flat position)`` picks each window's position, and the cotangent is
    scatter-added there (padding and holes point to one extra slot, dropped)."""
    if n[1]:
        raise _init_not_differentiable(op)
    p = window_params(op)
    x, direction = op.operands[0], _window_choose(op)
    xs, rank = shape(x), len(shape(x))
    if (p["strides"] == p["window"] and all(pad == (0, 0) for pad in p["padding"])
            and p["base_dilations"] == [1] * rank and p["window_dilations"] == [1] * rank):
        return [em.select_and_scatter(x, c[0], direction, p["window"], p["strides"],
                                      p["padding"]), None]
    size = int(np.prod(xs))
    i32 = IntegerType(32)
    where = em.reshape(em.iota(TensorType(i32, [size]), 0), xs)
    picked = em.select_and_gather(x, where, direction, worst_index=size, **p)
    count = int(np.prod(shape(picked)))
    flat = em.scatter(em.zeros(TensorType(c[0].type.element_type, [size + 1])),
                      em.reshape(picked, [count, 1]), em.reshape(c[0], [count]),
                      {"inserted_window_dims": [0], "scatter_dims_to_operand_dims": [0],
                       "index_vector_dim": 1}, "add")
    return [em.reshape(em.slice(flat, [0], [size]), xs), None]


def _window_product_factors(em, op):
    """For a windowed product along one dimension ``a`` (every other dimension a window
    of 1: cumprod and the like): ``M[k, ..., i, ...] = ∂z[..., i, ...]/∂x[..., k, ...]``
    shaped ``[n] + z``, built without division (exact where x has zeros): the same
    reduce_window over copies of x with element k replaced by 1 (the product of the
    others), times whether k is in window i (a windowed sum of the one-hot of k)."""
    x, init = op.operands
    p = window_params(op)
    xs, rank = shape(x), len(shape(x))
    moving = [d for d in range(rank)
              if (p["window"][d], p["strides"][d], p["padding"][d], p["base_dilations"][d]) != (1, 1, (0, 0), 1)]
    if len(moving) > 1:
        raise op_error(op, "differentiate: a windowed product (reduce_window with a multiply "
                           f"body) over more than one dimension ({moving}) has no derivative rule",
                       hint="take the product along one dimension at a time (e.g. jnp.cumprod)")
    if rank == 0:
        raise op_error(op, "differentiate: a reduce_window of a scalar has no derivative rule")
    a = moving[0] if moving else 0
    n = xs[a]
    big = TensorType(IntegerType(32), [n] + xs)
    diag = em.compare(em.iota(big, 0), em.iota(big, a + 1), "EQ")
    others = em.select(diag, em.full(1.0, TensorType(x.type.element_type, [n] + xs)),
                       em.broadcast_in_dim(x, [n] + xs, range(1, rank + 1)))
    q = {"window": [1] + p["window"], "strides": [1] + p["strides"],
         "padding": [(0, 0)] + p["padding"], "base_dilations": [1] + p["base_dilations"],
         "window_dilations": [1] + p["window_dilations"]}
    prod = em.reduce_window(others, init, lambda: op.body.clone(), key=("product", id(op)), **q)
    inside = em.reduce_window_sum(em.convert(diag, others.type), **q)
    return em.mul(prod, inside), a


def _window_product_jvp(em, op, t):
    if t[1] is not None:
        raise _init_not_differentiable(op)
    m, a = _window_product_factors(em, op)
    rank = len(shape(op.operands[0]))
    tb = em.broadcast_in_dim(t[0], shape(m), [0 if d == a else d + 1 for d in range(rank)])
    return [em.reduce_sum(em.mul(m, tb), [0])]


def _window_product_vjp(em, op, c, n):
    if n[1]:
        raise _init_not_differentiable(op)
    m, a = _window_product_factors(em, op)
    rank = len(shape(op.operands[0]))
    cb = em.broadcast_in_dim(c[0], shape(m), range(1, rank + 1))
    summed = em.reduce_sum(em.mul(m, cb), [a + 1])  # [n] + the other dimensions
    perm = [0 if d == a else d + 1 if d < a else d for d in range(rank)]
    return [em.transpose(summed, perm), None]


WINDOW_SUM = Rule(jvp=_window_sum_jvp, vjp=_window_sum_vjp)
WINDOW_CHOOSE = Rule(jvp=_window_choose_jvp, vjp=_window_choose_vjp)
WINDOW_PRODUCT = Rule(jvp=_window_product_jvp, vjp=_window_product_vjp)

#: the combining op of a one-input reduce_window's body -> rule
REDUCE_WINDOW_BODIES: dict[type, Rule] = {
    shlo.AddOp: WINDOW_SUM,
    shlo.MaximumOp: WINDOW_CHOOSE,
    shlo.MinimumOp: WINDOW_CHOOSE,
    shlo.MultiplyOp: WINDOW_PRODUCT,
}


def _reduce_window_select(op):
    if len(op.operands) != 2:
        return None
    return REDUCE_WINDOW_BODIES.get(type(body_op(op.body)))


REDUCE_WINDOW = Rule(select=_reduce_window_select)


def _select_direction(op):
    """GE / LE when a select_and_scatter selects with ``return compare(a, b)``."""
    block = op.select.block
    ops = list(block.ops)
    if (len(ops) == 2 and isinstance(ops[0], shlo.CompareOp)
            and list(ops[0].operands) == list(block.args)
            and list(ops[1].operands) == list(ops[0].results) and _direction(ops[0]) in ("GE", "LE")):
        return _direction(ops[0])
    return None


def _sas_params(op):
    rank = len(shape(op.operand))
    pad = [int(v) for v in op.padding.get_values()] if op.padding is not None else [0] * (2 * rank)
    return (ints(op.window_dimensions) or [1] * rank, ints(op.window_strides) or [1] * rank,
            [(pad[2 * k], pad[2 * k + 1]) for k in range(rank)])


def _sas_jvp(em, op, t):
    """Linear in the source (the selection is piecewise constant in the operand)."""
    window, strides, padding = _sas_params(op)
    out = em.select_and_scatter(op.operand, t[0], _select_direction(op), window, strides, padding)
    return [em.add(out, em.broadcast_in_dim(t[1], shape(_res(op)), []))]


def _sas_vjp(em, op, c, n):
    """The source's cotangent is the cotangent at each window's selected position."""
    window, strides, padding = _sas_params(op)
    cs = (em.select_and_gather(op.operand, c[0], _select_direction(op), window, strides, padding)
          if n[0] else None)
    return [cs, em.reduce_sum(c[0], range(len(shape(c[0])))) if n[1] else None]


SELECT_AND_SCATTER = Rule(inputs=lambda op: [op.source, op.init_value], jvp=_sas_jvp, vjp=_sas_vjp)


def _sas_select(op):
    if _select_direction(op) is None or not isinstance(body_op(op.scatter), shlo.AddOp):
        return None
    return SELECT_AND_SCATTER


SELECT_AND_SCATTER_ANY = Rule(select=_sas_select)


# ---------------------------------------------------------------------------------
# dot_general (any dimension numbers)






def _dot_jvp(em, op, t):
    a, b = op.operands
    lb, rb, lc, rc = dot_dims(op)
    p = uniform_precision(op)
    return [em.add(em.dot_general(t[0], b, lb, rb, lc, rc, p),
                   em.dot_general(a, t[1], lb, rb, lc, rc, p))]


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield list(range(start, start + len(x)))
        start += len(x)


def _remaining(n, *excluded):
    gone = set().union(*[set(e) for e in excluded])
    return [d for d in range(n) if d not in gone]


def _dot_transpose_lhs(em, g, x_type, y, x_contract, y_contract, x_batch, y_batch, precision,
                       swap_ans=False):
    """JAX's ``_dot_general_transpose_lhs``: the cotangent of the lhs ``x``."""
    x_kept = _remaining(len(x_type.get_shape()), x_contract, x_batch)
    y_kept = _remaining(len(shape(y)), y_contract, y_batch)
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    out = em.dot_general(g, y, ans_batch, list(y_batch), ans_y, y_kept, precision)
    x_contract_sorted_by_y = [x_contract[i] for i in np.argsort(y_contract)]
    out_axes = np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y)
    return em.transpose(out, out_axes)


def _dot_vjp(em, op, c, n):
    a, b = op.operands
    lb, rb, lc, rc = dot_dims(op)
    p = uniform_precision(op)
    ca = _dot_transpose_lhs(em, c[0], a.type, b, lc, rc, lb, rb, p) if n[0] else None
    cb = _dot_transpose_lhs(em, c[0], b.type, a, rc, lc, rb, lb, p, swap_ans=True) if n[1] else None
    return [ca, cb]


DOT_GENERAL = Rule(jvp=_dot_jvp, vjp=_dot_vjp)


# ---------------------------------------------------------------------------------
# convolution (JAX's transpose rules, ported)








def _conv(em, lhs, rhs, p: ConvParams, **changes):
    args = dict(lhs_spec=p.lhs_spec, rhs_spec=p.rhs_spec, out_spec=p.out_spec, strides=p.strides,
                padding=p.padding, lhs_dilation=p.lhs_dilation, rhs_dilation=p.rhs_dilation,
                feature_group_count=p.feature_group_count, batch_group_count=p.batch_group_count,
                precision=p.precision)
    args.update(changes)
    if lhs is None or rhs is None:
        return None
    return em.convolution(lhs, rhs, **args)


def _reshape_axis_into(em, src, dst, x):
    perm = [i for i in range(len(shape(x))) if i != src]
    perm.insert(dst, src)
    new_shape = [d for i, d in enumerate(shape(x)) if i != src]
    new_shape[dst] *= shape(x)[src]
    return em.reshape(em.transpose(x, perm), new_shape)


def _reshape_axis_out_of(em, src, size1, x):
    s = shape(x)
    s[src:src + 1] = [size1, s[src] // size1]
    return em.reshape(x, s)


def _spec_transpose(spec):
    return (spec[1], spec[0]) + tuple(spec[2:])


def _conv_transpose_lhs(em, g, lhs_type, rhs, p: ConvParams):
    lhs_shape, rhs_shape, g_shape = list(lhs_type.get_shape()), shape(rhs), shape(g)
    lhs_sdims, rhs_sdims, out_sdims = p.lhs_spec[2:], p.rhs_spec[2:], p.out_spec[2:]
    fgc, bgc = p.feature_group_count, p.batch_group_count
    if fgc > 1:
        rhs = _reshape_axis_out_of(em, p.rhs_spec[0], fgc, rhs)
        rhs = _reshape_axis_into(em, p.rhs_spec[0], p.rhs_spec[1], rhs)
    elif bgc > 1:
        rhs = _reshape_axis_out_of(em, p.rhs_spec[0], bgc, rhs)
        rhs = _reshape_axis_into(em, p.rhs_spec[0], p.rhs_spec[1], rhs)
        fgc = bgc
    ld = [dilate(lhs_shape[d], s) for d, s in zip(lhs_sdims, p.lhs_dilation)]
    rd = [dilate(rhs_shape[d], s) for d, s in zip(rhs_sdims, p.rhs_dilation)]
    od = [dilate(g_shape[d], s) for d, s in zip(out_sdims, p.strides)]
    before = [r - lo - 1 for r, (lo, _) in zip(rd, p.padding)]
    after = [l + r - 1 - o - b for l, r, o, b in zip(ld, rd, od, before)]
    out = em.convolution(g, em.reverse(rhs, rhs_sdims), lhs_spec=p.out_spec,
                         rhs_spec=_spec_transpose(p.rhs_spec), out_spec=p.lhs_spec,
                         strides=p.lhs_dilation, padding=list(zip(before, after)),
                         lhs_dilation=p.strides, rhs_dilation=p.rhs_dilation,
                         feature_group_count=fgc, batch_group_count=1, precision=p.precision)
    if bgc > 1:
        out = _reshape_axis_out_of(em, p.lhs_spec[1], bgc, out)
        out = _reshape_axis_into(em, p.lhs_spec[1], p.lhs_spec[0], out)
    return out


def conv_transpose_rhs(em, g, lhs, rhs_type, p: ConvParams):
    lhs_shape, rhs_shape, g_shape = shape(lhs), list(rhs_type.get_shape()), shape(g)
    lhs_sdims, rhs_sdims, out_sdims = p.lhs_spec[2:], p.rhs_spec[2:], p.out_spec[2:]
    fgc, bgc = p.feature_group_count, p.batch_group_count
    if bgc > 1:
        fgc, bgc = bgc, 1
    elif fgc > 1:
        fgc, bgc = 1, fgc
    ld = [dilate(lhs_shape[d], s) for d, s in zip(lhs_sdims, p.lhs_dilation)]
    rd = [dilate(rhs_shape[d], s) for d, s in zip(rhs_sdims, p.rhs_dilation)]
    od = [dilate(g_shape[d], s) for d, s in zip(out_sdims, p.strides)]
    lo = [lo for lo, _ in p.padding]
    hi = [o - l + r - pl - 1 for o, l, r, pl in zip(od, ld, rd, lo)]
    return em.convolution(lhs, g, lhs_spec=_spec_transpose(p.lhs_spec),
                          rhs_spec=_spec_transpose(p.out_spec), out_spec=_spec_transpose(p.rhs_spec),
                          strides=p.rhs_dilation, padding=list(zip(lo, hi)),
                          lhs_dilation=p.lhs_dilation, rhs_dilation=p.strides,
                          feature_group_count=fgc, batch_group_count=bgc, precision=p.precision)


def _conv_jvp(em, op, t):
    p = conv_params(op)
    a, b = op.operands
    return [em.add(_conv(em, t[0], b, p), _conv(em, a, t[1], p))]


def _conv_vjp(em, op, c, n):
    p = conv_params(op)
    if p.feature_group_count > 1 and p.batch_group_count > 1:
        raise op_error(op, "differentiate: convolution with both feature and batch groups")
    a, b = op.operands
    ca = _conv_transpose_lhs(em, c[0], a.type, b, p) if n[0] else None
    cb = conv_transpose_rhs(em, c[0], a, b.type, p) if n[1] else None
    for v, x in ((ca, a), (cb, b)):
        if v is not None and shape(v) != shape(x):
            raise op_error(op, f"differentiate: internal error: convolution cotangent has shape "
                               f"{shape(v)}, expected {shape(x)}", hint="please report this")
    return [ca, cb]


CONVOLUTION = Rule(jvp=_conv_jvp, vjp=_conv_vjp)


# ---------------------------------------------------------------------------------
# The table


RULES: dict[type, Rule] = {
    shlo.AddOp: ADD,
    shlo.SubtractOp: SUBTRACT,
    shlo.MultiplyOp: MULTIPLY,
    shlo.DivideOp: DIVIDE,
    shlo.NegateOp: NEGATE,
    shlo.AbsOp: _abs_rule(),
    shlo.ExpOp: EXP,
    shlo.LogOp: LOG,
    shlo.Log1pOp: LOG1P,
    shlo.Expm1Op: EXPM1,
    shlo.TanhOp: TANH,
    shlo.LogisticOp: LOGISTIC,
    shlo.SqrtOp: SQRT,
    shlo.RsqrtOp: RSQRT,
    shlo.SineOp: SINE,
    shlo.CosineOp: COSINE,
    shlo.PowerOp: POWER,
    shlo.MaximumOp: _choice("GT"),
    shlo.MinimumOp: _choice("LT"),
    shlo.ClampOp: CLAMP,
    shlo.SelectOp: SELECT,
    shlo.ConvertOp: CONVERT,
    shlo.BroadcastInDimOp: BROADCAST_IN_DIM,
    shlo.ReshapeOp: RESHAPE,
    shlo.TransposeOp: TRANSPOSE,
    shlo.ReverseOp: REVERSE,
    shlo.SliceOp: SLICE,
    shlo.PadOp: PAD,
    shlo.ConcatenateOp: CONCATENATE,
    shlo.DynamicSliceOp: DYNAMIC_SLICE,
    shlo.DynamicUpdateSliceOp: DYNAMIC_UPDATE_SLICE,
    shlo.ReduceOp: REDUCE,
    shlo.DotGeneralOp: DOT_GENERAL,
    shlo.ConvolutionOp: CONVOLUTION,
    shlo.GatherOp: GATHER,
    shlo.ScatterOp: SCATTER,
    shlo.ReduceWindowOp: REDUCE_WINDOW,
    shlo.SelectAndScatterOp: SELECT_AND_SCATTER_ANY,
    shlo.RemainderOp: REMAINDER,
    shlo.CompositeOp: COMPOSITE,
    # zero derivative (piecewise constant, integer or boolean)
    shlo.ConstantOp: ZERO,
    shlo.IotaOp: ZERO,
    shlo.CompareOp: ZERO,
    shlo.SignOp: ZERO,
    shlo.FloorOp: ZERO,
    shlo.CeilOp: ZERO,
    shlo.RoundNearestEvenOp: ZERO,
    shlo.RoundNearestAfzOp: ZERO,
    shlo.IsFiniteOp: ZERO,
    shlo.NotOp: ZERO,
    shlo.AndOp: ZERO,
    shlo.OrOp: ZERO,
    shlo.XorOp: ZERO,
}


def _describe_composite(op):
    return f"stablehlo.composite \"{op.composite_name.data}\""


def _describe_reduce(op):
    body = reduce_body_op(op)
    if body is None:
        return f"stablehlo.reduce with {len(op.operands) // 2} input(s) and a multi-op body"
    return f"stablehlo.reduce with a '{body.name}' body"


def _describe_body(region: Region, what: str) -> str:
    found = body_op(region)
    if found == SECOND:
        return f"{what} whose body returns the update"
    if isinstance(found, Operation):
        return f"{what} with a '{found.name}' body"
    return f"{what} with a multi-op body"


def _describe_scatter(op):
    if len(op.operands) != 3:
        return f"stablehlo.scatter with {len(op.operands) // 2} inputs"
    return _describe_body(op.update_computation, "stablehlo.scatter")


def _describe_reduce_window(op):
    if len(op.operands) != 2:
        return f"stablehlo.reduce_window with {len(op.operands) // 2} inputs"
    return _describe_body(op.body, "stablehlo.reduce_window")


def _describe_select_and_scatter(op):
    return ("stablehlo.select_and_scatter whose select is not compare GE/LE of its arguments "
            "or whose scatter is not an add")


_DESCRIBE: dict[type, Callable] = {shlo.CompositeOp: _describe_composite,
                                   shlo.ReduceOp: _describe_reduce,
                                   shlo.ScatterOp: _describe_scatter,
                                   shlo.ReduceWindowOp: _describe_reduce_window,
                                   shlo.SelectAndScatterOp: _describe_select_and_scatter}


def describe(op: Operation) -> str:
    """How an op without a rule is named in the error (the op's name follows it)."""
    fn = _DESCRIBE.get(type(op))
    return fn(op) if fn is not None else "this op"
