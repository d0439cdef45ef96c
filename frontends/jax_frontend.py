"""The JAX frontend: the user contract of docs/design.md section 2.

``Model`` bundles one time step of a network; ``spike`` and ``stop_gradient`` are the
two primitives that must survive lowering to StableHLO, so both lower to a
``stablehlo.composite`` whose attributes say what they are, while ``jax.grad`` of
the very same function still uses the surrogate (a user can run BPTT on the model).
While tracec lowers a model's step, ``jax.lax.stop_gradient`` lowers to the same
composite as ``stop_gradient`` (``stop_gradients_survive``), and a Heaviside under the
model's own ``jax.custom_jvp`` or ``jax.custom_vjp`` to a ``tracec.spike`` that carries
the user's derivative (``custom_surrogates_survive``); such a rule on a smooth
element-wise function, to a ``tracec.custom_derivative`` that carries it. The loss is
lowered the same way, less the stop-gradient that JAX's own log_softmax, softmax and
logsumexp put on their maximum (``without_library_shifts``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from tracec.diagnostics import Diagnostic, SourceLoc, TracecError, display_path
from tracec.surrogates import CUSTOM_SURROGATE, DEFAULT_ALPHA, DEFAULT_SURROGATE, SURROGATES, problem

SPIKE_COMPOSITE = "tracec.spike"
#: an element-wise function with the derivative its own rule gives (results: value, derivative)
CUSTOM_DERIVATIVE_COMPOSITE = "tracec.custom_derivative"
STOP_GRADIENT_COMPOSITE = "tracec.stop_gradient"


class _JaxMath:
    """The arithmetic ``tracec.surrogates``' formulas are written against, in jax.numpy."""

    const = staticmethod(lambda value, like: value)
    add = staticmethod(jnp.add)
    sub = staticmethod(jnp.subtract)
    neg = staticmethod(jnp.negative)
    mul = staticmethod(jnp.multiply)
    div = staticmethod(jnp.divide)
    abs = staticmethod(jnp.abs)
    exp = staticmethod(jnp.exp)
    maximum = staticmethod(jnp.maximum)


def surrogate_derivative(v, surrogate: str, alpha: float):
    """The surrogate derivative of the Heaviside at ``v`` (``tracec.surrogates``)."""
    return SURROGATES[surrogate](_JaxMath, v, alpha)


def _heaviside(v, *, surrogate, alpha):
    del surrogate, alpha  # carried as composite attributes only
    return (v > 0).astype(v.dtype)


def _elementwise_composite(fn, name: str, **attributes):
    """``stablehlo.composite`` of an element-wise ``fn``, usable under ``jax.vmap``.

    JAX has no batching rule for composites; an element-wise op is its own batched
    version, so the rule just applies the composite to the batched operand.
    """

    @custom_vmap
    def composite(v):
        return jax.lax.composite(fn, name=name)(v, **attributes)

    @composite.def_vmap
    def _batched(axis_size, in_batched, v):
        del axis_size
        return composite(v), in_batched[0]

    return composite


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _spike(v, surrogate: str, alpha: float):
    return _elementwise_composite(_heaviside, SPIKE_COMPOSITE, surrogate=surrogate,
                                  alpha=float(alpha))(v)


@_spike.defjvp
def _spike_jvp(surrogate, alpha, primals, tangents):
    (v,), (t,) = primals, tangents
    return _spike(v, surrogate, alpha), surrogate_derivative(v, surrogate, alpha).astype(v.dtype) * t


def spike(v, surrogate: str = DEFAULT_SURROGATE, alpha: float = DEFAULT_ALPHA):
    """Heaviside ``v > 0`` forward, surrogate derivative backward.

    ``surrogate`` is one of ``sigmoid``, ``fast-sigmoid``, ``triangle``, ``arctan``,
    ``gaussian``; ``alpha`` its parameter (docs/design.md section 2).
    """
    wrong = problem(surrogate, alpha)
    if wrong is not None:
        raise TracecError(wrong[0], hint=wrong[1])
    return _spike(jnp.asarray(v), surrogate, float(alpha))


