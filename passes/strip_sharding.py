"""strip-sharding: remove Shardy (``sdy.*``) ops and sharding attributes.

JAX may emit ``sdy.mesh`` ops, ``sdy.sharding`` argument attributes and
``mhlo.sharding`` attributes; IREE rejects the ``sdy`` dialect, and single-device
artifacts need none of them.

Before: any StableHLO module. After: no op of dialect ``sdy``, no attribute whose
name starts with ``sdy.`` or is ``mhlo.sharding``/``mhlo.layout_mode`` on ops,
arguments or results. Nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp
from xdsl.passes import ModulePass

from tracec.passes.ir.module import op_name


def _is_sharding_attr(name: str) -> bool:
    return name.startswith("sdy.") or name in ("mhlo.sharding", "mhlo.layout_mode")


def _clean(d: DictionaryAttr) -> DictionaryAttr:
    return DictionaryAttr({k: v for k, v in d.data.items() if not _is_sharding_attr(k)})


@dataclass(frozen=True)
class StripShardingPass(ModulePass):
    name = "strip-sharding"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in list(op.walk()):
            if op_name(inner).startswith("sdy."):
                if inner.results and any(r.uses for r in inner.results):
                    # sdy.sharding_constraint and friends: pass the operand through.
                    for res, operand in zip(inner.results, inner.operands):
                        res.replace_all_uses_with(operand)
                inner.detach()
                inner.erase()
                continue
            for key in [k for k in inner.attributes if _is_sharding_attr(k)]:
                del inner.attributes[key]
            if isinstance(inner, func.FuncOp):
                for attr in ("arg_attrs", "res_attrs"):
                    arr = getattr(inner, attr)
                    if arr is not None:
                        setattr(inner, attr, ArrayAttr([_clean(d) for d in arr.data]))
        for key in [k for k in op.attributes if _is_sharding_attr(k)]:
            del op.attributes[key]
