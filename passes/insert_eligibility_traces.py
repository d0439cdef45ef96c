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

Options: ``algorithm`` (``d-rtrl`` | ``es-d-rtrl``), ``decay`` (α in [0, 1)).
Before: ``@step`` analysed (find-param-relations has run), ``@loss`` exists.
After: ``@learn_step`` (private) with roles on arguments and results; ``@step`` unchanged.
Diagnostics: a relation kind or layout the rules do not cover (a gather that is not a
row lookup, an output element feeding several neurons, values moving between batch
elements), a model without ``loss``/``target``, a model with no trainable relation.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.options import CompileOptions
from tracec.passes.ad import vjp
from tracec.passes.ad_rules import conv_params, dot_dims
from tracec.passes.common import from_attr, functions, op_error
from tracec.passes.dataflow import StepGraph, derived_map
from tracec.passes.learning import layout, rules
from tracec.passes.learning.learn_step import LearnStep
from tracec.passes.learning.plan import Kind, plan
from tracec.passes.learning.rule import View, exact_contract, exact_traces
from tracec.passes.relations import param_relations


@dataclass(frozen=True)
class InsertEligibilityTracesPass(ModulePass):
    name = "insert-eligibility-traces"

    algorithm: str = "es-d-rtrl"  # run on its own, the pass builds a learning rule
    decay: float = CompileOptions.decay

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
        relations, _ = param_relations(g)
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
            fed.setdefault(g.param_names.index(rel["param"]), set()).update(rel["groups"])
        grads = ls.direct_gradients(fed, prim_of)
        rule.prepare(ls)
        for rp in plans:
            G = self._relation_gradient(ls, rule, rp)
            if G is not None:
                grads[rp.param] = ls.em.add(grads[rp.param], G)
        ls.finish(grads, {"algorithm": self.algorithm, "decay": float(self.decay)})

    @staticmethod
    def _relation_gradient(ls: LearnStep, rule, rp):
        """Update the traces of one relation of one group and contract its gradient:
        δ with this step's traces plus δ⁻ with the previous step's, mapped back to the
        parameter through layout ops and transforms (abs(W), W * mask)."""
        em, p = ls.em, ls.p_args[rp.param]
        rop = ls.op_map[rp.rel["_op"]]
        em.loc = rop.location
        cols, prim = rp.cols and list(rp.cols), list(rp.states)
        # D, δ and δ⁻ of the group, laid out as the relation's output (columns -> neurons)
        v = View(D={k: layout.spread(em, d, cols) for k, d in ls.D.items() if k[0] in prim},
                 delta={a: layout.spread(em, ls.delta[a], cols) for a in prim},
                 delta_prev={c: layout.spread(em, ls.delta_prev[c], cols) for c in prim})
        if rp.kind in (Kind.PER_NEURON, Kind.PER_ELEMENT):
            seed = p if rp.kind == Kind.PER_NEURON else ls.vmap.get(rp.rel["_operand"],
                                                                    rp.rel["_operand"])
            new, prev = exact_traces(ls, rp, seed, v.D)

            def contract(pairs, previous):
                return exact_contract(ls, seed, pairs)
            operand = seed
        else:
            if rp.kind == Kind.GATHERED:  # E[idx] = one_hot(idx) @ E
                v.w, v.y = rop.operands[0], rop.results[0]
                v.x, v.w_t = layout.one_hot(em, rop.operands[1], layout.shape(v.w)[0]), v.w.type
            else:
                v.x, v.y, v.w = rop.operands[0], rop.results[0], rop.operands[1]
            if rp.kind == Kind.DENSE:
                # the weight as [I, M]: W, or Wᵀ for x·Wᵀ written as one dot_general
                v.w_t = (v.w.type if dot_dims(rop)[3] == [0]
                         else TensorType(f32, layout.shape(v.w)[::-1]))
            if rp.kind == Kind.CONV:
                v.cp = conv_params(rop)
            v.Df = (ls.sources(v.y, None if rp.kind == Kind.CONV else cols, prim)
                    if rule.needs_df(rp) else None)
            em.loc = rop.location  # the trace ops point at the relation's line
            new, prev = rule.update_traces(ls, rp, v)

            def contract(pairs, previous):
                return rule.contract(ls, rp, v, pairs, previous)
            operand = v.w
        current = [(v.delta[a], new[a]) for a in prim if v.delta[a] is not None]
        previous = [(v.delta_prev[c], prev[c]) for c in prim if v.delta_prev[c] is not None]
        G = em.add(contract(current, False) if current else None,
                   contract(previous, True) if previous else None)
        if G is not None and v.w_t is not None and v.w_t is not v.w.type:
            G = em.transpose(G, [1, 0])
        if G is not None and rp.kind != Kind.PER_NEURON and operand is not p:
            G = vjp(ls.fn, {operand: G}, wrt=[p], emitter=em).get(p)
        return G
