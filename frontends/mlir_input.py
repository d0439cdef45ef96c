"""A StableHLO file (``tracec FILE.mlir`` / ``.mlirbc``) as tracec's input module.

The file holds a step function and, optionally, ``@loss``, ``@init_params`` and
``@init_state``. Roles may be written as ``tracec.role`` / ``tracec.name`` attributes
or left to the defaults below; either way this module writes them all out, so the
passes see the same module as for a JAX model (frontends/assemble.py):

- step: ``@step``, else ``@main``, else the one public function that is not one of
  the others. Arguments: parameters, then state, then one input. Without
  ``tracec.role`` on its arguments, ``@init_params`` / ``@init_state`` (at least one
  of them) say how many parameters and states there are: their results are the
  parameters / the state in argument order; the last argument is the input.
  Results: the new states in the order of the state arguments, then the outputs.
- ``@loss(outputs..., target) -> tensor<f32>``: without roles, the first arguments
  are the step's outputs in order and the last the target.
- ``@init_params`` / ``@init_state``: no arguments, one result per parameter / state
  (missing ones: zeros).

What other producers write is read as it comes: torch-mlir's ``@main`` with unnamed
``%arg`` arguments (the defaults above), its tensor ``arith.constant`` (made
``stablehlo.constant`` here) and ``dense_resource`` constants (inlined when the file is
read, frontends/stablehlo_io.py); an op's location is the producer's, e.g. the line of
the PyTorch or JAX source that wrote it.
"""

from __future__ import annotations

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (ArrayAttr, DenseIntOrFPElementsAttr, DictionaryAttr,
                                   FileLineColLoc, ModuleOp, StringAttr, TensorType,
                                   UnregisteredOp, f32)
from xdsl.rewriter import Rewriter

from tracec.diagnostics import SourceLoc, TracecError
from tracec.dialects import stablehlo as shlo
from tracec.frontends.assemble import _ELEMENT_TYPES, NAME, ROLE, constant_function
from tracec.frontends.lower_jax import TensorSpec
from tracec.frontends.stablehlo_io import display_path, import_text

_OWN = ("loss", "init_params", "init_state")
_SEE = "see docs/abi.md, 'StableHLO input files'"


def _role(d) -> str | None:
    r = d.data.get(ROLE) if isinstance(d, DictionaryAttr) else None
    return r.data if isinstance(r, StringAttr) else None


def _name(d) -> str | None:
    n = d.data.get(NAME) if isinstance(d, DictionaryAttr) else None
    return n.data if isinstance(n, StringAttr) else None


def _with_role(d, role: str, name: str) -> DictionaryAttr:
    """``d`` (other attributes kept) with ``tracec.role`` and ``tracec.name`` set."""
    data = dict(d.data) if isinstance(d, DictionaryAttr) else {}
    data[ROLE] = StringAttr(role)
    data[NAME] = StringAttr(name)
    return DictionaryAttr(data)


def _attrs(attrs, n: int) -> list:
    return list(attrs.data) if attrs is not None else [DictionaryAttr({})] * n


def _types(ts) -> str:
    return ", ".join(str(t) for t in ts) or "none"


