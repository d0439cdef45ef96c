"""lower-scan-to-stablehlo: ``tracec.scan`` -> ``stablehlo.while`` (portable form, for XLA).

The loop carries a counter, the values the body captures from outside (made
explicit, as JAX does), the scan's carry and one ``[T, ...]`` buffer per stacked
result, written a row at a time with ``dynamic_update_slice``. T is the leading
dimension of the first ``xs`` (dynamic: ``get_dimension_size``).

XLA updates such buffers in place. IREE does not (it copies every carried tensor
on every iteration, docs/design.md section 4): IREE targets use ``lower-scan-to-iree``.

Before: ``tracec.scan`` ops with at least one ``xs``. After: no ``tracec.scan``;
the new ops carry the scan's location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import Block, Region, SSAValue
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import ScanOp
from tracec.passes.ir.builder import Builder, captured_values, clone_block_ops
from tracec.passes.ir.module import op_error

def zero_of(builder: Builder, element_type) -> SSAValue:
    """A scalar zero of ``element_type``."""
    return builder.full(0, TensorType(element_type, []))


def lower_scan(scan: ScanOp) -> None:
    if not scan.xs:
        raise op_error(scan, "tracec.scan without inputs has no trip count")
    parent = scan.parent_block()
    b = Builder(parent, before=scan, loc=scan.location)
    xs = list(scan.xs)
    n = scan.n_carry
    stacked_types = [r.type for r in list(scan.res)[n:]]
    captures = captured_values(scan.body)

    t_len = b.dimension_size(xs[0], 0)
    t_vec = b.reshape(t_len, [1])
    buffers = []
    for t in stacked_types:
        dims = [b.constant(np.array([d], np.int32)) for d in t.get_shape()[1:]]
        shape = b.concatenate([t_vec, *dims], 0)
        buffers.append(b.dynamic_broadcast(zero_of(b, t.element_type), shape, t))
    carried = [b.i32(0), *captures, *scan.carry, *buffers]
    types = [SSAValue.get(v).type for v in carried]

    cond = Block(arg_types=types)
    cb = Builder(cond, loc=scan.location)
    cb.ret([cb.compare(cond.args[0], t_len, "LT")])

    body = Block(arg_types=types)
    bb = Builder(body, loc=scan.location)
    i = body.args[0]
    k = len(captures)
    cap_args = list(body.args[1:1 + k])
    carry_args = list(body.args[1 + k:1 + k + n])
    buf_args = list(body.args[1 + k + n:])
    zero = bb.i32(0)
    rows = []
    for x in xs:
        shape = list(x.type.get_shape())[1:]
        row = bb.dynamic_slice(x, [i] + [zero] * len(shape), [1] + shape)
        rows.append(bb.reshape(row, shape))
    results = clone_block_ops(scan.body.block, bb, carry_args + rows,
                              value_map=dict(zip(captures, cap_args)))
    new_carry, outs = results[:n], results[n:]
    new_bufs = []
    for buf, out in zip(buf_args, outs):
        shape = list(SSAValue.get(out).type.get_shape())
        upd = bb.reshape(out, [1] + shape)
        new_bufs.append(bb.dynamic_update_slice(buf, upd, [i] + [zero] * len(shape)))
    bb.ret([bb.add(i, bb.i32(1)), *cap_args, *new_carry, *new_bufs])

    loop = b.insert(shlo.WhileOp(carried, Region(cond), Region(body)))
    finals = list(loop.results)
    for old, new in zip(scan.results, finals[1 + k:]):
        old.replace_all_uses_with(new)
    scan.detach()
    scan.erase()


@dataclass(frozen=True)
class LowerScanToStablehloPass(ModulePass):
    name = "lower-scan-to-stablehlo"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for scan in [o for o in op.walk() if isinstance(o, ScanOp)]:
            lower_scan(scan)
