"""Op classes and value graphs for the recurrence analyses (shared by three passes).

An op on a path from a state input to a state output is one of:

- element-wise: the value at one neuron depends only on the same neuron (arithmetic,
  comparisons, select, ``tracec.spike``), and reshapes/broadcasts that keep the
  number of elements (identity layout changes);
- a cut: recurrent mixing through a parameter (``dot_general``/``convolution`` with
  an operand derived from a parameter; a *sparse relation*, the product of values
  gathered along a connection list with a parameter, ``x[:, pre] * w``) or
  ``tracec.stop_gradient``: the paths through it are not part of a hidden group
  (docs/design.md section 3);
- anything else (reductions, matmuls between activations, slices...): coupling
  between neurons that the online rules cannot represent inside a group.
"""

from __future__ import annotations

import math

import numpy as np

from xdsl.dialects import func
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Block, BlockArgument, Operation, SSAValue

from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.index_maps import gather_sources, scatter_targets, static_value
from tracec.passes.ir.module import from_attr, op_name, roles

ELEMENTWISE = (
    shlo.AbsOp, shlo.NegateOp, shlo.SignOp, shlo.FloorOp, shlo.CeilOp, shlo.RoundNearestEvenOp,
    shlo.RoundNearestAfzOp, shlo.NotOp, shlo.IsFiniteOp, shlo.ConvertOp, shlo.ExpOp,
    shlo.Expm1Op, shlo.LogOp, shlo.Log1pOp, shlo.LogisticOp, shlo.TanhOp, shlo.SqrtOp,
    shlo.RsqrtOp, shlo.CbrtOp, shlo.SineOp, shlo.CosineOp, shlo.AddOp, shlo.SubtractOp,
    shlo.MultiplyOp, shlo.DivideOp, shlo.RemainderOp, shlo.PowerOp, shlo.MaximumOp,
    shlo.MinimumOp, shlo.Atan2Op, shlo.AndOp, shlo.OrOp, shlo.XorOp, shlo.SelectOp,
    shlo.ClampOp, shlo.CompareOp,
)
# Ops that only change how a parameter is laid out on its way to where it is used.
LAYOUT = (shlo.TransposeOp, shlo.ReshapeOp, shlo.ConvertOp, shlo.BroadcastInDimOp)
MIXING = (shlo.DotGeneralOp, shlo.ConvolutionOp)
# Ops whose every output element is one input element: between a relation and its
# neurons they only route values (an LSTM's fused gate matmul split by slices), so a
# relation may reach its neurons through them. Between states they would move values
# from one neuron to another, which is not element-wise.
INDEX_MAP = (shlo.SliceOp, shlo.ReshapeOp, shlo.TransposeOp, shlo.BroadcastInDimOp,
             shlo.ConcatenateOp, shlo.ReverseOp)

SPIKE = "tracec.spike"
STOP_GRADIENT = "tracec.stop_gradient"
#: an element-wise function carrying its own derivative (frontends/jax_frontend.py)
CUSTOM_DERIVATIVE = "tracec.custom_derivative"


def composite_name(op: Operation) -> str | None:
    return op.composite_name.data if isinstance(op, shlo.CompositeOp) else None


def numel(value: SSAValue) -> int:
    shape = getattr(value.type, "get_shape", lambda: ())()
    return math.prod(shape)


def is_elementwise(op: Operation) -> bool:
    if isinstance(op, ELEMENTWISE):
        return True
    if composite_name(op) in (SPIKE, CUSTOM_DERIVATIVE):
        return True
    if isinstance(op, (shlo.BroadcastInDimOp, shlo.ReshapeOp)):
        return numel(op.operands[0]) == numel(op.results[0])
    return False