class _File:
    def __init__(self, path: str, module: ModuleOp):
        self.shown = display_path(path)
        self.module = module
        self.fns = {op.sym_name.data: op for op in module.ops if isinstance(op, func.FuncOp)}

    def error(self, msg: str, hint: str = _SEE, at: func.FuncOp | None = None) -> TracecError:
        """A one-line error at the function ``at`` (its line in the file) or the file."""
        loc = SourceLoc(self.shown)
        where = getattr(at, "location", None)
        if isinstance(where, FileLineColLoc):
            loc = SourceLoc(self.shown, where.line.data, where.column.data)
        return TracecError(msg, loc=loc, hint=hint)

    # -- the step -----------------------------------------------------------------

    def find_step(self) -> func.FuncOp:
        for name in ("step", "main"):
            if name in self.fns:
                return self.fns[name]
        publics = [op for name, op in self.fns.items() if name not in _OWN
                   and (op.sym_visibility is None or op.sym_visibility.data == "public")]
        if len(publics) == 1:
            return publics[0]
        raise self.error("cannot find the step function",
                         hint="name it @step or @main (functions present: "
                              f"{', '.join(sorted(self.fns)) or 'none'})")

    def init_results(self, fn_name: str) -> list | None:
        fn = self.fns.get(fn_name)
        if fn is None:
            return None
        if fn.function_type.inputs.data:
            raise self.error(f"@{fn_name} takes arguments",
                             hint=f"@{fn_name} takes none and returns one value per "
                                  f"{'parameter' if fn_name == 'init_params' else 'state'}", at=fn)
        return list(fn.function_type.outputs.data)

    def argument_roles(self, step: func.FuncOp) -> None:
        """Every argument gets a role and a name; the order must be params, state, input."""
        types = list(step.function_type.inputs.data)
        attrs = _attrs(step.arg_attrs, len(types))
        roles = [_role(d) for d in attrs]
        sname = step.sym_name.data
        if any(r is None for r in roles):
            if any(r is not None for r in roles):
                raise self.error(f"@{sname} marks some arguments with tracec.role and not others",
                                 hint="mark every argument (\"param\", \"state\", \"input\") or none", at=step)
            p_res, s_res = self.init_results("init_params"), self.init_results("init_state")
            if p_res is None and s_res is None:
                raise self.error(
                    f"@{sname} must mark every argument with tracec.role, or the file must have "
                    "@init_params or @init_state to tell the parameters from the state",
                    hint="mark each argument {tracec.role = \"param\" | \"state\" | \"input\"}, "
                         "or add @init_params() / @init_state() returning the initial "
                         "parameters / state in argument order (the last argument is the input)",
                    at=step)
            n_in = 1
            n_p = len(p_res) if p_res is not None else len(types) - n_in - len(s_res)
            n_s = len(s_res) if s_res is not None else len(types) - n_in - n_p
            if n_p < 0 or n_s < 0 or n_p + n_s + n_in != len(types):
                raise self.error(
                    f"@{sname} has {len(types)} arguments, but @init_params and @init_state give "
                    f"{n_p} parameters and {n_s} states (plus one input)",
                    hint="the arguments are the parameters, the state, then the input", at=step)
            roles = ["param"] * n_p + ["state"] * n_s + ["input"] * n_in
        else:
            bad = sorted({r for r in roles if r not in ("param", "state", "input")})
            if bad:
                raise self.error(f"@{sname} has an argument with unknown tracec.role "
                                 f"\"{bad[0]}\"", hint="the roles are \"param\", \"state\", \"input\"", at=step)
            order = {"param": 0, "state": 1, "input": 2}
            if roles.count("input") != 1 or roles[-1] != "input" or any(
                    order[a] > order[b] for a, b in zip(roles, roles[1:])):
                raise self.error(f"@{sname}'s arguments have the roles ({', '.join(roles)})",
                                 hint="give the parameters, then the state, then one input", at=step)
        # names: the argument's own, else the init function's result's, else param0, state0...
        named = []
        for role in ("param", "state"):
            fn = self.fns.get({"param": "init_params", "state": "init_state"}[role])
            res = _attrs(fn.res_attrs, len(fn.function_type.outputs.data)) if fn else []
            idx = [i for i, r in enumerate(roles) if r == role]
            for k, i in enumerate(idx):
                name = _name(attrs[i]) or (_name(res[k]) if k < len(res) else None) or f"{role}{k}"
                named.append((i, name))
        names = dict(named)
        # The input is `x` whatever the file calls it: the learning entry points and the
        # runtime call it so (as for a JAX model).
        names.update({i: "x" for i, r in enumerate(roles) if r == "input"})
        step.arg_attrs = ArrayAttr([_with_role(d, r, names[i])
                                    for i, (d, r) in enumerate(zip(attrs, roles))])

    def result_roles(self, step: func.FuncOp) -> None:
        """Results without ``tracec.role``: the new states in the order of the state
        arguments, then the outputs. Partly marked results are an error."""
        results = list(step.function_type.outputs.data)
        attrs = _attrs(step.res_attrs, len(results))
        marked = [_role(d) is not None for d in attrs]
        sname = step.sym_name.data
        if marked and all(marked):
            roles = [_role(d) for d in attrs]
            n_s = roles.count("state")
            if roles != ["state"] * n_s + ["output"] * (len(roles) - n_s) or n_s == len(roles):
                raise self.error(f"@{sname}'s results have the roles ({', '.join(roles)})",
                                 hint="return the new states, then at least one output", at=step)
            step.res_attrs = ArrayAttr([_with_role(d, r, _name(d) or f"{r}{i}")
                                        for i, (d, r) in enumerate(zip(attrs, roles))])
            return
        if any(marked):
            raise self.error(
                f"@{sname} marks some results with tracec.role and not others",
                hint="mark every result (\"state\" then \"output\") or none (then the first "
                     "results are the new states in argument order, the rest outputs)", at=step)
        states = [(_name(d), t) for d, t in zip(step.arg_attrs.data, step.function_type.inputs.data)
                  if _role(d) == "state"]
        if len(results) <= len(states) or any(r != t for r, (_, t) in zip(results, states)):
            want = ", ".join(f"{n}: {t}" for n, t in states)
            raise self.error(
                f"@{sname} has no tracec.role on its results, and they do not start with the "
                f"new state ({want}) followed by at least one output",
                hint="return the new states in argument order, then the outputs, or mark the "
                     "results with {tracec.role = \"state\" | \"output\", tracec.name = \"...\"}", at=step)
        n_out = len(results) - len(states)
        out_names = ["output"] if n_out == 1 else [f"output/{i}" for i in range(n_out)]
        step.res_attrs = ArrayAttr(
            [_with_role(d, "state", n) for d, (n, _) in zip(attrs, states)]
            + [_with_role(d, "output", n) for d, n in zip(attrs[len(states):], out_names)])

    # -- init functions -----------------------------------------------------------

    def init_functions(self, step: func.FuncOp) -> None:
        args = list(zip(step.arg_attrs.data, step.function_type.inputs.data))
        for fn_name, role in (("init_params", "param"), ("init_state", "state")):
            want = [(_name(d), t) for d, t in args if _role(d) == role]
            fn = self.fns.get(fn_name)
            if fn is None:
                specs, values = [], []
                for name, t in want:
                    dtype = next((k for k, v in _ELEMENT_TYPES.items() if v == t.element_type), None)
                    if dtype is None:
                        raise self.error(f"the {role} '{name}' has element type {t.element_type}, "
                                         "which tracec cannot initialise",
                                         hint=f"add @{fn_name}() returning its initial value",
                                         at=step)
                    shape = tuple(t.get_shape())
                    specs.append(TensorSpec(name, shape, dtype))
                    values.append(np.zeros(shape, dtype))
                self.module.body.block.add_op(constant_function(fn_name, specs, values, role))
                continue
            self.init_results(fn_name)  # no arguments
            got = list(fn.function_type.outputs.data)
            if got != [t for _, t in want]:
                raise self.error(
                    f"@{fn_name} returns ({_types(got)}), but @{step.sym_name.data}'s "
                    f"{role} arguments are ({_types(t for _, t in want)})",
                    hint=f"return one value per {role} argument, in argument order", at=fn)
            attrs = _attrs(fn.res_attrs, len(got))
            fn.res_attrs = ArrayAttr([_with_role(d, role, n) for d, (n, _) in zip(attrs, want)])

    # -- the loss -----------------------------------------------------------------

    def loss_roles(self, step: func.FuncOp) -> None:
        """``@loss(outputs..., target) -> tensor<f32>``: roles checked or defaulted."""
        loss = self.fns.get("loss")
        if loss is None:
            return
        outs = [(_name(d), t) for d, t in zip(step.res_attrs.data, step.function_type.outputs.data)
                if _role(d) == "output"]
        out_types = [t for _, t in outs]
        shape = f"@loss({_types(out_types)}, target) -> tensor<f32>"
        results = list(loss.function_type.outputs.data)
        if results != [TensorType(f32, [])]:
            raise self.error(f"@loss returns ({_types(results)}), not one tensor<f32>",
                             hint=f"the loss is {shape}: the step's outputs, then the target", at=loss)
        types = list(loss.function_type.inputs.data)
        attrs = _attrs(loss.arg_attrs, len(types))
        roles = [_role(d) for d in attrs]
        if all(r is None for r in roles):
            roles = ["output"] * len(outs) + ["target"]
        elif any(r is None for r in roles):
            raise self.error("@loss marks some arguments with tracec.role and not others",
                             hint="mark every argument (\"output\"..., then \"target\") or none", at=loss)
        if (len(types) != len(outs) + 1 or roles != ["output"] * len(outs) + ["target"]
                or types[:-1] != out_types):
            raise self.error(
                f"@loss takes ({_types(types)}), but the step's outputs are ({_types(out_types)})",
                hint=f"the loss is {shape}: the step's outputs in order, then the target", at=loss)
        if not isinstance(types[-1], TensorType):
            raise self.error(f"@loss's target is {types[-1]}, not a tensor", at=loss)
        names = [n for n, _ in outs] + [_name(attrs[-1]) or "target"]
        loss.arg_attrs = ArrayAttr([_with_role(d, r, n) for d, r, n in zip(attrs, roles, names)])
        loss.res_attrs = ArrayAttr([_with_role(_attrs(loss.res_attrs, 1)[0], "loss", "loss")])
        loss.sym_visibility = StringAttr("private")


