"""flatten-control-flow: loops with a static trip count unrolled, conditionals made selects.

The learning rules differentiate one time step as straight-line code. A step may run
sub-steps in a loop (``jax.lax.fori_loop(0, K, ...)``, a ``lax.scan`` over K sub-steps:
a ``stablehlo.while``) or branch (``jax.lax.cond`` / ``switch``: ``stablehlo.case`` or
``stablehlo.if``). This pass rewrites ``@step`` and ``@loss`` so they have neither:

- a ``stablehlo.while`` whose trip count is known at compile time is unrolled: the
  integer scalars it carries (its counters) are evaluated from their constant initial
  values and updates until the condition is false; the body's ops are cloned once per
  iteration, each keeping its source location. A condition that depends on anything
  else (data, the state, a parameter) has no static trip count: an error at the loop's
  line.
  A ``dynamic_slice`` whose start indices thereby become constants (a scanned array's
  row per iteration) becomes a ``slice``.
- a ``stablehlo.case``/``stablehlo.if`` becomes every branch cloned in line (the
  branches are pure) and a chain of ``stablehlo.select`` on the branch index: the
  value and its derivative are those of the branch taken, as ``jax.grad`` gives.

Nested loops and conditionals are flattened from the outside in, repeatedly.
Options: ``max-trip-count`` (default 4096) bounds the unrolled size.
Before: ``@step`` exists (extract-step has run). After: ``@step`` and ``@loss`` hold no
``stablehlo.while``, ``case`` or ``if``; everything else is unchanged.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.passes.autodiff.engine import remove_dead_code
from tracec.passes.ir.attributes import compare_direction
from tracec.passes.ir.builder import Builder
from tracec.passes.ir.module import functions, op_error, op_name

_ARITH = {shlo.AddOp: operator.add, shlo.SubtractOp: operator.sub,
          shlo.MultiplyOp: operator.mul, shlo.MaximumOp: max, shlo.MinimumOp: min}
_COMPARE = {"EQ": operator.eq, "NE": operator.ne, "LT": operator.lt, "LE": operator.le,
            "GT": operator.gt, "GE": operator.ge}
_BRANCHING = ("stablehlo.case", "stablehlo.if")


def _scalar_constant(op: shlo.ConstantOp):
    attr = op.value
    if attr.get_shape() not in ((), [], None) and int(np.prod(attr.get_shape())) != 1:
        return None
    value = attr.get_values()[0]
    return bool(value) if str(attr.get_element_type()) == "i1" else value


def _direction(op: Operation) -> str | None:
    name = compare_direction(op)
    return name if name in _COMPARE else None


def _evaluate(v: SSAValue, env: dict):
    """The value of scalar ``v`` from known block arguments ``env`` and constants, or
    None when it depends on anything else."""
    if v in env:
        return env[v]
    op = v.owner
    if not isinstance(op, Operation):
        return None
    if isinstance(op, shlo.ConstantOp):
        return _scalar_constant(op)
    ins = [_evaluate(x, env) for x in op.operands]
    if any(x is None for x in ins):
        return None
    if type(op) in _ARITH:
        return _ARITH[type(op)](*ins)
    if isinstance(op, shlo.CompareOp) and _direction(op):
        return _COMPARE[_direction(op)](*ins)
    if isinstance(op, shlo.ConvertOp):
        et = str(op.results[0].type.element_type)
        return bool(ins[0]) if et == "i1" else (float(ins[0]) if et.startswith("f") else int(ins[0]))
    if isinstance(op, (shlo.BroadcastInDimOp, shlo.ReshapeOp)):
        return ins[0]
    if isinstance(op, shlo.SelectOp):
        return ins[1] if ins[0] else ins[2]
    if isinstance(op, shlo.ClampOp):
        return min(max(ins[1], ins[0]), ins[2])
    if isinstance(op, shlo.AndOp):
        return ins[0] and ins[1]
    if isinstance(op, shlo.OrOp):
        return ins[0] or ins[1]
    if isinstance(op, shlo.NotOp):
        return not ins[0]
    return None


def _clone_region(block: Block, vmap: dict, before: Operation) -> list[SSAValue]:
    """Clone the ops of ``block`` before ``before`` with ``vmap`` for its arguments and
    captured values; returns the values its terminator returns."""
    parent = before.parent_block()
    for inner in list(block.ops)[:-1]:
        clone = inner.clone(value_mapper=vmap)
        parent.insert_op_before(clone, before)
        for old, new in zip(inner.results, clone.results):
            vmap[old] = new
    return [vmap.get(v, v) for v in block.last_op.operands]


def _unroll(loop: shlo.WhileOp, max_trips: int) -> None:
    cond, body = loop.cond.block, loop.body.block
    # The carried integer scalars: known from their initial values while the body
    # computes them from constants and each other.
    known = {}
    for k, v in enumerate(loop.operands):
        t = v.type
        if isinstance(t, TensorType) and not t.get_shape() and not str(t.element_type).startswith("f"):
            value = _evaluate(v, {})
            if value is not None:
                known[k] = value
    values = list(loop.operands)
    trips = 0
    while True:
        env = {cond.args[k]: val for k, val in known.items()}
        go = _evaluate(cond.last_op.operands[0], env)
        if go is None:
            raise op_error(loop, "a loop inside the step has no trip count known at compile "
                                 "time: its condition depends on data, the state or a parameter",
                           hint="write the loop with a fixed number of iterations (fori_loop "
                                "with constant bounds, or scan over a fixed length)")
        if not go:
            break
        trips += 1
        if trips > max_trips:
            raise op_error(loop, f"a loop inside the step runs more than {max_trips} times",
                           hint="raise flatten-control-flow's max-trip-count, or run fewer "
                                "sub-steps")
        benv = {body.args[k]: val for k, val in known.items()}
        nxt = {}
        for k in known:
            value = _evaluate(body.last_op.operands[k], benv)
            if value is not None:
                nxt[k] = value
        values = _clone_region(body, dict(zip(body.args, values)), loop)
        known = nxt
    for old, new in zip(loop.results, values):
        old.replace_all_uses_with(new)
    loop.detach()
    loop.erase()


def _if_convert(op: Operation) -> None:
    em = Builder(op.parent_block(), before=op)
    em.loc = op.location
    branches = [_clone_region(r.block, {}, op) for r in op.regions]
    index = op.operands[0]
    results = []
    for k in range(len(op.results)):
        if op_name(op) == "stablehlo.if":  # regions: then, else
            results.append(_select(em, index, branches[0][k], branches[1][k]))
            continue
        value = branches[-1][k]  # an index out of range takes the last branch
        for j in range(len(branches) - 2, -1, -1):
            j_const = em.one(shlo.ConstantOp, [], TensorType(index.type.element_type, []),
                             {"value": _int_attr(index.type.element_type, j)})
            value = _select(em, em.compare(index, j_const, "EQ"), branches[j][k], value)
        results.append(value)
    for old, new in zip(op.results, results):
        old.replace_all_uses_with(new)
    op.detach()
    op.erase()


def _int_attr(et, value: int):
    from xdsl.dialects.builtin import DenseIntOrFPElementsAttr
    return DenseIntOrFPElementsAttr.from_list(TensorType(et, []), [value])


def _select(em: Builder, pred: SSAValue, a: SSAValue, b: SSAValue) -> SSAValue:
    """``select(pred, a, b)`` with a scalar predicate broadcast to the values' shape."""
    if a is b:
        return a
    shape = list(a.type.get_shape())
    if shape:
        pred = em.broadcast_in_dim(pred, shape, [])
    return em.one(shlo.SelectOp, [pred, a, b], a.type)


