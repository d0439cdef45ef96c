"""lower-scan-to-iree: ``tracec.scan`` -> ``scf.for`` whose loop values are buffer views.

IREE 3.13 inserts a full copy of every tensor carried around a loop on every
iteration (``stream.async.transfer``), so a scan that stacks ``[T, ...]`` outputs
costs O(T²). Carrying ``!hal.buffer_view`` instead (``hal.tensor.export`` at the
end of each iteration, ``hal.tensor.import`` at the start) leaves no tensor on
the loop edge: the row update happens in place and time per step is flat in T
(measured: ~120 µs/step at both T=100 and T=1000 for 2×128 LIF, batch 32, where
the tensor-carried forms grow 20×).

Rows of ``xs`` are read with ``tensor.extract_slice``; stacked results written
with ``tensor.insert_slice`` into a ``tensor.empty`` of T rows.

Before: ``tracec.scan`` ops. After: none; ``scf``/``tensor``/``arith``/``hal``
ops that IREE accepts alongside StableHLO, with the scan's location.
Option ``unroll`` (default 1): K scan steps per loop iteration, the rest after.
Option ``fuse_steps`` (default true): with ``fuse-steps=false`` the carried values pass
through one ``stablehlo.optimization_barrier`` between the unrolled steps, so IREE cannot
fuse one step's ops with the next's: every step compiles to the one-step body's
dispatches (half the executables, about half the IREE compile time, ~17% slower steps
on lif2 ES-D-RTRL).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from xdsl.context import Context
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    DenseArrayBase,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    i32,
    i64,
)
from xdsl.ir import Attribute, Block, BlockArgument, Region, SSAValue
from xdsl.parser import Parser
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import make_context
from tracec.dialects import stablehlo as shlo
from tracec.dialects.tracec import ScanOp
from tracec.passes.ir.attributes import compare_direction
from tracec.passes.ir.builder import Builder, clone_block_ops
from tracec.passes.ir.module import op_error, op_name

@lru_cache(maxsize=1)
def buffer_view_type() -> Attribute:
    return Parser(make_context(), "!hal.buffer_view").parse_type()


def _segments(*sizes: int) -> DenseArrayBase:
    return DenseArrayBase.from_list(i32, list(sizes))


class _IreeBuilder(Builder):
    """The few non-StableHLO ops the IREE loop form needs (printed generically)."""

    def index(self, value: int) -> SSAValue:
        return self.raw("arith.constant", [], [IndexType()],
                        {"value": IntegerAttr(value, IndexType())}).results[0]

    def dim(self, tensor, d: int) -> SSAValue:
        return self.raw("tensor.dim", [tensor, self.index(d)], [IndexType()]).results[0]

    def empty(self, t: TensorType, dyn: list[SSAValue]) -> SSAValue:
        return self.raw("tensor.empty", dyn, [t]).results[0]

    def export(self, tensor, dyn: list[SSAValue]) -> SSAValue:
        t = SSAValue.get(tensor).type
        return self.raw("hal.tensor.export", [tensor, *dyn], [buffer_view_type()],
                        {"source_encoding": t}).results[0]

    def import_(self, view, t: TensorType, dyn: list[SSAValue]) -> SSAValue:
        return self.raw("hal.tensor.import", [view, *dyn], [t],
                        {"operandSegmentSizes": _segments(1, len(dyn), 0, 0),
                         "target_encoding": t}).results[0]

    def extract_row(self, source, t_index, row_type: TensorType) -> SSAValue:
        shape = list(row_type.get_shape())
        return self.raw("tensor.extract_slice", [source, t_index], [row_type], {
            "operandSegmentSizes": _segments(1, 1, 0, 0),
            "static_offsets": DenseArrayBase.from_list(i64, [DYNAMIC_INDEX_OFFSET] + [0] * len(shape)),
            "static_sizes": DenseArrayBase.from_list(i64, [1] + shape),
            "static_strides": DenseArrayBase.from_list(i64, [1] * (len(shape) + 1)),
        }).results[0]

    def insert_row(self, row, dest, t_index) -> SSAValue:
        shape = list(SSAValue.get(row).type.get_shape())
        return self.raw("tensor.insert_slice", [row, dest, t_index], [SSAValue.get(dest).type], {
            "operandSegmentSizes": _segments(1, 1, 1, 0, 0),
            "static_offsets": DenseArrayBase.from_list(i64, [DYNAMIC_INDEX_OFFSET] + [0] * len(shape)),
            "static_sizes": DenseArrayBase.from_list(i64, [1] + shape),
            "static_strides": DenseArrayBase.from_list(i64, [1] * (len(shape) + 1)),
        }).results[0]


# MLIR's marker for a dynamic entry in static_offsets (ShapedType::kDynamic).
DYNAMIC_INDEX_OFFSET = -(2 ** 63)


def _dyn_dims(t: TensorType, t_len: SSAValue) -> list[SSAValue]:
    """The SSA sizes of ``t``'s dynamic dimensions: tracec's only dynamic dim is T."""
    n = sum(1 for d in t.get_shape() if d == DYNAMIC_INDEX)
    return [t_len] * n


def _distinct(b: _IreeBuilder, values: list) -> list:
    """``values`` with a repeated value (two traces that fold to the same tensor) given
    its own identity behind an optimization barrier: IREE's runtime fails on a loop
    that exports one tensor into two carried buffer views."""
    seen: set = set()
    out = []
    for v in values:
        v = SSAValue.get(v)
        if v in seen:
            v = b.raw("stablehlo.optimization_barrier", [v], [v.type]).results[0]
        seen.add(v)
        out.append(v)
    return out


# -- scalar counters on the host
#
# A learning step carries integer counters (steps since the last update, steps in all)
# and branches on them (``stablehlo.if`` on "an update is due"). Left on the device, the
# branch makes IREE's host program wait for the step's kernels and read the predicate
# back, every step. A carried rank-0 integer whose next value the step computes from
# constants and such counters alone is computed on the host as well (``arith`` on an
# ``scf.for`` value, read from the device once per call); a branch on such a value then
# takes its predicate from the host. The device keeps computing its own copy, which
# stays the one that is returned.

#: Compute such counters and branches on the host (benchmarks/fusion_barrier_ab.py sets
#: it False to measure the form without).
HOST_COUNTERS = True

_INT_BINARY = {"stablehlo.add": "arith.addi", "stablehlo.subtract": "arith.subi",
               "stablehlo.multiply": "arith.muli", "stablehlo.and": "arith.andi",
               "stablehlo.or": "arith.ori"}
#: stablehlo comparison direction -> arith.cmpi predicate (signed, unsigned)
_CMPI = {"EQ": (0, 0), "NE": (1, 1), "LT": (2, 6), "LE": (3, 7), "GT": (4, 8), "GE": (5, 9)}


def _scalar_int(t) -> IntegerType | None:
    """The element type of a rank-0 integer (or boolean) tensor type, else None."""
    if isinstance(t, TensorType) and not list(t.get_shape()) and isinstance(t.element_type, IntegerType):
        return t.element_type
    return None


class _HostCounters:
    """Which of a scan body's carried rank-0 integers, and which of its branch
    predicates, the host can compute; and the ``arith`` ops that compute them."""

    def __init__(self, scan: ScanOp):
        block = scan.body.block
        self.block = block
        n = scan.n_carry
        ret = block.last_op
        cands = {block.args[i]: i for i in range(n) if _scalar_int(block.args[i].type) is not None}
        while True:  # drop counters whose next value needs a value the host lacks
            self._memo: dict = {}
            keep = {a: i for a, i in cands.items() if self._hostable(ret.operands[i], cands)}
            if len(keep) == len(cands):
                break
            cands = keep
        self.carried = sorted(cands.values())  # carry positions computed on the host
        self.args = {block.args[i]: k for k, i in enumerate(self.carried)}
        self.nexts = [ret.operands[i] for i in self.carried]
        self.branches = [op for op in block.ops
                         if op_name(op) == "stablehlo.if" and self._hostable(op.operands[0], cands)]
        if not self.branches or not HOST_COUNTERS:  # nothing to gain: keep the loop as it was
            self.carried, self.args, self.nexts = [], {}, []

    def _hostable(self, v, cands) -> bool:
        if v in self._memo:
            return self._memo[v]
        ok = False
        if _scalar_int(v.type) is not None:
            if v in cands:
                ok = True
            elif not isinstance(v, BlockArgument) and v.owner.parent_block() is self.block:
                op = v.owner
                name = op_name(op)
                if name == "stablehlo.constant":
                    ok = True
                elif name in _INT_BINARY or name == "stablehlo.select":
                    ok = all(self._hostable(o, cands) for o in op.operands)
                elif name == "stablehlo.compare":
                    direction = compare_direction(op)
                    wide = _scalar_int(op.operands[0].type)
                    ok = (direction in _CMPI and wide is not None
                          and (wide.width.data > 1 or direction in ("EQ", "NE"))
                          and all(self._hostable(o, cands) for o in op.operands))
        self._memo[v] = ok
        return ok

    def emit(self, b: "_IreeBuilder", host: list[SSAValue], clones: dict) -> list[SSAValue]:
        """In one step's copy of the body (``clones``: body op -> its copy), give each
        host-computable branch its predicate from the host values ``host`` of the
        counters; returns the counters' host values after the step. Each host op has the
        location of the op it mirrors."""
        memo: dict = {}
        loc = b.loc

        def value(v):
            if v in memo:
                return memo[v]
            if v in self.args:
                memo[v] = host[self.args[v]]
                return memo[v]
            op, t = v.owner, _scalar_int(v.type)
            name = op_name(op)
            if name == "stablehlo.constant":
                b.loc = op.location
                raw = op.properties["value"].get_values()[0]
                out = b.raw("arith.constant", [], [t], {"value": IntegerAttr(int(raw), t)})
            elif name == "stablehlo.compare":
                args = [value(o) for o in op.operands]
                signed, unsigned = _CMPI[compare_direction(op)]
                kind = shlo.enum_value(op.properties.get("compare_type"))
                b.loc = op.location
                out = b.raw("arith.cmpi", args, [t],
                            {"predicate": IntegerAttr(unsigned if kind == "UNSIGNED" else signed, i64)})
            else:
                args = [value(o) for o in op.operands]
                b.loc = op.location
                out = b.raw("arith.select" if name == "stablehlo.select" else _INT_BINARY[name], args, [t])
            memo[v] = out.results[0]
            return memo[v]

        for branch in self.branches:
            copy = clones[branch]
            pred = copy.operands[0]
            b.before = copy
            on_host = value(branch.operands[0])
            b.loc = branch.location
            copy.operands[0] = b.raw("tensor.from_elements", [on_host], [pred.type]).results[0]
        b.before = None
        out = [value(v) for v in self.nexts]
        b.loc = loc
        return out


def _loop(b: _IreeBuilder, scan: ScanOp, lo, hi, init: list[SSAValue], unroll: int,
          t_len: SSAValue, fuse_steps: bool = True, counters: _HostCounters | None = None,
          host: list[SSAValue] = ()) -> tuple[list[SSAValue], list[SSAValue]]:
    """``scf.for i = lo .. hi step unroll`` running the scan body ``unroll`` times per
    iteration (rows i, i+1, ...); loop values are buffer views, imported once at the start
    of an iteration and exported once at its end, then the host values of ``counters``
    (starting from ``host``). Returns the views and the host values after the loop."""
    n = scan.n_carry
    xs = list(scan.xs)
    stacked_types = [r.type for r in list(scan.res)[n:]]
    carry_types = [SSAValue.get(c).type for c in scan.carry]
    host_types = [SSAValue.get(h).type for h in host]
    bv = buffer_view_type()
    body = Block(arg_types=[IndexType()] + [bv] * len(init) + host_types)
    bb = _IreeBuilder(body, loc=scan.location)
    first = body.args[0]
    carry = [bb.import_(v, t, _dyn_dims(t, t_len)) for v, t in zip(body.args[1:1 + n], carry_types)]
    bufs = [bb.import_(v, t, [t_len]) for v, t in zip(body.args[1 + n:1 + len(init)], stacked_types)]
    on_host = list(body.args[1 + len(init):])
    for j in range(unroll):
        t_idx = first if j == 0 else bb.raw("arith.addi", [first, bb.index(j)], [IndexType()]).results[0]
        rows = [bb.extract_row(x, t_idx, TensorType(x.type.element_type, list(x.type.get_shape())[1:]))
                for x in xs]
        clones: dict = {}
        results = clone_block_ops(scan.body.block, bb, carry + rows, clones=clones)
        if on_host:
            on_host = counters.emit(bb, on_host, clones)
        carry = results[:n]
        if not fuse_steps and j < unroll - 1 and carry:
            # The next step starts from values IREE may not fuse with this step's ops:
            # every step then compiles to the same dispatches as a one-step body.
            carry = bb.fusion_barrier(carry)
        bufs = [bb.insert_row(out, buf, t_idx) for out, buf in zip(results[n:], bufs)]
    carry = _distinct(bb, carry)
    yielded = [bb.export(v, _dyn_dims(t, t_len)) for v, t in zip(carry, carry_types)]
    yielded += [bb.export(buf, [t_len]) for buf in bufs]
    bb.raw("scf.yield", yielded + on_host, [])
    step = b.index(unroll)
    out = list(b.raw("scf.for", [lo, hi, step, *init, *host], [bv] * len(init) + host_types,
                     regions=[Region(body)]).results)
    return out[:len(init)], out[len(init):]


def lower_scan(scan: ScanOp, unroll: int = 1, fuse_steps: bool = True) -> None:
    if not scan.xs:
        raise op_error(scan, "tracec.scan without inputs has no trip count")
    b = _IreeBuilder(scan.parent_block(), before=scan, loc=scan.location)
    n = scan.n_carry
    xs = list(scan.xs)
    stacked_types = [r.type for r in list(scan.res)[n:]]
    carry_types = [SSAValue.get(c).type for c in scan.carry]
    c0 = b.index(0)
    t_len = b.dim(xs[0], 0)
    views = [b.export(c, _dyn_dims(SSAValue.get(c).type, t_len)) for c in _distinct(b, list(scan.carry))]
    views += [b.export(b.empty(t, [t_len]), [t_len]) for t in stacked_types]
    counters = _HostCounters(scan)
    carried = list(scan.carry)
    # read once per call: the counters' values on entry
    host = [b.raw("tensor.extract", [carried[i]], [_scalar_int(SSAValue.get(carried[i]).type)]).results[0]
            for i in counters.carried]
    start = c0
    if unroll > 1:
        # T - T mod unroll steps in unrolled iterations, the rest one step at a time.
        rest = b.raw("arith.remui", [t_len, b.index(unroll)], [IndexType()]).results[0]
        start = b.raw("arith.subi", [t_len, rest], [IndexType()]).results[0]
        views, host = _loop(b, scan, c0, start, views, unroll, t_len, fuse_steps, counters, host)
    views, _ = _loop(b, scan, start, t_len, views, 1, t_len, counters=counters, host=host)
    finals = [b.import_(v, t, _dyn_dims(t, t_len))
              for v, t in zip(views, carry_types + stacked_types)]
    for old, new in zip(scan.results, finals):
        old.replace_all_uses_with(new)
    scan.detach()
    scan.erase()


@dataclass(frozen=True)
class LowerScanToIreePass(ModulePass):
    name = "lower-scan-to-iree"

    unroll: int = 1
    fuse_steps: bool = True

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not isinstance(self.unroll, int) or self.unroll < 1:
            raise TracecError(f"lower-scan-to-iree: unroll must be an integer >= 1, got {self.unroll!r}")
        for scan in [o for o in op.walk() if isinstance(o, ScanOp)]:
            lower_scan(scan, self.unroll, self.fuse_steps)