#: dialects that torch-mlir writes for its other output types: a file in one of them
#: was exported for another backend
_OTHER_OUTPUT_TYPES = {"torch": "torch", "tosa": "tosa", "linalg": "linalg_on_tensors",
                       "tm_tensor": "linalg_on_tensors"}


def _check_stablehlo(f: _File) -> None:
    """A file exported to torch-mlir's torch, tosa or linalg form is refused at its first
    such op, saying how to export StableHLO instead."""
    for op in f.module.walk():
        name = op.op_name.data if isinstance(op, UnregisteredOp) else op.name
        dialect = name.split(".", 1)[0]
        if dialect in _OTHER_OUTPUT_TYPES:
            loc = op.location
            where = (SourceLoc(loc.filename.data, loc.line.data, loc.column.data)
                     if isinstance(loc, FileLineColLoc) else SourceLoc(f.shown))
            raise TracecError(
                f"{f.shown} holds {name}, an op of the {dialect} dialect, not StableHLO",
                loc=where, hint="export it with output_type=\"stablehlo\" "
                                "(torch_mlir.fx.export_and_import(...)); docs/abi.md, "
                                "'From PyTorch (torch-mlir)'")


def _as_stablehlo_constants(module: ModuleOp) -> None:
    """``arith.constant`` of a tensor (torch-mlir writes every literal so) becomes the
    ``stablehlo.constant`` it means: the passes fold, differentiate and move constants
    by that op's type. Other ``arith`` ops are left as they are."""
    for op in list(module.walk()):
        if (isinstance(op, UnregisteredOp) and op.op_name.data == "arith.constant"
                and len(op.results) == 1 and isinstance(op.results[0].type, TensorType)
                and isinstance(op.properties.get("value"), DenseIntOrFPElementsAttr)
                and op.results[0].type == op.properties["value"].type):
            const = shlo.ConstantOp(op.properties["value"])
            const.location = op.location
            Rewriter.replace_op(op, const)


