"""The trace plan: which traces the learning step carries, and which relation of which
hidden group each part of the step serves.

Traces are declared in a fixed order (derived states' Jacobians, then per relation in
the order the analysis found them); that order is the order of the trace arguments and
results of ``@learn_step``, so of the artifact's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from xdsl.dialects.builtin import TensorType

from tracec.passes.analysis.dataflow import StepGraph, neuron_labels
from tracec.passes.analysis.relations import Relation
from tracec.passes.ir.module import op_error
from tracec.passes.learning import layout


class Kind(str, Enum):
    """How a relation meets its neurons (docs/passes.md, find-param-relations)."""

    DENSE = "dense"            # y = x @ W (x @ Wᵀ), W possibly transformed
    GATHERED = "gathered"      # y = E[idx] = one_hot(idx) @ E
    CONV = "conv"              # y = conv(x, K)
    PER_NEURON = "per-neuron"  # a bias, time constant, threshold shaped like the neurons
    PER_ELEMENT = "per-element"  # a value per element of the relation's operand ([4H] bias)
    SPARSE = "sparse"          # y = x[:, pre] * w, summed into the neurons post


@dataclass(frozen=True)
class TraceKey:
    """One carried trace: ``kind`` (``jac``, ``eps``, ``ex``, ``ef``, ``ep``, ``epr``), the
    relation or parameter it belongs to, its hidden group and the state it is for."""

    kind: str
    owner: int
    group: int | None = None
    state: int | None = None

    def of_state(self, c: int) -> "TraceKey":
        return TraceKey(self.kind, self.owner, self.group, c)


@dataclass(frozen=True)
class TraceSpec:
    key: TraceKey
    name: str
    type: TensorType


class Traces:
    """The traces in declaration order."""

    def __init__(self) -> None:
        self.specs: list[TraceSpec] = []
        self._keys: set[TraceKey] = set()

    def add(self, key: TraceKey, name: str, t: TensorType) -> None:
        if key not in self._keys:
            self._keys.add(key)
            self.specs.append(TraceSpec(key, name, t))

    def names(self) -> set[str]:
        return {s.name for s in self.specs}

    def __contains__(self, key: TraceKey) -> bool:
        return key in self._keys


@dataclass(frozen=True)
class RelationPlan:
    """One relation of one hidden group, as the learning step will treat it."""

    kind: Kind
    rel: Relation       # the relation found by the analysis (with its op)
    index: int          # the relation's index
    group: int          # the hidden group's index
    param: int          # the parameter's index
    states: tuple       # the group's (primary) state indices
    cols: tuple | None  # the neuron each output column feeds; None: laid out as the neurons
    sparse: object = None  # a sparse relation's layout.SparseLayout (its x, pre, batch axis)


def plan(g: StepGraph, relations: list[Relation], groups: list[dict], derived: dict,
         rule) -> tuple[Traces, list[RelationPlan], list[list[int]]]:
    """Declare every trace (the rule declares those of dense, gathered, sparse and
    convolution relations; element-wise parameters keep exact traces under every rule) and list the
    relations per group. Returns (traces, relation plans, primary states per group)."""
    traces = Traces()
    name_idx = {n: i for i, n in enumerate(g.state_names)}
    prim_of = []
    for grp in groups:
        prim_of.append([name_idx[n] for n in grp["states"]])
        for d in [name_idx[n] for n in grp["derived"]]:
            for c in derived[d]:
                traces.add(TraceKey("jac", d, None, c),
                           f"jac/{g.state_names[d]}/{g.state_names[c]}", g.state_args[d].type)
    labels: dict = {}

    def group_labels(gi):
        if gi not in labels:
            labels[gi] = neuron_labels(g, [g.state_results[a] for a in prim_of[gi]])
        return labels[gi]

    plans: list[RelationPlan] = []
    per_neuron: set = set()  # (parameter, group) already given its per-neuron trace
    for ri, rel in enumerate(relations):
        rop = rel.op
        pidx = g.param_names.index(rel.param)
        for gi in rel.groups:
            prim = prim_of[gi]

            def make(kind, cols=None):
                return RelationPlan(kind, rel, ri, gi, pidx, tuple(prim),
                                    None if cols is None else tuple(cols))
            if rel.kind in ("dense", "gathered"):
                y = rop.results[0]
                if rel.kind == "gathered":
                    layout.row_lookup(rop, rel)
                else:
                    layout.check_dense(rop, rel)
                rp = make(Kind(rel.kind), layout.columns(g, rel, prim, y, group_labels(gi)))
                rule.declare(g, rp, traces)
            elif rel.kind == "sparse":
                sp = layout.sparse_layout(g, rel)
                cols = layout.sparse_columns(g, rel, prim, group_labels(gi), sp.batch_axis)
                rp = RelationPlan(Kind.SPARSE, rel, ri, gi, pidx, tuple(prim), tuple(cols), sp)
                rule.declare(g, rp, traces)
            elif rel.kind == "conv":
                layout.conv_relation(g, rel, prim, group_labels(gi))
                rp = make(Kind.CONV)
                rule.declare(g, rp, traces)
            elif rel.kind == "element-wise":
                st = g.state_args[prim[0]].type
                pshape, sshape = layout.shape(g.param_args[pidx]), layout.shape(st)
                if pshape == sshape[len(sshape) - len(pshape):]:
                    # a per-neuron value: one exact trace per neuron, all its uses at once
                    if (pidx, gi) in per_neuron:
                        continue
                    per_neuron.add((pidx, gi))
                    rp = make(Kind.PER_NEURON)
                    for a in prim:
                        traces.add(TraceKey("ep", pidx, gi, a),
                                   f"ep/{rel.param}/{g.state_names[a]}", st)
                else:
                    # e.g. an LSTM's fused gate bias [4H]: one trace per element of the
                    # relation's operand, which feeds exactly one neuron
                    u = rel.operand
                    rp = make(Kind.PER_ELEMENT, layout.columns(g, rel, prim, u, group_labels(gi)))
                    for a in prim:
                        name = f"ep/{rel.param}/{g.state_names[a]}"
                        if name in traces.names():  # a second use of the parameter
                            name += f"/{ri}"
                        traces.add(TraceKey("epr", ri, gi, a), name, u.type)
            else:
                raise op_error(rop, f"insert-eligibility-traces: {rel.kind} relations "
                                    f"('{rel.param}') are not supported yet")
            plans.append(rp)
    return traces, plans, prim_of
