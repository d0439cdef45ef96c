"""Typed xDSL definitions of the StableHLO ops that tracec's passes touch.

Passes match ops by type (``isinstance(op, stablehlo.WhileOp)``), never by printed
text. Ops that no pass looks at stay as xDSL's unregistered ops and are printed back
exactly as they came in (generic form). Element-wise ops share one definition each
from a small table instead of a copy per op.

Why not xdsl-jax's StableHLO dialect: it pins xDSL 0.73 and covers 69 of 116 ops;
owning the few definitions we need keeps us on current xDSL (docs/design.md section 4).
"""

from __future__ import annotations

import re
from functools import lru_cache

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DenseIntOrFPElementsAttr,
    DictionaryAttr,
    FlatSymbolRefAttr,
    I32,
    IntegerAttr,
    StringAttr,
    TensorType,
    UnregisteredAttr,
)
from xdsl.ir import Attribute, Dialect, Operation, Region, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsTerminator, NoMemoryEffect, Pure


@irdl_op_definition
class ConstantOp(IRDLOperation):
    name = "stablehlo.constant"
    value = prop_def(DenseIntOrFPElementsAttr)
    output = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, value: DenseIntOrFPElementsAttr):
        super().__init__(properties={"value": value}, result_types=[value.type])


@irdl_op_definition
class ReturnOp(IRDLOperation):
    name = "stablehlo.return"
    results_ = var_operand_def()
    traits = traits_def(IsTerminator())

    def __init__(self, values: list[SSAValue | Operation]):
        super().__init__(operands=[values])


@irdl_op_definition
class WhileOp(IRDLOperation):
    """``stablehlo.while``: loop-carried values are operands, block args and results."""

    name = "stablehlo.while"
    operand = var_operand_def()
    res = var_result_def()
    cond = region_def("single_block")
    body = region_def("single_block")

    def __init__(self, operands: list[SSAValue], cond: Region, body: Region):
        super().__init__(operands=[operands], result_types=[[v.type for v in operands]],
                         regions=[cond, body])


@irdl_op_definition
class CompositeOp(IRDLOperation):
    """``stablehlo.composite``: how ``tracec.spike`` and ``tracec.stop_gradient`` survive."""

    name = "stablehlo.composite"
    inputs = var_operand_def()
    res = var_result_def()
    composite_name = prop_def(StringAttr, prop_name="name")
    composite_attributes = opt_prop_def(DictionaryAttr)
    decomposition = prop_def(FlatSymbolRefAttr)
    version = opt_prop_def(IntegerAttr[I32])


@irdl_op_definition
class CustomCallOp(IRDLOperation):
    name = "stablehlo.custom_call"
    inputs = var_operand_def()
    res = var_result_def()
    call_target_name = prop_def(StringAttr)
    has_side_effect = opt_prop_def(Attribute)
    backend_config = opt_prop_def(Attribute)
    api_version = opt_prop_def(Attribute)
    called_computations = opt_prop_def(ArrayAttr)
    operand_layouts = opt_prop_def(Attribute)
    result_layouts = opt_prop_def(Attribute)
    output_operand_aliases = opt_prop_def(Attribute)


@irdl_op_definition
class DynamicSliceOp(IRDLOperation):
    name = "stablehlo.dynamic_slice"
    operand = operand_def(TensorType)
    start_indices = var_operand_def(TensorType)
    slice_sizes = prop_def(DenseArrayBase)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class DynamicUpdateSliceOp(IRDLOperation):
    name = "stablehlo.dynamic_update_slice"
    operand = operand_def(TensorType)
    update = operand_def(TensorType)
    start_indices = var_operand_def(TensorType)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class GetDimensionSizeOp(IRDLOperation):
    name = "stablehlo.get_dimension_size"
    operand = operand_def(TensorType)
    dimension = prop_def(IntegerAttr)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class ReshapeOp(IRDLOperation):
    name = "stablehlo.reshape"
    operand = operand_def(TensorType)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class BroadcastInDimOp(IRDLOperation):
    name = "stablehlo.broadcast_in_dim"
    operand = operand_def(TensorType)
    broadcast_dimensions = prop_def(DenseArrayBase)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class CompareOp(IRDLOperation):
    name = "stablehlo.compare"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    comparison_direction = prop_def(Attribute)
    compare_type = opt_prop_def(Attribute)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class ConcatenateOp(IRDLOperation):
    name = "stablehlo.concatenate"
    inputs = var_operand_def(TensorType)
    dimension = prop_def(IntegerAttr)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


