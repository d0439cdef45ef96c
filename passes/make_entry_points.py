"""make-entry-points: build the artifact's public functions from ``@step``.

Adds ``forward`` (one step), ``forward_sequence`` (T steps inside the binary, T
dynamic) and makes ``init_params``/``init_state`` public; attaches the manifest
(DESIGN.md section 2, docs/abi.md) as ``iree.reflection`` on every entry.

Calling convention (ABI 1), argument order fixed by roles:
  forward(params..., state..., x)            -> (state..., outputs...)
  forward_sequence(params..., state..., xs)  -> (state..., outputs[T]...)
  init_params() -> (params...)   init_state() -> (state...)

Options: ``manifest`` is a JSON object (as a string) merged into the manifest
(the driver passes source hash, options, versions).
Before: a private ``@step`` whose arguments and results carry ``tracec.role`` and
``tracec.name``; ``@init_params``/``@init_state`` exist. After: the public entries
above exist, their bodies are copies of ``@step``'s (each op keeps its location),
and no op of the time loop stacks outputs by copying a carried buffer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    ModuleOp,
    StringAttr,
    TensorType,
    i32,
)
from xdsl.ir import Block, Region, SSAValue
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects import stablehlo as shlo
from tracec.passes.builder import Builder
from tracec.passes.common import get_function, roles
from tracec.versions import ABI_VERSION, FORMAT_VERSION



def clone_body_into(step: func.FuncOp, builder: Builder, args: list[SSAValue]) -> list[SSAValue]:
    """Copy ``step``'s ops into ``builder``'s block with ``args``; return its results."""
    block = step.body.block
    value_map = {a: v for a, v in zip(block.args, args)}
    for op in block.ops:
        if isinstance(op, func.ReturnOp):
            return [value_map.get(v, v) for v in op.operands]
        clone = op.clone(value_mapper=value_map)
        if builder.before is not None:
            builder.block.insert_op_before(clone, builder.before)
        else:
            builder.block.add_op(clone)
        for old, new in zip(op.results, clone.results):
            value_map[old] = new
    raise TracecError("@step has no func.return")


def _tensor_json(t: TensorType, role: str, name: str) -> dict:
    dtype = {"f32": "float32", "f64": "float64", "f16": "float16", "i32": "int32", "i64": "int64",
             "i1": "bool", "i8": "int8", "i16": "int16"}.get(str(t.element_type), str(t.element_type))
    return {"role": role, "name": name, "shape": list(t.get_shape()), "dtype": dtype}


def _attrs(entries: list[tuple[str, str]]) -> ArrayAttr:
    return ArrayAttr([DictionaryAttr({"tracec.role": StringAttr(r), "tracec.name": StringAttr(n)})
                      for r, n in entries])


@dataclass(frozen=True)
class MakeEntryPointsPass(ModulePass):
    name = "make-entry-points"

    manifest: str = "{}"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        step = get_function(op, "step", self.name)
        arg_roles = roles(step.arg_attrs)
        res_roles = roles(step.res_attrs)
        in_types = list(step.function_type.inputs.data)
        out_types = list(step.function_type.outputs.data)
        n_param = sum(r == "param" for r, _ in arg_roles)
        n_state = sum(r == "state" for r, _ in arg_roles)
        expected = ["param"] * n_param + ["state"] * n_state + ["input"]
        if [r for r, _ in arg_roles] != expected:
            raise TracecError("make-entry-points: @step's arguments must be params, then state, "
                              f"then one input; got roles {[r for r, _ in arg_roles]}")
        if [r for r, _ in res_roles[:n_state]] != ["state"] * n_state:
            raise TracecError("make-entry-points: @step must return the new state first")
        outputs = list(zip(res_roles[n_state:], out_types[n_state:]))
        x_type = in_types[-1]

        fwd = self._forward(step)
        seq = self._forward_sequence(step, n_param, n_state, x_type, outputs)
        op.body.block.add_op(fwd)
        op.body.block.add_op(seq)
        entries = {"forward": fwd, "forward_sequence": seq,
                   "init_params": get_function(op, "init_params", self.name),
                   "init_state": get_function(op, "init_state", self.name)}

        manifest = {
            "format": "tracec-artifact",
            "format_version": FORMAT_VERSION,
            "abi_version": ABI_VERSION,
            "params": [_tensor_json(t, r, n) for (r, n), t in zip(arg_roles[:n_param], in_types)],
            "state": [_tensor_json(t, r, n) for (r, n), t in
                      zip(arg_roles[n_param:n_param + n_state], in_types[n_param:])],
            "input": _tensor_json(x_type, "input", arg_roles[-1][1]),
            "outputs": [_tensor_json(t, r, n) for (r, n), t in outputs],
            "entries": {},
        }
        try:
            manifest.update(json.loads(self.manifest))
        except json.JSONDecodeError as e:
            raise TracecError(f"make-entry-points: option manifest is not JSON: {e}") from e
        for name, fn in entries.items():
            fn.sym_visibility = StringAttr("public")
            manifest["entries"][name] = {
                "args": [f"{r}:{n}" for r, n in roles(fn.arg_attrs)],
                "results": [f"{r}:{n}" for r, n in roles(fn.res_attrs)],
            }
        text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
        for name, fn in entries.items():
            refl = {"tracec.abi_version": StringAttr(str(ABI_VERSION)),
                    "tracec.entry": StringAttr(name)}
            if name == "forward":
                refl["tracec.manifest"] = StringAttr(text)
            fn.attributes["iree.reflection"] = DictionaryAttr(refl)

    def _forward(self, step: func.FuncOp) -> func.FuncOp:
        block = Block(arg_types=step.function_type.inputs.data)
        b = Builder(block, step.location)
        results = clone_body_into(step, b, list(block.args))
        block.add_op(func.ReturnOp(*results))
        fn = func.FuncOp("forward", step.function_type, Region(block),
                         arg_attrs=step.arg_attrs, res_attrs=step.res_attrs)
        fn.location = step.location
        return fn

    def _forward_sequence(self, step, n_param, n_state, x_type, outputs) -> func.FuncOp:
        """A ``stablehlo.while`` over T = dim 0 of ``xs``; outputs written by row."""
        in_types = list(step.function_type.inputs.data)
        x_shape = list(x_type.get_shape())
        xs_type = TensorType(x_type.element_type, [DYNAMIC_INDEX] + x_shape)
        seq_out_types = [TensorType(t.element_type, [DYNAMIC_INDEX] + list(t.get_shape()))
                         for _, t in outputs]
        arg_types = in_types[:-1] + [xs_type]
        block = Block(arg_types=arg_types)
        b = Builder(block, step.location)
        params = list(block.args[:n_param])
        state0 = list(block.args[n_param:n_param + n_state])
        xs = block.args[-1]
        t_len = b.dimension_size(xs, 0)
        t_vec = b.reshape(t_len, [1])
        buffers = []
        for (_, t), seq_t in zip(outputs, seq_out_types):
            dims = [b.constant(np.array([d], "int32")) for d in t.get_shape()]
            shape = b.concatenate([t_vec, *dims], 0, TensorType(i32, [1 + len(dims)]))
            zero = b.constant(np.zeros((), "float32"))
            buffers.append(b.dynamic_broadcast(zero, shape, seq_t))
        counter0 = b.i32(0)
        carried = [counter0, *state0, *buffers]
        carried_types = [SSAValue.get(v).type for v in carried]

        cond = Block(arg_types=carried_types)
        cb = Builder(cond, step.location)
        more = cb.compare(cond.args[0], t_len, "LT")
        cb.ret([more])

        body = Block(arg_types=carried_types)
        bb = Builder(body, step.location)
        i = body.args[0]
        zero_i = bb.i32(0)
        x_row = bb.dynamic_slice(xs, [i] + [zero_i] * len(x_shape), [1] + x_shape)
        x_t = bb.reshape(x_row, x_shape)
        state = list(body.args[1:1 + n_state])
        results = clone_body_into(step, bb, params + state + [x_t])
        new_state, outs = results[:n_state], results[n_state:]
        new_bufs = []
        for buf, out in zip(body.args[1 + n_state:], outs):
            shape = list(SSAValue.get(out).type.get_shape())
            row = bb.reshape(out, [1] + shape)
            new_bufs.append(bb.dynamic_update_slice(buf, row, [i] + [zero_i] * len(shape)))
        one = bb.i32(1)
        bb.ret([bb.add_(i, one), *new_state, *new_bufs])

        loop = b.add(shlo.WhileOp(carried, Region(cond), Region(body)))
        final = list(loop.results)
        block.add_op(func.ReturnOp(*final[1:1 + n_state], *final[1 + n_state:]))
        res_types = [SSAValue.get(v).type for v in final[1:]]
        arg_attrs = list(step.arg_attrs.data[:-1]) + [DictionaryAttr({
            "tracec.role": StringAttr("input"), "tracec.name": StringAttr("xs")})]
        res_attrs = list(step.res_attrs.data)
        fn = func.FuncOp("forward_sequence", FunctionType.from_lists(arg_types, res_types),
                         Region(block), arg_attrs=ArrayAttr(arg_attrs), res_attrs=ArrayAttr(res_attrs))
        fn.location = step.location
        return fn
