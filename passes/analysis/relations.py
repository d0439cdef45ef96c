"""Parameter relations: where each parameter meets the data flow into hidden groups.

The library behind find-param-relations (which writes the result as the
``tracec.relations`` attribute) and insert-eligibility-traces (which needs the ops
themselves: each relation dict carries its op as ``_op`` and the (transformed)
parameter value it uses as ``_operand``). See the pass's docstring for the kinds.
"""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.common import from_attr, loc_text, op_error, op_name
from tracec.passes.dataflow import INDEX_MAP, StepGraph, describe, is_elementwise


def _shape(v: SSAValue) -> list[int]:
    return list(v.type.get_shape())


def _uses(g: StepGraph, param: SSAValue) -> list[tuple[Operation, SSAValue]]:
    """(op, param-derived operand) for each non-layout use of ``param``."""
    out = []
    todo, seen = [param], set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        for use in v.uses:
            op = use.operation
            if op.parent_block() is not g.block or isinstance(op, shlo.WhileOp):
                raise op_error(op, f"parameter '{g.param_names[g.param_args.index(param)]}' is used "
                                   "inside a nested loop or region",
                               hint="tracec differentiates one time step; unroll the inner loop or "
                                    "move the parameter's use out of it")
            if op.results and op.results[0] in g.from_param:
                # a layout change or a transform of parameters (abs(W), W * mask): the
                # relation is where the transformed value is used
                todo.extend(op.results)
            else:
                out.append((op, v))
    return out


def _forward_states(g: StepGraph, start: SSAValue) -> tuple[set[int], set[int], Operation | None]:
    """States whose new value ``start`` reaches element-wise; all states it reaches at
    all; and the first non-element-wise, non-cut op on an element-wise... path."""
    result_index = {}
    for k, r in enumerate(g.state_results):
        result_index.setdefault(r, []).append(k)
    ew: set[int] = set()
    any_: set[int] = set()
    breaking: Operation | None = None
    frontier = [(start, True, None)]
    seen = set()
    while frontier:
        v, elementwise, via = frontier.pop()
        if (v, elementwise) in seen:
            continue
        seen.add((v, elementwise))
        for k in result_index.get(v, []):
            any_.add(k)
            if elementwise:
                ew.add(k)
            elif breaking is None and via is not None:
                breaking = via
        for use in v.uses:
            op = use.operation
            if op is g.ret or op.parent_block() is not g.block:
                continue
            if g.is_cut(op):
                nxt, nvia = False, None
            elif is_elementwise(op) or isinstance(op, INDEX_MAP):
                nxt, nvia = elementwise, via
            else:
                nxt, nvia = False, (op if elementwise else via)
            for res in op.results:
                frontier.append((res, nxt, nvia))
    return ew, any_, breaking


def param_relations(g: StepGraph) -> tuple[list[dict], list[str]]:
    groups = from_attr(g.step.attributes["tracec.groups"])
    group_of = {}
    for gi, grp in enumerate(groups):
        for name in grp["states"] + grp["derived"]:
            group_of[g.state_names.index(name)] = gi
    relations, readout = [], []
    for p, name in zip(g.param_args, g.param_names):
        reaches_state = False
        for op, operand in _uses(g, p):
            if isinstance(op, shlo.DotGeneralOp):
                kind = "dense"
            elif isinstance(op, shlo.ConvolutionOp):
                kind = "conv"
            elif isinstance(op, (shlo.DynamicSliceOp,)) or op_name(op) == "stablehlo.gather":
                kind = "gathered"
            elif is_elementwise(op):
                kind = "element-wise"
            else:
                kind = "other"
            y = op.results[0]
            ew, any_, breaking = _forward_states(g, y)
            reaches_state = reaches_state or bool(any_)
            if kind == "other" and not any_:
                continue
            if breaking is not None:
                raise op_error(breaking, f"non-element-wise coupling between parameter '{name}' "
                                         f"and the neurons it feeds, through {describe(breaking)}",
                               hint="the online rules need each relation's output to reach the "
                                    "neuron element-wise (no normalisation in between)")
            if not ew:
                continue
            rel = {"param": name, "kind": kind, "y_shape": _shape(y),
                   "groups": sorted({group_of[k] for k in ew}), "loc": loc_text(op), "_op": op,
                   "_operand": operand}
            if kind in ("dense", "conv"):
                x = op.operands[1] if operand is op.operands[0] else op.operands[0]
                rel["x_shape"] = _shape(x)
                rel["param_side"] = "lhs" if operand is op.operands[0] else "rhs"
            relations.append(rel)
        if not reaches_state:
            readout.append(name)
    return relations, readout
