"""inline-private-functions: inline every ``func.call`` to a private function.

JAX lowers ``jnp.where``, ``jnp.clip``, nested ``jax.jit`` and friends to private
functions called with ``func.call``. Later passes analyse one straight-line step
function, so calls are inlined (callee bodies cloned, keeping each op's source
location) and private functions left without any use are removed. Functions used
as a ``stablehlo.composite`` decomposition are kept.

Before: callees have a single block ending in ``func.return``. After: no
``func.call`` to a private function remains; public functions are unchanged
apart from inlined bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import FileLineColLoc, ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass

from tracec.passes.ir.module import functions, op_error, remove_unused_private


def _inherit_location(op: Operation, loc) -> None:
    """Ops of a library callee with no user location get the call site's (like MLIR's
    inliner), so a diagnostic inside ``jnp.linalg.inv`` names the user's line."""
    for inner in op.walk():
        if not isinstance(inner.location, FileLineColLoc):
            inner.location = loc


def inline_call(call: func.CallOp, callee: func.FuncOp) -> None:
    """Replace ``call`` by a copy of ``callee``'s body (locations are copied by clone)."""
    if len(callee.body.blocks) != 1:
        raise op_error(call, f"cannot inline @{callee.sym_name.data}: it has control flow "
                             "between blocks")
    block = callee.body.block
    value_map = {arg: operand for arg, operand in zip(block.args, call.operands)}
    results = None
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            results = [value_map.get(v, v) for v in op.operands]
            break
        clone = op.clone(value_mapper=value_map)
        _inherit_location(clone, call.location)
        call.parent_block().insert_op_before(clone, call)
        for old, new in zip(op.results, clone.results):
            value_map[old] = new
    assert results is not None
    for res, new in zip(call.results, results):
        res.replace_all_uses_with(new)
    call.detach()
    call.erase()


@dataclass(frozen=True)
class InlinePrivateFunctionsPass(ModulePass):
    name = "inline-private-functions"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        # Inline until no call to a private function is left (callees may call others).
        for _ in range(1000):
            fns = functions(op)
            calls: list[Operation] = [c for c in op.walk() if isinstance(c, func.CallOp)
                                      and c.callee.root_reference.data in fns
                                      and fns[c.callee.root_reference.data].sym_visibility is not None
                                      and fns[c.callee.root_reference.data].sym_visibility.data == "private"]
            if not calls:
                break
            for call in calls:
                inline_call(call, fns[call.callee.root_reference.data])
        else:
            raise op_error(calls[0], "recursive function calls cannot be inlined")
        remove_unused_private(op, keep={"step", "sequence", "loss"})
