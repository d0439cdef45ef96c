"""NIR graphs in: a ``.nir`` file (the neuromorphic exchange format) as a tracec model.

``load_nir_model(path, ...)`` reads the graph with ``nir.read`` and builds an ordinary
``tracec.Model`` in memory: a JAX ``step`` that evaluates the graph for one time step
(forward Euler of NIR's differential equations with step ``dt``), ``init_params`` holding
the graph's weights (Affine/Linear/Conv weights and biases, Scale factors) as trainable
parameters, ``init_state`` (zeros) and a loss. The model then takes the same path as a
``model.py``. docs/nir.md is the contract: nodes, equations, recurrent edges, names.

Parameters are named ``<node>/<field>`` (``fc1/weight``), state ``<node>/<v|i|z|out>``;
nested NIR graphs are flattened with their node names joined by ``.``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from tracec.diagnostics import SourceLoc, TracecError, display_path


#: forward-Euler time step in seconds (NIR's usual convention: snnTorch's exporter and
#: importer use it to turn a decay factor into a time constant and back)
DEFAULT_DT = 1e-4
DEFAULT_BATCH = 1
LOSSES = ("mse", "cross-entropy")
DEFAULT_LOSS = "mse"

#: node type -> the fields tracec reads (a field outside these is refused)
SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")
NEURONS = ("LIF", "CubaLIF", "LI", "CubaLI", "IF", "I")
STATELESS = ("Affine", "Linear", "Scale", "Threshold", "Conv1d", "Conv2d", "Flatten",
             "SumPool2d", "AvgPool2d", "Pass")
SUPPORTED = ("Input", "Output") + NEURONS + STATELESS[:-1]
#: fields that hold trainable parameters, per node type
TRAINABLE = {"Affine": ("weight", "bias"), "Linear": ("weight",), "Scale": ("scale",),
             "Conv1d": ("weight", "bias"), "Conv2d": ("weight", "bias")}


@dataclass(frozen=True)
class NirOptions:
    """How a NIR graph becomes a step (the ``tracec`` options ``--dt``, ``--batch``,
    ``--loss``, ``--loss-file``)."""

    dt: float = DEFAULT_DT
    batch: int = DEFAULT_BATCH
    loss: str = DEFAULT_LOSS
    loss_file: str | None = None

    def check(self) -> None:
        if not isinstance(self.dt, (int, float)) or isinstance(self.dt, bool) \
                or not np.isfinite(self.dt) or self.dt <= 0:
            raise TracecError(f"dt (--dt) must be a positive number of seconds, got {self.dt!r}")
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise TracecError(f"batch (--batch) must be an integer >= 1, got {self.batch!r}")
        if self.loss not in LOSSES:
            raise TracecError(f"unknown loss (--loss) '{self.loss}'",
                              hint=f"choose one of {', '.join(LOSSES)}, or give --loss-file")


class _Pass:
    """The Input/Output node of a nested graph, flattened: its value passes through."""


def read_graph(path: str):
    """``nir.read(path)``; any failure is a one-line error naming the file."""
    shown = display_path(path)
    try:
        import nir
    except ImportError as e:
        raise TracecError("reading a NIR graph needs the nir package",
                          hint="pip install 'tracec[compiler]' (it pins nir)") from e
    if not os.path.isfile(path):
        raise TracecError(f"no such file: {path}")
    try:
        return nir.read(path)
    except Exception as e:  # h5py, nir's own checks, missing fields: many error types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TracecError(f"{shown} is not a readable NIR graph: {first}",
                          hint="write it with nir.write (nir 1.0)") from e


def flatten_graph(graph, shown: str) -> tuple[dict, list[tuple[str, str]]]:
    """(nodes, edges) of ``graph`` with nested graphs inlined: a nested node ``g``'s
    nodes become ``g.n``, its Input/Output nodes pass their value through."""
    import nir

    nodes: dict = {}
    edges: list[tuple[str, str]] = []

    def endpoint(prefix: str, name: str, sub_ends: dict, which: str) -> str:
        full = prefix + name
        if full in sub_ends:  # an edge to / from a nested graph as a whole
            ends = sub_ends[full][which]
            if len(ends) != 1:
                raise TracecError(f"{shown}: nested graph '{full}' has {len(ends)} "
                                  f"{'Input' if which == 'in' else 'Output'} nodes",
                                  hint="give it one Input and one Output node, or connect "
                                       "its inner nodes by name")
            return ends[0]
        return full

    def walk(g, prefix: str) -> None:
        sub_ends: dict = {}
        for name, node in g.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                walk(node, full + ".")
                sub_ends[full] = {
                    "in": [f"{full}.{n}" for n, v in node.nodes.items() if isinstance(v, nir.Input)],
                    "out": [f"{full}.{n}" for n, v in node.nodes.items() if isinstance(v, nir.Output)]}
            elif prefix and isinstance(node, (nir.Input, nir.Output)):
                nodes[full] = _Pass()
            else:
                nodes[full] = node
        for src, dst in g.edges:
            edges.append((endpoint(prefix, src, sub_ends, "out"),
                          endpoint(prefix, dst, sub_ends, "in")))

    walk(graph, "")
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise TracecError(f"{shown}: an edge names node '{end}', which the graph "
                                  "does not have", hint="fix the graph's edges")
    return nodes, edges


def kind_of(node) -> str:
    return "Pass" if isinstance(node, _Pass) else type(node).__name__


def _array(value, what: str, shown: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TracecError(f"{shown}: {what} is not numeric",
                          hint="give it as a float array") from e
    if not np.all(np.isfinite(arr)):
        raise TracecError(f"{shown}: {what} holds NaN or Inf", hint="give finite values")
    return arr


def _ints(value, n: int, what: str, shown: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value)).astype(np.int64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise TracecError(f"{shown}: {what} has {arr.size} entries, {n} expected")
    return tuple(int(a) for a in arr)


class Graph:
    """A flattened NIR graph, checked, with its evaluation order and recurrent edges."""

    def __init__(self, graph, path: str):
        import nir

        self.path = path
        self.shown = shown = display_path(path)
        self.graph = graph
        self.nodes, self.edges = flatten_graph(graph, shown)
        for name, node in self.nodes.items():
            kind = kind_of(node)
            if kind not in SUPPORTED and kind != "Pass":
                raise TracecError(
                    f"{shown}: node '{name}' is a {kind}, which tracec does not compile",
                    hint=f"supported nodes: {', '.join(SUPPORTED)} (docs/nir.md)")
        inputs = [n for n, v in self.nodes.items() if isinstance(v, nir.Input)]
        outputs = [n for n, v in self.nodes.items() if isinstance(v, nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise TracecError(f"{shown}: the graph has {len(inputs)} Input and {len(outputs)} "
                              "Output nodes; tracec compiles graphs with one of each",
                              hint="merge the inputs (or outputs) into one node")
        self.input, self.output = inputs[0], outputs[0]
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for src, dst in self.edges:
            if isinstance(self.nodes[dst], nir.Input):
                raise TracecError(f"{shown}: edge {src} -> {dst} leads into the Input node",
                                  hint="an Input node takes no edges")
            if isinstance(self.nodes[src], nir.Output):
                raise TracecError(f"{shown}: edge {src} -> {dst} leaves the Output node",
                                  hint="an Output node feeds nothing")
            self.preds[dst].append(src)
            self.succs[src].append(dst)
        for name in self.nodes:
            if name != self.input and not self.preds[name]:
                raise TracecError(f"{shown}: node '{name}' has no incoming edge",
                                  hint="connect it or remove it from the graph")
        self.order = self._order()
        pos = {n: i for i, n in enumerate(self.order)}
        # An edge whose source comes at or after its target in the order is read before it
        # is produced in a step: it carries the previous step's value (recurrent state).
        self.back = {(s, d) for s, d in self.edges if pos[s] >= pos[d]}
        self.stored = self._stored_outputs()
        self._check_fields()

    def _order(self) -> list[str]:
        """Reverse post-order of a depth-first walk from the Input node along the edges
        in the file's order (then from any node it does not reach)."""
        seen: set[str] = set()
        post: list[str] = []

        def visit(root: str) -> None:
            stack = [(root, iter(self.succs[root]))]
            seen.add(root)
            while stack:
                node, it = stack[-1]
                nxt = next((s for s in it if s not in seen), None)
                if nxt is None:
                    post.append(node)
                    stack.pop()
                else:
                    seen.add(nxt)
                    stack.append((nxt, iter(self.succs[nxt])))

        visit(self.input)
        for name in self.nodes:
            if name not in seen:
                visit(name)
        return post[::-1]

    def _stored_outputs(self) -> set[str]:
        """The nodes whose previous-step output a recurrent edge reads and which keep it
        in their state. A stateless node whose inputs are all read forward is recomputed
        from its sources' previous outputs instead (``s["z"] @ W_rec``), so the state is
        the neurons' spikes, as a hand-written model keeps it."""
        stored: set[str] = set()

        def need(u: str, path: tuple) -> None:
            kind = kind_of(self.nodes[u])
            if kind in NEURONS or kind == "Input" or u in path \
                    or any((p, u) in self.back for p in self.preds[u]):
                stored.add(u)
                return
            for p in self.preds[u]:
                need(p, path + (u,))

        for src, _ in self.back:
            need(src, ())
        return stored

    def _check_fields(self) -> None:
        for name, node in self.nodes.items():
            kind = kind_of(node)
            where = f"node '{name}' ({kind})"
            if kind in ("Affine", "Linear"):
                w = np.asarray(node.weight)
                if w.ndim != 2:
                    raise TracecError(f"{self.shown}: {where} has a {w.ndim}-D weight",
                                      hint="tracec maps Affine/Linear weights of shape [out, in]")
            if kind in ("Conv1d", "Conv2d"):
                w = np.asarray(node.weight)
                want = 3 if kind == "Conv1d" else 4
                if w.ndim != want:
                    raise TracecError(f"{self.shown}: {where} has a {w.ndim}-D weight, "
                                      f"{want}-D expected")


