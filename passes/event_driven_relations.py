"""event-driven-relations: a relation fed by spikes does work over the active ones only.

A relation ``z @ W`` whose presynaptic operand ``z [B, N]`` is a spike tensor costs
B·N·H multiply-adds in its dense form, whatever the firing rate. Its event-driven form
visits only the nonzero entries of each batch row: it compacts their positions into at
most ``C`` slots per row, gathers those rows of ``W`` and sums them, weighted by the
entries' values (B·C·H work). The capacity ``C`` is fixed at compile time, as static
shapes require; at run time, a step in which some row has more than ``C`` nonzero
entries takes the dense product instead (one ``stablehlo.if``). Both sides compute
``z @ W`` exactly, for any values of ``z`` (a 0/1 spike is not assumed, only likely):
the rewrite changes speed, never results beyond the order of the sums.

Which operands count as spikes: the result of ``tracec.spike``, a 0/1 tensor converted
from a comparison (``(v > th).astype(float)``, PyTorch's ``(v > th).float()``), and
values carried from such a result: through ``stablehlo.optimization_barrier``, a
``tracec.scan``'s carried value whose yielded value is a spike, or a step function's
state argument whose new value (the result of the same name) is a spike. An input
declared boolean and converted to float in the step counts; a float input does not.

Options: ``mode`` (``auto``: relations with ``N >= min-size`` and ``C <= H / 8``, see
:func:`pays`; ``always``: every relation fed by spikes; ``never``), ``capacity`` (``C``
as a fraction of ``N``, at least one slot) and ``min-size`` (``N`` from which ``auto``
rewrites). Before: any module at the
backend-input stage (before ``lower-scan-to-iree``). After: each such
``stablehlo.dot_general`` of ``[B, N] x [N, H]`` (contracting ``N``, no batch
dimensions, float) is the ``stablehlo.if`` described above. The compaction counts, for
slot ``c`` of row ``b``, the entries whose running count of nonzeros is at most ``c``
(a prefix sum in log2(N) shifted adds, then a compare-and-sum of ``B·C·N``): no sort and
no scatter, which IREE runs slowly (benchmarks/results/event_driven.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import IntegerType, ModuleOp, TensorType, i32
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import ScanOp
from tracec.passes.analysis.dataflow import SPIKE, composite_name
from tracec.passes.ir.attributes import dot_dims
from tracec.passes.ir.builder import Builder, is_float, shape
from tracec.passes.ir.module import op_name, roles

MODES = ("auto", "always", "never")


def _func_of(block: Block) -> func.FuncOp | None:
    op = block.parent_op()
    return op if isinstance(op, func.FuncOp) else None


def is_spike(v: SSAValue, seen: set | None = None) -> bool:
    """``v`` is (likely) a spike tensor: see the module docstring."""
    seen = set() if seen is None else seen
    if v in seen:
        return False
    seen.add(v)
    if isinstance(v, BlockArgument):
        owner = v.block.parent_op()
        if isinstance(owner, ScanOp) and v.index < owner.n_carry:
            return is_spike(v.block.last_op.operands[v.index], seen)
        fn = _func_of(v.block)
        if fn is not None and v.block is fn.body.blocks.first:
            role, name = roles(fn.arg_attrs)[v.index] if fn.arg_attrs else ("", "")
            if role != "state":
                return False
            ret = fn.body.blocks.last.last_op
            for i, (r, n) in enumerate(roles(fn.res_attrs) if fn.res_attrs else []):
                if r == "state" and n == name:
                    return is_spike(ret.operands[i], seen)
        return False
    op = v.owner
    if composite_name(op) == SPIKE:
        return v.index == 0  # a spike's second result, if any, is its derivative
    name = op_name(op)
    if name == "stablehlo.optimization_barrier":
        return is_spike(op.operands[v.index], seen)
    if name == "stablehlo.convert":
        t = op.operands[0].type
        return isinstance(t, TensorType) and t.element_type == IntegerType(1)
    return False


def _relation(op: Operation):
    """``(z, W, B, N, H)`` of a ``[B, N] x [N, H]`` float dot, or None."""
    if not isinstance(op, shlo.DotGeneralOp):
        return None
    z, w = op.operands
    if not (is_float(z) and is_float(w)) or len(shape(z)) != 2 or len(shape(w)) != 2:
        return None
    lb, rb, lc, rc = dot_dims(op)
    if list(lb) or list(rb) or list(lc) != [1] or list(rc) != [0]:
        return None
    (b, n), (_, h) = shape(z), shape(w)
    if min(b, n, h) <= 0:
        return None
    return z, w, b, n, h


def _prefix_count(em: Builder, on, b: int, n: int):
    """The running count along each row of ``on`` (1 at a nonzero entry): ``[B, N]`` i32."""
    csum, step = on, 1
    while step < n:  # inclusive prefix sum in log2(N) shifted adds
        shifted = em.pad(em.slice(csum, [0, 0], [b, n - step]), em.i32(0),
                         [0, step], [0, 0], [0, 0])
        csum = em.add(csum, shifted)
        step *= 2
    return csum


def _event_product(em: Builder, z, w, csum, b: int, n: int, h: int, cap: int):
    """``z @ W`` from the first ``cap`` nonzero entries of each row of ``z``."""
    et = z.type.element_type
    slots = em.iota(TensorType(i32, [b, cap, n]), 1)
    counts = em.broadcast_in_dim(csum, [b, cap, n], [0, 2])
    # slot c of row b holds the position of the (c+1)-th nonzero entry: the number of
    # positions whose running count is still <= c
    idx = em.reduce_sum(em.convert(em.compare(counts, slots, "LE"), TensorType(i32, [b, cap, n])),
                        [2])
    total = em.broadcast_in_dim(em.reshape(em.slice(csum, [0, n - 1], [b, n]), [b]), [b, cap], [0])
    active = em.compare(em.iota(TensorType(i32, [b, cap]), 1), total, "LT")
    idx = em.select(active, idx, em.zeros(idx.type))
    rows = em.gather(w, em.reshape(idx, [b, cap, 1]),
                     {"offset_dims": [2], "collapsed_slice_dims": [0], "start_index_map": [0],
                      "index_vector_dim": 2}, [1, h], [b, cap, h])
    row_start = em.mul(em.iota(TensorType(i32, [b, cap]), 0), em.full(n, TensorType(i32, [b, cap])))
    flat = em.add(idx, row_start)  # the entry's position in z flattened
    values = em.gather(em.reshape(z, [b * n]), em.reshape(flat, [b, cap, 1]),
                       {"offset_dims": [], "collapsed_slice_dims": [0], "start_index_map": [0],
                        "index_vector_dim": 2}, [1], [b, cap])
    values = em.select(active, values, em.zeros(TensorType(et, [b, cap])))
    weighted = em.mul(rows, em.broadcast_in_dim(values, [b, cap, h], [0, 1]))
    return em.reduce_sum(weighted, [1])


def rewrite(op: Operation, cap: int) -> None:
    z, w, b, n, h = _relation(op)
    em = Builder(op.parent_block(), before=op)
    em.loc = op.location
    on = em.convert(em.compare(z, em.zeros(z.type), "NE"), TensorType(i32, [b, n]))
    most = em.reduce(em.reduce_sum(on, [1]), [0], shlo.MaximumOp, 0)
    fits = em.compare(most, em.i32(cap), "LE")
    sparse, dense = Block(), Block()
    sb = Builder(sparse, loc=op.location)
    sb.ret([_event_product(sb, z, w, _prefix_count(sb, on, b, n), b, n, h, cap)])
    db = Builder(dense, loc=op.location)
    db.ret([db.insert(op.clone()).results[0]])
    branch = em.raw("stablehlo.if", [fits], [op.results[0].type],
                    regions=[Region(sparse), Region(dense)])
    op.results[0].replace_all_uses_with(branch.results[0])
    op.detach()
    op.erase()


def capacity_of(n: int, fraction: float) -> int:
    return max(1, min(n, math.ceil(fraction * n)))


def pays(n: int, h: int, cap: int, min_size: int) -> bool:
    """Whether ``auto`` rewrites an ``[N] -> [H]`` relation with ``cap`` slots: ``N`` is
    large (below ``min_size`` the gather costs more than the dense product at any rate)
    and the compaction's ``B·C·N`` compares are small next to the dense ``B·N·H``
    multiply-adds (``C <= H / 8``; a narrow readout such as ``[N, 10]`` stays dense)."""
    return n >= min_size and 8 * cap <= h


@dataclass(frozen=True)
class EventDrivenRelationsPass(ModulePass):
    name = "event-driven-relations"

    mode: str = "auto"
    capacity: float = 0.02
    min_size: int = 1024

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.mode not in MODES:
            raise TracecError(f"event-driven-relations: unknown mode '{self.mode}'",
                              hint=f"choose one of {', '.join(MODES)}")
        if self.mode == "never":
            return
        todo = []
        for o in op.walk():
            rel = _relation(o)
            if rel is None or not is_spike(rel[0]):
                continue
            cap = capacity_of(rel[3], self.capacity)
            if self.mode == "auto" and not pays(rel[3], rel[4], cap, self.min_size):
                continue
            todo.append((o, cap))
        for o, cap in todo:
            rewrite(o, cap)