def _identity(x):
    return x


@jax.custom_jvp
def _stop_gradient(x):
    return _elementwise_composite(_identity, STOP_GRADIENT_COMPOSITE)(x)


@_stop_gradient.defjvp
def _stop_gradient_jvp(primals, tangents):
    (x,), _ = primals, tangents
    return _stop_gradient(x), jnp.zeros_like(x)


def stop_gradient(x):
    """Like ``jax.lax.stop_gradient``, but survives lowering to StableHLO."""
    return jax.tree_util.tree_map(lambda a: _stop_gradient(jnp.asarray(a)), x)


def _stop_gradient_as_composite(x):
    return jax.lax.composite(_identity, name=STOP_GRADIENT_COMPOSITE)(x)


@contextmanager
def stop_gradients_survive():
    """While lowering a model's step: ``jax.lax.stop_gradient`` lowers to the composite
    of ``tracec.stop_gradient`` instead of vanishing, so the passes honour it as
    ``jax.grad`` does (a detached reset). The lowering rule JAX had is put back on exit.
    The loss goes through ``without_library_shifts`` first."""
    from jax.interpreters import mlir

    rule = mlir.lower_fun(_stop_gradient_as_composite, multiple_results=False)
    with _lowering_rule(jax.lax.stop_gradient_p, lambda previous: rule):
        yield


#: JAX's own functions that subtract a stop-gradient maximum before a computation that
#: does not change when its input is shifted (log_softmax, softmax, logsumexp): the
#: derivative through that maximum is zero, so dropping the stop-gradient changes no
#: gradient (and honouring it breaks IREE 3.13's aggressive fusion of a training step)
_SHIFT_INVARIANT = frozenset({"log_softmax", "softmax", "_softmax", "logsumexp"})
_CALL_JAXPR = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
               "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr"}


def _library_shift(eqn) -> bool:
    """A stop_gradient that one of JAX's shift-invariant functions applies to its max."""
    tb = eqn.source_info.traceback
    return tb is not None and any(
        "/jax/_src/" in f.file_name.replace("\\", "/")
        and f.function_name.rsplit(".", 1)[-1] in _SHIFT_INVARIANT for f in tb.frames)


_HERE = os.path.dirname(os.path.realpath(__file__)) + os.sep
#: which derivative rules of a model's own tracec keeps (the others get a warning)
_KEPT_RULES = "tracec keeps the rule of a function of one array, element by element"


def _own_rule(params) -> str | None:
    """The name of a function with a derivative rule the model wrote itself
    (``jax.custom_jvp`` or ``jax.custom_vjp`` defined outside JAX), from its call's
    parameters; None for JAX's own (``jax.nn.relu``: their rules are the functions'
    derivatives)."""
    info = getattr(params["call_jaxpr"].jaxpr.debug_info, "func_src_info", None) or ""
    name, _, where = info.partition(" at ")
    path = os.path.realpath(where.rsplit(":", 1)[0]) if where else ""
    if "/jax/_src/" in where.replace("\\", "/") or path.startswith(_HERE):
        return None  # JAX's, or tracec's own (tracec.spike, tracec.stop_gradient)
    return name or "a function"


def _unused_rule(primitive, name: str, where: str = "") -> str:
    """The warning for ``name``'s derivative rule, which cannot be kept."""
    kind = primitive.name.replace("_call", "")
    return (f"the {kind} rule of {name}{where} is not used ({_KEPT_RULES}): tracec "
            f"differentiates the function itself, so the gradient can differ from jax.grad's")


