"""The layout holds: pass files are thin shells over libraries (the packages ir/,
analysis/, autodiff/, learning/); no file in passes/ imports a pass file other than
itself; nothing in passes/ imports jax; the libraries never import each other in a
cycle."""

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


def _python_files() -> dict[str, str]:
    """Module name (tracec.passes....) -> path, for every file under passes/."""
    out = {}
    for dirpath, _, names in os.walk(PASSES_DIR):
        for name in names:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), PASSES_DIR)[:-3]
                parts = [p for p in rel.split(os.sep) if p != "__init__"]
                out[".".join(["tracec.passes", *parts])] = os.path.join(dirpath, name)
    return out


def test_no_file_in_passes_imports_a_pass_file():
    pass_modules = set(_pass_modules().values())
    assert len(pass_modules) == len(PASSES)  # one pass per file
    files = _python_files()
    assert pass_modules <= set(files)
    for module, path in sorted(files.items()):
        if module == "tracec.passes":
            continue  # the registry names every pass, importing each lazily
        others = (_imports(path) & pass_modules) - {module}
        assert not others, f"{path} imports the pass file(s) {sorted(others)}"


def test_passes_never_import_jax():
    for module, path in sorted(_python_files().items()):
        bad = {m for m in _imports(path) if m == "jax" or m.startswith(("jax.", "jaxlib"))}
        assert not bad, f"{path} imports {sorted(bad)}"


def test_libraries_have_no_import_cycle():
    files = _python_files()
    libraries = {m for m in files if m.count(".") >= 3}  # tracec.passes.<package>.<module>
    graph = {m: {i for i in _imports(files[m]) if i in libraries} for m in libraries}
    state: dict = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for n in sorted(graph[m]):
            visit(n, path + [m])
        state[m] = "done"

    for m in sorted(libraries):
        visit(m, [])
