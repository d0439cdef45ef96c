"""Automatic differentiation of straight-line StableHLO: the engine, as building blocks.

The ``differentiate`` pass and later passes (the hidden Jacobian ``D_t`` needs tangents
seeded at the old state, the learning signal ``δ_t`` a cotangent seeded at the new one,
docs/design.md section 3) use the same two functions on a one-block ``func.func``:

    tangents    = jvp(fn, seeds={value: tangent}, cut=..., wanted=None, builder=None)
    cotangents  = vjp(fn, seeds={value: cotangent}, cut=..., wrt=None, builder=None)

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

New ops are inserted before the block's terminator (or before ``builder.before``), each
with the source location of the primal op it differentiates. The builder (``tracec.passes.ir.builder``) folds zeros
(``x*0``, ``x+0``, ``x*1``, double negation, broadcasts of splats), never emits work for
values that do not depend on/affect the seeds, and reuses an existing op (primal or new)
with the same operands and properties (hash-consing, i.e. CSE of the new ops). A primal
op that repeats an earlier one (JAX's lowering repeats e.g. ``jnp.tanh(y)``) shares its
derivative (in ``vjp`` its cotangent is reported for both). Call
:func:`remove_dead_code` once the results are wired up.

Rules live in ``tracec.passes.autodiff.rules.RULES``, keyed by op type. An op on a derivative
path without a rule is a ``TracecError`` naming the op and the user's line. Warnings (a
bare Heaviside given the default surrogate) are collected in the module attribute
``tracec.warnings`` (an array of ``"file:line:col: warning: ..."`` strings); passes
never print, the driver shows them (:func:`module_warnings`, :func:`pop_warnings`).
"""

from __future__ import annotations

from typing import Iterable

from xdsl.dialects import func as func_d
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr
from xdsl.ir import Block, Operation, SSAValue
from xdsl.traits import IsTerminator, NoMemoryEffect, Pure

from tracec.passes.autodiff.rules import RULES, describe
from tracec.passes.ir.builder import Builder, is_float
from tracec.passes.ir.module import op_error

WARNINGS_ATTR = "tracec.warnings"

Cut = Iterable["Operation | SSAValue | tuple[Operation, int]"]


# ---------------------------------------------------------------------------------
# The engine


def rule_for(op: Operation):
    """The rule of ``op`` (refined by its attributes, e.g. a composite's name), or None."""
    rule = RULES.get(type(op))
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


def _record_warnings(block: Block, em: Builder) -> None:
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
        key = Builder._key(op.name, [rep.get(o, o) for o in op.operands],
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
        wanted: Iterable[SSAValue] | None = None, builder: Builder | None = None) -> dict:
    """Forward mode: tangents of the values of ``fn`` given tangents ``seeds``.

    Returns ``{value: tangent}`` (absent = zero). See the module docstring.
    """
    block = _body(fn)
    em = builder or Builder(block)
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
        wrt: Iterable[SSAValue] | None = None, builder: Builder | None = None) -> dict:
    """Reverse mode: cotangents of the values of ``fn`` given cotangents ``seeds``.

    Returns ``{value: cotangent}`` for values on a path from ``wrt`` (default: the
    block arguments) to a seed; absent = zero. See the module docstring.
    """
    block = _body(fn)
    em = builder or Builder(block)
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
