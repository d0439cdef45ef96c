"""``@learn_step``: one time step that also updates the traces and returns the step's
gradient, built from ``@step`` and ``@loss``. What every rule needs:

- the step and the loss cloned into one function, the loss weighed by the mask;
- per hidden group, the signals of docs/design.md §3: ``D[a][c]`` (forward mode from
  old state c, recurrent mixing cut; a derived old state receives the carried tangent of
  its recomputation), ``δ[a]`` (reverse mode to the group's new states, held as its
  outputs) and ``δ⁻[c]`` (reverse mode to the old states along the paths that avoid the
  group's new states);
- each parameter's direct same-step gradient (the new states of the groups it feeds
  held);
- ``sources``: the derivative of the new states with respect to a relation's output (or
  an element-wise parameter), and ``update``: a trace's new value from its carried part
  ``Σ_c D[a][c] ⊙ ε[c]`` and this step's source;
- ``relation_gradient``: one relation's traces updated by the rule and its gradient,
  δ with this step's traces plus δ⁻ with the previous step's, mapped back to the
  parameter.

    learn_step(params..., state..., traces..., n, x, target, mask)
        -> (new_state..., new_traces..., grads..., loss, outputs...)
"""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType, ModuleOp, TensorType, f32, i32
from xdsl.ir import Block, Region

from tracec.dialects import stablehlo as shlo
from tracec.passes.analysis.dataflow import StepGraph
from tracec.passes.autodiff.engine import jvp, remove_dead_code, vjp
from tracec.passes.ir.attributes import conv_params, dot_dims
from tracec.passes.ir.builder import Builder
from tracec.passes.ir.module import role_attrs, roles, to_attr
from tracec.passes.learning import layout
from tracec.passes.learning.plan import Kind, TraceKey, Traces
from tracec.passes.learning.rule import View, exact_contract, exact_traces


