"""The interface every learning rule implements, and what all rules share.

A rule decides, for the dense, gathered and convolution relations of a hidden group:
which traces it carries (``declare``), how they update each step (``update_traces``)
and how a gradient is contracted from learning signals and traces (``contract``),
once with δ and this step's traces and once with δ⁻ and the previous step's. A third
rule is a new module with a new subclass, registered in ``passes/learning/__init__.py``.

Element-wise parameters (bias, time constant, threshold; a fused gate's per-element
bias) keep the exact trace ``ε = Σ_c D ε[c] + ∂h/∂p`` under every rule:
``exact_traces`` and ``exact_contract`` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects.builtin import TensorType

from tracec.dialects.tracec import NeuronTraceOp, TraceGradOp
from tracec.passes.learning.plan import Kind, RelationPlan, TraceKey, Traces


@dataclass
class View:
    """The values of one relation inside ``@learn_step``: its input ``x`` (a one-hot for
    an embedding), output ``y``, weight ``w`` (the operand the relation uses, possibly a
    transform of the parameter) and ``w_t`` (the weight's gradient type as ``[I, M]``);
    the group's D, δ and δ⁻ laid out as ``y``; ``Df`` = ∂(new states)/∂y."""

    x: object = None
    y: object = None
    w: object = None
    w_t: TensorType | None = None
    cp: object = None          # convolution parameters
    D: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    delta_prev: dict = field(default_factory=dict)
    Df: dict | None = None
    extra: dict = field(default_factory=dict)  # what a rule keeps between update and contract


class Rule:
    name = ""

    def __init__(self, decay: float):
        self.decay = float(decay)

    def declare(self, g, rp: RelationPlan, traces: Traces) -> None:
        """Add the traces relation ``rp`` carries (dense, gathered or convolution)."""
        raise NotImplementedError

    def prepare(self, ls) -> None:
        """Step-wide values (e.g. bias corrections), once per learning step."""

    def needs_df(self, rp: RelationPlan) -> bool:
        """Whether ``Df`` of this relation must be computed (a shared trace may not)."""
        return True

    def update_traces(self, ls, rp: RelationPlan, v: View) -> tuple[dict, dict]:
        """This step's traces and the previous step's, by state of the group."""
        raise NotImplementedError

    def contract(self, ls, rp: RelationPlan, v: View, pairs: list, previous: bool):
        """``Σ_a signal_a · trace_a`` as the gradient of the relation's weight (``v.w_t``
        for dense relations, the kernel for convolutions); ``previous`` selects δ⁻ with
        the previous step's traces."""
        raise NotImplementedError

    def contract_rows(self, ls, rp: RelationPlan, v: View, pairs: list):
        """The gradient of a dense relation per batch row, laid out as its trace
        (``[M, B, I]``), δ with this step's traces and δ⁻ with the previous step's in
        ``pairs``; None where the rule keeps no such trace."""
        return None


def exact_traces(ls, rp: RelationPlan, seed, D: dict) -> tuple[dict, dict]:
    """ε[a] = Σ_c D[a][c] ε[c] + ∂h^a/∂p for an element-wise parameter (per neuron) or a
    per-element value (``seed``: the value the trace is for)."""
    src = ls.sources(seed, rp.cols, rp.states)
    ls.em.loc = ls.op_map[rp.rel.op].location
    key = (TraceKey("ep", rp.param, rp.group) if rp.kind == Kind.PER_NEURON
           else TraceKey("epr", rp.index, rp.group))
    new = {a: ls.update(key.of_state(a),
                        lambda j, pr, s_, t: NeuronTraceOp(j, pr, s_, t, 1.0, 1.0),
                        src[a], D, rp.states) for a in rp.states}
    prev = {c: ls.trace_arg[key.of_state(c)] for c in rp.states}
    return new, prev


def exact_contract(ls, seed, pairs: list):
    return ls.em.insert(TraceGradOp([d for d, _ in pairs], [e for _, e in pairs], seed.type)).results[0]
