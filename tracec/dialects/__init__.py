"""xDSL dialects tracec registers, and the one way to make a context for them."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin
from xdsl.dialects.func import Func

from tracec.dialects.stablehlo import StableHLO
from tracec.dialects.tracec import Tracec


def make_context() -> Context:
    """A context with tracec's typed dialects; every other op parses as unregistered."""
    ctx = Context(allow_unregistered=True)
    for dialect in (Builtin, Func, StableHLO, Tracec):
        ctx.load_dialect(dialect)
    return ctx
