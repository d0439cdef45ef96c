"""find-param-relations: where each parameter meets the data flow into hidden groups.

For every parameter, followed through layout ops (transpose, reshape, convert,
broadcast) and element-wise transforms of parameters alone (``abs(W)``, ``W * mask``,
``softplus(W)``, ``exp(log_tau)``), the op that uses it is its *relation*; the
relation's ``operand`` is the (transformed) value it uses, and the learning rules map
its gradient back to the parameter through the transform's derivative:

- ``dense``: a ``dot_general`` ``y = x·W``; ``x`` is the presynaptic operand;
- ``conv``: a ``convolution``;
- ``element-wise``: a per-neuron bias, time constant or threshold;
- ``gathered``: an embedding or sparse weight read with ``gather``/``dynamic_slice``.

The groups of a relation are the hidden groups whose new states its output ``y``
reaches element-wise (index-routing ops such as the slices that split an LSTM's
fused gate matmul are allowed on the way). A parameter that reaches no new state is a *readout*
parameter (its gradient is its exact same-step gradient).

Before: find-hidden-groups has run. After: ``@step`` carries
``tracec.relations = [{param, kind, y_shape, groups, loc, x_shape, param_side, op_index,
operand_index}]`` (``op_index``: the relation op's position in ``@step``'s body, which
insert-eligibility-traces reads back) and ``tracec.readout_params``; the computation is
unchanged.
Diagnostics: a parameter used inside a nested loop; non-element-wise coupling
between a relation and the neurons it feeds (a normalisation between them).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from tracec.passes.analysis.dataflow import StepGraph
from tracec.passes.analysis.relations import RELATIONS_ATTR, param_relations, relations_attr
from tracec.passes.ir.module import get_function, op_error, to_attr


@dataclass(frozen=True)
class FindParamRelationsPass(ModulePass):
    name = "find-param-relations"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        step = get_function(op, "step", self.name)
        g = StepGraph(step)
        if "tracec.groups" not in step.attributes:
            raise op_error(step, "find-param-relations needs find-hidden-groups to run first")
        relations, readout = param_relations(g)
        step.attributes[RELATIONS_ATTR] = relations_attr(relations)
        step.attributes["tracec.readout_params"] = to_attr(readout)
