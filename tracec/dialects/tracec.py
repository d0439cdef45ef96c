"""The ``tracec`` dialect: the few ops whose meaning StableHLO cannot say directly.

``tracec.scan`` is a time loop: it runs its body once per leading row of ``xs``,
threading ``carry`` values, and stacks the body's extra results. Entry points use it
for ``forward_sequence`` so the ``tracec`` stage reads as what it means; each backend
lowers it in the form that backend runs fastest (``lower-scan-to-stablehlo`` for XLA,
``lower-scan-to-iree`` for IREE, which must avoid per-iteration copies of stacked
buffers: DESIGN.md section 4).

    %carry_out..., %ys... = "tracec.scan"(%carry..., %xs...) ({
    ^bb0(%c..., %x_t...):            // carry values, then one row of each xs
      ...
      "tracec.yield"(%c_next..., %y_t...)
    })
"""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Dialect, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsTerminator
from xdsl.utils.exceptions import VerifyException


@irdl_op_definition
class YieldOp(IRDLOperation):
    name = "tracec.yield"
    values = var_operand_def()
    traits = traits_def(IsTerminator())

    def __init__(self, values):
        super().__init__(operands=[list(values)])


@irdl_op_definition
class ScanOp(IRDLOperation):
    name = "tracec.scan"
    carry = var_operand_def(TensorType)
    xs = var_operand_def(TensorType)
    res = var_result_def(TensorType)
    body = region_def("single_block")
    irdl_options = (AttrSizedOperandSegments(as_property=True),)

    def __init__(self, carry: list[SSAValue], xs: list[SSAValue], body: Region,
                 stacked_types: list[TensorType]):
        result_types = [SSAValue.get(c).type for c in carry] + list(stacked_types)
        super().__init__(operands=[list(carry), list(xs)], result_types=[result_types],
                         regions=[body])

    @property
    def n_carry(self) -> int:
        return len(self.carry)

    def verify_(self) -> None:
        block = self.body.block
        n = self.n_carry
        want = [c.type for c in self.carry] + [
            TensorType(x.type.element_type, list(x.type.get_shape())[1:]) for x in self.xs]
        got = [a.type for a in block.args]
        if got != want:
            raise VerifyException(f"tracec.scan: body arguments {got} do not match carry and "
                                  f"row types {want}")
        term = block.last_op
        if not isinstance(term, YieldOp):
            raise VerifyException("tracec.scan: body must end with tracec.yield")
        ytypes = [v.type for v in term.values]
        if ytypes[:n] != [c.type for c in self.carry]:
            raise VerifyException("tracec.scan: yielded carry types differ from the carry")
        for y, r in zip(ytypes[n:], list(self.res)[n:]):
            if list(r.type.get_shape())[1:] != list(y.get_shape()) or r.type.element_type != y.element_type:
                raise VerifyException(f"tracec.scan: stacked result {r.type} does not stack {y}")


Tracec = Dialect("tracec", [ScanOp, YieldOp], [])
