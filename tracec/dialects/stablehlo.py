"""Typed xDSL definitions of the StableHLO ops that tracec's passes touch.

Passes match ops by type (``isinstance(op, stablehlo.WhileOp)``), never by printed
text. Ops that no pass looks at stay as xDSL's unregistered ops and are printed back
exactly as they came in (generic form). Element-wise ops share one definition each
from a small table instead of a copy per op.

Why not xdsl-jax's StableHLO dialect: it pins xDSL 0.73 and covers 69 of 116 ops;
owning the few definitions we need keeps us on current xDSL (DESIGN.md section 4).
"""

from __future__ import annotations

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
from xdsl.traits import HasParent, IsTerminator, NoMemoryEffect, Pure


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


def _binary(op_name: str, class_name: str) -> type[IRDLOperation]:
    cls = type(class_name, (IRDLOperation,), {
        "__doc__": f"``{op_name}`` (element-wise, two operands).",
        "__module__": __name__,
        "name": op_name,
        "lhs": operand_def(TensorType),
        "rhs": operand_def(TensorType),
        "result": result_def(TensorType),
        "traits": traits_def(NoMemoryEffect()),
        "__init__": lambda self, lhs, rhs, result_type=None: IRDLOperation.__init__(
            self, operands=[lhs, rhs],
            result_types=[result_type or SSAValue.get(lhs).type]),
    })
    return irdl_op_definition(cls)


AddOp = _binary("stablehlo.add", "AddOp")
SubtractOp = _binary("stablehlo.subtract", "SubtractOp")
MultiplyOp = _binary("stablehlo.multiply", "MultiplyOp")

STABLEHLO_OPS: list[type[Operation]] = [
    ConstantOp, ReturnOp, WhileOp, CompositeOp, CustomCallOp, DynamicSliceOp,
    DynamicUpdateSliceOp, GetDimensionSizeOp, ReshapeOp, BroadcastInDimOp, CompareOp,
    AddOp, SubtractOp, MultiplyOp, ConcatenateOp, DynamicBroadcastInDimOp,
]

StableHLO = Dialect("stablehlo", STABLEHLO_OPS, [])
