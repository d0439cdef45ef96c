"""Load a user's ``model.py`` and find its one ``tracec.Model``."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

from tracec.diagnostics import SourceLoc, TracecError
from tracec.frontends.stablehlo_io import display_path


def _model_line(e: BaseException, path: str) -> int:
    """The last line of ``path`` in ``e``'s traceback (0 if none)."""
    line = 0
    for frame in traceback.extract_tb(e.__traceback__):
        if os.path.realpath(frame.filename) == os.path.realpath(path):
            line = frame.lineno or 0
    return line


def load_model(path: str, name: str | None = None):
    """Execute ``path`` and return ``(model, variable_name)``.

    Exactly one ``tracec.Model`` must be defined at module level, or ``name`` picks one.
    """
    from tracec.frontends.jax_frontend import Model

    shown = display_path(path)
    if not os.path.isfile(path):
        raise TracecError(f"no such file: {path}")
    try:
        source = open(path, encoding="utf-8").read()
        code = compile(source, path, "exec")
    except SyntaxError as e:
        raise TracecError(f"syntax error: {e.msg}", loc=SourceLoc(shown, e.lineno or 0, e.offset or 0),
                          hint="fix the Python syntax of the model file") from e
    except UnicodeDecodeError as e:
        raise TracecError("the model file is not UTF-8 text", loc=SourceLoc(shown)) from e

    module_name = f"_tracec_model_{abs(hash(os.path.realpath(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    sys.modules[module_name] = module
    # Let the model import helpers that sit beside it.
    model_dir = os.path.dirname(os.path.abspath(path))
    # Helpers beside the model (`from common import ...`) must be this folder's, not a
    # same-named module another model loaded earlier in this process.
    for stale in [n for n, m in list(sys.modules.items())
                  if os.path.isfile(os.path.join(model_dir, n + ".py"))
                  and os.path.dirname(os.path.abspath(getattr(m, "__file__", "") or "")) != model_dir]:
        del sys.modules[stale]
    sys.path.insert(0, model_dir)
    try:
        exec(code, module.__dict__)
    except TracecError as e:
        if e.loc is not None:
            raise
        # An error tracec raised while the model file ran (e.g. a bad tracec.Model(...)
        # argument): point at the model file's line.
        raise TracecError(e.message, loc=SourceLoc(shown, _model_line(e, path)), op=e.op,
                          hint=e.hint, exit_code=e.exit_code) from e
    except Exception as e:
        line = _model_line(e, path)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TracecError(f"running the model file raised {type(e).__name__}: {msg}",
                          loc=SourceLoc(shown, line)) from e
    finally:
        if sys.path and sys.path[0] == model_dir:
            sys.path.pop(0)

    models = {k: v for k, v in vars(module).items() if isinstance(v, Model)}
    if name is not None:
        if name not in models:
            found = ", ".join(sorted(models)) or "none"
            raise TracecError(f"no tracec.Model named '{name}' (found: {found})", loc=SourceLoc(shown))
        return models[name], name
    if not models:
        raise TracecError("no tracec.Model found", loc=SourceLoc(shown),
                          hint="define one at module level: model = tracec.Model(init_params=..., "
                               "init_state=..., step=..., loss=..., input=..., target=...)")
    if len(models) > 1:
        raise TracecError(f"{len(models)} tracec.Model objects found ({', '.join(sorted(models))})",
                          loc=SourceLoc(shown), hint="choose one with --model NAME")
    (var, model), = models.items()
    return model, var
