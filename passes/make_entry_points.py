"""make-entry-points: build the artifact's public functions from ``@step``.

Adds ``forward`` (one step), ``forward_sequence`` (T steps inside the binary as a
``tracec.scan``, T dynamic) and makes ``init_params``/``init_state`` public; attaches the manifest
(docs/design.md section 2, docs/abi.md) as ``iree.reflection`` on every entry.

Calling convention (ABI 1), argument order fixed by roles:
  forward(params..., state..., x)            -> (state..., outputs...)
  forward_sequence(params..., state..., xs)  -> (state..., outputs[T]...)
  init_params() -> (params...)   init_state() -> (state...)
With a learning rule (``@train_core``): ``train_step`` and ``train_sequence``, and with
``@advance_core`` (insert-optimizer's ``skip_masked``) ``advance_step`` and
``advance_sequence``, called like ``train_step`` and ``train_sequence``, and with
``@update_core`` (insert-optimizer's ``apart``) ``apply_update`` (docs/abi.md).

Options: ``manifest`` is a JSON object (as a string) merged into the manifest
(the driver passes source hash, options, versions).
Before: a private ``@step`` whose arguments and results carry ``tracec.role`` and
``tracec.name``; ``@init_params``/``@init_state`` exist. After: the public entries
above exist, their bodies are copies of ``@step``'s (each op keeps its location).
The time loop stays a ``tracec.scan`` until a backend-specific pass lowers it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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
)
from xdsl.ir import Block, Region
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.dialects.tracec import ScanOp, YieldOp
from tracec.passes.ir.builder import Builder, clone_block_ops
from tracec.passes.ir.module import from_attr, functions, get_function, role_attrs, roles
from tracec.versions import ABI_VERSION, FORMAT_VERSION



def _tensor_json(t: TensorType, role: str, name: str) -> dict:
    dtype = {"f32": "float32", "f64": "float64", "f16": "float16", "i32": "int32", "i64": "int64",
             "i1": "bool", "i8": "int8", "i16": "int16"}.get(str(t.element_type), str(t.element_type))
    return {"role": role, "name": name, "shape": list(t.get_shape()), "dtype": dtype}


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
        core = functions(op).get("train_core")
        learning_tensors: dict[str, list] = {}
        if core is not None:
            for kind in ("train", "advance"):  # advance_core: insert-optimizer's skip_masked
                fn = functions(op).get(f"{kind}_core")
                if fn is not None:
                    for name, made in ((f"{kind}_step", self._step_copy(fn, f"{kind}_step")),
                                       (f"{kind}_sequence", self._sequence(fn, f"{kind}_sequence"))):
                        entries[name] = made
                        op.body.block.add_op(made)
            update = functions(op).get("update_core")  # insert-optimizer's apart
            if update is not None:
                entries["apply_update"] = self._step_copy(update, "apply_update")
                op.body.block.add_op(entries["apply_update"])
            rows = (from_attr(core.attributes["tracec.accumulator_rows"])
                    if "tracec.accumulator_rows" in core.attributes else {})
            for (r, n), t in zip(roles(core.arg_attrs), core.function_type.inputs.data):
                if r in ("trace", "opt", "accum", "counter", "target", "mask"):
                    spec = _tensor_json(t, r, n)
                    if r == "accum" and n in rows:  # kept per batch row (docs/abi.md)
                        spec["batch_rows"] = list(rows[n])
                    learning_tensors.setdefault(r, []).append(spec)

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
        for role, key in (("trace", "traces"), ("opt", "optimizer_state"), ("accum", "accumulators"),
                          ("counter", "counters")):
            manifest[key] = learning_tensors.get(role, [])
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

    def _step_copy(self, core: func.FuncOp, name: str) -> func.FuncOp:
        """``train_step`` (``advance_step``, ``apply_update``): a copy of ``@train_core``
        (``@advance_core``, ``@update_core``)."""
        types = list(core.function_type.inputs.data)
        block = Block(arg_types=types)
        results = clone_block_ops(core.body.block, Builder(block, loc=core.location), list(block.args))
        block.add_op(func.ReturnOp(*results))
        step_fn = func.FuncOp(name, core.function_type, Region(block),
                              arg_attrs=core.arg_attrs, res_attrs=core.res_attrs)
        step_fn.location = core.location
        return step_fn

    def _sequence(self, core: func.FuncOp, name: str) -> func.FuncOp:
        """``train_sequence`` (from ``@train_core``) or ``advance_sequence`` (from
        ``@advance_core``): a ``tracec.scan`` of the core over the rows of ``xs``,
        ``targets``, ``masks``, stacking the per-step loss."""
        types = list(core.function_type.inputs.data)
        arg_roles = roles(core.arg_attrs)
        res_roles = roles(core.res_attrs)
        n_tail = 3  # x, target, mask
        n_carry = len(types) - n_tail
        row_types = types[n_carry:]
        seq_types = [TensorType(t.element_type, [DYNAMIC_INDEX] + list(t.get_shape()))
                     for t in row_types]
        out_types = list(core.function_type.outputs.data)
        loss_index = [r for r, _ in res_roles].index("loss")
        outer = Block(arg_types=types[:n_carry] + seq_types)
        body = Block(arg_types=types)
        bb = Builder(body, loc=core.location)
        res = clone_block_ops(core.body.block, bb, list(body.args))
        bb.insert(YieldOp(res[:n_carry] + [res[loss_index]]))
        loss_t = out_types[loss_index]
        scan = Builder(outer, loc=core.location).insert(ScanOp(
            list(outer.args[:n_carry]), list(outer.args[n_carry:]), Region(body),
            [TensorType(loss_t.element_type, [DYNAMIC_INDEX] + list(loss_t.get_shape()))]))
        outer.add_op(func.ReturnOp(*scan.results))
        seq_roles = arg_roles[:n_carry] + [("input", "xs"), ("target", "targets"), ("mask", "masks")]
        seq_fn = func.FuncOp(name,
                             FunctionType.from_lists(outer.arg_types, [r.type for r in scan.results]),
                             Region(outer), arg_attrs=role_attrs(seq_roles),
                             res_attrs=role_attrs(res_roles[:n_carry] + [("loss", "losses")]))
        seq_fn.location = core.location
        return seq_fn

    def _forward(self, step: func.FuncOp) -> func.FuncOp:
        block = Block(arg_types=step.function_type.inputs.data)
        b = Builder(block, loc=step.location)
        results = clone_block_ops(step.body.block, b, list(block.args))
        block.add_op(func.ReturnOp(*results))
        fn = func.FuncOp("forward", step.function_type, Region(block),
                         arg_attrs=step.arg_attrs, res_attrs=step.res_attrs)
        fn.location = step.location
        return fn

    def _forward_sequence(self, step, n_param, n_state, x_type, outputs) -> func.FuncOp:
        """``tracec.scan`` over the rows of ``xs`` (T = its dynamic leading dimension)."""
        in_types = list(step.function_type.inputs.data)
        xs_type = TensorType(x_type.element_type, [DYNAMIC_INDEX] + list(x_type.get_shape()))
        stacked = [TensorType(t.element_type, [DYNAMIC_INDEX] + list(t.get_shape()))
                   for _, t in outputs]
        arg_types = in_types[:-1] + [xs_type]
        block = Block(arg_types=arg_types)
        params = list(block.args[:n_param])
        state0 = list(block.args[n_param:n_param + n_state])
        xs = block.args[-1]

        body = Block(arg_types=in_types[n_param:])
        bb = Builder(body, loc=step.location)
        results = clone_block_ops(step.body.block, bb, params + list(body.args))
        bb.insert(YieldOp(results))
        scan = Builder(block, loc=step.location).insert(ScanOp(state0, [xs], Region(body), stacked))
        block.add_op(func.ReturnOp(*scan.results))
        arg_attrs = list(step.arg_attrs.data[:-1]) + [DictionaryAttr({
            "tracec.role": StringAttr("input"), "tracec.name": StringAttr("xs")})]
        fn = func.FuncOp("forward_sequence",
                         FunctionType.from_lists(arg_types, [r.type for r in scan.results]),
                         Region(block), arg_attrs=ArrayAttr(arg_attrs), res_attrs=step.res_attrs)
        fn.location = step.location
        return fn
