"""The layout holds: pass files are thin shells over libraries and never import each
other; passes never import jax."""

from __future__ import annotations

import ast
import os

from conftest import ROOT
from tracec.passes import PASSES

PASSES_DIR = os.path.join(ROOT, "passes")


def _imports(path: str) -> set[str]:
    tree = ast.parse(open(path).read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _pass_modules() -> dict[str, str]:
    """Registered pass name -> module name (tracec.passes.<file>)."""
    return {name: PASSES[name]().__module__ for name in PASSES}


def test_no_pass_file_imports_another_pass_file():
    pass_modules = set(_pass_modules().values())
    assert len(pass_modules) == len(PASSES)  # one pass per file
    for module in sorted(pass_modules):
        path = os.path.join(PASSES_DIR, module.rsplit(".", 1)[1] + ".py")
        others = (_imports(path) & pass_modules) - {module}
        assert not others, f"{path} imports the pass file(s) {sorted(others)}"


def test_passes_never_import_jax():
    for name in sorted(os.listdir(PASSES_DIR)):
        if name.endswith(".py"):
            bad = {m for m in _imports(os.path.join(PASSES_DIR, name))
                   if m == "jax" or m.startswith(("jax.", "jaxlib"))}
            assert not bad, f"passes/{name} imports {sorted(bad)}"
