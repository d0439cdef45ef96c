"""identify-recurrent-state: classify the step's values and find derived states.

Arguments are parameters, recurrent state and the input; results are new state and
outputs (the roles come from the frontend, or from ``tracec.role`` attributes in a
.mlir file). A state is *derived* when its new value is a pure function of other
states' new values (and parameters), like a spike ``z_t = spike(v_t)`` kept in the
carry (docs/design.md section 3); its result gets ``tracec.derived_from = [names]``.

Before: ``@step`` with roles, arguments ordered params, state, input.
After: unchanged computation; ``tracec.derived_from`` on derived state results and
``tracec.recurrent = true`` on ``@step``.
Diagnostics (with the user's line): no state; nothing recurrent (no new state depends
on any old state); a state whose new value depends on nothing (only constants and
parameters); a parameter used inside a nested loop (``lax.fori_loop`` in the step).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ArrayAttr, BoolAttr, DictionaryAttr, ModuleOp
from xdsl.ir import BlockArgument, SSAValue
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.dataflow import StepGraph
from tracec.passes.ir.builder import captured_values
from tracec.passes.ir.module import get_function, op_error, source_loc, to_attr


def backward_sources(g: StepGraph, value: SSAValue, stop: dict[SSAValue, int]):
    """(state results reached, block arguments reached) walking back from ``value``,
    not going past values in ``stop`` (other states' new values)."""
    reached_states: set[int] = set()
    reached_args: set[BlockArgument] = set()
    seen: set[SSAValue] = set()
    todo = [value]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in stop and v is not value:
            reached_states.add(stop[v])
            continue
        if isinstance(v, BlockArgument):
            if v.block is g.block:
                reached_args.add(v)
            continue
        todo.extend(v.owner.operands)
        for region in v.owner.regions:  # values a nested region (reduce body) captures
            todo.extend(captured_values(region))
    return reached_states, reached_args


def derived_states(g: StepGraph) -> dict[int, list[int]]:
    """state index -> indices of the states it is derived from."""
    derived: dict[int, list[int]] = {}
    for k, r in enumerate(g.state_results):
        stop = {v: j for j, v in enumerate(g.state_results) if j != k and v is not r}
        states, args = backward_sources(g, r, stop)
        if not states and all(a in g.param_args for a in args):
            owner = r.owner if not isinstance(r, BlockArgument) else g.ret
            raise op_error(owner, f"the new value of state '{g.state_names[k]}' depends on "
                                  "nothing: it is computed from constants and parameters only",
                           hint="a recurrent state must depend on the previous state or the input")
        if states and all(a in g.param_args for a in args):
            derived[k] = sorted(states)
    return derived


@dataclass(frozen=True)
class IdentifyRecurrentStatePass(ModulePass):
    name = "identify-recurrent-state"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        step = get_function(op, "step", self.name)
        g = StepGraph(step)
        if not g.state_args:
            raise TracecError("nothing recurrent: the step has no state", loc=source_loc(step),
                              hint="init_state must return the arrays carried from step to step")
        for inner in g.block.ops:
            if isinstance(inner, shlo.WhileOp):
                used = [g.param_names[g.param_args.index(g.root_param(v))] for v in inner.operands
                        if v in g.from_param]
                if used:
                    raise op_error(inner, f"parameter '{used[0]}' is used inside a nested loop",
                                   hint="tracec differentiates one time step; unroll the inner "
                                        "loop (e.g. a Python for loop) or move the parameter out")
        derived = derived_states(g)  # also rejects a state that depends on nothing
        recurrent = False
        for r in g.state_results:
            _, args = backward_sources(g, r, {})
            if any(a in g.state_args for a in args):
                recurrent = True
        if not recurrent:
            raise op_error(g.ret, "nothing recurrent found: no new state depends on the previous "
                                  "state", hint="the step must use its `state` argument")
        res_attrs = list(step.res_attrs.data)
        for k, sources in derived.items():
            d = dict(res_attrs[k].data)
            d["tracec.derived_from"] = ArrayAttr([to_attr(g.state_names[j]) for j in sources])
            res_attrs[k] = DictionaryAttr(d)
        step.res_attrs = ArrayAttr(res_attrs)
        step.attributes["tracec.recurrent"] = BoolAttr.from_bool(True)
