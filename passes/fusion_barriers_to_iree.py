"""fusion-barriers-to-iree: a barrier that only blocks fusion becomes IREE's compute barrier.

tracec puts a ``stablehlo.optimization_barrier`` marked ``tracec.fusion_barrier``
where it wants two groups of ops in separate kernels: a bias's batch sum apart from the
element-wise chain that feeds it, a D-RTRL gradient apart from its transpose, and, with
``fuse-steps=false``, one unrolled time step apart from the next. IREE 3.13 keeps an
``optimization_barrier`` until run time, as an op of the host program: the device
work before it is submitted and awaited there, so each one costs a queue submission
and a wait (``python -m benchmarks.barrier_cost``: a small kernel costs 1.66 µs behind
an optimization barrier and 0.50 µs behind a compute barrier on this CPU).
``iree_tensor_ext.compute_barrier.start`` keeps the same ops apart while IREE forms
its kernels and is then removed, so the kernels stay in one command buffer.

Before: any module for IREE. After: every marked barrier whose operands are all
statically shaped tensors is one ``iree_tensor_ext.compute_barrier.start`` per operand
(printed generically); unmarked barriers (those that give a value an identity of its
own, or keep IREE from merging branches) and every other op are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.builder import FUSION_BARRIER, Builder

COMPUTE_BARRIER = "iree_tensor_ext.compute_barrier.start"


def _static(t) -> bool:
    return isinstance(t, TensorType) and all(d >= 0 for d in t.get_shape())


@dataclass(frozen=True)
class FusionBarriersToIreePass(ModulePass):
    name = "fusion-barriers-to-iree"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        marked = [o for o in op.walk() if isinstance(o, shlo.OptimizationBarrierOp)
                  and FUSION_BARRIER in o.attributes]
        for bar in marked:
            if not all(_static(v.type) for v in bar.operands):
                continue
            em = Builder(bar.parent_block(), before=bar)
            em.loc = bar.location
            for v, r in zip(bar.operands, bar.results):
                r.replace_all_uses_with(em.raw(COMPUTE_BARRIER, [v], [v.type]).results[0])
            bar.detach()
            bar.erase()