def _own_derivative(primitive, params):
    """The lowering (a JAX function) of a call whose rule is the model's own, as a
    ``tracec.custom_derivative`` composite that carries the rule's derivative; None
    where the rule is not element-wise on one floating-point array."""
    if _not_one_array(params["call_jaxpr"], params.get("num_consts", 0)):
        return None
    derivative = _elementwise_derivative(primitive, params)
    if derivative is None:
        return None
    return _surrogate_spike(params, derivative, CUSTOM_DERIVATIVE_COMPOSITE)


def _custom_rule_note(eqn, name: str) -> str:
    """A warning at the user's line: ``name``'s derivative rule in the loss cannot be kept."""
    from jax._src import source_info_util

    frame = source_info_util.user_frame(eqn.source_info.traceback)
    loc = (SourceLoc(display_path(frame.file_name), frame.start_line, frame.start_column)
           if frame is not None else None)
    return str(Diagnostic("warning", _unused_rule(eqn.primitive, name, " in the loss"), loc))


def _eval_jaxpr(jaxpr, consts, args, notes: list) -> list:
    """Evaluate ``jaxpr`` op by op (calls inlined), a ``stop_gradient`` of JAX's
    shift-invariant functions replaced by its operand, an element-wise derivative rule
    of the model's own kept (``_own_derivative``); one that cannot be kept adds a
    warning to ``notes``."""
    from jax._src import core

    env = {}
    read = lambda v: v.val if isinstance(v, core.Literal) else env[v]  # noqa: E731
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name, own = eqn.primitive.name, None
        if name == "stop_gradient" and _library_shift(eqn):
            outs = ins
        elif name.startswith("custom_") and (own := _own_rule(eqn.params)) is not None and (
                kept := _own_derivative(eqn.primitive, eqn.params)) is not None:
            outs = kept(*ins)  # the model's own element-wise rule, kept for the passes
        elif name in _CALL_JAXPR:
            # JAX's own rules, and the model's that cannot be kept (a warning), lower to
            # the function, as JAX lowers them
            if name.startswith("custom_") and own is not None:
                notes.append(_custom_rule_note(eqn, own))
            sub = eqn.params[_CALL_JAXPR[name]]
            outs = _eval_jaxpr(sub.jaxpr, sub.consts, ins, notes)
        else:
            outs = eqn.primitive.bind(*ins, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
        for v, o in zip(eqn.outvars, outs):
            if not isinstance(v, core.DropVar):
                env[v] = o
    return [read(v) for v in jaxpr.outvars]


def without_library_shifts(fn: Callable, *specs, notes: list | None = None) -> Callable:
    """``fn`` (flat arguments, one result) as a function of the same arguments in which
    the stop-gradient that ``jax.nn.log_softmax``, ``softmax`` and ``logsumexp`` apply to
    their maximum is gone, as JAX lowers it; every other ``jax.lax.stop_gradient`` stays,
    for ``stop_gradients_survive`` to keep. ``specs``: the arguments' shapes. A
    derivative rule of the model's own in ``fn`` adds a warning to ``notes`` when the
    result is traced."""
    closed = jax.make_jaxpr(fn)(*specs)
    sink = notes if notes is not None else []
    return lambda *args: _eval_jaxpr(closed.jaxpr, closed.consts, args, sink)[0]


# -- a surrogate written with the model's own jax.custom_jvp or jax.custom_vjp
#
# JAX lowers a ``jax.custom_jvp`` / ``jax.custom_vjp`` (and ``jax.custom_gradient``) to its
# primal alone, so a Heaviside whose surrogate derivative the user wrote with ``defjvp`` or
# ``defvjp`` would reach the passes without it. While tracec lowers the step, such a call
# (one element-wise input, its primal piecewise constant) lowers to a ``tracec.spike``
# composite with two results: the primal, and the user's derivative at the input (their
# jvp applied to a tangent of ones, or their bwd to a cotangent of ones), which the
# differentiate pass uses as the spike's derivative (docs/design.md section 2).

#: primitives that act element by element (a scalar operand broadcasts)
_ELEMENTWISE = frozenset("""
    abs acos acosh add and asin asinh atan atan2 atanh cbrt ceil clamp convert_element_type
    copy copy_p cos cosh div eq erf erf_inv erfc exp exp2 expm1 floor ge gt integer_pow
    is_finite le log log1p logistic lt max min mul ne neg nextafter not or pow rem round
    rsqrt select_n sign sin sinh sqrt square sub tan tanh xor
""".split())
#: element-wise primitives whose derivative is zero wherever it exists
_STEPS = frozenset("eq ne gt ge lt le sign floor ceil round and or not xor".split())
_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr"}


def _smooth_outputs(jaxpr, smooth_in: list[bool], nan_in: list[bool] | None = None) -> list[bool] | None:
    """Which outputs of ``jaxpr`` vary smoothly (nonzero derivative) with the inputs
    marked in ``smooth_in``; None when an op is not element-wise, so the call is left
    to JAX's own lowering. ``nan_in`` marks inputs that are NaN tests (``x != x``): a
    ``select_n`` on one passes a NaN through (``jnp.heaviside``), which is no derivative."""
    from jax.extend.core import Literal

    smooth = {v for v, s in zip(jaxpr.invars, smooth_in) if s}
    nan_tests = {v for v, n in zip(jaxpr.invars, nan_in or []) if n}

    def is_smooth(v):
        return not isinstance(v, Literal) and v in smooth

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        ins = list(eqn.invars)
        if name in _CALLS:
            inner = eqn.params[_CALLS[name]]
            inner = getattr(inner, "jaxpr", inner)
            out = _smooth_outputs(inner, [is_smooth(v) for v in ins],
                                  [not isinstance(v, Literal) and v in nan_tests for v in ins])
            if out is None:
                return None
            # a NaN test computed inside a call is not followed out of it
        elif name == "broadcast_in_dim":
            if ins[0].aval.shape:  # only a scalar broadcasts element-wise
                return None
            out = [is_smooth(ins[0])]
        elif name in _ELEMENTWISE:
            if name in _STEPS:
                flows = False
                if name == "ne" and ins[0] is ins[1] and not isinstance(ins[0], Literal):
                    nan_tests.add(eqn.outvars[0])
            elif name == "convert_element_type":
                flows = is_smooth(ins[0]) and jnp.issubdtype(ins[0].aval.dtype, jnp.floating)
            elif name == "select_n":  # the predicate carries no derivative
                cases = ins[1:]
                if not isinstance(ins[0], Literal) and ins[0] in nan_tests and len(cases) == 2:
                    cases = cases[:1]  # the case taken at NaN
                flows = any(is_smooth(v) for v in cases)
            else:
                flows = any(is_smooth(v) for v in ins)
            out = [flows] * len(eqn.outvars)
        else:
            return None
        smooth.update(v for v, s in zip(eqn.outvars, out) if s)
    return [is_smooth(v) for v in jaxpr.outvars]


def surrogate_heaviside(call_jaxpr, num_consts: int) -> bool:
    """A call tracec turns into a spike: one float input and one output of its shape, an
    element-wise primal whose derivative is zero wherever it exists (a step function)."""
    return _not_a_spike(call_jaxpr, num_consts) is None


def _is_step(call_jaxpr) -> bool:
    """The call's outputs are element-wise step functions of its inputs."""
    jaxpr = call_jaxpr.jaxpr
    out = _smooth_outputs(jaxpr, [True] * len(jaxpr.invars))
    return out is not None and not any(out)


def _not_a_spike(call_jaxpr, num_consts: int) -> str | None:
    """Why the call is not turned into a spike (None: it is); the reason is said only
    where its primal is a step function, the case a user writes for a surrogate."""
    if not _is_step(call_jaxpr):
        return "not a step function"
    return _not_one_array(call_jaxpr, num_consts)


def _not_one_array(call_jaxpr, num_consts: int) -> str | None:
    """Why a call's own derivative rule cannot be kept element by element (None: it
    can, given an element-wise rule): one floating-point array in, one of its shape out."""
    jaxpr = call_jaxpr.jaxpr
    if num_consts or len(jaxpr.invars) != 1 or len(jaxpr.outvars) != 1:
        return ("it has several inputs or outputs, or closes over traced values; tracec "
                "honours a surrogate of one array argument (close over constants only)")
    x, y = jaxpr.invars[0].aval, jaxpr.outvars[0].aval
    if not (x.shape == y.shape and jnp.issubdtype(x.dtype, jnp.floating)
            and jnp.issubdtype(y.dtype, jnp.floating)):
        return "its input and output are not floating-point arrays of one shape"
    return None


class _Lowering:
    """Re-entry guard: the calls inside the surrogate's own jvp lower as JAX lowers them."""
    depth = 0


def _derivative(primitive, params, x):
    """The user's jvp of the call at ``x`` applied to a tangent of ones (their bwd to a
    cotangent of ones, for a custom_vjp): for an element-wise function, its derivative
    at each element."""
    def call(u):  # the call as JAX binds it when it evaluates a jaxpr
        return primitive.bind(u, **primitive.get_bind_params(dict(params)))[0]

    if primitive.name == "custom_vjp_call":
        y, pullback = jax.vjp(call, x)
        return pullback(jnp.ones_like(y))[0]
    return jax.jvp(call, (x,), (jnp.ones_like(x),))[1]


def _surrogate_spike(params, derivative, name: str = SPIKE_COMPOSITE):
    """The lowering (a JAX function) of an honoured custom_jvp call: a ``tracec.spike``
    composite (or ``name``: ``tracec.custom_derivative`` for a function that is not a
    step) whose results are the primal and ``derivative`` (``_elementwise_derivative``:
    the user's derivative at the input, traced once)."""
    from jax.extend.core import jaxpr_as_fun

    primal, slope = jaxpr_as_fun(params["call_jaxpr"]), jaxpr_as_fun(derivative)

    def primal_and_derivative(x, **attributes):
        del attributes  # what the composite says it is
        y = primal(x)[0]
        return y, slope(x)[0].astype(y.dtype)

    attributes = {"surrogate": CUSTOM_SURROGATE} if name == SPIKE_COMPOSITE else {}

    def lowered(x):
        y, _ = jax.lax.composite(primal_and_derivative, name=name)(x, **attributes)
        return [y]

    return lowered


def _elementwise_derivative(primitive, params):
    """The user's derivative rule as tracec will use it (``_derivative``, as a closed
    jaxpr of the input), or None when it does not act element by element."""
    aval = params["call_jaxpr"].jaxpr.invars[0].aval
    try:
        jaxpr = jax.make_jaxpr(lambda x: _derivative(primitive, params, x))(
            jax.ShapeDtypeStruct(aval.shape, aval.dtype))
    except Exception:
        return None
    if _smooth_outputs(jaxpr.jaxpr, [True] * len(jaxpr.jaxpr.invars)) is None:
        return None
    return jaxpr


@contextmanager
def _lowering_rule(primitive, make_rule):
    """``make_rule(previous)`` as ``primitive``'s lowering rule for the duration."""
    from jax.interpreters import mlir

    table = mlir._lowerings  # JAX's platform-independent lowering rules
    had = primitive in table
    previous = table.get(primitive)
    mlir.register_lowering(primitive, make_rule(previous))
    try:
        yield
    finally:
        if had:
            table[primitive] = previous
        else:
            table.pop(primitive, None)


def _custom_derivative_rule(primitive, notes: list, previous):
    from jax.interpreters import mlir

    previous = getattr(previous, "rule", previous)  # JAX keeps rules in an entry object

    def rule(ctx, *args, **params):
        if _Lowering.depth:
            return previous(ctx, *args, **params)
        why = _not_a_spike(params["call_jaxpr"], params.get("num_consts", 0))
        own = None if _is_step(params["call_jaxpr"]) else _own_rule(params)
        if own is not None:
            # a rule of the model's own on a smooth function (a straight-through clip):
            # kept where it is element-wise, as jax.grad would use it
            kept = _own_derivative(primitive, params)
            if kept is None:
                notes.append(_note(ctx, params["call_jaxpr"], _unused_rule(primitive, own)))
                return previous(ctx, *args, **params)
            _Lowering.depth += 1
            try:
                return mlir.lower_fun(kept, multiple_results=True)(ctx, *args)
            finally:
                _Lowering.depth -= 1
        derivative = None if why is not None else _elementwise_derivative(primitive, params)
        if why is None and derivative is None:
            why = "its derivative rule is not element-wise"
        if why is not None:
            if why != "not a step function":
                kind = primitive.name.replace("_call", "")
                notes.append(_note(ctx, params["call_jaxpr"],
                                   f"the surrogate of this {kind} is not used: {why}; its step gets "
                                   f"tracec's default surrogate (write tracec.spike to choose one)"))
            return previous(ctx, *args, **params)
        _Lowering.depth += 1
        try:
            return mlir.lower_fun(_surrogate_spike(params, derivative), multiple_results=True)(ctx, *args)
        finally:
            _Lowering.depth -= 1

    return rule


def _note(ctx, call_jaxpr, message: str) -> str:
    """A warning at the user's line of the call being lowered (JAX lowers a cacheable
    call without its traceback: then the first line of the call's primal)."""
    from jax._src import source_info_util

    tracebacks = [getattr(ctx, "traceback", None)]
    tracebacks += [eqn.source_info.traceback for eqn in call_jaxpr.jaxpr.eqns]
    frame = next((f for f in map(source_info_util.user_frame, filter(None, tracebacks))
                  if f is not None), None)
    loc = (SourceLoc(display_path(frame.file_name), frame.start_line, frame.start_column)
           if frame is not None else None)
    return str(Diagnostic("warning", message, loc))


@contextmanager
def custom_surrogates_survive():
    """While lowering a model's step: a Heaviside under the model's own
    ``jax.custom_jvp`` or ``jax.custom_vjp`` keeps the derivative its rule gives
    (``surrogate_heaviside``). Yields a list that collects a warning for each such
    step whose surrogate cannot be kept, and why."""
    from jax.extend.core.primitives import custom_jvp_call_p, custom_vjp_call_p

    notes: list[str] = []
    with _lowering_rule(custom_jvp_call_p, partial(_custom_derivative_rule, custom_jvp_call_p, notes)), \
            _lowering_rule(custom_vjp_call_p, partial(_custom_derivative_rule, custom_vjp_call_p, notes)):
        yield notes


#: 64-bit types, which jax turns into 32-bit ones unless jax_enable_x64 is set.
_WIDE = {"float64": "float32", "int64": "int32", "uint64": "uint32", "complex128": "complex64"}


def _check_spec(what: str, spec, example: str) -> None:
    """``spec`` must be a ``jax.ShapeDtypeStruct``-like (a shape of ints and a dtype)."""
    import numpy as np

    usage = f"'{what}' must be a jax.ShapeDtypeStruct of one time step (shape and dtype)"
    if spec is None:
        raise TracecError(f"tracec.Model: {usage}", hint=f"e.g. {example}")
    if isinstance(spec, (type, np.dtype, str)):
        try:
            name = np.dtype(spec).name
        except TypeError:
            name = getattr(spec, "__name__", str(spec))
        raise TracecError(f"tracec.Model: {usage}, got the dtype {name} alone",
                          hint=f"give its shape too, e.g. {example}")
    shape, dtype = getattr(spec, "shape", None), getattr(spec, "dtype", None)
    try:
        ok_shape = all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape)
    except TypeError:
        ok_shape = False
    try:
        dtype = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        dtype = None
    if not ok_shape or dtype is None:
        raise TracecError(f"tracec.Model: {usage}, got {type(spec).__name__}",
                          hint=f"e.g. {example}")
    if dtype.name in _WIDE and not jax.config.jax_enable_x64:
        raise TracecError(
            f"tracec.Model: '{what}' is {dtype.name}, but jax runs with 64-bit types disabled "
            f"(jax_enable_x64 is off), so it would silently become {_WIDE[dtype.name]}",
            hint=f"declare it {_WIDE[dtype.name]}")