@irdl_op_definition
class DynamicBroadcastInDimOp(IRDLOperation):
    name = "stablehlo.dynamic_broadcast_in_dim"
    operand = operand_def(TensorType)
    output_dimensions = operand_def(TensorType)
    broadcast_dimensions = prop_def(DenseArrayBase)
    known_expanding_dimensions = opt_prop_def(DenseArrayBase)
    known_nonexpanding_dimensions = opt_prop_def(DenseArrayBase)
    res = result_def(TensorType)
    traits = traits_def(NoMemoryEffect())


def _define(op_name: str, class_name: str, operands: tuple[str, ...] = (), *,
            props: tuple[str, ...] = (), optional_props: tuple[str, ...] = (),
            variadic: bool = False, regions: tuple[str, ...] = ()) -> type[IRDLOperation]:
    """Define a StableHLO op from its operand and property names (a table row).

    ``operands`` are tensor operands in order (``variadic`` makes the single operand
    group variadic); one tensor result, or variadic results when ``variadic``.
    """
    body: dict = {"__doc__": f"``{op_name}``.", "__module__": __name__, "name": op_name,
                  "traits": traits_def(NoMemoryEffect())}
    if variadic:
        body[operands[0] if operands else "inputs"] = var_operand_def()
        body["res"] = var_result_def()
    else:
        for name in operands:
            body[name] = operand_def(TensorType)
        body["result"] = result_def(TensorType)
    for name in props:
        body[name] = prop_def(Attribute)
    for name in optional_props:
        body[name] = opt_prop_def(Attribute)
    for name in regions:
        body[name] = region_def()
    return irdl_op_definition(type(class_name, (IRDLOperation,), body))


# Transcendental ops may carry StableHLO's optional `result_accuracy`.
_ACC = ("result_accuracy",)


def _unary(op_name: str, class_name: str, accuracy: bool = False):
    return _define(op_name, class_name, ("operand",), optional_props=_ACC if accuracy else ())


def _binary(op_name: str, class_name: str):
    return _define(op_name, class_name, ("lhs", "rhs"))


# Element-wise, one operand.
AbsOp = _unary("stablehlo.abs", "AbsOp")
NegateOp = _unary("stablehlo.negate", "NegateOp")
SignOp = _unary("stablehlo.sign", "SignOp")
FloorOp = _unary("stablehlo.floor", "FloorOp")
CeilOp = _unary("stablehlo.ceil", "CeilOp")
RoundNearestEvenOp = _unary("stablehlo.round_nearest_even", "RoundNearestEvenOp")
RoundNearestAfzOp = _unary("stablehlo.round_nearest_afz", "RoundNearestAfzOp")
NotOp = _unary("stablehlo.not", "NotOp")
IsFiniteOp = _unary("stablehlo.is_finite", "IsFiniteOp")
ConvertOp = _unary("stablehlo.convert", "ConvertOp")
ExpOp = _unary("stablehlo.exponential", "ExpOp", accuracy=True)
Expm1Op = _unary("stablehlo.exponential_minus_one", "Expm1Op", accuracy=True)
LogOp = _unary("stablehlo.log", "LogOp", accuracy=True)
Log1pOp = _unary("stablehlo.log_plus_one", "Log1pOp", accuracy=True)
LogisticOp = _unary("stablehlo.logistic", "LogisticOp", accuracy=True)
TanhOp = _unary("stablehlo.tanh", "TanhOp", accuracy=True)
SqrtOp = _unary("stablehlo.sqrt", "SqrtOp", accuracy=True)
RsqrtOp = _unary("stablehlo.rsqrt", "RsqrtOp", accuracy=True)
CbrtOp = _unary("stablehlo.cbrt", "CbrtOp", accuracy=True)
SineOp = _unary("stablehlo.sine", "SineOp", accuracy=True)
CosineOp = _unary("stablehlo.cosine", "CosineOp", accuracy=True)

# Element-wise, two or three operands.
AddOp = _binary("stablehlo.add", "AddOp")
SubtractOp = _binary("stablehlo.subtract", "SubtractOp")
MultiplyOp = _binary("stablehlo.multiply", "MultiplyOp")
DivideOp = _binary("stablehlo.divide", "DivideOp")
RemainderOp = _binary("stablehlo.remainder", "RemainderOp")
PowerOp = _binary("stablehlo.power", "PowerOp")
MaximumOp = _binary("stablehlo.maximum", "MaximumOp")
MinimumOp = _binary("stablehlo.minimum", "MinimumOp")
Atan2Op = _binary("stablehlo.atan2", "Atan2Op")
AndOp = _binary("stablehlo.and", "AndOp")
OrOp = _binary("stablehlo.or", "OrOp")
XorOp = _binary("stablehlo.xor", "XorOp")
SelectOp = _define("stablehlo.select", "SelectOp", ("pred", "on_true", "on_false"))
ClampOp = _define("stablehlo.clamp", "ClampOp", ("min", "operand", "max"))