def _loss_from_file(path: str):
    """``loss`` (and the optional ``target`` spec) of a ``--loss-file``."""
    shown = display_path(path)
    if not os.path.isfile(path):
        raise TracecError(f"--loss-file: no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_tracec_nir_loss_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise TracecError(f"running the loss file raised {type(e).__name__}: {first}",
                          loc=SourceLoc(shown)) from e
    fn = getattr(module, "loss", None)
    if not callable(fn):
        raise TracecError("the loss file defines no function loss(output, target)",
                          loc=SourceLoc(shown),
                          hint="define def loss(output, target): ... returning a scalar")
    return fn, getattr(module, "target", None)


def load_nir_model(path: str, options: NirOptions | None = None):
    """The ``tracec.Model`` of the NIR graph in ``path`` (docs/nir.md)."""
    options = options or NirOptions()
    options.check()
    graph = Graph(read_graph(path), path)
    return build_model(graph, options)


def build_model(graph: Graph, options: NirOptions):
    import jax
    import jax.numpy as jnp

    from tracec.frontends.jax_frontend import Model, spike

    nir_nodes, shown, dt = graph.nodes, graph.shown, float(options.dt)
    B = options.batch
    in_node = nir_nodes[graph.input]
    in_shape = in_node.input_type.get("input") if isinstance(in_node.input_type, dict) else None
    if in_shape is None:
        raise TracecError(f"{shown}: the Input node '{graph.input}' has no shape",
                          hint="give it one: nir.Input(input_type=np.array([N]))")
    in_shape = tuple(int(d) for d in np.asarray(in_shape).reshape(-1))

    params0: dict = {}
    consts: dict = {}
    for name, node in nir_nodes.items():
        kind = kind_of(node)
        for f in TRAINABLE.get(kind, ()):
            value = getattr(node, f)
            if f == "bias" and kind.startswith("Conv"):
                value = np.broadcast_to(np.asarray(value, np.float32),
                                        (np.asarray(node.weight).shape[0],))
            params0.setdefault(name, {})[f] = _array(value, f"node '{name}' field {f}", shown)
        if kind in NEURONS or kind == "Threshold":
            fields = {"LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
                      "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold",
                                  "v_reset", "w_in"),
                      "LI": ("tau", "r", "v_leak"),
                      "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
                      "IF": ("r", "v_threshold", "v_reset"), "I": ("r",),
                      "Threshold": ("threshold",)}[kind]
            consts[name] = {f: _array(getattr(node, f), f"node '{name}' field {f}", shown)
                            for f in fields}
            for f in ("tau", "tau_syn", "tau_mem"):
                if f in consts[name] and np.any(consts[name][f] <= 0):
                    raise TracecError(f"{shown}: node '{name}' ({kind}) has a {f} <= 0",
                                      hint="time constants are positive seconds")

    def neuron(kind, c, s, x):
        """(output, new state) of one neuron node, forward Euler (docs/nir.md)."""
        if kind in ("LIF", "LI"):
            v = s["v"] + (dt / c["tau"]) * ((c["v_leak"] - s["v"]) + c["r"] * x)
            if kind == "LI":
                return v, {"v": v}
        elif kind in ("CubaLIF", "CubaLI"):
            i = s["i"] + (dt / c["tau_syn"]) * (c["w_in"] * x - s["i"])
            # the current first; the membrane integrates the updated current (docs/nir.md)
            v = s["v"] + (dt / c["tau_mem"]) * ((c["v_leak"] - s["v"]) + c["r"] * i)
            if kind == "CubaLI":
                return v, {"i": i, "v": v}
        elif kind in ("IF", "I"):
            v = s["v"] + dt * c["r"] * x
            if kind == "I":
                return v, {"v": v}
        z = spike(v - c["v_threshold"])
        v = v + z * (c["v_reset"] - v)
        new = {"v": v, "z": z} if kind in ("LIF", "IF") else {"i": i, "v": v, "z": z}
        return z, new

    def stateless(name, kind, node, p, x):
        if kind == "Pass":
            return x
        if kind == "Affine":
            return x @ p["weight"].T + p["bias"]
        if kind == "Linear":
            return x @ p["weight"].T
        if kind == "Scale":
            return x * p["scale"]
        if kind == "Threshold":
            return spike(x - consts[name]["threshold"])
        if kind in ("Conv1d", "Conv2d"):
            nd = 1 if kind == "Conv1d" else 2
            pad = node.padding
            if isinstance(pad, (str, bytes)):
                pad = pad.decode() if isinstance(pad, bytes) else pad
                padding = pad.upper()
            else:
                padding = [(q, q) for q in _ints(pad, nd, f"node '{name}' padding", shown)]
            spec = ("NCH", "OIH", "NCH") if nd == 1 else ("NCHW", "OIHW", "NCHW")
            y = jax.lax.conv_general_dilated(
                x, p["weight"], window_strides=_ints(node.stride, nd, "stride", shown),
                padding=padding, rhs_dilation=_ints(node.dilation, nd, "dilation", shown),
                feature_group_count=int(np.asarray(node.groups)), dimension_numbers=spec)
            return y + p["bias"].reshape((-1,) + (1,) * nd)
        if kind in ("SumPool2d", "AvgPool2d"):
            k = _ints(node.kernel_size, 2, f"node '{name}' kernel_size", shown)
            st = _ints(node.stride, 2, f"node '{name}' stride", shown)
            pd = _ints(node.padding, 2, f"node '{name}' padding", shown)
            y = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1) + k, (1, 1) + st,
                                      [(0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])])
            return y / float(k[0] * k[1]) if kind == "AvgPool2d" else y
        if kind == "Flatten":
            shape = x.shape[1:]
            start, end = int(node.start_dim), int(node.end_dim)
            start = start + len(shape) if start < 0 else start
            end = end + len(shape) if end < 0 else end
            if not 0 <= start <= end < len(shape):
                raise TracecError(f"{shown}: node '{name}' (Flatten) flattens dims "
                                  f"{node.start_dim}..{node.end_dim} of a {len(shape)}-D value",
                                  hint="NIR's Flatten dims count from the first non-batch axis")
            flat = shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]
            return x.reshape((x.shape[0],) + flat)
        raise AssertionError(kind)

    def evaluate(params, state, x, probe=None):
        """One step. ``probe`` (shape inference): {node: output shape} known so far; state
        missing for a node is created as zeros there."""
        out: dict = {}
        new_state: dict = {}
        prev: dict = {}

        def zeros_for(name):
            if name in probe:
                return jnp.zeros(probe[name], jnp.float32)
            if name == graph.input:
                return jnp.zeros_like(x)
            shp = np.broadcast_shapes(*(np.shape(c) for c in consts.get(name, {}).values()))
            return jnp.zeros((x.shape[0],) + shp if shp else (), jnp.float32)

        def previous(u):
            """u's output of the previous step."""
            if u in prev:
                return prev[u]
            kind = kind_of(nir_nodes[u])
            if u in graph.stored:
                s = state.get(u)
                key = "z" if kind in SPIKING and kind != "Threshold" else (
                    "v" if kind in NEURONS else "out")
                value = s[key] if s is not None else zeros_for(u)
            else:
                value = stateless(u, kind, nir_nodes[u], params.get(u),
                                  sum_inputs([previous(q) for q in graph.preds[u]]))
            prev[u] = value
            return value

        def sum_inputs(values):
            total = values[0]
            for v in values[1:]:
                total = total + v
            return total

        for name in graph.order:
            node = nir_nodes[name]
            kind = kind_of(node)
            if name == graph.input:
                value = x
            else:
                value = sum_inputs([previous(q) if (q, name) in graph.back else out[q]
                                    for q in graph.preds[name]])
                if kind == "Output":
                    pass
                elif kind in NEURONS:
                    s = state.get(name)
                    if s is None:  # shape inference: zeros shaped like input and constants
                        shp = jnp.broadcast_shapes(value.shape, *(
                            (value.shape[0],) + np.shape(c) if np.ndim(c) else ()
                            for c in consts[name].values()))
                        z = jnp.zeros(shp, jnp.float32)
                        s = {"v": z, "i": z} if kind.startswith("Cuba") else {"v": z}
                    value, new_state[name] = neuron(kind, consts[name], s, value)
                    if kind in SPIKING and name not in graph.stored:
                        new_state[name].pop("z")
                else:
                    value = stateless(name, kind, node, params.get(name), value)
            out[name] = value
            if name in graph.stored and kind not in NEURONS:
                new_state[name] = {"out": value}
        return new_state, out

    # Shapes: two abstract evaluations (the second sees the recurrent values' shapes).
    x_spec = jax.ShapeDtypeStruct((B,) + in_shape, jnp.float32)
    p_spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, jnp.float32), params0)
    shapes: dict = {}
    for _ in range(2):
        try:
            st, outs = jax.eval_shape(lambda p, x: evaluate(p, {}, x, probe=dict(shapes)),
                                      p_spec, x_spec)
        except TracecError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TracecError(f"{shown}: the graph's shapes do not fit together: {first}",
                              hint="check the nodes' weight shapes and the Input shape") from e
        shapes = {n: tuple(v.shape) for n, v in outs.items()}
    state_shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape), st)
    out_shape = shapes[graph.output]

    def init_params(key):
        del key  # the graph's own weights
        return jax.tree_util.tree_map(jnp.asarray, params0)

    def init_state(batch):
        return jax.tree_util.tree_map(
            lambda shp: jnp.zeros((batch,) + tuple(shp[1:]), jnp.float32), state_shapes,
            is_leaf=lambda a: isinstance(a, tuple))

    def step(params, state, x):
        new_state, out = evaluate(params, state, x)
        return new_state, out[graph.output]

    if options.loss_file:
        loss, target = _loss_from_file(options.loss_file)
        if target is None:
            target = jax.ShapeDtypeStruct(out_shape, jnp.float32)
    elif options.loss == "mse":
        def loss(output, target):
            return jnp.mean((output - target) ** 2)
        target = jax.ShapeDtypeStruct(out_shape, jnp.float32)
    else:
        if len(out_shape) != 2:
            raise TracecError(f"{shown}: --loss cross-entropy needs an output of shape "
                              f"[batch, classes], the graph's is {list(out_shape)}",
                              hint="use --loss mse or a --loss-file")

        def loss(output, target):
            logp = jax.nn.log_softmax(output, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, target[:, None], axis=-1))
        target = jax.ShapeDtypeStruct((out_shape[0],), jnp.int32)

    model = Model(init_params=init_params, init_state=init_state, step=step, loss=loss,
                  input=x_spec, target=target)
    return model
