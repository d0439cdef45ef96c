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
Option ``quiet_windows`` (default false): with ``unroll`` > 1 and branches on host
scalars only, an ``scf.while`` runs the unrolled iterations in which the host finds no
branch taken without the branches, and every other step alone (``_quiet_loop``).
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
    i1,
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
from tracec.passes.ir.builder import FUSION_BARRIER, Builder, clone_block_ops
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
        # the predicates of the body's branches (the optimizer's "an update is due"),
        # when the host computes every one of them
        ifs = [op for op in block.ops if op_name(op) == "stablehlo.if"]
        preds = list(dict.fromkeys(op.operands[0] for op in ifs))
        self.predicates = preds if ifs and all(self._memo.get(p, False) for p in preds) else []
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

    def host_step(self, b: "_IreeBuilder", host: list[SSAValue]) -> tuple[dict, list[SSAValue]]:
        """One step's host ops, from the counters' host values ``host``: returns the host
        value of each scalar the device needs (body value -> host value; the branch
        predicates among them) and the counters' host values after the step. Each host
        op has the location of the op it mirrors."""
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

        values = {v: value(v) for v in list(self.args) + [v for v in self.to_device
                                                           if v not in self.args]}
        out = [value(v) for v in self.nexts]
        b.loc = loc
        return values, out

    def device_copies(self, b: "_IreeBuilder", values: dict, quiet: bool = False) -> dict:
        """The device's copies of one step's host values (``host_step``): body value ->
        (``linalg.fill`` for the step's kernels, ``tensor.from_elements`` for those
        inside a branch). ``quiet``: the step is known to take no branch, and its
        predicates are the constant false (IREE then folds the branches away)."""
        loc = b.loc
        device = {}
        false = None
        for v, h in values.items():
            if quiet and v in self.predicates:
                if false is None:
                    false = b.raw("arith.constant", [], [i1], {"value": IntegerAttr(0, i1)}).results[0]
                h = false
            b.loc = v.owner.location if not isinstance(v, BlockArgument) else loc
            device[v] = (b.fill(h, v.type), b.raw("tensor.from_elements", [h], [v.type]).results[0])
        b.loc = loc
        return device

    def emit(self, b: "_IreeBuilder", host: list[SSAValue]) -> tuple[dict, list[SSAValue]]:
        """``host_step`` and the device's copies of its values."""
        values, out = self.host_step(b, host)
        return self.device_copies(b, values), out


def _offset(b: _IreeBuilder, first: SSAValue, j: int) -> SSAValue:
    """The loop index ``first + j``."""
    return first if j == 0 else b.raw("arith.addi", [first, b.index(j)], [IndexType()]).results[0]


def _untaken(clones: dict, block: Block, predicates: list) -> dict:
    """In a copy of the body that takes none of its branches: each branch on one of
    ``predicates`` replaced by its false side's ops, and the optimization barrier
    behind it (insert-optimizer's, which keeps IREE from merging adjacent branches;
    with no branch left it would only split the step's command buffer) dropped.
    Returns each replaced value's replacement."""
    replaced: dict = {}
    for op in block.ops:
        if op_name(op) != "stablehlo.if" or op.operands[0] not in predicates:
            continue
        copy = clones[op]
        untaken = copy.regions[1].block
        ret = untaken.last_op
        for inner in list(untaken.ops)[:-1]:
            inner.detach()
            copy.parent_block().insert_op_before(inner, copy)
        for r, v in zip(copy.results, list(ret.operands)):
            for use in list(r.uses):
                user = use.operation
                if (op_name(user) == "stablehlo.optimization_barrier" and len(user.operands) == 1
                        and FUSION_BARRIER not in user.attributes):
                    user.results[0].replace_all_uses_with(v)
                    replaced[user.results[0]] = v
                    user.detach()
                    user.erase()
            r.replace_all_uses_with(v)
            replaced[r] = v
        copy.detach()
        copy.erase()
    return replaced