# Shape and data movement.
TransposeOp = _define("stablehlo.transpose", "TransposeOp", ("operand",), props=("permutation",))
SliceOp = _define("stablehlo.slice", "SliceOp", ("operand",),
                  props=("start_indices", "limit_indices", "strides"))
PadOp = _define("stablehlo.pad", "PadOp", ("operand", "padding_value"),
                props=("edge_padding_low", "edge_padding_high", "interior_padding"))
ReverseOp = _define("stablehlo.reverse", "ReverseOp", ("operand",), props=("dimensions",))
IotaOp = _define("stablehlo.iota", "IotaOp", props=("iota_dimension",))
DotGeneralOp = _define("stablehlo.dot_general", "DotGeneralOp", ("lhs", "rhs"),
                       props=("dot_dimension_numbers",),
                       optional_props=("precision_config", "algorithm"))
ConvolutionOp = _define(
    "stablehlo.convolution", "ConvolutionOp", ("lhs", "rhs"),
    props=("dimension_numbers", "feature_group_count", "batch_group_count"),
    optional_props=("window_strides", "padding", "lhs_dilation", "rhs_dilation",
                    "window_reversal", "precision_config"))
# `stablehlo.reduce`: operands are the inputs then as many init values (half each).
ReduceOp = _define("stablehlo.reduce", "ReduceOp", ("operands_",), variadic=True,
                   props=("dimensions",), regions=("body",))
# `stablehlo.reduce_window`: the inputs then as many init values (half each), as many
# results as inputs.
ReduceWindowOp = _define(
    "stablehlo.reduce_window", "ReduceWindowOp", ("operands_",), variadic=True,
    props=("window_dimensions",),
    optional_props=("window_strides", "base_dilations", "window_dilations", "padding"),
    regions=("body",))
SelectAndScatterOp = _define(
    "stablehlo.select_and_scatter", "SelectAndScatterOp", ("operand", "source", "init_value"),
    optional_props=("window_dimensions", "window_strides", "padding"),
    regions=("select", "scatter"))
GatherOp = _define("stablehlo.gather", "GatherOp", ("operand", "start_indices"),
                   props=("dimension_numbers", "slice_sizes"),
                   optional_props=("indices_are_sorted",))
# `stablehlo.scatter`: the inputs, the indices, then as many updates as inputs.
ScatterOp = _define("stablehlo.scatter", "ScatterOp", ("operands_",), variadic=True,
                    props=("scatter_dimension_numbers",),
                    optional_props=("indices_are_sorted", "unique_indices"),
                    regions=("update_computation",))
OptimizationBarrierOp = _define("stablehlo.optimization_barrier", "OptimizationBarrierOp",
                                ("operands_",), variadic=True)


# ---------------------------------------------------------------------------------
# Structured attributes (`#stablehlo.gather<...>`, `#stablehlo.scatter<...>`,
# `#stablehlo.dot<...>`): xDSL keeps them as unregistered attributes holding the text
# between the brackets; they are read and built here and nowhere else.

_FIELD = re.compile(r"(\w+)\s*=\s*(\[[^\]]*\]|-?\d+)")

#: the fields of each structured attribute, in the order StableHLO prints them
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "stablehlo.gather": ("offset_dims", "collapsed_slice_dims", "operand_batching_dims",
                         "start_indices_batching_dims", "start_index_map", "index_vector_dim"),
    "stablehlo.scatter": ("update_window_dims", "inserted_window_dims", "input_batching_dims",
                          "scatter_indices_batching_dims", "scatter_dims_to_operand_dims",
                          "index_vector_dim"),
    "stablehlo.dot": ("lhs_batching_dimensions", "rhs_batching_dimensions",
                      "lhs_contracting_dimensions", "rhs_contracting_dimensions"),
}


def struct_fields(attr: Attribute | None) -> dict[str, list[int] | int]:
    """The fields of a structured StableHLO attribute: ``name = [1, 2]`` gives a list,
    ``name = 3`` an int; a field left out is absent (StableHLO's default: empty)."""
    text = getattr(attr, "value", None)
    text = text.data if isinstance(text, StringAttr) else ""
    out: dict[str, list[int] | int] = {}
    for name, value in _FIELD.findall(text):
        out[name] = ([int(v) for v in value.strip("[]").split(",") if v.strip()]
                     if value.startswith("[") else int(value))
    return out


