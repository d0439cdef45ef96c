"""Build tracec's input module: ``@step`` with roles, ``@init_params``, ``@init_state``.

Roles and names travel as argument/result attributes of ``@step``
(``tracec.role = "param" | "state" | "input"`` and ``tracec.name = "l1/w"`` on
arguments; ``"state" | "output"`` on results), so every later pass, and
``tracec-opt`` on a saved ``.mlir`` file, sees them in the IR itself.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BytesAttr,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FileLineColLoc,
    FlatSymbolRefAttr,
    FunctionType,
    IntAttr,
    IntegerType,
    ModuleOp,
    StringAttr,
    TensorType,
    f16,
    f32,
    f64,
    i1,
)
from xdsl.ir import Attribute, Block, Region

from tracec.diagnostics import TracecError
from tracec.dialects.stablehlo import CompositeOp, ConstantOp
from tracec.frontends.lower_jax import LoweredModel, TensorSpec
from tracec.frontends.stablehlo_io import display_path, import_text

ROLE = "tracec.role"
NAME = "tracec.name"

_ELEMENT_TYPES: dict[str, Attribute] = {
    "float32": f32, "float64": f64, "float16": f16, "bool": i1,
    "int8": IntegerType(8), "int16": IntegerType(16), "int32": IntegerType(32),
    "int64": IntegerType(64), "uint8": IntegerType(8), "uint32": IntegerType(32),
}


def tensor_type(shape, dtype: str) -> TensorType:
    if dtype not in _ELEMENT_TYPES:
        raise TracecError(f"unsupported dtype {dtype}")
    return TensorType(_ELEMENT_TYPES[dtype], list(shape))


def dense_constant(value: np.ndarray) -> DenseIntOrFPElementsAttr:
    """An exact constant (raw bytes, no decimal round trip)."""
    arr = np.asarray(value)  # tobytes() is C order; ascontiguousarray would make 0-d arrays 1-d
    if arr.dtype == np.bool_:
        # MLIR stores i1 elements one per byte in the hex form.
        arr = arr.astype(np.uint8)
    return DenseIntOrFPElementsAttr(tensor_type(value.shape, value.dtype.name),
                                    BytesAttr(arr.tobytes()))


def role_attrs(role: str, name: str) -> DictionaryAttr:
    return DictionaryAttr({ROLE: StringAttr(role), NAME: StringAttr(name)})


def constant_function(name: str, specs: list[TensorSpec], values: list[np.ndarray],
                      role: str) -> func.FuncOp:
    """``func.func @name() -> (...)`` returning the given arrays exactly."""
    block = Block()
    consts = [ConstantOp(dense_constant(v)) for v in values]
    block.add_ops(consts)
    block.add_op(func.ReturnOp(*[c.output for c in consts]))
    types = [tensor_type(s.shape, s.dtype) for s in specs]
    fn = func.FuncOp(name, FunctionType.from_lists([], types), Region(block),
                     res_attrs=ArrayAttr([role_attrs(role, s.name) for s in specs]))
    return fn


def _find_main(module: ModuleOp) -> func.FuncOp:
    """The step function: ``@step`` (as tracec writes it), else ``@main``, else the one
    public function."""
    fns = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    for name in ("step", "main"):
        if name in fns:
            return fns[name]
    publics = [op for op in fns.values()
               if op.sym_visibility is None or op.sym_visibility.data == "public"]
    if len(publics) == 1:
        return publics[0]
    raise TracecError("cannot find the step function: expected a func named @step or @main",
                      hint=f"functions present: {', '.join(sorted(fns)) or 'none'}")


def assemble(lowered: LoweredModel) -> ModuleOp:
    """One module with ``@step`` (private, roles on its signature) and the init functions."""
    module = import_text(lowered.step_text, source_file=lowered.source_file,
                         source_name=display_path(lowered.source_file))
    step = _find_main(module)
    # A `sequence` model's function is a scan over time: extract-step finds its step.
    step.sym_name = StringAttr("sequence" if lowered.is_sequence else "step")
    step.sym_visibility = StringAttr("private")
    arg_attrs = ([role_attrs("param", s.name) for s in lowered.params]
                 + [role_attrs("state", s.name) for s in lowered.state]
                 + [role_attrs("input", "xs" if lowered.is_sequence else lowered.input.name)])
    res_attrs = ([role_attrs("state", s.name) for s in lowered.state]
                 + [role_attrs("output", s.name) for s in lowered.outputs])
    step.arg_attrs = ArrayAttr(arg_attrs)
    step.res_attrs = ArrayAttr(res_attrs)
    if lowered.step_line:
        # Diagnostics about the step as a whole point at `def step`.
        step.location = FileLineColLoc(StringAttr(display_path(lowered.source_file)),
                                       IntAttr(lowered.step_line), IntAttr(1))
    module.body.block.add_op(constant_function("init_params", lowered.params, lowered.param_values, "param"))
    module.body.block.add_op(constant_function("init_state", lowered.state, lowered.state_values, "state"))
    if lowered.loss_text is not None:
        add_loss_function(module, lowered)
    module.attributes.pop("sym_name", None)
    module.properties.pop("sym_name", None)
    module.sym_name = None
    return module


def add_loss_function(module: ModuleOp, lowered: LoweredModel) -> None:
    """``@loss(outputs..., target) -> scalar`` (private; the learning passes use it).

    The loss's helper functions move along under a ``loss.`` prefix so they cannot
    clash with the step's; inline-private-functions inlines them later.
    """
    loss_module = import_text(lowered.loss_text, source_file=lowered.source_file,
                              source_name=display_path(lowered.source_file))
    main = _find_main(loss_module)
    fns = [op for op in loss_module.ops if isinstance(op, func.FuncOp)]
    renames = {f.sym_name.data: "loss" if f is main else f"loss.{f.sym_name.data}" for f in fns}
    for f in fns:
        for op in f.walk():
            if isinstance(op, func.CallOp) and op.callee.root_reference.data in renames:
                op.callee = FlatSymbolRefAttr(renames[op.callee.root_reference.data])
            elif isinstance(op, CompositeOp) and op.decomposition.root_reference.data in renames:
                op.decomposition = FlatSymbolRefAttr(renames[op.decomposition.root_reference.data])
        f.detach()
        f.sym_name = StringAttr(renames[f.sym_name.data])
        f.sym_visibility = StringAttr("private")
        module.body.block.add_op(f)
    main.arg_attrs = ArrayAttr([role_attrs("output", s.name) for s in lowered.outputs]
                               + [role_attrs("target", lowered.target.name)])
    main.res_attrs = ArrayAttr([role_attrs("loss", "loss")])


def _dtype_name(t) -> str | None:
    return next((k for k, v in _ELEMENT_TYPES.items() if v == t.element_type), None)


def loss_target_spec(module: ModuleOp) -> dict | None:
    """``{"name", "shape", "dtype"}`` of the ``target`` argument of ``@loss``, if any."""
    fns = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}
    loss = fns.get("loss")
    if loss is None or loss.arg_attrs is None:
        return None
    for d, t in zip(loss.arg_attrs.data, loss.function_type.inputs.data):
        role = d.data.get(ROLE)
        if isinstance(role, StringAttr) and role.data == "target" and isinstance(t, TensorType):
            name = d.data.get(NAME)
            dtype = _dtype_name(t)
            if dtype is None:
                return None
            return {"name": name.data if isinstance(name, StringAttr) else "target",
                    "shape": list(t.get_shape()), "dtype": dtype}
    return None
