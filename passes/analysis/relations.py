"""Parameter relations: where each parameter meets the data flow into hidden groups.

The library behind find-param-relations, which finds them (:func:`param_relations`) and
writes them as the ``tracec.relations`` attribute of ``@step``, and insert-eligibility-
traces, which reads them back from that attribute (:func:`read_relations`) with their
ops. See the pass's docstring (docs/passes.md) for the kinds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.ir import Operation, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.dataflow import StepGraph, describe, is_elementwise
from tracec.passes.ir.module import from_attr, loc_text, op_error, op_name, to_attr


RELATIONS_ATTR = "tracec.relations"


@dataclass(frozen=True)
class Relation:
    """One use of a parameter that feeds hidden groups element-wise."""

    param: str                 # the parameter's name
    kind: str                  # "dense", "sparse", "conv", "element-wise" or "gathered"
    op: Operation              # the op that uses the (transformed) parameter
    operand_index: int         # which of its operands that value is
    y_shape: tuple[int, ...]   # the op's result
    groups: tuple[int, ...]    # the hidden groups it reaches element-wise
    loc: str                   # the user's line
    x_shape: tuple[int, ...] | None = None  # dense/conv: the other operand; sparse: the
    #                                         values the connection list reads
    param_side: str | None = None           # dense/conv: "lhs" or "rhs"

    @property
    def operand(self) -> SSAValue:
        """The (transformed) parameter value the op uses."""
        return self.op.operands[self.operand_index]

    def as_dict(self) -> dict:
        """The attribute form (``op_index``: the op's position in ``@step``'s body)."""
        out = {"param": self.param, "kind": self.kind, "y_shape": list(self.y_shape),
               "groups": list(self.groups), "loc": self.loc}
        if self.x_shape is not None:
            out["x_shape"] = list(self.x_shape)
        if self.param_side is not None:
            out["param_side"] = self.param_side
        if self.kind == "sparse":
            # connections: the values the product makes per sample
            out["nnz"] = math.prod(self.y_shape) // self.x_shape[0]
        out["op_index"] = _op_index(self.op)
        out["operand_index"] = self.operand_index
        return out


def _op_index(op: Operation) -> int:
    return list(op.parent_block().ops).index(op)


def relations_attr(relations: list[Relation]):
    return to_attr([r.as_dict() for r in relations])


def read_relations(g: StepGraph) -> list[Relation]:
    """The relations find-param-relations wrote on ``@step``, with their ops."""
    attr = g.step.attributes.get(RELATIONS_ATTR)
    if attr is None:
        raise op_error(g.step, "the parameter relations are missing: run find-param-relations "
                               "before the learning passes")
    ops = list(g.block.ops)
    out = []
    for d in from_attr(attr):
        k, j = d.get("op_index", -1), d.get("operand_index", -1)
        op = ops[k] if 0 <= k < len(ops) else None
        if op is None or not op.results or not 0 <= j < len(op.operands) \
                or _shape(op.results[0]) != list(d["y_shape"]) or loc_text(op) != d["loc"]:
            raise op_error(g.step, f"tracec.relations no longer matches @step (the relation of "
                                   f"'{d['param']}' at {d['loc']})",
                           hint="run find-param-relations again right before the learning passes")
        out.append(Relation(d["param"], d["kind"], op, j, tuple(d["y_shape"]), tuple(d["groups"]),
                            d["loc"], tuple(d["x_shape"]) if "x_shape" in d else None,
                            d.get("param_side")))
    return out


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
            elif is_elementwise(op) or g.routes(op):
                nxt, nvia = elementwise, via
            else:
                nxt, nvia = False, (op if elementwise else via)
            for res in op.results:
                frontier.append((res, nxt, nvia))
    return ew, any_, breaking


def sparse_input(g: StepGraph, op: Operation) -> tuple[SSAValue, list[Operation]]:
    """The value a sparse relation's connection list reads from, before the layout ops
    that lead to its gather (a BCOO matmul gathers rows of ``xᵀ``), and those ops."""
    v, chain = g.sparse_relation(op)[1].operands[0], []
    while isinstance(v.owner, (shlo.TransposeOp, shlo.ReshapeOp)) and len(_shape(v)) == 2 \
            and len(_shape(v.owner.operands[0])) == 2:
        chain.append(v.owner)
        v = v.owner.operands[0]
    return v, list(reversed(chain))


def param_relations(g: StepGraph) -> tuple[list[Relation], list[str]]:
    """Every relation of every parameter, and the readout parameters (those that reach
    no new state)."""
    groups = from_attr(g.step.attributes["tracec.groups"])
    group_of = {}
    for gi, grp in enumerate(groups):
        for name in grp["states"] + grp["derived"]:
            group_of[g.state_names.index(name)] = gi
    relations, readout = [], []
    for p, name in zip(g.param_args, g.param_names):
        reaches_state = False
        for op, operand in _uses(g, p):
            if g.sparse_relation(op) is not None:
                kind = "sparse"
            elif isinstance(op, shlo.DotGeneralOp):
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
            index = list(op.operands).index(operand)
            x_shape = side = None
            if kind in ("dense", "conv"):
                x_shape = tuple(_shape(op.operands[1 - index]))
                side = "lhs" if index == 0 else "rhs"
            elif kind == "sparse":  # x: the values the connection list gathers from
                x_shape = tuple(_shape(sparse_input(g, op)[0]))
            relations.append(Relation(name, kind, op, index, tuple(_shape(y)),
                                      tuple(sorted({group_of[k] for k in ew})), loc_text(op),
                                      x_shape, side))
        if not reaches_state:
            readout.append(name)
    return relations, readout
