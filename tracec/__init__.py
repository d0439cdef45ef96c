"""tracec: an ahead-of-time compiler for online learning of recurrent and spiking networks.

The user-facing names (``Model``, ``spike``, ``stop_gradient``, ``compile``) are loaded
lazily: ``import tracec.runtime`` must work on a deployment machine that has only
``iree.runtime`` and numpy, so this file imports neither jax nor xdsl.
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# Source-checkout layout (docs/design.md section 1): `passes/`, `runtime/`, `frontends/` live
# beside this folder and are mapped into `tracec.*` by pyproject's package-dir. When
# Python is started from the repository root it finds this source folder before the
# installed package, so make the sibling folders importable as `tracec.<name>` too.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_root, "runtime", "__init__.py")) and _root not in __path__:
    __path__.append(_root)  # type: ignore[name-defined]

_LAZY = {
    "Model": ("tracec.frontends.jax_frontend", "Model"),
    "spike": ("tracec.frontends.jax_frontend", "spike"),
    "stop_gradient": ("tracec.frontends.jax_frontend", "stop_gradient"),
    "SURROGATES": ("tracec.frontends.jax_frontend", "SURROGATES"),
    "compile": ("tracec.driver", "compile"),
    "Artifact": ("tracec.driver", "Artifact"),
    "CompileOptions": ("tracec.options", "CompileOptions"),
    "TracecError": ("tracec.diagnostics", "TracecError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracec' has no attribute {name!r}")