class StepGraph:
    """The ``@step`` function with its roles, and the facts every analysis needs."""

    def __init__(self, step: func.FuncOp):
        self.step = step
        self.block: Block = step.body.block
        self.arg_roles = roles(step.arg_attrs)
        self.res_roles = roles(step.res_attrs)
        self.args = list(self.block.args)
        self.ret: Operation = self.block.last_op
        self.results = list(self.ret.operands)
        self.param_args = [a for a, (r, _) in zip(self.args, self.arg_roles) if r == "param"]
        self.state_args = [a for a, (r, _) in zip(self.args, self.arg_roles) if r == "state"]
        self.state_names = [n for r, n in self.arg_roles if r == "state"]
        self.param_names = [n for r, n in self.arg_roles if r == "param"]
        self.state_results = self.results[:len(self.state_args)]
        self.output_results = self.results[len(self.state_args):]
        self.static_values: dict = {}
        self.from_param = self._param_derived()
        self._sparse: dict = {}

    def static(self, v: SSAValue):
        """The value of ``v`` if it is computed from constants alone (numpy), else None."""
        return static_value(v, self.static_values)

    def sparse_relation(self, op: Operation):
        """For ``x[:, pre] * w`` (an element-wise product of a parameter-derived value and
        values gathered at constant indices, seen through layout ops): ``(k, gather,
        chain)`` with ``k`` the parameter-side operand, the gather, and the layout ops
        from the gather to the product; else None."""
        if op not in self._sparse:
            self._sparse[op] = self._find_sparse(op)
        return self._sparse[op]

    def _find_sparse(self, op: Operation):
        if isinstance(op, shlo.DotGeneralOp):
            from tracec.passes.ir.attributes import dot_dims

            lb, rb, lc, rc = dot_dims(op)
            # a product in disguise: no contraction, the parameter side batched on all
            # its dimensions (a BCOO matmul's data times the gathered inputs)
            if lc or rc or len(lb) != len(op.operands[0].type.get_shape()):
                return None
        elif not isinstance(op, shlo.MultiplyOp):
            return None
        for k in (0, 1):
            if op.operands[k] not in self.from_param or op.operands[1 - k] in self.from_param:
                continue
            v, chain = op.operands[1 - k], []
            while isinstance(v.owner, LAYOUT) or self._passes_through(v.owner):
                chain.append(v.owner)
                v = v.owner.operands[1 if isinstance(v.owner, shlo.SelectOp) else 0]
            gather = v.owner
            if (isinstance(gather, shlo.GatherOp) and self.static(gather.operands[1]) is not None
                    and self.static(gather.operands[0]) is None):
                return k, gather, list(reversed(chain))
        return None

    def _passes_through(self, op) -> bool:
        """``select(mask, v, 0)`` with a mask known to be all true (a BCOO matmul's check
        that its indices are in bounds): the value itself."""
        if not isinstance(op, shlo.SelectOp):
            return False
        mask = self.static(op.operands[0])
        return mask is not None and bool(np.all(mask))

    def routes(self, op: Operation) -> bool:
        """Whether every element of ``op``'s result is one element of one operand, or
        (a scatter-add at constant indices) each update element lands in one result
        element: index routing between a relation and its neurons."""
        if isinstance(op, INDEX_MAP):
            return True
        if isinstance(op, shlo.GatherOp):
            return self.static(op.operands[1]) is not None
        return is_scatter_add(op) and self.static(op.operands[1]) is not None

    def _param_derived(self) -> set[SSAValue]:
        """Values computed from parameters alone (and constants) by layout and element-wise
        ops: a parameter seen through a transpose or reshape, or *transformed* before use
        (``abs(W)`` for Dale's law, ``W * mask``, ``softplus(W)``, ``exp(log_tau)``).
        A matmul with such an operand is recurrent mixing through a parameter."""
        derived: set[SSAValue] = set(self.param_args)
        static: set[SSAValue] = set()  # constants and values computed from them alone
        for op in self.block.ops:
            if op.regions or not op.results:
                continue
            ins = list(op.operands)
            if all(v in static for v in ins):
                static.update(op.results)
            elif ((isinstance(op, LAYOUT) or is_elementwise(op))
                  and all(v in derived or v in static for v in ins)):
                derived.update(op.results)
        return derived

    def is_cut(self, op: Operation) -> bool:
        if composite_name(op) == STOP_GRADIENT:
            return True
        if isinstance(op, MIXING):
            return any(v in self.from_param for v in op.operands[:2])
        return self.sparse_relation(op) is not None

    def root_param(self, value: SSAValue) -> SSAValue:
        """The (first) parameter argument a value in ``from_param`` is computed from."""
        todo, seen = [value], set()
        while todo:
            v = todo.pop(0)
            if v in self.param_args:
                return v
            if v in seen or not isinstance(v.owner, Operation):
                continue
            seen.add(v)
            todo.extend(x for x in v.owner.operands if x in self.from_param)
        raise AssertionError("not computed from a parameter")

    def param_index(self, value: SSAValue) -> int | None:
        if isinstance(value, BlockArgument) and value in self.param_args:
            return self.param_args.index(value)
        return None

    def state_index(self, value: SSAValue) -> int | None:
        if isinstance(value, BlockArgument) and value in self.state_args:
            return self.state_args.index(value)
        return None


def is_scatter_add(op: Operation) -> bool:
    """A one-input ``stablehlo.scatter`` whose body adds the update to the value."""
    if not isinstance(op, shlo.ScatterOp) or len(op.operands) != 3:
        return False
    body = op.update_computation.block
    ops = list(body.ops)
    return (len(ops) == 2 and isinstance(ops[0], shlo.AddOp)
            and set(ops[0].operands) == set(body.args) and list(ops[1].operands) == [ops[0].results[0]])


def describe(op: Operation) -> str:
    """``stablehlo.reduce`` or ``stablehlo.composite "tracec.spike"``."""
    name = op_name(op)
    cname = composite_name(op)
    return f'{name} "{cname}"' if cname else name


def string_list(values) -> list[str]:
    return [v.data if isinstance(v, StringAttr) else str(v) for v in values]


# ---------------------------------------------------------------------------------
# Which neuron each element of a relation's output feeds

UNREACHED, SEVERAL = -1, -2