def _static_slices(block: Block) -> None:
    """A ``dynamic_slice`` whose start indices are now constants (a sub-step's row of a
    scanned array) becomes a ``slice``, which the analyses see as routing values."""
    from tracec.passes.ir.attributes import ints

    for op in list(block.ops):
        if not isinstance(op, shlo.DynamicSliceOp):
            continue
        starts = [_evaluate(v, {}) for v in op.start_indices]
        if any(v is None for v in starts):
            continue
        dims, sizes = list(op.operand.type.get_shape()), ints(op.slice_sizes)
        starts = [min(max(int(v), 0), d - n) for v, d, n in zip(starts, dims, sizes)]
        em = Builder(block, before=op)
        em.loc = op.location
        static = em.slice(op.operand, starts, [a + n for a, n in zip(starts, sizes)])
        op.results[0].replace_all_uses_with(static)
        op.detach()
        op.erase()


def _first_control_flow(block: Block) -> Operation | None:
    for op in block.ops:
        if isinstance(op, shlo.WhileOp) or op_name(op) in _BRANCHING:
            return op
    return None


@dataclass(frozen=True)
class FlattenControlFlowPass(ModulePass):
    name = "flatten-control-flow"

    max_trip_count: int = 4096

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fns = functions(op)
        for name in ("step", "loss"):
            fn: func.FuncOp | None = fns.get(name)
            if fn is None:
                continue
            block = fn.body.block
            changed = False
            while (inner := _first_control_flow(block)) is not None:
                if isinstance(inner, shlo.WhileOp):
                    _unroll(inner, self.max_trip_count)
                else:
                    _if_convert(inner)
                changed = True
            if changed:
                _static_slices(block)
                remove_dead_code(block)
