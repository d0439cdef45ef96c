"""extract-step: find the time step inside a sequence function's ``stablehlo.while``.

A model written as ``jax.lax.scan`` over time (``tracec.Model(sequence=...)``, or a
``@sequence`` function in a .mlir file) lowers to a loop. This pass classifies the
loop-carried values and rebuilds the one-step function the rest of the pipeline
works on:

- ``counter``: a scalar integer stepping by one (the time index);
- ``param`` / ``invariant``: carried unchanged (parameters, constants);
- ``stacked-input``: carried unchanged and read one row per step with the counter
  (``dynamic_slice`` + ``reshape``): the per-step input ``x``;
- ``stacked-output``: a ``[T, ...]`` buffer written one row per step
  (``dynamic_update_slice`` at the counter): a per-step output;
- ``state``: everything else the body updates: the recurrent state.

Before: ``@sequence`` with roles (params, state, one input ``xs``; results final
state then stacked outputs) containing one ``stablehlo.while``; no ``@step``.
After: a private ``@step(params..., state..., x) -> (state..., outputs...)`` whose ops
are copies of the loop body's (with their locations); the while carries
``tracec.carried = [kinds]``. Without ``@sequence`` the pass does nothing.
Diagnostics: no loop or several; the body uses the time index for anything but
reading inputs and writing outputs; a carried value of unknown kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import FunctionType, IntegerType, ModuleOp, TensorType
from xdsl.ir import Block, BlockArgument, Operation, Region, SSAValue
from xdsl.passes import ModulePass

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.module import functions, op_error, role_attrs, roles, to_attr


def _is_const_int(v: SSAValue, value: int) -> bool:
    if not isinstance(v.owner, shlo.ConstantOp):
        return False
    import numpy as np

    data = np.frombuffer(v.owner.value.data.data, dtype=np.int32 if "32" in str(v.type) else np.int64)
    return data.size >= 1 and bool(np.all(data == value))


def _is_counter(arg: BlockArgument, yielded: SSAValue, init: SSAValue) -> bool:
    t = arg.type
    if not (isinstance(t, TensorType) and isinstance(t.element_type, IntegerType) and not t.get_shape()):
        return False
    op = yielded.owner
    return (isinstance(op, shlo.AddOp) and arg in op.operands
            and any(_is_const_int(o, 1) for o in op.operands if o is not arg)
            and _is_const_int(init, 0))


def _classify(loop: shlo.WhileOp, fn_args: list, n_param: int) -> tuple[list[str], BlockArgument]:
    """The kind of each loop-carried value (module docstring) and the counter."""
    body = loop.body.block
    xs_arg = fn_args[-1]
    kinds: list[str] = []
    counter = None
    for a, y, init in zip(body.args, body.last_op.operands, loop.operands):
        if y is a:
            if init is xs_arg:
                kinds.append("stacked-input")
            elif init in fn_args[:n_param]:
                kinds.append("param")
            else:
                kinds.append("invariant")
        elif counter is None and _is_counter(a, y, init):
            kinds.append("counter")
            counter = a
        elif isinstance(y.owner, shlo.DynamicUpdateSliceOp) and y.owner.operand is a:
            kinds.append("stacked-output")
        else:
            kinds.append("state")
    loop.attributes["tracec.carried"] = to_attr(kinds)
    if counter is None:
        raise op_error(loop, "the time loop has no counter stepping by one",
                       hint="write the model as a jax.lax.scan over the leading axis of xs")
    return kinds, counter


def _state_positions(loop, kinds, fn_args, n_param, n_state) -> dict[int, int]:
    """carried index -> position among the sequence's state arguments."""
    state_pos = {}
    for k, (kind, init) in enumerate(zip(kinds, loop.operands)):
        if kind == "state":
            if init not in fn_args[n_param:n_param + n_state]:
                raise op_error(loop, "the time loop carries a value that is not part of the "
                                     "model's state (it does not start from init_state's)",
                               hint="add it to init_state, or pass time as an input")
            state_pos[k] = fn_args.index(init) - n_param
    return state_pos