def operand_index(g: StepGraph, op: Operation, k: int) -> np.ndarray:
    """For each element of ``op``'s result, the flat index of the element of operand
    ``k`` it is (-1: it comes from another operand). ``op`` routes (``g.routes``) and is
    not a scatter."""
    from tracec.passes.ir.attributes import ints

    if isinstance(op, shlo.GatherOp):
        return gather_sources(op, g.static(op.operands[1]))
    src = list(op.operands[k].type.get_shape())
    out = list(op.results[0].type.get_shape())
    flat = np.arange(math.prod(src), dtype=np.int64).reshape(src)
    if isinstance(op, shlo.SliceOp):
        return flat[tuple(slice(a, b, s) for a, b, s in zip(
            ints(op.start_indices), ints(op.limit_indices), ints(op.strides)))]
    if isinstance(op, shlo.ReshapeOp):
        return flat.reshape(out)
    if isinstance(op, (shlo.ConvertOp, shlo.SelectOp)):
        return flat
    if isinstance(op, shlo.TransposeOp):
        return flat.transpose(ints(op.permutation))
    if isinstance(op, shlo.ReverseOp):
        return np.flip(flat, ints(op.dimensions))
    if isinstance(op, shlo.BroadcastInDimOp):
        placed = [1] * len(out)
        for d, n in zip(ints(op.broadcast_dimensions), src):
            placed[d] = n
        return np.broadcast_to(flat.reshape(placed), out)
    if isinstance(op, shlo.ConcatenateOp):
        dim = op.dimension.value.data
        parts = [flat if j == k else np.full(list(o.type.get_shape()), -1, np.int64)
                 for j, o in enumerate(op.operands)]
        return np.concatenate(parts, axis=dim)
    raise AssertionError(op.name)


def _merge_into(labels: np.ndarray, index: np.ndarray, incoming: np.ndarray) -> None:
    """``labels[index[e]] ⊔= incoming[e]`` for every element ``e``: unreached takes the
    other side, equal labels stay, different labels become SEVERAL."""
    index, incoming = index.ravel(), incoming.ravel()
    keep = (index >= 0) & (incoming != UNREACHED)
    index, incoming = index[keep], incoming[keep]
    flat = labels.reshape(-1)
    big = np.iinfo(np.int64).max
    lo = np.full(flat.shape, big, np.int64)
    hi = np.full(flat.shape, -big, np.int64)
    np.minimum.at(lo, index, incoming)
    np.maximum.at(hi, index, incoming)
    reached = lo != big
    new = np.where(lo == hi, lo, SEVERAL)
    old = flat.copy()
    flat[:] = np.where(~reached, old, np.where(old == UNREACHED, new,
                                               np.where((old == new) & (new >= 0), old, SEVERAL)))


def neuron_labels(g: StepGraph, states: list[SSAValue]) -> dict[SSAValue, np.ndarray]:
    """For each value that reaches the new ``states`` of one group within the step, and
    each of its elements, the flat index of the neuron (state element) it reaches:
    UNREACHED, or SEVERAL when it reaches more than one. Labels flow backwards from the
    states through element-wise ops and ops that route values (a slice, a split, a
    reshape, a gather or a scatter-add at constant indices: ``g.routes``), never through
    a cut. A relation's output is looked up in the result."""
    labels: dict[SSAValue, np.ndarray] = {}
    for s in states:
        shape = list(s.type.get_shape())
        labels[s] = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    for op in reversed(list(g.block.ops)):
        if g.is_cut(op) or not op.results or op.results[0] not in labels:
            continue
        out = labels[op.results[0]]
        routes = g.routes(op)
        for k, operand in enumerate(op.operands):
            if not hasattr(operand.type, "get_shape"):
                continue
            if routes and isinstance(op, shlo.ScatterOp):
                if k != 2:  # the indices, and the value added to (seen element-wise below)
                    if k == 0:
                        index = np.arange(out.size, dtype=np.int64).reshape(out.shape)
                    else:
                        continue
                else:  # update element e lands in result element targets[e]
                    targets = scatter_targets(op, g.static(op.operands[1]))
                    dest = labels.setdefault(operand, np.full(list(operand.type.get_shape()),
                                                              UNREACHED, np.int64))
                    incoming = np.where(targets >= 0, out.reshape(-1)[np.maximum(targets, 0)],
                                        UNREACHED)
                    _merge_into(dest, np.arange(dest.size, dtype=np.int64).reshape(dest.shape),
                                incoming)
                    continue
            elif routes:
                if isinstance(op, shlo.GatherOp) and k != 0:
                    continue
                index = operand_index(g, op, k)
            elif is_elementwise(op) and list(operand.type.get_shape()) == list(out.shape):
                index = np.arange(out.size, dtype=np.int64).reshape(out.shape)
            else:
                continue
            dest = labels.setdefault(operand, np.full(list(operand.type.get_shape()), UNREACHED,
                                                      np.int64))
            _merge_into(dest, index, out)
    return labels


def derived_map(g: StepGraph) -> dict[int, list[int]]:
    """Derived state index -> the indices of its source states, read back from the
    ``tracec.derived_from`` result attributes identify-recurrent-state wrote."""
    out = {}
    for k, d in enumerate(g.step.res_attrs.data[:len(g.state_args)]):
        if "tracec.derived_from" in d.data:
            names = from_attr(d.data["tracec.derived_from"])
            out[k] = [g.state_names.index(n) for n in names]
    return out
