"""The ``tracec`` dialect: the few ops whose meaning StableHLO cannot say directly.

``tracec.scan`` is a time loop: it runs its body once per leading row of ``xs``,
threading ``carry`` values, and stacks the body's extra results. Entry points use it
for ``forward_sequence`` so the ``tracec`` stage reads as what it means; each backend
lowers it in the form that backend runs fastest (``lower-scan-to-stablehlo`` for XLA,
``lower-scan-to-iree`` for IREE, which must avoid per-iteration copies of stacked
buffers: docs/design.md section 4).

    %carry_out..., %ys... = "tracec.scan"(%carry..., %xs...) ({
    ^bb0(%c..., %x_t...):            // carry values, then one row of each xs
      ...
      "tracec.yield"(%c_next..., %y_t...)
    })

The eligibility-trace ops spell out the learning rules of docs/design.md section 3, one
op per equation, so ``--print-ir-after insert-eligibility-traces`` reads like the
paper; ``lower-traces-to-stablehlo`` turns them into StableHLO for every backend.
Shapes: batch B, fan-in I, neurons H (any trailing neuron shape for the per-neuron
ops); ``jac``/``prev`` are matching lists over the states c of one hidden group.

- ``tracec.input_trace {decay = α}(εx, x)``: ``α εx + x`` (ES-D-RTRL, [B, I]).
- ``tracec.neuron_trace {decay = α, gain = g}(jac..., prev..., [source])``:
  ``α Σ_c jac_c ⊙ prev_c + g source`` per neuron ([B, H]); ES-D-RTRL's ``εf`` (g = 1-α)
  and the exact trace of an element-wise parameter (α = g = 1).
- ``tracec.param_trace(jac..., prev..., [x, source])``: D-RTRL's weight trace
  ``ε[h,b,i] = Σ_c jac_c[b,h] prev_c[h,b,i] + x[b,i] source[b,h]``, stored neuron-major
  ([H, B, I]: the batch sum of its gradient then runs over a middle dimension, which
  IREE and XLA fuse with the trace update; D-RTRL steps are 1.2× (IREE) to 2.2× (XLA)
  faster than with [B, I, H], see docs/passes.md); a convolution's ``x``
  is per neuron and laid out like the trace, ``x[h,b,i]`` (the input patch element i
  that weight i multiplies at neuron h's position).
- ``tracec.trace_grad(delta..., trace...)``: ``Σ_a Σ_b δ_a ⊙ ε_a``, summed over the
  batch dimensions the parameter does not have; an [H, B, I] trace takes ``δ[b, h]``
  along i and gives ``G[i, h]``.
- ``tracec.factored_grad(εx, delta..., εf..., [correction])``:
  ``εxᵀ (Σ_a δ_a ⊙ εf_a) · correction`` ([I, H]; ES-D-RTRL's gradient).
"""

from __future__ import annotations

from xdsl.dialects.builtin import FloatAttr, Float32Type, TensorType, f32
from xdsl.ir import Dialect, Region, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    prop_def,
    result_def,
    region_def,
    traits_def,
    var_operand_def,
    var_result_def,
)
from xdsl.traits import IsTerminator, Pure
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


# ---------------------------------------------------------------------------------
# Eligibility traces


def _shape(v) -> list[int]:
    return list(SSAValue.get(v).type.get_shape())


def _check_pairs(op, jac, prev) -> None:
    if len(jac) != len(prev):
        raise VerifyException(f"{op.name}: {len(jac)} jac operands but {len(prev)} prev operands")


def _float(v: float) -> FloatAttr:
    return FloatAttr(float(v), f32)


@irdl_op_definition
class InputTraceOp(IRDLOperation):
    """``decay · prev + x``: ES-D-RTRL's presynaptic trace εx."""

    name = "tracec.input_trace"
    prev = operand_def(TensorType)
    x = operand_def(TensorType)
    decay = prop_def(FloatAttr[Float32Type])
    res = result_def(TensorType)
    traits = traits_def(Pure())

    def __init__(self, prev, x, decay: float):
        super().__init__(operands=[prev, x], result_types=[SSAValue.get(prev).type],
                         properties={"decay": _float(decay)})

    def verify_(self) -> None:
        if not (self.prev.type == self.x.type == self.res.type):
            raise VerifyException(f"tracec.input_trace: trace {self.prev.type} and input "
                                  f"{self.x.type} must have the same type")


@irdl_op_definition
class NeuronTraceOp(IRDLOperation):
    """``decay · Σ_c jac_c ⊙ prev_c + gain · source``: a per-neuron trace."""

    name = "tracec.neuron_trace"
    jac = var_operand_def(TensorType)
    prev = var_operand_def(TensorType)
    source = opt_operand_def(TensorType)
    decay = prop_def(FloatAttr[Float32Type])
    gain = prop_def(FloatAttr[Float32Type])
    res = result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    def __init__(self, jac, prev, source, result_type, decay: float, gain: float):
        super().__init__(operands=[list(jac), list(prev), [source] if source is not None else []],
                         result_types=[result_type],
                         properties={"decay": _float(decay), "gain": _float(gain)})

    def verify_(self) -> None:
        _check_pairs(self, self.jac, self.prev)
        for v in [*self.jac, *self.prev, *([self.source] if self.source else [])]:
            if v.type != self.res.type:
                raise VerifyException(f"tracec.neuron_trace: operand {v.type} differs from "
                                      f"the trace {self.res.type}")


