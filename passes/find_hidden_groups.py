"""find-hidden-groups: the hidden groups of the step (docs/design.md section 3).

A hidden group is a connected component of the element-wise dependence graph
between old states (arguments) and new states (results). Paths through recurrent
mixing (``dot_general``/``convolution`` with a parameter operand) and through
``tracec.stop_gradient`` are cut; a derived state joins the group of the states it
is derived from. A state whose new value depends on its group only through
recurrent weights (a tanh RNN) forms a group with ``zero_recurrence = true``
(its Jacobian D_t is zero).

Before: identify-recurrent-state has run. After: ``@step`` carries
``tracec.groups = [{states, derived, zero_recurrence, shape}]``,
``tracec.edges = [{from, to}]`` (old state reaches new state element-wise) and
``tracec.cuts = [{op, loc, reason, from, to}]``; the computation is unchanged.
Diagnostics: non-element-wise coupling between states (a reduction or an
activation-by-activation product on a path from one state to another), members of
a group with different shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass

from tracec.passes.ir.module import get_function, loc_text, op_error, to_attr
from tracec.passes.analysis.dataflow import (STOP_GRADIENT, StepGraph, composite_name, derived_map, describe,
                                    is_elementwise)


@dataclass
class Reach:
    """Which old states reach a value element-wise, and which through other ops."""

    ew: frozenset[int] = frozenset()
    mixed: dict[int, Operation] | None = None  # state -> first non-element-wise op


def reached_states(g: StepGraph, value: SSAValue) -> list[int]:
    """New states that ``value`` reaches by any path within the step."""
    index = {}
    for k, r in enumerate(g.state_results):
        index.setdefault(r, []).append(k)
    out: set[int] = set()
    todo, seen = [value], set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        out.update(index.get(v, []))
        for use in v.uses:
            if use.operation.parent_block() is g.block:
                todo.extend(use.operation.results)
    return sorted(out)


def _cut_reason(g: StepGraph, op: Operation) -> str:
    if composite_name(op) == STOP_GRADIENT:
        return "tracec.stop_gradient"
    params = [g.param_names[g.param_args.index(p)] for p in g.param_args
              if any(v in g.from_param and g.root_param(v) is p for v in op.operands[:2])]
    return f"mixing through parameter '{params[0]}'" if params else "mixing through a parameter"


def propagate(g: StepGraph, cuts: list[dict] | None = None) -> dict[SSAValue, Reach]:
    reach: dict[SSAValue, Reach] = {a: Reach(frozenset([i])) for i, a in enumerate(g.state_args)}
    empty = Reach()
    for op in g.block.ops:
        ins = [reach.get(v, empty) for v in op.operands]
        for region in op.regions:  # captured values count as operands of the op
            from tracec.passes.ir.builder import captured_values
            ins += [reach.get(v, empty) for v in captured_values(region)]
        touched = set().union(*[r.ew for r in ins], *[set(r.mixed or {}) for r in ins])
        if g.is_cut(op):
            if touched and cuts is not None:
                cuts.append({"op": describe(op), "loc": loc_text(op), "reason": _cut_reason(g, op),
                             "from": [g.state_names[i] for i in sorted(touched)],
                             "to": [g.state_names[k] for k in reached_states(g, op.results[0])]})
            out = empty
        elif is_elementwise(op):
            mixed: dict[int, Operation] = {}
            for r in ins:
                mixed.update(r.mixed or {})
            out = Reach(frozenset().union(*[r.ew for r in ins]), mixed or None)
        else:
            mixed = {}
            for r in ins:
                mixed.update(r.mixed or {})
                mixed.update({i: op for i in r.ew if i not in mixed})
            out = Reach(frozenset(), mixed or None)
        for res in op.results:
            reach[res] = out
    return reach


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def hidden_groups(g: StepGraph) -> tuple[list[dict], list[dict], list[dict]]:
    cuts: list[dict] = []
    reach = propagate(g, cuts)
    n = len(g.state_args)
    uf = _UnionFind(n)
    derived = derived_map(g)
    self_edges: set[tuple[int, int]] = set()
    for k, r in enumerate(g.state_results):
        info = reach.get(r, Reach())
        for j, op in (info.mixed or {}).items():
            raise op_error(op, f"non-element-wise coupling between state '{g.state_names[j]}' and "
                               f"state '{g.state_names[k]}' through {describe(op)}",
                           hint="a hidden group's states may only interact neuron by neuron; "
                                "mix neurons through a parameter (a weight matrix) instead")
        for j in info.ew:
            uf.union(j, k)
            self_edges.add((j, k))
    for k, sources in derived.items():
        for j in sources:
            uf.union(j, k)
    components: dict[int, list[int]] = {}
    for i in range(n):
        components.setdefault(uf.find(i), []).append(i)
    groups = []
    for members in sorted(components.values()):
        shapes = {tuple(g.state_args[i].type.get_shape()) for i in members}
        if len(shapes) > 1:
            detail = ", ".join(f"'{g.state_names[i]}' {list(g.state_args[i].type.get_shape())}"
                               for i in members)
            where = next((g.state_results[i].owner for i in reversed(members)
                          if not isinstance(g.state_results[i], BlockArgument)), g.ret)
            raise op_error(where, f"the states of one hidden group have different shapes: {detail}",
                           hint="states coupled element-wise must have one value per neuron each")
        primary = [i for i in members if i not in derived]
        zero = not any((j, k) in self_edges for j in members for k in primary)
        groups.append({
            "states": [g.state_names[i] for i in primary],
            "derived": [g.state_names[i] for i in members if i in derived],
            "zero_recurrence": zero,
            "shape": list(next(iter(shapes))),
        })
    edges = [{"from": g.state_names[j], "to": g.state_names[k]} for j, k in sorted(self_edges)]
    return groups, cuts, edges


@dataclass(frozen=True)
class FindHiddenGroupsPass(ModulePass):
    name = "find-hidden-groups"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        step = get_function(op, "step", self.name)
        groups, cuts, edges = hidden_groups(StepGraph(step))
        step.attributes["tracec.groups"] = to_attr(groups)
        step.attributes["tracec.cuts"] = to_attr(cuts)
        step.attributes["tracec.edges"] = to_attr(edges)