def assemble_mlir_file(path: str, generic_text: str) -> ModuleOp:
    """The module of a StableHLO file: ``@step`` (private) with every role and name
    written out, ``@init_params`` / ``@init_state`` (zeros where the file has none) and,
    if the file has one, ``@loss`` with its roles."""
    # A location is what the producer recorded: the model's own source line where it
    # wrote one (torch-mlir and jax.export record the Python line of each op), else the
    # op's line in this file; library frames are skipped either way.
    f = _File(path, import_text(generic_text, source_file=None, source_name=display_path(path)))
    _check_stablehlo(f)
    _as_stablehlo_constants(f.module)
    step = f.find_step()
    f.argument_roles(step)
    f.result_roles(step)
    f.init_functions(step)
    f.loss_roles(step)
    step.sym_name = StringAttr("step")
    step.sym_visibility = StringAttr("private")
    return f.module


def missing_loss_hint(module: ModuleOp) -> str:
    """What to add to a file without ``@loss``, with the step's output types."""
    step = next((op for op in module.ops if isinstance(op, func.FuncOp)
                 and op.sym_name.data == "step"), None)
    outs = []
    if step is not None and step.res_attrs is not None:
        outs = [str(t) for d, t in zip(step.res_attrs.data, step.function_type.outputs.data)
                if _role(d) == "output"]
    args = ", ".join(f"%out{i}: {t}" for i, t in enumerate(outs))
    return (f"add func.func @loss({args}{', ' if args else ''}%target: tensor<...>) -> tensor<f32> "
            "(the step's outputs, then the target; docs/abi.md, 'StableHLO input files'), "
            "or compile with --algorithm forward")


__all__ = ["assemble_mlir_file", "missing_loss_hint"]
