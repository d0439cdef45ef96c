"""Typed views of the StableHLO attributes passes read and build.

Each attribute a pass needs is read into Python values (lists of ints, a direction
string, a :class:`ConvParams`) and built back from them here; the text forms live in
``tracec.dialects.stablehlo`` alone, and no pass prints an attribute to parse it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import AnyFloat, DenseArrayBase, DenseIntOrFPElementsAttr, TensorType, i64
from xdsl.ir import Attribute, Operation

from tracec.dialects import stablehlo as shlo
from tracec.passes.ir.module import op_error


def i64s(values) -> DenseArrayBase:
    """A ``array<i64: ...>`` attribute."""
    return DenseArrayBase.from_list(i64, [int(x) for x in values])


def ints(attr) -> list[int]:
    """The integers of a ``DenseArrayBase`` (or ``None`` -> ``[]``)."""
    if attr is None:
        return []
    return [int(x) for x in attr.get_values()]


def padding_attr(padding) -> DenseIntOrFPElementsAttr:
    """A ``[n, 2]`` i64 padding attribute (reduce_window, select_and_scatter, convolution)."""
    pairs = [(int(lo), int(hi)) for lo, hi in padding]
    return DenseIntOrFPElementsAttr.from_list(TensorType(i64, [len(pairs), 2]),
                                              [p for pair in pairs for p in pair])


# -- compare


def compare_props(element_type, direction: str) -> dict[str, Attribute]:
    """The properties of a ``stablehlo.compare`` of ``element_type`` values (``FLOAT``
    for floats, ``SIGNED`` otherwise)."""
    kind = "FLOAT" if isinstance(element_type, AnyFloat) else "SIGNED"
    return {"comparison_direction": shlo.enum_attr("comparison_direction", direction),
            "compare_type": shlo.enum_attr("comparison_type", kind)}


def compare_direction(op: Operation) -> str | None:
    """``"LT"``, ``"GE"``, ... of a ``stablehlo.compare`` (None if unreadable)."""
    return shlo.enum_value(op.properties.get("comparison_direction")
                           or op.attributes.get("comparison_direction"))


# -- dot_general


def dot_attr(lb, rb, lc, rc) -> Attribute:
    """``#stablehlo.dot<...>`` from the batching and contracting dimensions."""
    return shlo.struct_attr("stablehlo.dot", {
        "lhs_batching_dimensions": list(lb), "rhs_batching_dimensions": list(rb),
        "lhs_contracting_dimensions": list(lc), "rhs_contracting_dimensions": list(rc)})


def dot_dims(op) -> tuple[list[int], list[int], list[int], list[int]]:
    """(lhs_batch, rhs_batch, lhs_contracting, rhs_contracting) of a dot_general."""
    found = shlo.struct_fields(op.dot_dimension_numbers)
    return (found.get("lhs_batching_dimensions", []), found.get("rhs_batching_dimensions", []),
            found.get("lhs_contracting_dimensions", []), found.get("rhs_contracting_dimensions", []))


def uniform_precision(op):
    """The op's ``precision_config`` when it names one precision for all operands."""
    p = op.precision_config
    if p is not None and len(set(p.data)) == 1:
        return p
    return None


# -- convolution


@dataclass(frozen=True)
class ConvParams:
    """A ``stablehlo.convolution``'s parameters with JAX-style dimension specs: the
    positions of (batch, feature) of input and output and (out-, in-feature) of the
    kernel, then the spatial dimensions."""

    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple
    strides: list
    padding: list
    lhs_dilation: list
    rhs_dilation: list
    feature_group_count: int
    batch_group_count: int
    precision: object


def conv_params(op) -> ConvParams:
    specs = shlo.conv_dims(op.dimension_numbers)
    if specs is None:
        raise op_error(op, f"differentiate: cannot read convolution dimension numbers "
                           f"'{op.dimension_numbers}'")
    lhs_spec, rhs_spec, out_spec = specs
    nsp = len(lhs_spec) - 2
    if op.window_reversal is not None and any(bool(v) for v in op.window_reversal.get_values()):
        raise op_error(op, "differentiate: convolution with window_reversal is not supported")
    pad = [0] * (2 * nsp)
    if op.padding is not None:
        pad = [int(v) for v in op.padding.get_values()]
    return ConvParams(
        lhs_spec, rhs_spec, out_spec,
        ints(op.window_strides) or [1] * nsp,
        [(pad[2 * k], pad[2 * k + 1]) for k in range(nsp)],
        ints(op.lhs_dilation) or [1] * nsp,
        ints(op.rhs_dilation) or [1] * nsp,
        op.feature_group_count.value.data, op.batch_group_count.value.data,
        uniform_precision(op))
