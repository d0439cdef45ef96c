"""insert-eligibility-traces: the online learning rules of docs/design.md §3.

Builds ``@learn_step`` from ``@step`` and ``@loss``: one time step that also updates the
eligibility traces and returns this step's gradient ``G_t`` of every parameter.

    learn_step(params..., state..., traces..., n, x, target, mask)
        -> (new_state..., new_traces..., grads..., loss, outputs...)

``n`` counts the steps since the last reset, ``mask`` weighs the loss (``loss`` returned
is the unmasked L_t). Per hidden group the signals D, Df, δ and δ⁻ (library
``passes/learning/learn_step.py``); per relation the traces and their contraction of the
chosen rule (``passes/learning/d_rtrl.py``, ``es_d_rtrl.py``; element-wise parameters
keep exact traces under both, ``rule.py``); every parameter adds its direct same-step
gradient with the new states of the groups it feeds held.

Options: ``algorithm`` (``d-rtrl`` | ``es-d-rtrl``), ``decay`` (α in [0, 1)),
``row_gradients`` (bool, default false: a dense weight's D-RTRL gradient returned per
batch row, laid out as its trace ``[M, B, I]``, for an optimizer that sums it over the
batch once per window; where the relation is the weight's only one and uses the weight
itself).
Before: ``@step`` analysed (find-param-relations has run), ``@loss`` exists.
After: ``@learn_step`` (private) with roles on arguments and results; ``@step`` unchanged.
A gradient kept per batch row is named in ``tracec.learning``'s ``batch_rows``
(parameter name -> the permutation that maps its batch sum, ``[M, I]``, to the
parameter).
Diagnostics: a relation kind or layout the rules do not cover (a gather that is not a
row lookup, an output element feeding several neurons, values moving between batch
elements), a model without ``loss``/``target``, a model with no trainable relation.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.options import CompileOptions
from tracec.passes.analysis.dataflow import StepGraph, derived_map
from tracec.passes.analysis.relations import read_relations
from tracec.passes.ir.module import from_attr, functions, op_error
from tracec.passes.learning import rules
from tracec.passes.learning.learn_step import LearnStep, relation_gradient
from tracec.passes.learning.plan import plan


@dataclass(frozen=True)
class InsertEligibilityTracesPass(ModulePass):
    name = "insert-eligibility-traces"

    algorithm: str = "es-d-rtrl"  # run on its own, the pass builds a learning rule
    decay: float = CompileOptions.decay
    row_gradients: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.algorithm not in rules():
            raise TracecError(f"insert-eligibility-traces: unknown algorithm '{self.algorithm}'",
                              hint=f"use {' or '.join(rules())}")
        if not 0.0 <= self.decay < 1.0:
            raise TracecError(f"insert-eligibility-traces: decay must be in [0, 1), got {self.decay}")
        fns = functions(op)
        if "loss" not in fns:
            raise TracecError("online learning needs a loss: give tracec.Model a loss(output, "
                              "target) and a target spec")
        step = fns["step"]
        if "tracec.groups" not in step.attributes:
            raise op_error(step, "insert-eligibility-traces needs the recurrence analyses first")
        g = StepGraph(step)
        relations = read_relations(g)
        if not relations:
            raise op_error(step, "the model has no trainable relation: no parameter reaches a "
                                 "hidden state", hint="online learning trains weights that feed "
                                                      "recurrent neurons")
        rule = rules()[self.algorithm](self.decay)
        derived = derived_map(g)
        traces, plans, prim_of = plan(g, relations, from_attr(step.attributes["tracec.groups"]),
                                      derived, rule)
        ls = LearnStep(op, g, step, fns["loss"], traces)
        for prim in prim_of:
            ls.group_signals(prim, derived)
        fed: dict = {}
        for rel in relations:
            fed.setdefault(g.param_names.index(rel.param), set()).update(rel.groups)
        grads = ls.direct_gradients(fed, prim_of)
        rule.prepare(ls)
        uses = {}
        for rp in plans:
            uses[rp.param] = uses.get(rp.param, 0) + 1
        for rp in plans:
            # per batch row only where this relation's gradient is the parameter's whole
            # gradient: one relation in one group, no direct same-step part
            rows = self.row_gradients and uses[rp.param] == 1 and grads[rp.param] is None
            G = relation_gradient(ls, rule, rp, rows=rows)
            if G is not None:
                grads[rp.param] = ls.em.add(grads[rp.param], G)
        learning = {"algorithm": self.algorithm, "decay": float(self.decay)}
        if ls.rows:
            learning["batch_rows"] = {g.param_names[k]: perm for k, perm in sorted(ls.rows.items())}
        ls.finish(grads, learning)
