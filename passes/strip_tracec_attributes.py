"""strip-tracec-attributes: the last rewrite before a backend: drop what only tracec needs.

Removes private functions no entry point uses (``@step`` once entries are built)
and tracec's own attributes: those of arguments and results (the manifest in
``iree.reflection`` keeps names and roles) and those of ops (``tracec.fusion_barrier``).

Before: entry points built (make-entry-points). After: only public entries and
the private functions they reference (composite decompositions) remain.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, ModuleOp
from xdsl.passes import ModulePass

from tracec.passes.ir.module import remove_unused_private


def _drop_tracec(arr: ArrayAttr | None) -> ArrayAttr | None:
    if arr is None:
        return None
    return ArrayAttr([DictionaryAttr({k: v for k, v in d.data.items() if not k.startswith("tracec.")})
                      for d in arr.data])


@dataclass(frozen=True)
class StripTracecAttributesPass(ModulePass):
    name = "strip-tracec-attributes"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        remove_unused_private(op)
        op.attributes.pop("tracec.warnings", None)  # the driver has collected them
        for fn in op.ops:
            if isinstance(fn, func.FuncOp):
                fn.arg_attrs = _drop_tracec(fn.arg_attrs)
                fn.res_attrs = _drop_tracec(fn.res_attrs)
        for inner in op.walk():
            for k in [k for k in inner.attributes if k.startswith("tracec.")]:
                del inner.attributes[k]
