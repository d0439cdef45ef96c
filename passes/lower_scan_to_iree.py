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

Before: ``tracec.scan`` ops. After: none; ``scf``/``tensor``/``arith``/``math``/
``linalg.fill``/``hal`` ops that IREE accepts alongside StableHLO, with the scan's
location (the host's scalar ops with the locations of the ops they mirror).
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
    FloatAttr,
    Float32Type,
    IndexType,
    IntegerAttr,
    IntegerType,
    ModuleOp,
    TensorType,
    UnregisteredOp,
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

    def fill(self, scalar, t: TensorType) -> SSAValue:
        """A rank-0 tensor holding the host value ``scalar``: ``linalg.fill``, which
        IREE clones into each kernel that reads it (the value travels as the kernel's
        push constant), where a ``tensor.from_elements`` costs a fill command per use."""
        elt = t.element_type
        body = Block(arg_types=[elt, elt])
        body.add_op(UnregisteredOp.with_name("linalg.yield").create(operands=[body.args[0]]))
        return self.raw("linalg.fill", [scalar, self.empty(t, [])], [t],
                        {"operandSegmentSizes": _segments(1, 1)},
                        regions=[Region(body)]).results[0]

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
# A learning step carries rank-0 counters (steps since the last update, steps in all,
# the optimizer's step count) and computes scalars from them alone (ES-D-RTRL's bias
# corrections 1/(1-α^n)), and branches on them (``stablehlo.if`` on "an update is due").
# Left on the device, each such scalar is a kernel of its own every step, and the
# branch makes IREE's host program wait for the step's kernels and read the predicate
# back. So a carried rank-0 integer or f32 whose next value the step computes from
# constants and such counters alone is carried on the host instead: ``arith``/``math``
# ops on an ``scf.for`` value that starts from one ``tensor.extract`` per call. Any
# scalar computed from them alone that a device op uses (a branch predicate, a bias
# correction) reaches the device as a ``linalg.fill`` of its host value; the
# device copies of the counters are written once, after the loop.

#: Carry such counters on the host (benchmarks/fusion_barrier_ab.py sets it False to
#: measure the form without).
HOST_COUNTERS = True

_INT_BINARY = {"stablehlo.add": "arith.addi", "stablehlo.subtract": "arith.subi",
               "stablehlo.multiply": "arith.muli", "stablehlo.and": "arith.andi",
               "stablehlo.or": "arith.ori"}
_FLOAT_BINARY = {"stablehlo.add": "arith.addf", "stablehlo.subtract": "arith.subf",
                 "stablehlo.multiply": "arith.mulf", "stablehlo.divide": "arith.divf",
                 "stablehlo.power": "math.powf", "stablehlo.maximum": "arith.maximumf",
                 "stablehlo.minimum": "arith.minimumf"}
#: stablehlo comparison direction -> arith.cmpi predicate (signed, unsigned)
_CMPI = {"EQ": (0, 0), "NE": (1, 1), "LT": (2, 6), "LE": (3, 7), "GT": (4, 8), "GE": (5, 9)}


def _scalar_int(t) -> IntegerType | None:
    """The element type of a rank-0 integer (or boolean) tensor type, else None."""
    if isinstance(t, TensorType) and not list(t.get_shape()) and isinstance(t.element_type, IntegerType):
        return t.element_type
    return None


def _scalar(t):
    """The element type of a rank-0 integer, boolean or f32 tensor type, else None."""
    if isinstance(t, TensorType) and not list(t.get_shape()) and (
            isinstance(t.element_type, (IntegerType, Float32Type))):
        return t.element_type
    return None


class _HostCounters:
    """Which of a scan body's carried rank-0 values the host carries, which scalars
    computed from them alone the device needs, and the host ops that compute them."""

    def __init__(self, scan: ScanOp):
        block = scan.body.block
        self.block = block
        n = scan.n_carry
        ret = block.last_op
        cands = {block.args[i]: i for i in range(n) if _scalar(block.args[i].type) is not None}
        while True:  # drop counters whose next value needs a value the host lacks
            self._memo: dict = {}
            keep = {a: i for a, i in cands.items() if self._hostable(ret.operands[i], cands)}
            if len(keep) == len(cands):
                break
            cands = keep
        if not HOST_COUNTERS:  # the form without: nothing on the host
            cands, self._memo = {}, {}
        else:
            for op in block.ops:  # every scalar the host can compute from them
                for r in op.results:
                    self._hostable(r, cands)
        self.carried = sorted(cands.values())  # carry positions on the host
        self.args = {block.args[i]: k for k, i in enumerate(self.carried)}
        self.nexts = [ret.operands[i] for i in self.carried]
        # host values a device op uses: ops outside the host's set (nested branches
        # included) and the terminator, except where it yields a host-carried counter
        host_slots = set(self.carried)
        self.to_device: list[SSAValue] = []
        values = list(self.args) + [r for op in block.ops for r in op.results]
        for v in values:
            if not self._memo.get(v, v in self.args) or (
                    not isinstance(v, BlockArgument) and op_name(v.owner) == "stablehlo.constant"):
                continue
            for use in v.uses:
                user = use.operation
                if user is ret:
                    device = use.index not in host_slots
                else:
                    device = not (user.parent_block() is block and user.results
                                  and all(self._memo.get(r, False) for r in user.results))
                if device:
                    self.to_device.append(v)
                    break

    def erase_dead(self, clones: dict, device: dict) -> None:
        """Erase one step's device copies of the host's ops that nothing uses now, and
        the device copies of counters no device op reads."""
        for op in reversed(list(self.block.ops)):
            copy = clones.get(op)
            if (copy is not None and op.results and all(self._memo.get(r, False) for r in op.results)
                    and not any(r.uses for r in copy.results)):
                copy.detach()
                copy.erase()
        for fill, listed in device.values():
            for d in (fill, listed):
                if not d.uses:
                    op = d.owner
                    empty = op.operands[1].owner if d is fill else None
                    op.detach()
                    op.erase()
                    if empty is not None:
                        empty.detach()
                        empty.erase()

    def _hostable(self, v, cands) -> bool:
        if v in self._memo:
            return self._memo[v]
        ok = False
        t = _scalar(v.type)
        if t is not None:
            if v in cands:
                ok = True
            elif not isinstance(v, BlockArgument) and v.owner.parent_block() is self.block:
                op = v.owner
                name = op_name(op)
                operands_ok = lambda: all(self._hostable(o, cands) for o in op.operands)  # noqa: E731
                if name == "stablehlo.constant":
                    ok = True
                elif name == "stablehlo.select":
                    ok = operands_ok()
                elif isinstance(t, IntegerType) and name in _INT_BINARY:
                    ok = operands_ok()
                elif isinstance(t, Float32Type) and name in _FLOAT_BINARY:
                    ok = operands_ok()
                elif name == "stablehlo.convert":
                    src = _scalar(op.operands[0].type)
                    ok = (isinstance(t, Float32Type) and isinstance(src, IntegerType)
                          and operands_ok())
                elif name == "stablehlo.compare":
                    direction = compare_direction(op)
                    wide = _scalar_int(op.operands[0].type)
                    ok = (direction in _CMPI and wide is not None
                          and (wide.width.data > 1 or direction in ("EQ", "NE"))
                          and operands_ok())
        self._memo[v] = ok
        return ok

    def emit(self, b: "_IreeBuilder", host: list[SSAValue]) -> tuple[dict, list[SSAValue]]:
        """One step's host ops, from the counters' host values ``host``: returns the
        device's copies of each scalar it needs (body value -> ``linalg.fill`` for the
        step's kernels, ``tensor.from_elements`` for those inside a branch) and the
        counters' host values after the step. Each host op has the location of the op
        it mirrors."""
        memo: dict = {}
        loc = b.loc

        def value(v):
            if v in memo:
                return memo[v]
            if v in self.args:
                memo[v] = host[self.args[v]]
                return memo[v]
            op, t = v.owner, _scalar(v.type)
            name = op_name(op)
            if name == "stablehlo.constant":
                b.loc = op.location
                raw = op.properties["value"].get_values()[0]
                attr = FloatAttr(float(raw), t) if isinstance(t, Float32Type) else IntegerAttr(int(raw), t)
                out = b.raw("arith.constant", [], [t], {"value": attr})
            elif name == "stablehlo.compare":
                args = [value(o) for o in op.operands]
                signed, unsigned = _CMPI[compare_direction(op)]
                kind = shlo.enum_value(op.properties.get("compare_type"))
                b.loc = op.location
                out = b.raw("arith.cmpi", args, [t],
                            {"predicate": IntegerAttr(unsigned if kind == "UNSIGNED" else signed, i64)})
            elif name == "stablehlo.convert":
                args = [value(o) for o in op.operands]
                src = _scalar(op.operands[0].type)
                b.loc = op.location
                out = b.raw("arith.uitofp" if src.width.data == 1 else "arith.sitofp", args, [t])
            else:
                args = [value(o) for o in op.operands]
                b.loc = op.location
                table = _FLOAT_BINARY if isinstance(t, Float32Type) else _INT_BINARY
                out = b.raw("arith.select" if name == "stablehlo.select" else table[name], args, [t])
            memo[v] = out.results[0]
            return memo[v]

        device = {}
        for v in list(self.args) + [v for v in self.to_device if v not in self.args]:
            h = value(v)
            b.loc = v.owner.location if not isinstance(v, BlockArgument) else loc
            device[v] = (b.fill(h, v.type), b.raw("tensor.from_elements", [h], [v.type]).results[0])
        out = [value(v) for v in self.nexts]
        b.loc = loc
        return device, out


def _loop(b: _IreeBuilder, scan: ScanOp, lo, hi, init: list[SSAValue], unroll: int,
          t_len: SSAValue, fuse_steps: bool = True, counters: _HostCounters | None = None,
          host: list[SSAValue] = ()) -> tuple[list[SSAValue], list[SSAValue]]:
    """``scf.for i = lo .. hi step unroll`` running the scan body ``unroll`` times per
    iteration (rows i, i+1, ...); loop values are buffer views of the device-carried
    values and of the stacked outputs, imported once at the start of an iteration and
    exported once at its end, then the host values of ``counters`` (starting from
    ``host``). Returns the views and the host values after the loop."""
    n = scan.n_carry
    on_dev = [i for i in range(n) if i not in counters.carried]
    xs = list(scan.xs)
    stacked_types = [r.type for r in list(scan.res)[n:]]
    carry_types = [SSAValue.get(scan.carry[i]).type for i in on_dev]
    host_types = [SSAValue.get(h).type for h in host]
    bv = buffer_view_type()
    body = Block(arg_types=[IndexType()] + [bv] * len(init) + host_types)
    bb = _IreeBuilder(body, loc=scan.location)
    first = body.args[0]
    nd = len(on_dev)
    carry = [bb.import_(v, t, _dyn_dims(t, t_len)) for v, t in zip(body.args[1:1 + nd], carry_types)]
    bufs = [bb.import_(v, t, [t_len]) for v, t in zip(body.args[1 + nd:1 + len(init)], stacked_types)]
    on_host = list(body.args[1 + len(init):])
    block = scan.body.block
    for j in range(unroll):
        t_idx = first if j == 0 else bb.raw("arith.addi", [first, bb.index(j)], [IndexType()]).results[0]
        rows = [bb.extract_row(x, t_idx, TensorType(x.type.element_type, list(x.type.get_shape())[1:]))
                for x in xs]
        device, on_host = counters.emit(bb, on_host)
        args = [None] * n
        for i, c in zip(on_dev, carry):
            args[i] = c
        for i in counters.carried:
            args[i] = device[block.args[i]][0]
        clones: dict = {}
        results = clone_block_ops(block, bb, args + rows, clones=clones)
        for v, (fill, listed) in device.items():  # device uses take the host's value
            if not isinstance(v, BlockArgument):
                clones[v.owner].results[v.index].replace_all_uses_with(fill)
            for use in list(fill.uses):
                # inside a branch (the optimizer's update, once per window): a buffer,
                # so that its kernels stay those of train_step (one executable for both)
                if use.operation.parent_block() is not body:
                    use.operation.operands[use.index] = listed
        counters.erase_dead(clones, device)
        carry = [results[i] for i in on_dev]
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
    carried = list(scan.carry)
    counters = _HostCounters(scan)
    on_dev = [i for i in range(n) if i not in counters.carried]
    carry_types = [SSAValue.get(carried[i]).type for i in on_dev]
    c0 = b.index(0)
    t_len = b.dim(xs[0], 0)
    views = [b.export(c, _dyn_dims(SSAValue.get(c).type, t_len))
             for c in _distinct(b, [carried[i] for i in on_dev])]
    views += [b.export(b.empty(t, [t_len]), [t_len]) for t in stacked_types]
    # read once per call: the host-carried counters' values on entry
    host = [b.raw("tensor.extract", [carried[i]], [_scalar(SSAValue.get(carried[i]).type)]).results[0]
            for i in counters.carried]
    start = c0
    if unroll > 1:
        # T - T mod unroll steps in unrolled iterations, the rest one step at a time.
        rest = b.raw("arith.remui", [t_len, b.index(unroll)], [IndexType()]).results[0]
        start = b.raw("arith.subi", [t_len, rest], [IndexType()]).results[0]
        views, host = _loop(b, scan, c0, start, views, unroll, t_len, fuse_steps, counters, host)
    views, host = _loop(b, scan, start, t_len, views, 1, t_len, counters=counters, host=host)
    finals = [b.import_(v, t, _dyn_dims(t, t_len))
              for v, t in zip(views, carry_types + stacked_types)]
    out = [None] * n
    for i, v in zip(on_dev, finals):
        out[i] = v
    for i, h in zip(counters.carried, host):  # the device's copies, once per call
        out[i] = b.raw("tensor.from_elements", [h], [SSAValue.get(carried[i]).type]).results[0]
    for old, new in zip(scan.results, out + finals[len(on_dev):]):
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