class LearnStep:
    def __init__(self, module: ModuleOp, g: StepGraph, step: func.FuncOp, loss: func.FuncOp,
                 traces: Traces):
        self.g, self.step, self.loss, self.traces = g, step, loss, traces
        n_p, n_s = len(g.param_args), len(g.state_args)
        self.loss_roles = roles(loss.arg_attrs)
        target_t = loss.function_type.inputs.data[-1]
        self.in_types = ([a.type for a in g.param_args] + [a.type for a in g.state_args]
                         + [s.type for s in traces.specs]
                         + [TensorType(i32, []), g.args[-1].type, target_t, TensorType(f32, [])])
        block = self.block = Block(arg_types=self.in_types)
        args = list(block.args)
        self.p_args, self.s_args = args[:n_p], args[n_p:n_p + n_s]
        self.tr_args = args[n_p + n_s:n_p + n_s + len(traces.specs)]
        self.n_arg, x_arg, target_arg, mask_arg = args[-4:]
        self.vmap: dict = dict(zip(g.args, self.p_args + self.s_args + [x_arg]))
        self.op_map: dict = {}
        for inner in list(step.body.block.ops)[:-1]:
            clone = inner.clone(value_mapper=self.vmap)
            block.add_op(clone)
            self.op_map[inner] = clone
            for old, new in zip(inner.results, clone.results):
                self.vmap[old] = new
        self.new_state = [self.vmap.get(v, v) for v in g.state_results]
        self.outputs = [self.vmap.get(v, v) for v in g.output_results]
        lmap = dict(zip(loss.body.block.args, self.outputs + [target_arg]))
        for inner in list(loss.body.block.ops)[:-1]:
            clone = inner.clone(value_mapper=lmap)
            block.add_op(clone)
            for old, new in zip(inner.results, clone.results):
                lmap[old] = new
        self.loss_value = lmap.get(loss.body.block.last_op.operands[0])
        masked = shlo.MultiplyOp.create(operands=[self.loss_value, mask_arg],
                                        result_types=[self.loss_value.type])
        masked.location = step.location
        block.add_op(masked)
        self.masked_loss = masked.results[0]
        block.add_op(func.ReturnOp(*self.new_state, *self.outputs, self.masked_loss))
        self.fn = func.FuncOp("learn_step", FunctionType.from_lists(self.in_types, []),
                              Region(block), visibility="private")
        self.fn.location = step.location
        module.body.block.add_op(self.fn)

        self.em = em = Builder(block)
        em.loc = step.location
        self.cut = {self.op_map[o] for o in step.body.block.ops if g.is_cut(o)}
        self.trace_arg = {s.key: a for s, a in zip(traces.specs, self.tr_args)}
        self.new_trace: dict = {}
        self.one_loss = em.full(1.0, self.masked_loss)
        self.D: dict = {}
        self.delta: dict = {}
        self.delta_prev: dict = {}
        #: parameter index -> permutation, for gradients kept per batch row
        self.rows: dict = {}

    def ones(self, v):
        return self.em.full(1.0, v)

    # -- the signals of one hidden group ---------------------------------------------

    def group_signals(self, prim: list[int], derived: dict) -> None:
        """D, δ and δ⁻ of one group (into ``self.D``, ``self.delta``, ``self.delta_prev``)
        and the new Jacobians of its derived states."""
        em, fn, s_args, new_state = self.em, self.fn, self.s_args, self.new_state
        wanted = [new_state[a] for a in prim]
        ders = [d for d in derived if set(derived[d]) & set(prim)]
        for c in prim:
            seeds = {s_args[c]: self.ones(s_args[c])}
            for d in ders:
                if TraceKey("jac", d, None, c) in self.trace_arg:
                    seeds[s_args[d]] = self.trace_arg[TraceKey("jac", d, None, c)]
            tans = jvp(fn, seeds, self.cut, wanted=wanted, builder=em)
            for a in prim:
                self.D[(a, c)] = tans.get(new_state[a])
        # δ goes through every same-step path to the loss (later layers, readout),
        # but not from one of the group's new states through another of them.
        cots = vjp(fn, {self.masked_loss: self.one_loss}, set(wanted), wrt=wanted, builder=em)
        for a in prim:
            self.delta[a] = cots.get(new_state[a])
        # δ⁻ goes from the old states to the loss along the paths that avoid the
        # group's new states; a derived old state passes its part to its sources
        # through the carried Jacobian of its recomputation.
        olds = [s_args[c] for c in prim] + [s_args[d] for d in ders]
        cots = vjp(fn, {self.masked_loss: self.one_loss}, set(wanted), wrt=olds, builder=em)
        for c in prim:
            jac = [(d, TraceKey("jac", d, None, c)) for d in ders]
            self.delta_prev[c] = em.sum_all(
                [cots.get(s_args[c])]
                + [em.mul(cots.get(s_args[d]), self.trace_arg[k]) for d, k in jac
                   if k in self.trace_arg])
        for d in ders:
            for c in derived[d]:
                t = jvp(fn, {new_state[c]: self.ones(new_state[c])}, self.cut,
                        wanted=[new_state[d]], builder=em).get(new_state[d])
                self.new_trace[TraceKey("jac", d, None, c)] = em.val(t, new_state[d])

    def direct_gradients(self, fed: dict, prim_of: list[list[int]]) -> list:
        """Each parameter's direct same-step gradient, the new states of the groups it
        feeds (``fed[p]``) held: one reverse pass per distinct set of groups."""
        n_p = len(self.p_args)
        held_sets = {pidx: frozenset(fed.get(pidx, ())) for pidx in range(n_p)}
        grads = [None] * n_p
        for held in sorted(set(held_sets.values()), key=sorted):
            cut_at = {self.new_state[a] for gi in held for a in prim_of[gi]}
            which = [pidx for pidx in range(n_p) if held_sets[pidx] == held]
            direct = vjp(self.fn, {self.masked_loss: self.one_loss}, cut_at,
                         wrt=[self.p_args[k] for k in which], builder=self.em)
            for pidx in which:
                grads[pidx] = direct.get(self.p_args[pidx])
        return grads

    # -- traces --------------------------------------------------------------------------

    def sources(self, seed, cols, prim):
        """∂(new state a)/∂(seed) within the step, mixing cut, laid out as ``seed``:
        forward mode when seed is laid out as the neurons, else one reverse pass per
        state (each element of seed feeds one neuron, so the column sum is exact)."""
        em, new_state = self.em, self.new_state
        if cols is None:
            tans = jvp(self.fn, {seed: self.ones(seed)}, self.cut,
                       wanted=[new_state[a] for a in prim], builder=em)
            return {a: tans.get(new_state[a]) for a in prim}
        return {a: vjp(self.fn, {new_state[a]: self.ones(new_state[a])}, self.cut, wrt=[seed],
                       builder=em).get(seed) for a in prim}

    def neuron_sources(self, seed, tangent, prim):
        """∂(new state a)/∂(seed) laid out as the neurons, for a ``seed`` whose elements
        each feed one neuron: forward mode with ``tangent`` picking one element per
        neuron (a sparse relation's first connection into it)."""
        tans = jvp(self.fn, {seed: tangent}, self.cut, wanted=[self.new_state[a] for a in prim],
                   builder=self.em)
        return {a: tans.get(self.new_state[a]) for a in prim}

    def update(self, key: TraceKey, make, source, D_rel: dict, prim):
        """The new trace ``key`` of state ``key.state``: the op ``make(jac, prev, source,
        type)`` builds from the carried part ``Σ_c D[a][c] ⊙ prev[c]`` and this step's
        source, or zeros when nothing flows into it."""
        a = key.state
        pairs = [(D_rel[(a, c)], self.trace_arg[key.of_state(c)]) for c in prim
                 if D_rel[(a, c)] is not None]
        old = self.trace_arg[key]
        acc = (self.em.insert(make([j for j, _ in pairs], [e for _, e in pairs], source, old.type)).results[0]
               if pairs or source is not None else self.em.val(None, old))
        self.new_trace[key] = acc
        return acc

    # -- the end ---------------------------------------------------------------------------

    def finish(self, grads: list, learning: dict) -> None:
        """Return new states, traces, gradients, loss and outputs; drop traces that no
        update reads; set the roles of arguments and results."""
        g, em, block = self.g, self.em, self.block
        n_p, n_s = len(g.param_args), len(g.state_args)
        specs = list(self.traces.specs)
        grads = [em.val(gv, p) for gv, p in zip(grads, self.p_args)]
        traces_out = [em.val(self.new_trace.get(s.key), a) for s, a in zip(specs, self.tr_args)]
        final = self._replace_return(block.last_op, [*self.new_state, *traces_out, *grads,
                                                     self.loss_value, *self.outputs])
        remove_dead_code(block)
        # A trace no update reads is needed within its own step only, so it is not
        # carried: e.g. the trace of a spike z that reaches the next step only through
        # cut recurrent weights (lif2's z): half of D-RTRL's [H, B, I] traces there.
        in_types = self.in_types
        unread = {k for k, a in enumerate(self.tr_args) if not list(a.uses)}
        if unread:
            first = len(self.new_state)
            kept = [v for k, v in enumerate(final.operands)
                    if not (first <= k < first + len(specs) and k - first in unread)]
            final = self._replace_return(final, kept)
            for k in sorted(unread, reverse=True):
                block.erase_arg(self.tr_args[k])
            first = n_p + n_s
            in_types = [t for k, t in enumerate(in_types)
                        if not (first <= k < first + len(specs) and k - first in unread)]
            specs = [s for k, s in enumerate(specs) if k not in unread]
            remove_dead_code(block)
        arg_roles = (roles(self.step.arg_attrs)[:n_p + n_s] + [("trace", s.name) for s in specs]
                     + [("counter", "n"), ("input", "x"), ("target", self.loss_roles[-1][1]),
                        ("mask", "mask")])
        res_roles = (roles(self.step.res_attrs)[:n_s] + [("trace", s.name) for s in specs]
                     + [("grad", n) for n in g.param_names] + [("loss", "loss")]
                     + roles(self.step.res_attrs)[n_s:])
        fn = self.fn
        fn.function_type = FunctionType.from_lists(in_types, [v.type for v in final.operands])
        fn.arg_attrs = role_attrs(arg_roles)
        fn.res_attrs = role_attrs(res_roles)
        fn.attributes["tracec.learning"] = to_attr(learning)

    def _replace_return(self, ret: func.ReturnOp, operands) -> func.ReturnOp:
        new = func.ReturnOp(*operands)
        new.location = self.step.location
        ret.parent_block().insert_op_before(new, ret)
        ret.detach()
        ret.erase()
        return new


