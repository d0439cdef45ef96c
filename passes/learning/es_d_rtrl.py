"""ES-D-RTRL / pp-prop: factorised traces, memory linear in inputs and neurons
(docs/design.md §3). With decay α and n steps since the last reset:

    εx_t = α εx_{t-1} + x_t                                  (tracec.input_trace)
    εf_t[a] = α Σ_c D_t[a][c] εf_{t-1}[c] + (1-α) Df_t[a]     (tracec.neuron_trace)
    G_t = εx_tᵀ (Σ_a δ_t[a] εf_t[a]) / (1-α^{n+1})
        + εx_{t-1}ᵀ (Σ_c δ⁻_t[c] εf_{t-1}[c]) / (1-α^n)       (tracec.factored_grad)

``ex/W [B, I]`` is one per relation whatever groups it feeds; ``ef/W/a [B, M]`` one per
state, shared by the relations summed into the same neurons (``x·W_in + z·W_rec`` have
the same Df). A convolution keeps εx like its input and εf like its neurons, and its
gradient is the kernel cotangent of ``conv(εx, ·)`` at ``Σ δ εf``. A sparse relation
``y = x[:, pre] * w`` keeps εx like ``x`` and εf like its neurons, and contracts per
connection, ``G[c] = Σ_b εx[b, pre[c]] · (Σ δ εf)[b, post[c]]``: O(B·nnz) work, no dense
matrix. Memory O(B·(I + H·S)).
"""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType, f32

from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import FactoredGradOp, InputTraceOp, NeuronTraceOp
from tracec.passes.autodiff.rules import conv_transpose_rhs
from tracec.passes.learning import layout
from tracec.passes.learning.plan import Kind, RelationPlan, TraceKey, Traces
from tracec.passes.learning.rule import Rule, View


