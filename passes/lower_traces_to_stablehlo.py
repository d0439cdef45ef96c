"""lower-traces-to-stablehlo: the ``tracec`` eligibility-trace ops -> StableHLO.

Each trace op of ``insert-eligibility-traces`` (``tracec.input_trace``,
``tracec.neuron_trace``, ``tracec.param_trace``, ``tracec.trace_grad``,
``tracec.factored_grad``; their equations are in ``tracec/dialects/tracec.py``)
becomes the element-wise products, broadcasts, reductions and the one
``dot_general`` it stands for. Both backends run it first in their input stage, so
the ``tracec`` stage keeps the readable form. D-RTRL's gradient over its neuron-major
``[H, B, I]`` trace is a ``dot_general`` batched over the neurons, ``[H, I]``, transposed
to the parameter's ``[I, H]`` behind a ``stablehlo.optimization_barrier``, or, kept per
batch row (a result shaped as the trace), the element-wise products; in modules
without such traces, a batch sum (a bias's gradient) reduces its product behind a
barrier too (why: the TraceGradOp branch below and docs/passes.md).

Before: any module. After: no trace op is left; the new ops carry the location of the
trace op they replace (the relation's line in the model).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from tracec.dialects.tracec import (
    TRACE_OPS,
    FactoredGradOp,
    InputTraceOp,
    NeuronTraceOp,
    ParamTraceOp,
    TraceGradOp,
)
from tracec.passes.ir.builder import Builder

#: Put a barrier between a batch sum of a trace gradient and the element-wise ops that
#: feed it (the TraceGradOp branch below) in modules without D-RTRL parameter traces;
#: benchmarks/batch_sum_barrier_ab.py sets it False to measure the form without.
BARRIER_BATCH_SUMS = True


def _shape(v) -> list[int]:
    return list(SSAValue.get(v).type.get_shape())


def _sum(em: Builder, terms):
    acc = None
    for t in terms:
        acc = em.add(acc, t)
    return acc


def _scaled(em: Builder, factor: float, v):
    if v is None or factor == 1.0:
        return v
    return em.mul(em.full(factor, v), v)


def _lower(op: Operation, em: Builder, batch_sum_barrier: bool) -> SSAValue:
    if isinstance(op, InputTraceOp):
        return em.add(_scaled(em, op.decay.value.data, op.prev), op.x)
    if isinstance(op, NeuronTraceOp):
        carried = _sum(em, [em.mul(j, p) for j, p in zip(op.jac, op.prev)])
        total = em.add(_scaled(em, op.decay.value.data, carried),
                       _scaled(em, op.gain.value.data, op.source))
        return em.val(total, op.res.type)
    if isinstance(op, ParamTraceOp):  # ε [H, B, I]; per-neuron operands [B, H]
        big = _shape(op.res)
        terms = [em.mul(em.broadcast_in_dim(j, big, [1, 0]), p) for j, p in zip(op.jac, op.prev)]
        if op.x is not None:
            x = op.x if len(_shape(op.x)) == 3 else em.broadcast_in_dim(op.x, big, [1, 2])
            terms.append(em.mul(x, em.broadcast_in_dim(op.source, big, [1, 0])))
        return em.val(_sum(em, terms), op.res.type)
    if isinstance(op, TraceGradOp):
        out = _shape(op.res)
        dense, terms, products = [], [], {}
        for d, e in zip(op.delta, op.trace):
            es = _shape(e)
            if len(es) == 3 and len(_shape(d)) == 2 and out == es:
                # per batch row: δ[b, h] ε[h, b, i] -> [H, B, I], summed over the batch once
                # per update window (insert-optimizer), one element-wise kernel with the
                # trace's update
                terms.append(em.mul(em.broadcast_in_dim(d, es, [1, 0]), e))
            elif len(es) == 3 and len(_shape(d)) == 2:
                # D-RTRL trace [H, B, I]: Σ_b δ[b, h] ε[h, b, i] -> [H, I], batched over h.
                # IREE and XLA compute the trace's elements inside this contraction.
                dense.append(em.dot_general(d, e, [1], [0], [0], [1]))
            else:  # products of one shape are summed first: one batch sum, one kernel
                products.setdefault(tuple(es), []).append(em.mul(d, e))
        for es, prods in products.items():
            prods, dims = [p for p in prods if p is not None], list(range(len(es) - len(out)))
            if dims and batch_sum_barrier and prods:  # (None: a folded zero)
                # A batch sum (a bias's gradient, [B, H] -> [H]): the barrier keeps the
                # element-wise chain that makes δ and ε out of the reduction's dispatch.
                # Fused in, IREE computes the chain in the reduction's column order,
                # ~6 us per group per step against ~1 us apart (lif_v ES-D-RTRL step
                # 1.10x faster: benchmarks/results/batch_sum_barrier_ab.md). Not with
                # D-RTRL's traces: IREE then fuses their updates into their contractions
                # (lif2 D-RTRL at --scan-unroll 1: 368 -> 607 us per step). Each product
                # is made where its δ is; their sum is the reduction's one input.
                prods = em.fusion_barrier(prods)
            terms.append(em.reduce_sum(_sum(em, prods), dims))
        if dense:
            # The barrier keeps the transpose out of the contraction's dispatch: IREE fuses
            # a transposing consumer into it and then splits the trace update back out,
            # 3.5x slower (52 vs 180 us for a [64, 32, 64] trace).
            g_hi = _sum(em, dense)
            g_hi = em.fusion_barrier([g_hi])[0]
            terms.append(em.transpose(g_hi, [1, 0]))
        return _sum(em, terms)
    if isinstance(op, FactoredGradOp):
        g = _sum(em, [em.mul(d, f) for d, f in zip(op.delta, op.trace)])
        if op.correction is not None:
            g = em.mul(g, em.broadcast_in_dim(op.correction, _shape(g), []))
        return em.dot_general(op.input_trace, g, [], [], [0], [0])
    raise AssertionError(op.name)


@dataclass(frozen=True)
class LowerTracesToStablehloPass(ModulePass):
    name = "lower-traces-to-stablehlo"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        trace_ops = [o for o in op.walk() if isinstance(o, TRACE_OPS)]
        barrier = BARRIER_BATCH_SUMS and not any(isinstance(o, ParamTraceOp) for o in trace_ops)
        for inner in trace_ops:
            em = Builder(inner.parent_block(), before=inner)
            em.loc = inner.location
            # a folded zero (e.g. a trace that nothing feeds) becomes a zero constant
            value = em.val(_lower(inner, em, barrier), inner.results[0])
            if not isinstance(SSAValue.get(value).type, TensorType) or \
                    SSAValue.get(value).type != inner.results[0].type:
                raise AssertionError(f"{inner.name} lowered to {SSAValue.get(value).type}")
            inner.results[0].replace_all_uses_with(SSAValue.get(value))
            inner.detach()
            inner.erase()
