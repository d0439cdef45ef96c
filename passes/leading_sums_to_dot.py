"""leading-sums-to-dot: a sum over the leading dimension becomes a vector-matrix product.

IREE 3.13's llvm-cpu code for a ``stablehlo.reduce`` over dimension 0 of a
``[B, ...]`` tensor (its "matvec_like" kernels) is several times slower than one
element-wise pass over the same data: summing ``[32, 64, 64]`` to ``[64, 64]`` takes
~210 µs, scaling it ~40 µs (this 2-core CPU, local-sync). The same sum written
as ``dot_general(ones[B], x)`` (contracting dimension 0 of both) goes through IREE's
matmul code: ~57 µs, and the same additions in the same order (bit-identical on the
case measured). It was written for D-RTRL's gradient over ``[B, I, H]`` traces (lif2
D-RTRL 934 -> 548 µs per step on IREE, 1725 -> 1195 on XLA); the traces are now
neuron-major (lower-traces-to-stablehlo), so it serves the leading sums a model writes.

Before: any module. After: each ``stablehlo.reduce`` that sums (one operand, body a
single ``stablehlo.add`` of its two arguments, init a zero constant) an f32 tensor of
rank >= 2 over ``dimensions = [0]``, with at least ``min-elements`` (default 256)
elements per row, is a ``stablehlo.dot_general``; every other op is unchanged.
Option: ``min-elements``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType, f32
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.passes.autodiff.rules import reduce_body_op
from tracec.passes.ir.attributes import ints
from tracec.passes.ir.builder import Builder, replace_op


def _is_leading_sum(op: shlo.ReduceOp) -> bool:
    t = op.operands[0].type
    return (isinstance(reduce_body_op(op), shlo.AddOp) and isinstance(t, TensorType)
            and t.element_type == f32 and len(t.get_shape()) >= 2
            and ints(op.dimensions) == [0] and Builder.splat_value(op.operands[1]) == 0.0)


def leading_sum_to_dot(op: shlo.ReduceOp, min_elements: int) -> bool:
    """Replace one reduce by a dot_general; False (and no change) if it does not qualify."""
    if not _is_leading_sum(op):
        return False
    x = op.operands[0]
    shape = list(x.type.get_shape())
    if -1 in shape or math.prod(shape[1:]) < min_elements:
        return False
    replace_op(op, lambda em: em.dot_general(em.full(1.0, TensorType(f32, [shape[0]])), x,
                                             [], [], [0], [0]))
    return True


@dataclass(frozen=True)
class LeadingSumsToDotPass(ModulePass):
    name = "leading-sums-to-dot"

    min_elements: int = 256

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not isinstance(self.min_elements, int) or self.min_elements < 1:
            raise TracecError(f"leading-sums-to-dot: min-elements must be an integer >= 1, "
                              f"got {self.min_elements!r}")
        for red in [o for o in op.walk() if isinstance(o, shlo.ReduceOp)]:
            leading_sum_to_dot(red, self.min_elements)