def relation_gradient(ls: LearnStep, rule, rp, rows: bool = False):
    """Update the traces of one relation of one group and contract its gradient:
    δ with this step's traces plus δ⁻ with the previous step's, mapped back to the
    parameter through layout ops and transforms (abs(W), W * mask). With ``rows``, a
    dense relation that uses the parameter itself keeps the gradient per batch row, laid
    out as its trace, where the rule can (D-RTRL); ``ls.rows`` then records how the batch
    sum maps back to the parameter (the permutation after summing axis 1)."""
    em, p = ls.em, ls.p_args[rp.param]
    rop = ls.op_map[rp.rel.op]
    em.loc = rop.location
    cols, prim = rp.cols and list(rp.cols), list(rp.states)
    # D, δ and δ⁻ of the group, laid out as the relation's output (columns -> neurons);
    # a sparse relation's rule lays them out itself (per neuron or per connection)
    spread_as = None if rp.kind == Kind.SPARSE else cols
    v = View(D={k: layout.spread(em, d, spread_as) for k, d in ls.D.items() if k[0] in prim},
             delta={a: layout.spread(em, ls.delta[a], spread_as) for a in prim},
             delta_prev={c: layout.spread(em, ls.delta_prev[c], spread_as) for c in prim})
    if rp.kind in (Kind.PER_NEURON, Kind.PER_ELEMENT):
        seed = p if rp.kind == Kind.PER_NEURON else ls.vmap.get(rp.rel.operand,
                                                                rp.rel.operand)
        new, prev = exact_traces(ls, rp, seed, v.D)

        def gradient(current, previous):
            # exact traces: δ and δ⁻ contract alike, so one trace gradient (one batch sum)
            return exact_contract(ls, seed, current + previous) if current or previous else None
        operand = seed
    else:
        if rp.kind == Kind.GATHERED:  # E[idx] = one_hot(idx) @ E
            v.w, v.y = rop.operands[0], rop.results[0]
            v.x, v.w_t = layout.one_hot(em, rop.operands[1], layout.shape(v.w)[0]), v.w.type
        elif rp.kind == Kind.SPARSE:  # y = x[:, pre] * w (or a BCOO matmul's products)
            k = ls.g.sparse_relation(rp.rel.op)[0]
            v.w, v.y, v.w_t = rop.operands[k], rop.results[0], rop.operands[k].type
            v.x = ls.vmap.get(rp.sparse.x, rp.sparse.x)
            v.extra["x_gathered"] = rop.operands[1 - k]
        else:
            v.x, v.y, v.w = rop.operands[0], rop.results[0], rop.operands[1]
        if rp.kind == Kind.DENSE:
            # the weight as [I, M]: W, or Wᵀ for x·Wᵀ written as one dot_general
            v.w_t = (v.w.type if dot_dims(rop)[3] == [0]
                     else TensorType(f32, layout.shape(v.w)[::-1]))
        if rp.kind == Kind.CONV:
            v.cp = conv_params(rop)
        v.Df = (ls.sources(v.y, None if rp.kind == Kind.CONV else cols, prim)
                if rule.needs_df(rp) and rp.kind != Kind.SPARSE else None)
        em.loc = rop.location  # the trace ops point at the relation's line
        new, prev = rule.update_traces(ls, rp, v)

        def gradient(current, previous):  # δ with this step's traces, δ⁻ with the previous
            return em.add(rule.contract(ls, rp, v, current, False) if current else None,
                          rule.contract(ls, rp, v, previous, True) if previous else None)
        operand = v.w
    current = [(v.delta[a], new[a]) for a in prim if v.delta[a] is not None]
    previous = [(v.delta_prev[c], prev[c]) for c in prim if v.delta_prev[c] is not None]
    if rows and operand is p and rp.kind == Kind.DENSE:
        G = rule.contract_rows(ls, rp, v, current + previous)
        if G is not None:  # [M, B, I]; the parameter is [I, M], or [M, I] for x·Wᵀ
            ls.rows[rp.param] = [1, 0] if v.w_t is v.w.type else [0, 1]
            return G
    G = gradient(current, previous)
    if G is not None and v.w_t is not None and v.w_t is not v.w.type:
        G = em.transpose(G, [1, 0])
    if G is not None and rp.kind != Kind.PER_NEURON and operand is not p:
        G = vjp(ls.fn, {operand: G}, wrt=[p], builder=em).get(p)
    return G
