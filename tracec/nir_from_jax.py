"""A JAX ``model.py`` as a NIR graph, where its step is made of what NIR's nodes express.

``graph_of_model(path)`` traces the model's step to a jaxpr and reads it symbolically:
every value is a linear form over signals (the input, old state, spikes) plus constants
and bias parameters. It recognises

- a spiking layer: ``v = a*s["v"] + x @ W (+ z_prev @ W_rec) (+ b) (+ c)``,
  ``z = tracec.spike(v - th)`` (or a Heaviside under the model's own ``jax.custom_jvp`` /
  ``jax.custom_vjp``, docs/design.md section 2), a reset to zero (``v * (1 - z)`` or ``v - z * v``): NIR
  ``LIF`` (``tau = dt/(1-a)``, ``r = tau/dt``, ``v_leak = c/(1-a)``, ``v_threshold = th``,
  ``v_reset = 0``) fed by one ``Affine``/``Linear`` node per weight;
- a leaky readout ``y = a*s["y"] + z @ W (+ b)``: NIR ``LI``;
- a state that keeps a spike (``s["z"]``, read by ``z @ W_rec`` in the next step): a
  recurrent edge.

Anything else is a one-line error naming the construct and the model's line (e.g. a
reset by subtraction, ``v - z*th``, which NIR's LIF does not have). docs/nir.md, "NIR out".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracec.diagnostics import SourceLoc, TracecError, display_path
from tracec.frontends.jax_frontend import surrogate_heaviside


class _Refused(Exception):
    def __init__(self, what: str, eqn=None, hint: str | None = None):
        super().__init__(what)
        self.what, self.eqn, self.hint = what, eqn, hint


@dataclass
class Lin:
    """sum of terms (source, weight) + bias; a source is ("x",), ("state", name) or
    ("spike", id); a weight is ("scale", c) or ("dense", param name)."""

    terms: list = field(default_factory=list)
    params: list = field(default_factory=list)   # bias parameters (names)
    const: np.ndarray | float = 0.0

    def scaled(self, c: float) -> "Lin":
        if self.params and c != 1.0:
            raise _Refused("a bias parameter scaled by a constant")
        terms = []
        for src, (kind, w) in self.terms:
            if kind != "scale":
                raise _Refused("a weighted input scaled by a constant (W·c)")
            terms.append((src, ("scale", w * c)))
        return Lin(terms, list(self.params), self.const * c)

    def plus(self, other: "Lin") -> "Lin":
        return Lin(self.terms + other.terms, self.params + other.params,
                   np.asarray(self.const) + np.asarray(other.const))


@dataclass
class Param:
    name: str
    transposed: bool = False


@dataclass
class Const:
    value: np.ndarray


@dataclass
class Reset:
    """v * (1 - z): v (a Lin) reset to zero where spike ``spike`` fired."""

    v: Lin
    spike: int


@dataclass
class SpikeTimes:
    """z * v"""

    v: Lin
    spike: int


def _line(eqn) -> str:
    from jax._src import source_info_util

    frame = (source_info_util.user_frame(eqn.source_info.traceback)
             if eqn is not None else None)
    return f"{frame.file_name}:{frame.start_line}" if frame is not None else ""


def _single_spike(v: Lin) -> int | None:
    if len(v.terms) == 1 and not v.params and np.all(np.asarray(v.const) == 0):
        (src, (kind, w)), = v.terms
        if src[0] == "spike" and kind == "scale" and np.all(np.asarray(w) == 1.0):
            return src[1]
    return None


def _one_minus_spike(v: Lin) -> int | None:
    """The spike id of ``1 - z``, else None."""
    if len(v.terms) == 1 and not v.params and np.all(np.asarray(v.const) == 1.0):
        (src, (kind, w)), = v.terms
        if src[0] == "spike" and kind == "scale" and np.all(np.asarray(w) == -1.0):
            return src[1]
    return None


class _Reader:
    def __init__(self):
        self.spikes: dict[int, Lin] = {}   # spike id -> the argument of tracec.spike

    def run(self, jaxpr, consts, args):
        env = {}

        def read(v):
            from jax.extend.core import Literal

            if isinstance(v, Literal):
                return Const(np.asarray(v.val, np.float64))
            return env[v]

        for var, val in zip(jaxpr.constvars, consts):
            env[var] = Const(np.asarray(val, np.float64))
        for var, val in zip(jaxpr.invars, args):
            env[var] = val
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            try:
                outs = self.apply(eqn, ins)
            except _Refused as e:
                if e.eqn is None:
                    e.eqn = eqn
                raise
            for var, val in zip(eqn.outvars, outs):
                env[var] = val
        return [read(v) for v in jaxpr.outvars]

    def apply(self, eqn, ins):
        prim = eqn.primitive.name
        p = eqn.params
        if prim in ("pjit", "closed_call", "core_call", "jit"):
            inner = p.get("jaxpr") or p.get("call_jaxpr")
            return self.run(inner.jaxpr, inner.consts, ins)
        if ((prim == "composite" and p.get("name") == "tracec.spike")
                or (prim in ("custom_jvp_call", "custom_vjp_call")
                    and surrogate_heaviside(p["call_jaxpr"], p.get("num_consts", 0)))):
            (arg,) = ins
            if not isinstance(arg, Lin):
                raise _Refused("a spike of something that is not a membrane potential")
            sid = len(self.spikes)
            self.spikes[sid] = arg
            return [Lin([(("spike", sid), ("scale", 1.0))])]
        if prim in ("custom_jvp_call", "custom_vmap_call"):
            inner = p.get("call_jaxpr") or p.get("call")
            return self.run(inner.jaxpr, inner.consts, ins)
        if prim == "convert_element_type":
            return ins
        if prim == "broadcast_in_dim" or prim == "reshape":
            (a,) = ins[:1]
            if isinstance(a, (Param, Lin)):
                return [a]
            if isinstance(a, Const):
                return [Const(np.reshape(a.value, (-1,)) if a.value.size > 1 else a.value)]
        if prim == "transpose" and isinstance(ins[0], Param):
            return [Param(ins[0].name, not ins[0].transposed)]
        if prim == "dot_general":
            a, b = ins
            (lc, rc), (lb, rb) = p["dimension_numbers"]
            if not isinstance(a, Lin) or not isinstance(b, Param) or lb or rb:
                raise _Refused("a matrix product other than signal @ weight parameter")
            if len(a.terms) != 1 or a.params or np.any(np.asarray(a.const) != 0):
                raise _Refused("a weight applied to a sum of signals (give each input "
                               "its own weight)")
            (src, (kind, c)), = a.terms
            if kind != "scale" or not np.all(np.asarray(c) == 1.0):
                raise _Refused("a weight applied to a scaled or weighted signal")
            transposed = b.transposed != (tuple(rc) == (1,))
            return [Lin([(src, ("dense", (b.name, transposed)))])]
        if prim in ("add", "sub"):
            a, b = ins
            if prim == "sub":
                b = self.negate(b)
            return [self.add(a, b)]
        if prim == "neg":
            return [self.negate(ins[0])]
        if prim == "mul":
            return [self.mul(*ins)]
        if prim == "select_n":
            raise _Refused("a select (jnp.where); write a reset to zero as v * (1 - z)")
        if prim == "stop_gradient":
            return ins
        raise _Refused(f"the op {prim}")

    def negate(self, a):
        if isinstance(a, Const):
            return Const(-a.value)
        if isinstance(a, Lin):
            return a.scaled(-1.0)
        if isinstance(a, SpikeTimes):
            return ("neg", a)
        raise _Refused("a negated parameter")

    def add(self, a, b):
        if isinstance(a, Const) and isinstance(b, Const):
            return Const(a.value + b.value)
        if not isinstance(a, Lin):
            a, b = b, a
        if isinstance(a, Lin):
            if isinstance(b, Lin):
                self.check_not_subtracted_reset(a, b)
                self.check_not_subtracted_reset(b, a)
                return a.plus(b)
            if isinstance(b, Const):
                return Lin(list(a.terms), list(a.params), np.asarray(a.const) + b.value)
            if isinstance(b, Param) and not b.transposed:
                return Lin(list(a.terms), a.params + [b.name], a.const)
            if isinstance(b, tuple) and b[0] == "neg" and isinstance(b[1], SpikeTimes) \
                    and b[1].v is a:
                return Reset(a, b[1].spike)
        raise _Refused("a sum NIR's nodes do not express")

    def check_not_subtracted_reset(self, v: Lin, other: Lin) -> None:
        """v + (-th * z) where z = spike(v - th): a reset by subtraction."""
        for src, (kind, _) in other.terms:
            if src[0] == "spike" and kind == "scale":
                arg = self.spikes[src[1]]
                if [t for t in arg.terms] == [t for t in v.terms]:
                    raise _Refused("a reset by subtraction (v - z*th)",
                                   hint="NIR's LIF resets to v_reset: write the reset as "
                                        "v * (1 - z) to export, or keep the model in JAX")

    def mul(self, a, b):
        if isinstance(b, Const) and not isinstance(a, Const):
            a, b = b, a
        if isinstance(a, Const):
            if isinstance(b, Const):
                return Const(a.value * b.value)
            if isinstance(b, Lin):
                if np.size(a.value) != 1:
                    raise _Refused("a per-neuron factor on a signal")
                return b.scaled(float(np.asarray(a.value).reshape(-1)[0]))
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Lin) and isinstance(y, Lin):
                one_minus = _one_minus_spike(y)
                if one_minus is not None:
                    return Reset(x, one_minus)
                sid = _single_spike(y)
                if sid is not None:
                    return SpikeTimes(x, sid)
        raise _Refused("a product NIR's nodes do not express")


def graph_of_model(path: str, checkpoint_params: dict | None = None, dt: float = 1e-4,
                   checkpoint: str = ""):
    """The NIR graph of the ``tracec.Model`` in ``path``."""
    import jax
    import jax.numpy as jnp

    from tracec.frontends.model_loader import load_model
    from tracec.runtime.learner import _flatten

    shown = display_path(path)
    model, _ = load_model(path)
    if model.step is None:
        raise TracecError(f"{shown}: export-nir needs a step function, not a sequence",
                          hint="give the model as tracec.Model(step=...)")
    params = model.init_params(jax.random.PRNGKey(0))
    state = model.init_state(model.batch)
    flat_p = {k: np.asarray(v, np.float32) for k, v in _flatten(params).items()}
    flat_s = _flatten(state)
    if checkpoint_params is not None:
        missing = sorted(set(flat_p) - set(checkpoint_params))
        extra = sorted(set(checkpoint_params) - set(flat_p))
        if missing or extra:
            raise TracecError(f"{checkpoint}: the checkpoint's parameters are not {shown}'s "
                              f"({'missing ' + ', '.join(missing) if missing else 'extra ' + ', '.join(extra)})",
                              hint="give the checkpoint of an artifact compiled from this model")
        for k, v in checkpoint_params.items():
            if np.shape(v) != flat_p[k].shape:
                raise TracecError(f"{checkpoint}: parameter '{k}' has shape {list(np.shape(v))}, "
                                  f"{shown}'s is {list(flat_p[k].shape)}")
            flat_p[k] = np.asarray(v, np.float32)
    x = jnp.zeros(model.input.shape, model.input.dtype)
    closed = jax.make_jaxpr(model.step)(params, state, x)
    p_names, s_names = list(_flatten(params)), list(flat_s)
    args = ([Param(n) for n in p_names]
            + [Lin([(("state", n), ("scale", 1.0))]) for n in s_names]
            + [Lin([(("x",), ("scale", 1.0))])])
    reader = _Reader()
    try:
        outs = reader.run(closed.jaxpr, closed.consts, args)
        builder = _Builder(reader, flat_p, s_names, dt)
        graph = builder.build(outs, model)
    except _Refused as e:
        where = _line(e.eqn)
        file, _, line = where.rpartition(":")
        loc = SourceLoc(display_path(file), int(line)) if file else SourceLoc(shown)
        raise TracecError(f"export-nir: {e.what} has no NIR node", loc=loc,
                          hint=e.hint or "docs/nir.md ('NIR out') lists what maps") from e
    return graph


class _Builder:
    def __init__(self, reader, params, s_names, dt):
        self.reader, self.params, self.s_names, self.dt = reader, params, s_names, dt
        self.nodes: dict = {}
        self.edges: list = []

    def build(self, outs, model):
        import nir

        n_state = len(self.s_names)
        new_state = dict(zip(self.s_names, outs[:n_state]))
        outputs = outs[n_state:]
        if len(outputs) != 1:
            raise _Refused(f"a step with {len(outputs)} outputs (NIR: one Output node here)")
        # spiking layers: a state reset where its own spike fired
        self.lif_of_spike: dict[int, str] = {}
        self.kept_spike: dict[str, int] = {}   # state name -> spike it keeps
        li_states = {}
        for name, value in new_state.items():
            if isinstance(value, Reset):
                self.lif_of_spike[value.spike] = name
            elif isinstance(value, Lin) and _single_spike(value) is not None:
                self.kept_spike[name] = _single_spike(value)
            elif isinstance(value, Lin):
                li_states[name] = value
            else:
                raise _Refused(f"the new value of state '{name}'")
        for sid in self.reader.spikes:
            if sid not in self.lif_of_spike:
                raise _Refused("a spike whose membrane is not reset to zero by it (NIR's LIF "
                               "resets to v_reset; a reset by subtraction v - z*th does not map)")
        self.nodes["input"] = nir.Input(input_type=np.array(model.input.shape[1:]))
        for sid, state in self.lif_of_spike.items():
            reset = new_state[state]
            arg = self.reader.spikes[sid]
            a, inputs, bias, c = self.split(reset.v, state)
            th = -(np.asarray(arg.const) - np.asarray(reset.v.const))
            n = self.width(inputs, bias)
            node = self.neuron_name(state)
            tau = np.full(n, self.dt / (1 - a), np.float32)
            self.nodes[node] = nir.LIF(tau=tau, r=tau / self.dt,
                                       v_leak=np.full(n, c / (1 - a), np.float32) * np.ones(n),
                                       v_threshold=(np.ones(n) * th).astype(np.float32),
                                       v_reset=np.zeros(n, np.float32))
            self.wire(node, inputs, bias)
        for state, value in li_states.items():
            a, inputs, bias, c = self.split(value, state)
            n = self.width(inputs, bias)
            node = self.neuron_name(state)
            tau = np.full(n, self.dt / (1 - a), np.float32)
            self.nodes[node] = nir.LI(tau=tau, r=tau / self.dt,
                                      v_leak=(np.ones(n) * c / (1 - a)).astype(np.float32))
            self.wire(node, inputs, bias)
        (out,) = outputs
        src = self.source_of_output(out, new_state, li_states)
        self.nodes["output"] = nir.Output(output_type=self.nodes[src].output_type["output"])
        self.edges.append((src, "output"))
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges)

    def neuron_name(self, state: str) -> str:
        return state.rsplit("/", 1)[0].replace("/", ".") if "/" in state else state

    def split(self, v: Lin, state: str):
        """(leak factor a, input terms, bias params, constant) of v = a*state + ..."""
        own = [(src, w) for src, w in v.terms if src == ("state", state)]
        if len(own) != 1 or own[0][1][0] != "scale":
            raise _Refused(f"state '{state}' is not a leaky integrator a*v + inputs")
        a = float(np.asarray(own[0][1][1]))
        if not 0.0 <= a < 1.0:
            raise _Refused(f"state '{state}' decays by {a}, outside [0, 1)")
        inputs = [(src, w) for src, w in v.terms if src != ("state", state)]
        for src, (kind, _) in inputs:
            if kind != "dense":
                raise _Refused(f"an unweighted input into state '{state}'")
        c = np.asarray(v.const, np.float64)
        if c.size > 1:
            raise _Refused(f"a per-neuron constant into state '{state}'")
        return a, inputs, list(v.params), float(c)

    def width(self, inputs, bias) -> int:
        name, transposed = inputs[0][1][1]
        w = self.params[name]
        return int(w.shape[0] if transposed else w.shape[1])

    def wire(self, node: str, inputs, bias) -> None:
        import nir

        for k, (src, (_, (pname, transposed))) in enumerate(inputs):
            w = self.params[pname]
            weight = w if transposed else w.T          # NIR: [out, in]
            wname = pname.replace("/", ".")
            if k == 0 and bias:
                b = sum(self.params[b] for b in bias)
                self.nodes[wname] = nir.Affine(weight=weight.astype(np.float32),
                                               bias=np.asarray(b, np.float32))
            else:
                self.nodes[wname] = nir.Linear(weight=weight.astype(np.float32))
            self.edges.append((self.source_node(src), wname))
            self.edges.append((wname, node))

    def source_node(self, src) -> str:
        if src == ("x",):
            return "input"
        if src[0] == "spike":
            return self.neuron_name(self.lif_of_spike[src[1]])
        if src[0] == "state" and src[1] in self.kept_spike:
            return self.neuron_name(self.lif_of_spike[self.kept_spike[src[1]]])
        raise _Refused(f"an input read from state '{src[1]}' (only kept spikes are "
                       "recurrent edges)")

    def source_of_output(self, out, new_state, li_states) -> str:
        for state, value in li_states.items():
            if out is value:
                return self.neuron_name(state)
        if isinstance(out, Lin) and _single_spike(out) is not None:
            return self.neuron_name(self.lif_of_spike[_single_spike(out)])
        raise _Refused("an output that is neither a readout state nor a spike")