class EsDRtrl(Rule):
    name = "es-d-rtrl"

    def __init__(self, decay: float):
        super().__init__(decay)
        self.owner: dict = {}  # (relation, group) -> the relation whose εf it shares
        self.corr = self.corr_prev = None

    def declare(self, g, rp: RelationPlan, traces: Traces) -> None:
        rop, param = rp.rel.op, rp.rel.param
        x, y = rop.operands[0], rop.results[0]
        if rp.kind == Kind.SPARSE:  # εx like the gathered input, εf like the neurons
            traces.add(TraceKey("ex", rp.index), f"ex/{param}",
                       TensorType(f32, list(rp.rel.x_shape)))
            for a in rp.states:
                traces.add(TraceKey("ef", rp.index, rp.group, a),
                           f"ef/{param}/{g.state_names[a]}", g.state_args[a].type)
            return
        if rp.kind == Kind.CONV:
            traces.add(TraceKey("ex", rp.index), f"ex/{param}", x.type)
            for a in rp.states:
                traces.add(TraceKey("ef", rp.index, rp.group, a),
                           f"ef/{param}/{g.state_names[a]}", y.type)
            return
        B, M = layout.shape(y)
        I = (layout.row_lookup(rop, rp.rel) if rp.kind == Kind.GATHERED
             else layout.shape(x)[1])
        traces.add(TraceKey("ex", rp.index), f"ex/{param}", TensorType(f32, [B, I]))
        # relations summed into the same neurons have the same Df, so the same εf:
        # the first one keeps it for all
        owner = self.owner.setdefault((rp.group, layout.entry(y)), rp.index)
        self.owner[(rp.index, rp.group)] = owner
        if owner == rp.index:
            for a in rp.states:
                traces.add(TraceKey("ef", rp.index, rp.group, a),
                           f"ef/{param}/{g.state_names[a]}", TensorType(f32, [B, M]))

    def prepare(self, ls) -> None:
        """The bias corrections 1/(1-α^{n+1}) and, for δ⁻, 1/(1-α^n); at n = 0 the
        previous traces are zero (a reset zeroes them), so max(n, 1) keeps it finite."""
        if self.decay == 0.0:
            return
        em = ls.em
        # from the next n, the value the optimizer carries on (the same ops): one scalar
        # kernel for the counter and both corrections, not one per use of n
        n1 = em.convert(em.next_count(ls.n_arg), TensorType(f32, []))
        power = em.binary(shlo.PowerOp, em.full(self.decay, n1), n1)
        self.corr = em.div(em.full(1.0, n1), em.sub(em.full(1.0, n1), power))
        nf = em.sub(n1, em.full(1.0, n1))
        n_prev = em.binary(shlo.MaximumOp, nf, em.full(1.0, nf))
        power_prev = em.binary(shlo.PowerOp, em.full(self.decay, nf), n_prev)
        self.corr_prev = em.div(em.full(1.0, nf), em.sub(em.full(1.0, nf), power_prev))

    def needs_df(self, rp: RelationPlan) -> bool:
        return rp.kind in (Kind.CONV, Kind.SPARSE) or self.owner.get((rp.index, rp.group), rp.index) == rp.index

    def update_traces(self, ls, rp: RelationPlan, v: View) -> tuple[dict, dict]:
        alpha = self.decay
        ex_key = TraceKey("ex", rp.index)
        if ex_key not in ls.new_trace:  # one εx per relation, whatever groups it feeds
            ls.new_trace[ex_key] = ls.em.insert(InputTraceOp(ls.trace_arg[ex_key], v.x, alpha)).results[0]
        v.extra["ex"], v.extra["ex_prev"] = ls.new_trace[ex_key], ls.trace_arg[ex_key]
        owner = (rp.index if rp.kind in (Kind.CONV, Kind.SPARSE)
                 else self.owner.get((rp.index, rp.group), rp.index))
        key = TraceKey("ef", owner, rp.group)
        if rp.kind == Kind.SPARSE:  # Df per neuron: y's first connection into each
            axis = rp.sparse.batch_axis
            mask = layout.first_connections(rp.cols, layout.shape(v.y)[axis])
            v.Df = ls.neuron_sources(v.y, ls.em.constant(mask if axis == 0 else mask.T.copy()),
                                     list(rp.states))
        if owner != rp.index:  # shared with the relation that owns it
            new = {a: ls.new_trace[key.of_state(a)] for a in rp.states}
        else:
            new = {a: ls.update(key.of_state(a),
                                lambda j, pr, src, t: NeuronTraceOp(j, pr, src, t, alpha,
                                                                    1.0 - alpha),
                                v.Df[a], v.D, rp.states) for a in rp.states}
        prev = {c: ls.trace_arg[key.of_state(c)] for c in rp.states}
        return new, prev

    def contract(self, ls, rp: RelationPlan, v: View, pairs: list, previous: bool):
        em = ls.em
        ex = v.extra["ex_prev" if previous else "ex"]
        corr = self.corr_prev if previous else self.corr
        if rp.kind == Kind.SPARSE:  # per connection: εx at pre times Σ δ εf at post
            sig = em.sum_all([em.mul(d, e) for d, e in pairs])
            if corr is not None:
                sig = em.mul(sig, em.broadcast_in_dim(corr, layout.shape(sig), []))
            G = em.mul(layout.column_gather(em, ex, rp.sparse.pre),
                       layout.column_gather(em, sig, rp.cols))
            return layout.to_operand(em, G, v.w, rp.sparse.batch_axis)
        if rp.kind != Kind.CONV:
            return em.insert(FactoredGradOp(ex, [d for d, _ in pairs], [e for _, e in pairs],
                                            corr, v.w_t)).results[0]
        # εx and Σ δ εf in place of the input and the output cotangent: the
        # convolution's weight gradient
        sig = em.sum_all([em.mul(d, e) for d, e in pairs])
        if corr is not None:
            sig = em.mul(sig, em.broadcast_in_dim(corr, layout.shape(sig), []))
        return conv_transpose_rhs(em, sig, ex, v.w.type, v.cp)
