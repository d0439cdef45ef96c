"""algebraic-simplify: two rewrites XLA's algebraic simplifier makes that IREE 3.13 does not.

So that the IREE path runs the arithmetic JAX's own compile (``jax.jit`` on XLA) runs:

- **a sum of a sum is one sum.** ``jnp.mean(jnp.sum(x, -1))`` (a loss's per-sample sum,
  then its batch mean) lowers to two ``stablehlo.reduce`` ops, the second reading only
  the first. IREE gives each reduction its own kernel (it fuses element-wise producers
  and consumers into a reduction, never one reduction into another), so the chain
  costs one dispatch per reduce in every time step of a loop; one reduce over the union
  of the dimensions is one kernel. XLA makes the same merge.
- **division by a constant is multiplication by its reciprocal.** ``x / c`` for a splat
  float constant ``c`` becomes ``x * (1/c)``, the reciprocal rounded in ``x``'s type,
  as XLA does (a division costs several multiplications on a CPU; a neuron's
  ``dt / tau`` and the surrogates' constants put several in every step).

Before: any module. After: each ``stablehlo.reduce`` that sums (one operand, body a
single ``stablehlo.add`` of its two arguments, init a zero constant) the result of
another such sum, whose only use it is, reads the inner sum's operand and sums over
the dimensions of both; each ``stablehlo.divide`` of an f16, f32 or f64 tensor by a
splat constant (seen through broadcasts and reshapes) that is finite, non-zero and has
a finite reciprocal is a ``stablehlo.multiply`` by that reciprocal; every other op is
unchanged. Both change the result in the last bits at most, as XLA's rewrites do.
No options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xdsl.context import Context
from xdsl.dialects.builtin import Float16Type, Float32Type, Float64Type, ModuleOp
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.passes.autodiff.rules import reduce_body_op
from tracec.passes.ir.attributes import ints
from tracec.passes.ir.builder import Builder, replace_op


def _is_sum(op) -> bool:
    return (isinstance(op, shlo.ReduceOp) and isinstance(reduce_body_op(op), shlo.AddOp)
            and Builder.splat_value(op.operands[1]) == 0.0)


def merge_chained_sum(outer: shlo.ReduceOp) -> bool:
    """Fold the sum ``outer`` reads into it; False (and no change) if it does not qualify."""
    if not _is_sum(outer):
        return False
    inner = outer.operands[0].owner
    if not _is_sum(inner) or inner.results[0].uses.get_length() != 1:
        return False
    x = inner.operands[0]
    inner_dims = set(ints(inner.dimensions))
    kept = [d for d in range(len(x.type.get_shape())) if d not in inner_dims]
    dims = sorted(inner_dims | {kept[d] for d in ints(outer.dimensions)})
    replace_op(outer, lambda em: em.reduce(x, dims, shlo.AddOp, 0))
    inner.detach()
    inner.erase()
    return True


_NUMPY_FLOAT = {Float16Type: np.float16, Float32Type: np.float32, Float64Type: np.float64}


def divide_to_multiply(op: shlo.DivideOp) -> bool:
    """``x / c`` as ``x * (1/c)``; False (and no change) if it does not qualify."""
    et = op.results[0].type.element_type
    dtype = _NUMPY_FLOAT.get(type(et))
    c = Builder.splat_value(op.operands[1])
    if dtype is None or c is None or not np.isfinite(c) or c == 0.0:
        return False
    with np.errstate(all="ignore"):
        inverse = dtype(1) / dtype(c)
    if not np.isfinite(inverse):
        return False
    replace_op(op, lambda em: em.one(shlo.MultiplyOp, [op.operands[0], em.full(
        float(inverse), op.operands[1].type)], op.results[0].type))
    return True


@dataclass(frozen=True)
class AlgebraicSimplifyPass(ModulePass):
    name = "algebraic-simplify"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for div in [o for o in op.walk() if isinstance(o, shlo.DivideOp)]:
            divide_to_multiply(div)
        # inner sums come first in the walk, so a chain of any length folds in one sweep:
        # each outer sum reads the sum its inner one just became
        for red in [o for o in op.walk() if isinstance(o, shlo.ReduceOp)]:
            if red.parent is not None:
                merge_chained_sum(red)
