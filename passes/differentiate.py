"""differentiate: add the forward- or reverse-mode derivative of a straight-line function.

``differentiate{mode=forward func=NAME}`` adds
``NAME_jvp(primals..., tangents...) -> (outs..., out_tangents...)``;
``differentiate{mode=reverse func=NAME}`` adds
``NAME_vjp(primals..., cotangents...) -> (outs..., in_cotangents...)``
(one tangent per argument, one cotangent per result, same types). The body is a copy of
``NAME``'s followed by the derivative, built by the building blocks of
``tracec.passes.autodiff.engine`` (``jvp``/``vjp``) with the per-op rules of
``tracec.passes.autodiff.rules``: element-wise math, shapes, ``reduce``, ``dot_general``,
``convolution``, the ``tracec.spike`` surrogates (docs/design.md section 2) and
``tracec.stop_gradient`` (zero). The emitted IR is simplified: no derivative work for
values that do not depend on the inputs or do not reach the outputs, zeros folded,
repeated subexpressions built once, dead code removed.

Options: ``mode`` (``forward`` | ``reverse``, default ``reverse``), ``func`` (default
``step``).
Before: ``@NAME`` has one block (call ``inline-private-functions`` first).
After: ``@NAME`` unchanged; ``@NAME_jvp`` / ``@NAME_vjp`` added after it with its
visibility; every new op has the location of the op it differentiates. A bare Heaviside
``convert(compare(GT, v, c))`` gets the default surrogate (sigmoid, alpha 4) and a warning
in the module attribute ``tracec.warnings``.
Diagnostics: an op on a derivative path without a rule (op and source line), an unknown
function, a bad mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func as func_d
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    FunctionType,
    ModuleOp,
    StringAttr,
)
from xdsl.ir import Block, Region
from xdsl.passes import ModulePass

from tracec.diagnostics import TracecError
from tracec.passes.autodiff import engine as ad
from tracec.passes.ir.builder import Builder, clone_block_ops
from tracec.passes.ir.module import NAME, ROLE, functions, get_function, roles

MODES = {"forward": "jvp", "reverse": "vjp"}


def _attrs(src_attrs, n: int, extra_role: str) -> tuple[list, list]:
    """(attributes of the primal entries, of their tangents/cotangents)."""
    primal = list(src_attrs.data) if src_attrs is not None else [DictionaryAttr({})] * n
    names = [name for _, name in roles(src_attrs)] if src_attrs is not None else []
    names += [f"#{i}" for i in range(len(names), n)]
    derived = [DictionaryAttr({ROLE: StringAttr(extra_role), NAME: StringAttr(name)})
               for name in names]
    return primal, derived


def differentiate_function(module: ModuleOp, src: func_d.FuncOp, mode: str) -> func_d.FuncOp:
    """Build ``@NAME_jvp`` or ``@NAME_vjp`` next to ``src`` (see the module docstring)."""
    suffix = MODES[mode]
    name = f"{src.sym_name.data}_{suffix}"
    if name in functions(module):
        raise TracecError(f"differentiate: the module already has a function @{name}")
    if len(src.body.blocks) != 1:
        raise TracecError(f"differentiate: @{src.sym_name.data} has control flow between blocks",
                          hint="only straight-line functions can be differentiated")
    in_types = list(src.function_type.inputs.data)
    out_types = list(src.function_type.outputs.data)
    extra_types = in_types if mode == "forward" else out_types

    block = Block(arg_types=in_types + extra_types)
    primals, extra = list(block.args[:len(in_types)]), list(block.args[len(in_types):])
    outs = clone_block_ops(src.body.block, Builder(block, loc=src.location), primals)
    placeholder = func_d.ReturnOp(*outs)
    placeholder.location = src.body.block.last_op.location
    block.add_op(placeholder)

    arg_primal, arg_derived = _attrs(src.arg_attrs, len(in_types),
                                     "tangent" if mode == "forward" else "cotangent")
    res_primal, res_derived = _attrs(src.res_attrs, len(out_types),
                                     "tangent" if mode == "forward" else "cotangent")
    fn = func_d.FuncOp(name, FunctionType.from_lists([], []), Region(block))
    fn.location = src.location
    module.body.block.insert_op_after(fn, src)

    em = Builder(block)
    em.loc = src.location
    if mode == "forward":
        tangents = ad.jvp(fn, dict(zip(primals, extra)), wanted=outs, builder=em)
        derived = [tangents.get(v) for v in outs]
        derived_types = out_types
        arg_attrs = arg_primal + arg_derived
        res_attrs = res_primal + res_derived
    else:
        seeds: dict = {}
        for v, c in zip(outs, extra):
            if ad.is_float(v):
                seeds[v] = em.add(seeds.get(v), c)
        cotangents = ad.vjp(fn, seeds, builder=em)
        derived = [cotangents.get(a) for a in primals]
        derived_types = in_types
        arg_attrs = arg_primal + res_derived
        res_attrs = res_primal + arg_derived
    em.loc = placeholder.location
    derived = [d if d is not None else em.full(0, t) for d, t in zip(derived, derived_types)]
    ret = func_d.ReturnOp(*outs, *derived)
    ret.location = placeholder.location
    block.insert_op_before(ret, placeholder)
    placeholder.detach()
    placeholder.erase()
    ad.remove_dead_code(block)

    fn.function_type = FunctionType.from_lists([a.type for a in block.args],
                                               [v.type for v in ret.operands])
    fn.arg_attrs = ArrayAttr(arg_attrs)
    fn.res_attrs = ArrayAttr(res_attrs)
    fn.sym_visibility = src.sym_visibility
    return fn


@dataclass(frozen=True)
class DifferentiatePass(ModulePass):
    name = "differentiate"

    mode: str = "reverse"
    func: str = "step"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if self.mode not in MODES:
            raise TracecError(f"differentiate: unknown mode '{self.mode}'",
                              hint="mode is forward or reverse")
        src = get_function(op, self.func, self.name)
        differentiate_function(op, src, self.mode)
