"""Small helpers shared by passes: locations, symbols, roles."""

from __future__ import annotations

from xdsl.dialects import func
from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DictionaryAttr,
    FileLineColLoc,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    UnregisteredOp,
    f64,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation

from tracec.diagnostics import SourceLoc, TracecError

ROLE = "tracec.role"
NAME = "tracec.name"


def op_name(op: Operation) -> str:
    """The op's name as written, also for ops tracec has no typed definition of
    (xDSL names those all ``builtin.unregistered``)."""
    if isinstance(op, UnregisteredOp):
        return op.op_name.data
    return op.name


def source_loc(op: Operation) -> SourceLoc | None:
    """The user's ``file:line:col`` of an op, walking up to its parents if it has none."""
    cur: Operation | None = op
    while cur is not None:
        loc = cur.location
        if isinstance(loc, FileLineColLoc):
            return SourceLoc(loc.filename.data, loc.line.data, loc.column.data)
        cur = cur.parent_op()
    return None


def op_error(op: Operation, message: str, hint: str | None = None) -> TracecError:
    return TracecError(message, loc=source_loc(op), op=op_name(op), hint=hint)


def functions(module: ModuleOp) -> dict[str, func.FuncOp]:
    return {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}


def get_function(module: ModuleOp, name: str, pass_name: str) -> func.FuncOp:
    fns = functions(module)
    if name not in fns:
        raise TracecError(f"{pass_name}: the module has no function @{name}",
                          hint=f"functions present: {', '.join(sorted(fns)) or 'none'}")
    return fns[name]


def role_attrs(entries: list[tuple[str, str]]) -> ArrayAttr:
    """An ``arg_attrs``/``res_attrs`` array from ``[(role, name)]`` (the inverse of
    :func:`roles`)."""
    return ArrayAttr([DictionaryAttr({ROLE: StringAttr(r), NAME: StringAttr(n)})
                      for r, n in entries])


def roles(attrs) -> list[tuple[str, str]]:
    """``[(role, name)]`` from an ``arg_attrs``/``res_attrs`` array."""
    out = []
    for i, d in enumerate(attrs.data if attrs is not None else []):
        role = d.data.get(ROLE)
        name = d.data.get(NAME)
        out.append((role.data if isinstance(role, StringAttr) else "",
                    name.data if isinstance(name, StringAttr) else f"#{i}"))
    return out


def to_attr(value) -> Attribute:
    """Python data (dict, list, str, int, float, bool) as a readable MLIR attribute."""
    if isinstance(value, Attribute):
        return value
    if isinstance(value, bool):
        return BoolAttr.from_bool(value)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, float):
        return FloatAttr(value, f64)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, dict):
        return DictionaryAttr({str(k): to_attr(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return ArrayAttr([to_attr(v) for v in value])
    raise TypeError(f"cannot store {type(value).__name__} as an attribute")


def from_attr(attr: Attribute):
    """The inverse of :func:`to_attr`."""
    if isinstance(attr, StringAttr):
        return attr.data
    if isinstance(attr, IntegerAttr):
        v = attr.value.data
        return bool(v) if attr.type == i1 else v
    if isinstance(attr, FloatAttr):
        return attr.value.data
    if isinstance(attr, DictionaryAttr):
        return {k: from_attr(v) for k, v in attr.data.items()}
    if isinstance(attr, ArrayAttr):
        return [from_attr(v) for v in attr.data]
    return str(attr)


def loc_text(op: Operation) -> str:
    loc = source_loc(op)
    return str(loc) if loc else "unknown"


def symbol_uses(module: ModuleOp) -> set[str]:
    """Names referenced by any symbol-ref attribute (calls, composites, ...)."""
    used: set[str] = set()
    for op in module.walk():
        attrs = list(op.attributes.values()) + list(op.properties.values())
        for attr in attrs:
            if isinstance(attr, SymbolRefAttr):
                used.add(attr.root_reference.data)
    return used


def remove_unused_private(module: ModuleOp, keep: set[str] = frozenset()) -> None:
    while True:
        used = symbol_uses(module)
        dead = [f for name, f in functions(module).items()
                if f.sym_visibility is not None and f.sym_visibility.data == "private"
                and name not in used and name not in keep]
        if not dead:
            return
        for f in dead:
            f.detach()
            f.erase()
