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
from tracec.passes.common import functions, op_error, role_attrs, roles, to_attr


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
        body = loop.body.block
        yields = list(body.last_op.operands)
        inits = list(loop.operands)
        args = list(body.args)
        fn_args = list(seq.body.block.args)
        arg_roles = roles(seq.arg_attrs)
        res_roles = roles(seq.res_attrs)
        n_param = sum(r == "param" for r, _ in arg_roles)
        n_state = sum(r == "state" for r, _ in arg_roles)
        xs_arg = fn_args[-1]
        ret = list(seq.body.block.last_op.operands)

        kinds: list[str] = []
        counter = None
        for a, y, init in zip(args, yields, inits):
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

        # The new step function's arguments: params, state (in the sequence's order), x.
        state_pos = {}
        for k, (kind, init) in enumerate(zip(kinds, inits)):
            if kind == "state":
                if init not in fn_args[n_param:n_param + n_state]:
                    raise op_error(loop, "the time loop carries a value that is not part of the "
                                         "model's state (it does not start from init_state's)",
                                   hint="add it to init_state, or pass time as an input")
                state_pos[k] = fn_args.index(init) - n_param
        in_types = [a.type for a in fn_args[:n_param + n_state]]
        x_type = TensorType(xs_arg.type.element_type, list(xs_arg.type.get_shape())[1:])
        block = Block(arg_types=in_types + [x_type])
        new_args = list(block.args)
        x_new = new_args[-1]
        value_map: dict[SSAValue, SSAValue] = {}
        for k, (kind, a, init) in enumerate(zip(kinds, args, inits)):
            if kind == "param":
                value_map[a] = new_args[fn_args.index(init)]
            elif kind == "state":
                value_map[a] = new_args[n_param + state_pos[k]]
            elif kind == "invariant":
                if isinstance(init, BlockArgument):
                    raise op_error(loop, "the loop carries an argument of unknown role unchanged")
                value_map[a] = init  # a constant defined before the loop: cloned below

        skip: set[Operation] = {body.last_op}
        outputs: dict[int, SSAValue] = {}
        for k, (kind, a) in enumerate(zip(kinds, args)):
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
                row = upd.owner.operands[0] if isinstance(upd.owner, (shlo.BroadcastInDimOp, shlo.ReshapeOp)) else upd
                skip.add(dus)
                if row is not upd:
                    skip.add(upd.owner)
                outputs[k] = row
        for use in counter.uses:
            user = use.operation
            if user not in skip and user is not yields[kinds.index("counter")].owner:
                raise op_error(user, "the step uses the time index (the scan's counter)",
                               hint="tracec learns online from one step at a time; pass time as "
                                    "an input if the model needs it")
        skip.add(yields[kinds.index("counter")].owner)

        # Constants defined outside the loop and used inside it are cloned in.
        outside_consts = []
        for k, (kind, init) in enumerate(zip(kinds, inits)):
            if kind == "invariant":
                outside_consts.append(init.owner)
        for c in outside_consts:
            clone = c.clone()
            block.add_op(clone)
            for a, init in zip(args, inits):
                if init is c.results[0]:
                    value_map[a] = clone.results[0]
        for inner in body.ops:
            if inner in skip:
                continue
            clone = inner.clone(value_mapper=value_map)
            block.add_op(clone)
            for old, new in zip(inner.results, clone.results):
                value_map[old] = new

        state_out = [None] * n_state
        for k, pos in state_pos.items():
            state_out[pos] = value_map.get(yields[k], yields[k])
        out_vals = [value_map.get(outputs[k], outputs[k]) for k in sorted(outputs)]
        # The sequence's stacked results in return order give the output order/names.
        loop_results = list(loop.results)
        out_order = [loop_results.index(r) for r in ret[n_state:]]
        out_vals = [value_map.get(outputs[k], outputs[k]) for k in out_order]
        block.add_op(func.ReturnOp(*state_out, *out_vals))
        res_types = [v.type for v in state_out] + [v.type for v in out_vals]
        step = func.FuncOp("step", FunctionType.from_lists(block.arg_types, res_types), Region(block),
                           visibility="private",
                           arg_attrs=role_attrs(arg_roles[:n_param + n_state] + [("input", "x")]),
                           res_attrs=role_attrs(res_roles))
        step.location = seq.location
        op.body.block.add_op(step)
