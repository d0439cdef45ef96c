"""D-RTRL: one trace per parameter and state (docs/design.md §3).

    ε_t[a] = Σ_c D_t[a][c] ε_{t-1}[c] + x_t Df_t[a]          (tracec.param_trace)
    G_t    = Σ_b Σ_a δ_t[a] ε_t[a] + Σ_b Σ_c δ⁻_t[c] ε_{t-1}[c]   (tracec.trace_grad)

or, for a dense weight whose gradient is accumulated over a window of steps, G_t per
batch row (the same sum without Σ_b, laid out as the trace; ``contract_rows``): the batch
sum is then taken once per window, by the optimizer.

A dense (or gathered) relation's trace is stored neuron-major, ``eps/W/a [M, B, I]``, so
the batch sum of the gradient fuses with the update; a convolution keeps a trace per
kernel entry and neuron, ``[N, B, J]``, fed by the input's patches (the x of each kernel
entry at each neuron's position). Memory O(B·I·H·S). A sparse relation
``y = x[:, pre] * w`` keeps one trace per connection, ``eps/w/a [B, nnz]``: the dense
trace at (pre[c], post[c]), ``ε[c] = D[post[c]] ε[c] + x[pre[c]] Df[post[c]]``, so
memory O(B·nnz·S).
"""

from __future__ import annotations

import math

from xdsl.dialects.builtin import TensorType, f32

from tracec.dialects.tracec import NeuronTraceOp, ParamTraceOp, TraceGradOp
from tracec.passes.ir.attributes import conv_params
from tracec.passes.learning import layout
from tracec.passes.learning.plan import Kind, RelationPlan, TraceKey, Traces
from tracec.passes.learning.rule import Rule, View


class DRtrl(Rule):
    name = "d-rtrl"

    def declare(self, g, rp: RelationPlan, traces: Traces) -> None:
        rop, param = rp.rel.op, rp.rel.param
        y = rop.results[0]
        if rp.kind == Kind.SPARSE:
            t = y.type
        elif rp.kind == Kind.CONV:
            x, cp = rop.operands[0], conv_params(rop)
            J = layout.shape(x)[cp.lhs_spec[1]] * math.prod(
                layout.shape(rop.operands[1])[d] for d in cp.rhs_spec[2:])
            t = TensorType(f32, [math.prod(layout.shape(y)[1:]), layout.shape(y)[0], J])
        else:
            B, M = layout.shape(y)
            I = (layout.row_lookup(rop, rp.rel) if rp.kind == Kind.GATHERED
                 else layout.shape(rop.operands[0])[1])
            t = TensorType(f32, [M, B, I])
        for a in rp.states:
            traces.add(TraceKey("eps", rp.index, rp.group, a),
                       f"eps/{param}/{g.state_names[a]}", t)

    def update_traces(self, ls, rp: RelationPlan, v: View) -> tuple[dict, dict]:
        em, key = ls.em, TraceKey("eps", rp.index, rp.group)
        if rp.kind == Kind.SPARSE:
            return self._sparse_traces(ls, rp, v, key)
        x, D, flat = v.x, v.D, None
        if rp.kind == Kind.CONV:  # neurons flattened: [B, N]; x: the input's patches
            flat = [layout.shape(v.y)[0], math.prod(layout.shape(v.y)[1:])]
            D = {k: em.reshape(d, flat) if d is not None else None for k, d in D.items()}
            x = v.extra["patches"] = layout.patches(em, v.x, v.w, v.y, v.cp)

        def source(a):
            return v.Df[a] if flat is None or v.Df[a] is None else em.reshape(v.Df[a], flat)
        new = {a: ls.update(key.of_state(a),
                            lambda j, pr, src, t: ParamTraceOp(j, pr, x, src, t),
                            source(a), D, rp.states) for a in rp.states}
        if rp.kind == Kind.CONV:
            B, N = layout.shape(v.y)[0], math.prod(layout.shape(v.y)[1:])
            v.delta = {a: em.reshape(d, [B, N]) if d is not None else None
                       for a, d in v.delta.items()}
            v.delta_prev = {c: em.reshape(d, [B, N]) if d is not None else None
                            for c, d in v.delta_prev.items()}
        prev = {c: ls.trace_arg[key.of_state(c)] for c in rp.states}
        return new, prev

    def _sparse_traces(self, ls, rp: RelationPlan, v: View, key: TraceKey):
        """Per connection: D, δ and δ⁻ read at the connection's neuron, the source
        x[pre] · Df (Df per column: the columns of one neuron share it)."""
        em, cols, prim = ls.em, list(rp.cols), list(rp.states)
        axis = rp.sparse.batch_axis

        def per_connection(d):  # a per-neuron value laid out as the relation's output
            return layout.to_batch_first(em, layout.column_gather(em, d, cols), axis)
        D = {k: per_connection(d) for k, d in v.D.items()}
        Df = ls.sources(v.y, cols, prim)
        new = {a: ls.update(key.of_state(a),
                            lambda j, pr, src, t: NeuronTraceOp(j, pr, src, t, 1.0, 1.0),
                            em.mul(Df[a], v.extra["x_gathered"]), D, prim) for a in prim}
        v.delta = {a: per_connection(d) for a, d in v.delta.items()}
        v.delta_prev = {c: per_connection(d) for c, d in v.delta_prev.items()}
        return new, {c: ls.trace_arg[key.of_state(c)] for c in prim}

    def contract(self, ls, rp: RelationPlan, v: View, pairs: list, previous: bool):
        ds, es = [d for d, _ in pairs], [e for _, e in pairs]
        if rp.kind == Kind.SPARSE:  # per connection and sample, then as the weight is used
            G = ls.em.insert(TraceGradOp(ds, es, v.y.type)).results[0]
            axis = rp.sparse.batch_axis
            return layout.to_operand(ls.em, layout.to_batch_first(ls.em, G, axis), v.w, axis)
        if rp.kind != Kind.CONV:
            return ls.em.insert(TraceGradOp(ds, es, v.w_t)).results[0]
        J, N = layout.shape(v.extra["patches"])[2], math.prod(layout.shape(v.y)[1:])
        G = ls.em.insert(TraceGradOp(ds, es, TensorType(f32, [J, N]))).results[0]
        return layout.kernel_of(ls.em, G, v.x, v.w, v.y, v.cp)

    def contract_rows(self, ls, rp: RelationPlan, v: View, pairs: list):
        if not pairs:  # relation_gradient asks only for a dense weight used as stored
            return None
        ds, es = [d for d, _ in pairs], [e for _, e in pairs]
        return ls.em.insert(TraceGradOp(ds, es, es[0].type)).results[0]