def _input_output_ops(loop, kinds, counter, x_type, x_new, value_map) -> tuple[set, dict]:
    """The ops that read the input row and write the output rows (not part of the step;
    the row read maps to ``x_new``) and each stacked output's per-step value. The counter
    may be used by those ops only."""
    body = loop.body.block
    yields = list(body.last_op.operands)
    skip: set[Operation] = {body.last_op, yields[kinds.index("counter")].owner}
    outputs: dict[int, SSAValue] = {}
    for k, (kind, a) in enumerate(zip(kinds, body.args)):
        if kind == "stacked-input":
            for use in list(a.uses):
                ds = use.operation
                if ds is body.last_op:
                    continue
                rs = next(iter(ds.results[0].uses)).operation if ds.results[0].uses else None
                if not (isinstance(ds, shlo.DynamicSliceOp) and ds.start_indices[0] is counter
                        and isinstance(rs, shlo.ReshapeOp) and rs.results[0].type == x_type):
                    raise op_error(ds, "the input sequence is read other than one row per step")
                skip.update({ds, rs})
                value_map[rs.results[0]] = x_new
        elif kind == "stacked-output":
            dus = yields[k].owner
            upd = dus.update
            row = (upd.owner.operands[0]
                   if isinstance(upd.owner, (shlo.BroadcastInDimOp, shlo.ReshapeOp)) else upd)
            skip.add(dus)
            if row is not upd:
                skip.add(upd.owner)
            outputs[k] = row
    for use in counter.uses:
        if use.operation not in skip:
            raise op_error(use.operation, "the step uses the time index (the scan's counter)",
                           hint="tracec learns online from one step at a time; pass time as "
                                "an input if the model needs it")
    return skip, outputs


def _clone_body(loop, kinds, block: Block, skip: set, value_map: dict) -> None:
    """Copy the loop body's ops (but ``skip``) into ``block``; the constants defined
    outside the loop that it carries unchanged are copied in first."""
    body = loop.body.block
    for kind, a, init in zip(kinds, body.args, loop.operands):
        if kind == "invariant":
            clone = init.owner.clone()
            block.add_op(clone)
            value_map[a] = clone.results[init.index]
    for inner in body.ops:
        if inner in skip:
            continue
        clone = inner.clone(value_mapper=value_map)
        block.add_op(clone)
        for old, new in zip(inner.results, clone.results):
            value_map[old] = new


@dataclass(frozen=True)
class ExtractStepPass(ModulePass):
    name = "extract-step"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        fns = functions(op)
        if "step" in fns or "sequence" not in fns:
            return
        seq = fns["sequence"]
        loops = [o for o in seq.body.block.ops if isinstance(o, shlo.WhileOp)]
        if len(loops) != 1:
            raise op_error(seq, f"the sequence function must contain one time loop "
                                f"(a jax.lax.scan); found {len(loops)}",
                           hint="write the model as one lax.scan over the leading axis of xs")
        loop = loops[0]
        fn_args = list(seq.body.block.args)
        arg_roles, res_roles = roles(seq.arg_attrs), roles(seq.res_attrs)
        n_param = sum(r == "param" for r, _ in arg_roles)
        n_state = sum(r == "state" for r, _ in arg_roles)
        kinds, counter = _classify(loop, fn_args, n_param)
        state_pos = _state_positions(loop, kinds, fn_args, n_param, n_state)

        # The step's arguments: params, state (in the sequence's order), x.
        xs_arg = fn_args[-1]
        x_type = TensorType(xs_arg.type.element_type, list(xs_arg.type.get_shape())[1:])
        block = Block(arg_types=[a.type for a in fn_args[:n_param + n_state]] + [x_type])
        new_args = list(block.args)
        value_map: dict[SSAValue, SSAValue] = {}
        for k, (kind, a, init) in enumerate(zip(kinds, loop.body.block.args, loop.operands)):
            if kind == "param":
                value_map[a] = new_args[fn_args.index(init)]
            elif kind == "state":
                value_map[a] = new_args[n_param + state_pos[k]]
            elif kind == "invariant" and isinstance(init, BlockArgument):
                raise op_error(loop, "the loop carries an argument of unknown role unchanged")
        skip, outputs = _input_output_ops(loop, kinds, counter, x_type, new_args[-1], value_map)
        _clone_body(loop, kinds, block, skip, value_map)

        yields = list(loop.body.block.last_op.operands)
        state_out = [None] * n_state
        for k, pos in state_pos.items():
            state_out[pos] = value_map.get(yields[k], yields[k])
        # The sequence's stacked results in return order give the output order/names.
        loop_results = list(loop.results)
        out_order = [loop_results.index(r) for r in list(seq.body.block.last_op.operands)[n_state:]]
        out_vals = [value_map.get(outputs[k], outputs[k]) for k in out_order]
        block.add_op(func.ReturnOp(*state_out, *out_vals))
        res_types = [v.type for v in state_out] + [v.type for v in out_vals]
        step = func.FuncOp("step", FunctionType.from_lists(block.arg_types, res_types), Region(block),
                           visibility="private",
                           arg_attrs=role_attrs(arg_roles[:n_param + n_state] + [("input", "x")]),
                           res_attrs=role_attrs(res_roles))
        step.location = seq.location
        op.body.block.add_op(step)