@dataclass
class Model:
    """One time step of a recurrent network, and everything needed to train it.

    ``init_params(key) -> params``, ``init_state(batch) -> state``,
    ``step(params, state, x) -> (new_state, output)``, ``loss(output, target) -> scalar``;
    ``input`` / ``target`` are ``jax.ShapeDtypeStruct`` of one time step (batch first).

    Instead of ``step``, a model may give ``sequence(params, state, xs) -> (final_state,
    outputs)`` written with ``jax.lax.scan`` over the leading axis of ``xs``; the
    compiler finds the recurrence in the loop and extracts the step itself.
    """

    init_params: Callable[[Any], Any]
    init_state: Callable[[int], Any]
    step: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None
    loss: Callable[[Any, Any], Any] | None = None
    input: Any = None
    target: Any = None
    sequence: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None

    def __post_init__(self) -> None:
        for name in ("init_params", "init_state"):
            if not callable(getattr(self, name)):
                raise TracecError(f"tracec.Model: '{name}' must be a function")
        if (self.step is None) == (self.sequence is None):
            raise TracecError("tracec.Model: give exactly one of 'step' (one time step) and "
                              "'sequence' (a lax.scan over time)")
        if not callable(self.step or self.sequence):
            raise TracecError("tracec.Model: 'step' / 'sequence' must be a function")
        _check_streams("input", self.input, "input=jax.ShapeDtypeStruct((B, N_IN), jnp.float32)")
        if self.target is not None:
            _check_streams("target", self.target, "target=jax.ShapeDtypeStruct((B,), jnp.int32)")

    @property
    def batch(self) -> int:
        from tracec.frontends.streams import is_spec

        first = jax.tree_util.tree_leaves(self.input, is_leaf=is_spec)[0]
        return int(first.shape[0])