def _step(b: _IreeBuilder, scan: ScanOp, counters: _HostCounters, carry: list, bufs: list,
          t_idx: SSAValue, device: dict, quiet: bool = False) -> tuple[list, list]:
    """One copy of the scan body at ``b``, on row ``t_idx``: from the device-carried
    values ``carry`` and the device copies ``device`` of the host's scalars; returns the
    device-carried values after it and the stacked buffers with its row written.
    ``quiet``: the step is known to take none of its branches (``_untaken``)."""
    n = scan.n_carry
    block = scan.body.block
    on_dev = [i for i in range(n) if i not in counters.carried]
    rows = [b.extract_row(x, t_idx, TensorType(x.type.element_type, list(x.type.get_shape())[1:]))
            for x in scan.xs]
    args = [None] * n
    for i, c in zip(on_dev, carry):
        args[i] = c
    for i in counters.carried:
        args[i] = device[block.args[i]][0]
    clones: dict = {}
    results = clone_block_ops(block, b, args + rows, clones=clones)
    for v, (fill, listed) in device.items():  # device uses take the host's value
        if not isinstance(v, BlockArgument):
            clones[v.owner].results[v.index].replace_all_uses_with(fill)
        for use in list(fill.uses):
            # inside a branch (the optimizer's update, once per window): a buffer,
            # so that its kernels stay those of train_step (one executable for both)
            if use.operation.parent_block() is not b.block:
                use.operation.operands[use.index] = listed
    if quiet:
        replaced = _untaken(clones, block, counters.predicates)
        results = [replaced.get(SSAValue.get(r), r) for r in results]
    counters.erase_dead(clones, device)
    return ([results[i] for i in on_dev],
            [b.insert_row(out, buf, t_idx) for out, buf in zip(results[n:], bufs)])


def _exports(b: _IreeBuilder, carry: list, carry_types: list, bufs: list, t_len) -> list:
    carry = _distinct(b, carry)
    return ([b.export(v, _dyn_dims(t, t_len)) for v, t in zip(carry, carry_types)]
            + [b.export(buf, [t_len]) for buf in bufs])


def _loop_types(scan: ScanOp, counters: _HostCounters, host: list) -> tuple[list, list, list]:
    """The types of a time loop's values: the device-carried values, the stacked
    outputs and the host-carried counters."""
    n = scan.n_carry
    carry_types = [SSAValue.get(scan.carry[i]).type for i in range(n) if i not in counters.carried]
    return carry_types, [r.type for r in list(scan.res)[n:]], [SSAValue.get(h).type for h in host]


def _imports(b: _IreeBuilder, views: list, carry_types: list, stacked_types: list,
             t_len) -> tuple[list, list]:
    """The device-carried values and the stacked buffers, imported from ``views``."""
    nd = len(carry_types)
    return ([b.import_(v, t, _dyn_dims(t, t_len)) for v, t in zip(views[:nd], carry_types)],
            [b.import_(v, t, [t_len]) for v, t in zip(views[nd:], stacked_types)])


def _loop(b: _IreeBuilder, scan: ScanOp, lo, hi, init: list[SSAValue], unroll: int,
          t_len: SSAValue, fuse_steps: bool = True, counters: _HostCounters | None = None,
          host: list[SSAValue] = ()) -> tuple[list[SSAValue], list[SSAValue]]:
    """``scf.for i = lo .. hi step unroll`` running the scan body ``unroll`` times per
    iteration (rows i, i+1, ...); loop values are buffer views of the device-carried
    values and of the stacked outputs, imported once at the start of an iteration and
    exported once at its end, then the host values of ``counters`` (starting from
    ``host``). Returns the views and the host values after the loop."""
    carry_types, stacked_types, host_types = _loop_types(scan, counters, host)
    bv = buffer_view_type()
    body = Block(arg_types=[IndexType()] + [bv] * len(init) + host_types)
    bb = _IreeBuilder(body, loc=scan.location)
    first = body.args[0]
    carry, bufs = _imports(bb, list(body.args[1:1 + len(init)]), carry_types, stacked_types, t_len)
    on_host = list(body.args[1 + len(init):])
    for j in range(unroll):
        device, on_host = counters.emit(bb, on_host)
        carry, bufs = _step(bb, scan, counters, carry, bufs, _offset(bb, first, j), device)
        if not fuse_steps and j < unroll - 1 and carry:
            # The next step starts from values IREE may not fuse with this step's ops:
            # every step then compiles to the same dispatches as a one-step body.
            carry = bb.fusion_barrier(carry)
    bb.raw("scf.yield", _exports(bb, carry, carry_types, bufs, t_len) + on_host, [])
    step = b.index(unroll)
    out = list(b.raw("scf.for", [lo, hi, step, *init, *host], [bv] * len(init) + host_types,
                     regions=[Region(body)]).results)
    return out[:len(init)], out[len(init):]


