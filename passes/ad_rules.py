"""Derivative rules of StableHLO ops, one table keyed by op type (DESIGN.md section 6).

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

``em`` is a :class:`tracec.passes.ad.Emitter`: it builds the StableHLO ops (with the
location of the differentiated op) and folds zeros, which stand as ``None``.
Surrogate derivatives of ``tracec.spike`` are DESIGN.md section 2's formulas, written
as StableHLO ops in the same order as ``frontends/jax_frontend.py`` (``SURROGATES``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.ad import Emitter, _dilate, ints, is_float, shape
from tracec.passes.common import op_error


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


def _unary(deriv: Callable[[Emitter, Operation], SSAValue]) -> Rule:
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


def _choice(direction: str) -> Rule:
    """maximum (GT) / minimum (LT): the derivative follows the chosen operand."""

    def pick(em, op):
        return em.compare(op.operands[0], op.operands[1], direction)

    return Rule(jvp=lambda em, op, t: [em.select(pick(em, op), t[0], t[1])],
                vjp=lambda em, op, c, n: [em.select(pick(em, op), c[0], None) if n[0] else None,
                                          em.select(pick(em, op), None, c[0]) if n[1] else None])


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
# tracec.spike surrogates (DESIGN.md section 2), as StableHLO ops


def _sigmoid(em, x, alpha):
    # α·σ(αx)·σ(−αx): 1−σ(αx) written σ(−αx) keeps its precision in f32
    a = em.full(alpha, x)
    s1 = em.unary(shlo.LogisticOp, em.val(em.mul(a, x), x))
    s2 = em.unary(shlo.LogisticOp, em.val(em.mul(em.full(-alpha, x), x), x))
    return em.mul(em.mul(a, s1), s2)


def _fast_sigmoid(em, x, alpha):
    # 1/(1+α|x|)²
    u = em.add(em.full(1.0, x), em.mul(em.full(alpha, x), em.unary(shlo.AbsOp, x)))
    return em.div(em.full(1.0, x), em.mul(u, u))


def _triangle(em, x, alpha):
    # max(0, 1−|x|/α)/α
    inner = em.sub(em.full(1.0, x), em.div(em.unary(shlo.AbsOp, x), em.full(alpha, x)))
    return em.div(em.binary(shlo.MaximumOp, em.full(0.0, x), em.val(inner, x)), em.full(alpha, x))


def _arctan(em, x, alpha):
    # (α/2)/(1+(παx/2)²)
    u = em.mul(em.full(math.pi * alpha / 2.0, x), x)
    return em.div(em.full(alpha / 2.0, x), em.add(em.full(1.0, x), em.mul(u, u)))


def _gaussian(em, x, alpha):
    # exp(−x²/2α²)/(√(2π)α)
    e = em.unary(shlo.ExpOp, em.val(em.div(em.neg(em.mul(x, x)), em.full(2.0 * alpha ** 2, x)), x))
    return em.div(e, em.full(math.sqrt(2.0 * math.pi) * alpha, x))


#: surrogate name -> (em, x, alpha) -> d/dx of the Heaviside, emitted as StableHLO.
SURROGATES: dict[str, Callable] = {
    "sigmoid": _sigmoid,
    "fast-sigmoid": _fast_sigmoid,
    "triangle": _triangle,
    "arctan": _arctan,
    "gaussian": _gaussian,
}
DEFAULT_SURROGATE, DEFAULT_ALPHA = "sigmoid", 4.0


def _spike_params(op) -> tuple[str, float]:
    attrs = op.composite_attributes.data if op.composite_attributes is not None else {}
    surrogate = attrs.get("surrogate")
    surrogate = surrogate.data if isinstance(surrogate, StringAttr) else DEFAULT_SURROGATE
    alpha = attrs.get("alpha")
    alpha = float(alpha.value.data) if alpha is not None else DEFAULT_ALPHA
    if surrogate not in SURROGATES:
        raise op_error(op, f"differentiate: unknown surrogate '{surrogate}' on tracec.spike",
                       hint=f"choose one of {', '.join(SURROGATES)}")
    if not alpha > 0:
        raise op_error(op, f"differentiate: surrogate alpha must be positive, got {alpha}")
    return surrogate, alpha


def _spike_deriv(em, op):
    surrogate, alpha = _spike_params(op)
    x = op.inputs[0]
    return em.convert(SURROGATES[surrogate](em, x, alpha), _res(op).type)


SPIKE = Rule(jvp=lambda em, op, t: [em.mul(_spike_deriv(em, op), t[0])],
             vjp=lambda em, op, c, n: [em.mul(_spike_deriv(em, op), c[0])])

#: composite name -> rule
COMPOSITE_RULES: dict[str, Rule] = {
    "tracec.spike": SPIKE,
    "tracec.stop_gradient": ZERO,
}

COMPOSITE = Rule(select=lambda op: COMPOSITE_RULES.get(op.composite_name.data))


# ---------------------------------------------------------------------------------
# A bare Heaviside: convert(compare(a, b)) from i1 to float


def _direction(op) -> str:
    attr = op.comparison_direction
    return getattr(attr, "value", StringAttr("")).data.strip()


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
    return [em.convert(em.mul(_sigmoid(em, u, DEFAULT_ALPHA), tu), _res(op).type)]


def _heaviside_vjp(em, op, c, n):
    u, sign = _heaviside_u(em, op)
    cu = em.mul(_sigmoid(em, u, DEFAULT_ALPHA), em.convert(c[0], u.type))
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


def _chooser(em, op):
    """JAX's rule for max/min reductions: the derivative is shared among the tied
    positions: mask = (x == bcast(z)), counts = Σ mask."""
    x, _, dims = _reduce_parts(op)
    z = em.broadcast_in_dim(_res(op), shape(x), _kept(x, dims))
    mask = em.convert(em.compare(x, z, "EQ"), x.type)
    return mask, em.reduce_sum(mask, dims)


def _init_not_differentiable(op):
    return op_error(op, "differentiate: the initial value of a max/min reduce depends on the "
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


def reduce_body_op(op):
    """The combining op of a one-input reduce whose body is ``return f(a, b)``."""
    if len(op.operands) != 2:
        return None
    ops = list(op.body.block.ops)
    if len(ops) != 2 or set(ops[0].operands) != set(op.body.block.args) or len(ops[0].operands) != 2:
        return None
    if list(ops[1].operands) != list(ops[0].results):
        return None
    return ops[0]


REDUCE = Rule(select=lambda op: REDUCE_BODIES.get(type(reduce_body_op(op))))


# ---------------------------------------------------------------------------------
# dot_general (any dimension numbers)


_DIMS = re.compile(r"(\w+)\s*=\s*\[([^\]]*)\]")


def dot_dims(op) -> tuple[list[int], list[int], list[int], list[int]]:
    """(lhs_batch, rhs_batch, lhs_contracting, rhs_contracting) of a dot_general."""
    text = getattr(op.dot_dimension_numbers, "value", StringAttr("")).data
    found = {k: [int(v) for v in vals.split(",") if v.strip()] for k, vals in _DIMS.findall(text)}
    return (found.get("lhs_batching_dimensions", []), found.get("rhs_batching_dimensions", []),
            found.get("lhs_contracting_dimensions", []), found.get("rhs_contracting_dimensions", []))


def _precision(op):
    p = op.precision_config
    if p is not None and len(set(p.data)) == 1:
        return p
    return None


def _dot_jvp(em, op, t):
    a, b = op.operands
    lb, rb, lc, rc = dot_dims(op)
    p = _precision(op)
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
    p = _precision(op)
    ca = _dot_transpose_lhs(em, c[0], a.type, b, lc, rc, lb, rb, p) if n[0] else None
    cb = _dot_transpose_lhs(em, c[0], b.type, a, rc, lc, rb, lb, p, swap_ans=True) if n[1] else None
    return [ca, cb]


DOT_GENERAL = Rule(jvp=_dot_jvp, vjp=_dot_vjp)


# ---------------------------------------------------------------------------------
# convolution (JAX's transpose rules, ported)


@dataclass(frozen=True)
class ConvParams:
    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple
    strides: list
    padding: list
    lhs_dilation: list
    rhs_dilation: list
    feature_group_count: int
    batch_group_count: int
    precision: object


def _conv_spec(text: str, letters: tuple[str, str]) -> tuple[int, ...]:
    tokens = [s.strip() for s in text.strip("[] ").split(",")]
    spatial = sorted((int(tok), i) for i, tok in enumerate(tokens) if tok.isdigit())
    return (tokens.index(letters[0]), tokens.index(letters[1])) + tuple(i for _, i in spatial)


def conv_params(op) -> ConvParams:
    text = getattr(op.dimension_numbers, "value", StringAttr("")).data
    m = re.fullmatch(r"\s*(\[[^\]]*\])\s*x\s*(\[[^\]]*\])\s*->\s*(\[[^\]]*\])\s*", text)
    if m is None:
        raise op_error(op, f"differentiate: cannot read convolution dimension numbers '{text}'")
    lhs_spec = _conv_spec(m.group(1), ("b", "f"))
    rhs_spec = _conv_spec(m.group(2), ("o", "i"))
    out_spec = _conv_spec(m.group(3), ("b", "f"))
    nsp = len(lhs_spec) - 2
    if op.window_reversal is not None and any(bool(v) for v in op.window_reversal.get_values()):
        raise op_error(op, "differentiate: convolution with window_reversal is not supported")
    pad = [0] * (2 * nsp)
    if op.padding is not None:
        pad = [int(v) for v in op.padding.get_values()]
    return ConvParams(
        lhs_spec, rhs_spec, out_spec,
        ints(op.window_strides) or [1] * nsp,
        [(pad[2 * k], pad[2 * k + 1]) for k in range(nsp)],
        ints(op.lhs_dilation) or [1] * nsp,
        ints(op.rhs_dilation) or [1] * nsp,
        op.feature_group_count.value.data, op.batch_group_count.value.data,
        _precision(op))


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
    ld = [_dilate(lhs_shape[d], s) for d, s in zip(lhs_sdims, p.lhs_dilation)]
    rd = [_dilate(rhs_shape[d], s) for d, s in zip(rhs_sdims, p.rhs_dilation)]
    od = [_dilate(g_shape[d], s) for d, s in zip(out_sdims, p.strides)]
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
    ld = [_dilate(lhs_shape[d], s) for d, s in zip(lhs_sdims, p.lhs_dilation)]
    rd = [_dilate(rhs_shape[d], s) for d, s in zip(rhs_sdims, p.rhs_dilation)]
    od = [_dilate(g_shape[d], s) for d, s in zip(out_sdims, p.strides)]
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


_DESCRIBE: dict[type, Callable] = {shlo.CompositeOp: _describe_composite,
                                   shlo.ReduceOp: _describe_reduce}


def describe(op: Operation) -> str:
    """How an op without a rule is named in the error (the op's name follows it)."""
    fn = _DESCRIBE.get(type(op))
    return fn(op) if fn is not None else "this op"