def _check_streams(what: str, tree, example: str) -> None:
    """One spec, or a pytree of specs (several streams) with one leading batch size."""
    from tracec.frontends.streams import PACKABLE, is_spec

    if tree is None or is_spec(tree) or isinstance(tree, (type, str)) or not isinstance(
            tree, (dict, list, tuple)):
        _check_spec(what, tree, example)
        leaves = [tree]
    else:
        leaves = jax.tree_util.tree_leaves(tree, is_leaf=is_spec)
        if not leaves:
            raise TracecError(f"tracec.Model: '{what}' is an empty pytree", hint=f"e.g. {example}")
        for leaf in leaves:
            _check_spec(what, leaf, example)
            if np.dtype(leaf.dtype).name not in PACKABLE:
                raise TracecError(
                    f"tracec.Model: a stream of '{what}' has dtype {np.dtype(leaf.dtype).name}; "
                    "several streams travel packed as float32",
                    hint="use float32, or an integer type up to 32 bits for indices")
    if any(len(leaf.shape) < 1 for leaf in leaves):
        raise TracecError(f"tracec.Model: '{what}' needs a leading batch dimension")
    if len({int(leaf.shape[0]) for leaf in leaves}) > 1:
        raise TracecError(f"tracec.Model: the streams of '{what}' have different batch sizes "
                          f"{sorted({int(leaf.shape[0]) for leaf in leaves})}",
                          hint="every stream is [B, ...] with the same B")