def _quiet_loop(b: _IreeBuilder, scan: ScanOp, lo, hi, init: list[SSAValue], unroll: int,
                t_len: SSAValue, fuse_steps: bool, counters: _HostCounters,
                host: list[SSAValue]) -> tuple[list[SSAValue], list[SSAValue]]:
    """``scf.while i < hi``, from ``i = lo``: where the host finds that none of the steps
    i .. i+unroll-1 takes a branch and i+unroll <= hi, one iteration runs those ``unroll``
    steps without their branches (``_untaken``; each predicate the constant false);
    otherwise it runs step i alone, branches and all. Loop values: i, then those of
    ``_loop``."""
    carry_types, stacked_types, host_types = _loop_types(scan, counters, host)
    bv = buffer_view_type()
    types = [IndexType()] + [bv] * len(init) + host_types
    before = Block(arg_types=types)
    bf = _IreeBuilder(before, loc=scan.location)
    more = bf.raw("arith.cmpi", [before.args[0], hi], [i1],
                  {"predicate": IntegerAttr(_CMPI["LT"][1], i64)}).results[0]
    bf.raw("scf.condition", [more, *before.args], [])

    after = Block(arg_types=types)
    bb = _IreeBuilder(after, loc=scan.location)
    first = after.args[0]
    hosts = [list(after.args[1 + len(init):])]
    values = []
    for _ in range(unroll):  # the host's scalars of the steps i, i+1, ...
        v, h = counters.host_step(bb, hosts[-1])
        values.append(v)
        hosts.append(h)
    end = _offset(bb, first, unroll)
    quiet = bb.raw("arith.cmpi", [end, hi], [i1],
                   {"predicate": IntegerAttr(_CMPI["LE"][1], i64)}).results[0]
    true = bb.raw("arith.constant", [], [i1], {"value": IntegerAttr(-1, i1)}).results[0]
    for j in range(unroll):
        for p in counters.predicates:
            idle = bb.raw("arith.xori", [values[j][p], true], [i1]).results[0]
            quiet = bb.raw("arith.andi", [quiet, idle], [i1]).results[0]

    def branch(steps: int) -> Region:
        block = Block()
        rb = _IreeBuilder(block, loc=scan.location)
        # imported in each branch: a buffer imported once for both would be written in
        # place by one and read by the other, so IREE would copy it
        c, u = _imports(rb, list(after.args[1:1 + len(init)]), carry_types, stacked_types, t_len)
        for j in range(steps):
            device = counters.device_copies(rb, values[j], quiet=steps > 1)
            c, u = _step(rb, scan, counters, c, u, _offset(rb, first, j), device, quiet=steps > 1)
            if not fuse_steps and j < steps - 1 and c:
                c = rb.fusion_barrier(c)
        nxt = end if steps == unroll else _offset(rb, first, steps)
        rb.raw("scf.yield", [nxt, *_exports(rb, c, carry_types, u, t_len),
                             *hosts[steps]], [])
        return Region(block)

    taken = bb.raw("scf.if", [quiet], types, regions=[branch(unroll), branch(1)])
    bb.raw("scf.yield", list(taken.results), [])
    loop = b.raw("scf.while", [lo, *init, *host], types,
                 regions=[Region(before), Region(after)])
    out = list(loop.results)
    return out[1:1 + len(init)], out[1 + len(init):]


def lower_scan(scan: ScanOp, unroll: int = 1, fuse_steps: bool = True,
               quiet_windows: bool = False) -> None:
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
    if unroll > 1 and quiet_windows and counters.predicates:
        views, host = _quiet_loop(b, scan, c0, t_len, views, unroll, t_len, fuse_steps, counters,
                                  host)
    else:
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
    quiet_windows: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not isinstance(self.unroll, int) or self.unroll < 1:
            raise TracecError(f"lower-scan-to-iree: unroll must be an integer >= 1, got {self.unroll!r}")
        for scan in [o for o in op.walk() if isinstance(o, ScanOp)]:
            lower_scan(scan, self.unroll, self.fuse_steps, self.quiet_windows)