@irdl_op_definition
class ParamTraceOp(IRDLOperation):
    """D-RTRL's weight trace ``ε[h,b,i] = Σ_c jac_c[b,h] prev_c[h,b,i] + x[b,i] source[b,h]``."""

    name = "tracec.param_trace"
    jac = var_operand_def(TensorType)
    prev = var_operand_def(TensorType)
    x = opt_operand_def(TensorType)
    source = opt_operand_def(TensorType)
    res = result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    def __init__(self, jac, prev, x, source, result_type):
        pair = x is not None and source is not None
        super().__init__(operands=[list(jac), list(prev), [x] if pair else [],
                                   [source] if pair else []], result_types=[result_type])

    def verify_(self) -> None:
        _check_pairs(self, self.jac, self.prev)
        if (self.x is None) != (self.source is None):
            raise VerifyException("tracec.param_trace: x and source come together")
        h, b, i = _shape(self.res) if len(_shape(self.res)) == 3 else (None, None, None)
        if b is None:
            raise VerifyException(f"tracec.param_trace: the trace must be [H, B, I], got "
                                  f"{self.res.type}")
        for v in self.prev:
            if v.type != self.res.type:
                raise VerifyException(f"tracec.param_trace: prev {v.type} differs from {self.res.type}")
        for v in [*self.jac, *([self.source] if self.source else [])]:
            if _shape(v) != [b, h]:
                raise VerifyException(f"tracec.param_trace: per-neuron operand {v.type} must be [{b}, {h}]")
        if self.x is not None and _shape(self.x) not in ([b, i], [h, b, i]):
            raise VerifyException(f"tracec.param_trace: input {self.x.type} must be [{b}, {i}] "
                                  f"or [{h}, {b}, {i}]")


@irdl_op_definition
class TraceGradOp(IRDLOperation):
    """``Σ_a Σ_batch δ_a ⊙ ε_a``: a parameter's gradient from its own traces; with a
    result shaped like a D-RTRL trace ``[M, B, I]``, the products per batch row
    ``δ_a[b, m] ε_a[m, b, i]``, not summed over the batch."""

    name = "tracec.trace_grad"
    delta = var_operand_def(TensorType)
    trace = var_operand_def(TensorType)
    res = result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    def __init__(self, delta, trace, result_type):
        super().__init__(operands=[list(delta), list(trace)], result_types=[result_type])

    def verify_(self) -> None:
        if len(self.delta) != len(self.trace) or not self.delta:
            raise VerifyException("tracec.trace_grad: one delta per trace, at least one")
        for d, e in zip(self.delta, self.trace):
            ds, es, rs = _shape(d), _shape(e), _shape(self.res)
            dense = len(es) == 3 and len(ds) == 2 and es[1] == ds[0] and es[0] == ds[1] \
                and rs in ([es[2], es[0]], es)
            per_neuron = ds == es and es[len(es) - len(rs):] == rs
            if not (dense or per_neuron):
                raise VerifyException(f"tracec.trace_grad: delta {d.type} and trace {e.type} "
                                      f"do not contract to {self.res.type}")


@irdl_op_definition
class FactoredGradOp(IRDLOperation):
    """``εxᵀ (Σ_a δ_a ⊙ εf_a) · correction``: ES-D-RTRL's gradient of a dense weight."""

    name = "tracec.factored_grad"
    input_trace = operand_def(TensorType)
    delta = var_operand_def(TensorType)
    trace = var_operand_def(TensorType)
    correction = opt_operand_def(TensorType)
    res = result_def(TensorType)
    irdl_options = (AttrSizedOperandSegments(as_property=True),)
    traits = traits_def(Pure())

    def __init__(self, input_trace, delta, trace, correction, result_type):
        super().__init__(operands=[input_trace, list(delta), list(trace),
                                   [correction] if correction is not None else []],
                         result_types=[result_type])

    def verify_(self) -> None:
        if len(self.delta) != len(self.trace) or not self.delta:
            raise VerifyException("tracec.factored_grad: one delta per trace, at least one")
        b, i = _shape(self.input_trace)
        for v in [*self.delta, *self.trace]:
            if len(_shape(v)) != 2 or _shape(v)[0] != b:
                raise VerifyException(f"tracec.factored_grad: {v.type} must be [{b}, H]")
        h = _shape(self.trace[0])[1]
        if _shape(self.res) != [i, h]:
            raise VerifyException(f"tracec.factored_grad: result {self.res.type} must be [{i}, {h}]")
        if self.correction is not None and _shape(self.correction) != []:
            raise VerifyException("tracec.factored_grad: the correction is a scalar")


TRACE_OPS = (InputTraceOp, NeuronTraceOp, ParamTraceOp, TraceGradOp, FactoredGradOp)

Tracec = Dialect("tracec", [ScanOp, YieldOp, *TRACE_OPS], [])
