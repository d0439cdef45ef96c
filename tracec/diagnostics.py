"""Diagnostics for people: ``model.py:12:8: error: what went wrong; what to do``.

Every error tracec raises on purpose is a :class:`TracecError`. The CLI prints it as
one line (plus optional notes) and exits non-zero; ``--debug`` adds the traceback.
Passes never print: they leave warnings in the module attribute ``tracec.warnings``
(see ``tracec.passes.autodiff.engine``), which the driver collects and the CLI prints.
"""

from __future__ import annotations

import os

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLoc:
    """A user-facing source position (1-based line, 1-based column as MLIR prints)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"
        return self.file


class TracecError(Exception):
    """An error meant for the user of tracec.

    ``loc`` names the user's file (and line where there is one), ``op`` the IR
    operation involved, ``hint`` what to do about it.
    """

    def __init__(self, message: str, *, loc: SourceLoc | None = None, op: str | None = None,
                 hint: str | None = None, exit_code: int = 1):
        self.message = message
        self.loc = loc
        self.op = op
        self.hint = hint
        self.exit_code = exit_code
        super().__init__(self.format())

    def format(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        text = f"{where}error: {self.message}"
        if self.op:
            text += f" (op '{self.op}')"
        if self.hint:
            text += f"; {self.hint}"
        return text


@dataclass
class Diagnostic:
    severity: str
    message: str
    loc: SourceLoc | None = None

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        return f"{where}{self.severity}: {self.message}"


def display_path(path: str) -> str:
    """How a file is named in diagnostics: relative to the working directory if inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