@lru_cache(maxsize=None)
def _struct_class(name: str) -> type[UnregisteredAttr]:
    return UnregisteredAttr.with_name_and_type(name, False)


def struct_attr(name: str, fields: dict) -> Attribute:
    """``#name<field = [...], ...>`` from ``fields`` (in StableHLO's order; empty lists
    are left out, as MLIR prints them, unless all are empty), without a parser."""
    parts = []
    for key in STRUCT_FIELDS[name]:
        value = fields.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"{key} = {value}")
        elif value is not None and len(value):
            parts.append(f"{key} = [{', '.join(str(int(v)) for v in value)}]")
    unknown = set(fields) - set(STRUCT_FIELDS[name])
    if unknown:
        raise ValueError(f"#{name}: unknown field(s) {sorted(unknown)}")
    if not parts:  # xDSL prints `#name<>` as `#name`, which MLIR rejects: say the empties
        parts = [f"{key} = []" for key in STRUCT_FIELDS[name] if key in fields]
    return _struct_class(name)(name, False, False, ", ".join(parts))


# Enumerations (`#stablehlo<comparison_direction LT>`) and convolution dimension numbers
# (`#stablehlo.conv<[b, 0, f]x[0, i, o]->[b, 0, f]>`), built and read without a parser.


def enum_attr(kind: str, value: str) -> Attribute:
    """``#stablehlo<kind VALUE>``, e.g. ``enum_attr("comparison_direction", "LT")``."""
    return _struct_class(f"stablehlo.{kind}")(f"stablehlo.{kind}", False, True, f" {value}")


def enum_value(attr: Attribute | None) -> str | None:
    """The value of a ``#stablehlo<kind VALUE>`` attribute (``"LT"``), else None."""
    text = getattr(attr, "value", None)
    if not isinstance(text, StringAttr) or not str(getattr(attr, "attr_name", "")).strip('"') \
            .startswith("stablehlo."):
        return None
    return text.data.strip() or None


def _conv_spec_text(spec, letters: tuple[str, str]) -> str:
    tokens = [""] * len(spec)
    tokens[spec[0]], tokens[spec[1]] = letters
    for k, d in enumerate(spec[2:]):
        tokens[d] = str(k)
    return "[" + ", ".join(tokens) + "]"


def _conv_spec(text: str, letters: tuple[str, str]) -> tuple[int, ...]:
    tokens = [s.strip() for s in text.strip("[] ").split(",")]
    spatial = sorted((int(tok), i) for i, tok in enumerate(tokens) if tok.isdigit())
    return (tokens.index(letters[0]), tokens.index(letters[1])) + tuple(i for _, i in spatial)


_CONV = re.compile(r"\s*(\[[^\]]*\])\s*x\s*(\[[^\]]*\])\s*->\s*(\[[^\]]*\])\s*")


def conv_dims_attr(lhs_spec, rhs_spec, out_spec) -> Attribute:
    """``#stablehlo.conv<...>`` from JAX-style specs: the positions of (batch, feature)
    of the input and output, (out-feature, in-feature) of the kernel, then the spatial
    dimensions in order."""
    text = (f"{_conv_spec_text(lhs_spec, ('b', 'f'))}x{_conv_spec_text(rhs_spec, ('o', 'i'))}"
            f"->{_conv_spec_text(out_spec, ('b', 'f'))}")
    return _struct_class("stablehlo.conv")("stablehlo.conv", False, False, text)


def conv_dims(attr: Attribute | None) -> tuple[tuple[int, ...], ...] | None:
    """(lhs_spec, rhs_spec, out_spec) of a ``#stablehlo.conv`` attribute (the inverse of
    :func:`conv_dims_attr`), or None when it cannot be read."""
    text = getattr(attr, "value", None)
    m = _CONV.fullmatch(text.data) if isinstance(text, StringAttr) else None
    if m is None:
        return None
    try:
        return (_conv_spec(m.group(1), ("b", "f")), _conv_spec(m.group(2), ("o", "i")),
                _conv_spec(m.group(3), ("b", "f")))
    except ValueError:
        return None


STABLEHLO_OPS: list[type[Operation]] = [
    op for op in globals().values()
    if isinstance(op, type) and issubclass(op, IRDLOperation) and op is not IRDLOperation
    and getattr(op, "name", "").startswith("stablehlo.")
]

StableHLO = Dialect("stablehlo", STABLEHLO_OPS, [])
