"""Lower a ``tracec.Model`` to StableHLO: the step function plus initial values.

Parameters and state are flattened to leaves named by their pytree paths joined with
``/`` (``l1/w_in``). The step is lowered with those leaves as separate arguments,
in the order params, state, input; results are new state then output leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from tracec.diagnostics import SourceLoc, TracecError
from tracec.frontends.jax_frontend import (Model, custom_surrogates_survive, stop_gradients_survive,
                                          without_library_shifts)
from tracec.frontends.stablehlo_io import display_path, mlir_to_generic
from tracec.frontends.streams import packing


#: T used to trace a `sequence` model; the loop body does not depend on it.
SEQUENCE_TRACE_LENGTH = 3


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, e.g. "float32"

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class LoweredModel:
    step_text: str                 # generic MLIR, locations not yet normalised
    source_file: str
    params: list[TensorSpec]
    param_values: list[np.ndarray]
    state: list[TensorSpec]
    state_values: list[np.ndarray]
    input: TensorSpec
    outputs: list[TensorSpec]
    target: TensorSpec | None = None
    is_sequence: bool = False  # the lowered function is a scan over T; see extract-step
    loss_text: str | None = None  # generic MLIR of loss(output leaves..., target) -> scalar
    step_line: int = 0  # line of `def step` in source_file, for diagnostics
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # from lowering, "file:line:col: warning: ..."


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def leaf_names(tree, prefix: str = "") -> list[str]:
    paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    names = []
    for path, _leaf in paths:
        name = "/".join(_key_name(k) for k in path)
        names.append(name or prefix or "value")
    return names


def _specs(tree, prefix: str) -> tuple[list[TensorSpec], list[np.ndarray]]:
    leaves = jax.tree_util.tree_leaves(tree)
    values = [np.asarray(leaf) for leaf in leaves]
    names = leaf_names(tree, prefix)
    return [TensorSpec(n, tuple(v.shape), v.dtype.name) for n, v in zip(names, values)], values


def _user_error(model_file: str, what: str, err: Exception) -> TracecError:
    """Point at the deepest frame of the user's file in an exception's traceback."""
    import os
    import traceback

    line = 0
    for frame in traceback.extract_tb(err.__traceback__):
        if os.path.realpath(frame.filename) == os.path.realpath(model_file):
            line = frame.lineno or 0
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return TracecError(f"{what} failed: {type(err).__name__}: {msg}",
                       loc=SourceLoc(display_path(model_file), line))


def _lower_loss(model: Model, out_example, outputs: list[TensorSpec], model_file: str,
                notes: list) -> str:
    """``loss(output, target)`` with the output's leaves as separate arguments (and the
    target packed when it is several streams); warnings about it go to ``notes``."""
    out_tree = jax.tree_util.tree_structure(out_example)
    pack = packing(model.target)

    def flat_loss(*leaves):
        out = jax.tree_util.tree_unflatten(out_tree, leaves[:-1])
        value = model.loss(out, pack.unpack(leaves[-1]) if pack else leaves[-1])
        if jnp.shape(value) != ():
            raise TracecError(f"loss(output, target) must return a scalar, got shape "
                              f"{list(jnp.shape(value))}", loc=SourceLoc(display_path(model_file)))
        return value

    target = pack.spec if pack else model.target
    specs = [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in outputs] + [
        jax.ShapeDtypeStruct(target.shape, target.dtype)]
    try:
        # jax.lax.stop_gradient in the loss (a detached weight) holds for the learning
        # rules as it does for jax.grad, but for the max that log_softmax, softmax and
        # logsumexp subtract, which changes no gradient (docs/design.md section 2)
        loss = without_library_shifts(flat_loss, *specs, notes=notes)
        with stop_gradients_survive():
            lowered = jax.jit(loss, keep_unused=True).lower(*specs)
    except TracecError:
        raise
    except Exception as e:
        raise _user_error(model_file, "tracing loss(output, target)", e) from e
    return mlir_to_generic(lowered.compiler_ir("stablehlo"))


def lower_model(model: Model, *, seed: int = 0, model_file: str = "<model>") -> LoweredModel:
    """Evaluate the initial values and lower ``step`` to generic StableHLO text."""
    try:
        params = model.init_params(jax.random.PRNGKey(seed))
    except TracecError:
        raise
    except Exception as e:
        raise _user_error(model_file, "init_params(key)", e) from e
    try:
        state = model.init_state(model.batch)
    except TracecError:
        raise
    except Exception as e:
        raise _user_error(model_file, f"init_state({model.batch})", e) from e

    param_specs, param_values = _specs(params, "params")
    state_specs, state_values = _specs(state, "state")
    if not state_specs:
        raise TracecError("the model has no recurrent state: init_state returned no arrays",
                          loc=SourceLoc(display_path(model_file)))
    p_tree = jax.tree_util.tree_structure(params)
    s_tree = jax.tree_util.tree_structure(state)
    n_p = len(param_specs)
    n_s = len(state_specs)
    in_pack = packing(model.input)  # several input streams travel as one packed tensor
    x_spec = in_pack.spec if in_pack else model.input
    out_tree_box: list = []
    fn = model.step or model.sequence
    what = "step(params, state, x)" if model.step else "sequence(params, state, xs)"

    def flat_step(*leaves):
        p = jax.tree_util.tree_unflatten(p_tree, leaves[:n_p])
        s = jax.tree_util.tree_unflatten(s_tree, leaves[n_p:n_p + n_s])
        new_state, output = fn(p, s, in_pack.unpack(leaves[-1]) if in_pack else leaves[-1])
        if jax.tree_util.tree_structure(new_state) != s_tree:
            raise TracecError(
                f"{what} must return (new_state, output) with new_state shaped like init_state's "
                f"state: got {jax.tree_util.tree_structure(new_state)}, expected {s_tree}",
                loc=SourceLoc(display_path(model_file)))
        out_tree_box.append(output)
        return tuple(jax.tree_util.tree_leaves(new_state)) + tuple(jax.tree_util.tree_leaves(output))

    # A sequence function is traced over a short sequence; only its loop body matters.
    x_shape = ((SEQUENCE_TRACE_LENGTH,) if model.sequence else ()) + tuple(x_spec.shape)
    arg_specs = ([jax.ShapeDtypeStruct(v.shape, v.dtype) for v in param_values]
                 + [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in state_values]
                 + [jax.ShapeDtypeStruct(x_shape, x_spec.dtype)])
    try:
        # keep_unused: an argument the step ignores must keep its place in the signature;
        # jax.lax.stop_gradient in the step becomes tracec's stop-gradient composite, and a
        # Heaviside under the model's own custom_jvp/custom_vjp a spike with the user's derivative.
        with stop_gradients_survive(), custom_surrogates_survive() as surrogate_notes:
            lowered = jax.jit(flat_step, keep_unused=True).lower(*arg_specs)
    except TracecError:
        raise
    except Exception as e:
        raise _user_error(model_file, f"tracing {what}", e) from e

    out_avals = lowered.out_info
    out_leaves = jax.tree_util.tree_leaves(out_avals)
    for spec, aval in zip(state_specs, out_leaves[:n_s]):
        if tuple(aval.shape) != spec.shape or np.dtype(aval.dtype).name != spec.dtype:
            raise TracecError(
                f"step changes the shape or dtype of state '{spec.name}': "
                f"{spec.dtype}{list(spec.shape)} -> {np.dtype(aval.dtype).name}{list(aval.shape)}",
                loc=SourceLoc(display_path(model_file)))
    output_names = leaf_names(out_tree_box[0], "output") if out_tree_box else []
    lead = 1 if model.sequence else 0  # per-step outputs drop the stacked time axis
    outputs = [TensorSpec(f"output/{n}" if n != "output" else n, tuple(a.shape)[lead:],
                          np.dtype(a.dtype).name)
               for n, a in zip(output_names, out_leaves[n_s:])]
    target = None
    extra = {}
    if in_pack:
        extra["input_leaves"] = in_pack.as_json()
    if model.target is not None:
        t_pack = packing(model.target)
        t_spec = t_pack.spec if t_pack else model.target
        target = TensorSpec("target", tuple(t_spec.shape), np.dtype(t_spec.dtype).name)
        if t_pack:
            extra["target_leaves"] = t_pack.as_json()
    loss_text = None
    if model.loss is not None and model.target is not None and out_tree_box:
        loss_text = _lower_loss(model, out_tree_box[0], outputs, model_file, surrogate_notes)
    step_line = 0
    try:
        import inspect
        import os

        if os.path.realpath(inspect.getsourcefile(fn) or "") == os.path.realpath(model_file):
            step_line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        pass
    return LoweredModel(
        step_line=step_line,
        step_text=mlir_to_generic(lowered.compiler_ir("stablehlo")),
        source_file=model_file,
        params=param_specs, param_values=param_values,
        state=state_specs, state_values=state_values,
        input=TensorSpec("x", tuple(x_spec.shape), np.dtype(x_spec.dtype).name),
        outputs=outputs, target=target, is_sequence=model.sequence is not None,
        loss_text=loss_text, extra=extra, warnings=list(dict.fromkeys(surrogate_notes)))
