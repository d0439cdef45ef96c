"""NIR in and out (docs/nir.md): graphs built here compile with tracec and compute what an
independent numpy simulation of NIR's equations computes; they train with ES-D-RTRL;
`tracec export-nir` writes them back with the trained weights; snnTorch (its own venv,
`make nir-venv`) reads tracec's export and tracec reads snnTorch's."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from conftest import EXAMPLES, ROOT, run_cli

import nir  # pinned in pyproject.toml's compiler extra

DT = 1e-4
T = 24


# ---------------------------------------------------------------------------------
# Graphs, and the evaluation order the numpy simulation uses for each (written by hand:
# an edge whose source comes later in this order carries the previous step's value)


def _w(rng, *shape, gain=1.0):
    return (gain * rng.normal(size=shape) / np.sqrt(shape[-1])).astype(np.float32)


def _full(n, value):
    return np.full(n, value, np.float32)


def _lif(n, tau, r, th, v_leak=0.0, v_reset=0.0):
    return nir.LIF(tau=_full(n, tau), r=_full(n, r), v_leak=_full(n, v_leak),
                   v_threshold=_full(n, th), v_reset=_full(n, v_reset))


def graph_ff_lif():
    """Affine -> LIF -> Linear -> LI readout."""
    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(input_type=np.array([4])),
             "fc": nir.Affine(weight=_w(rng, 6, 4, gain=3.0), bias=_w(rng, 6) * 0.1),
             "lif": _lif(6, tau=5e-4, r=5.0, th=1.0, v_leak=0.1, v_reset=-0.2),
             "ro": nir.Linear(weight=_w(rng, 3, 6)),
             "li": nir.LI(tau=_full(3, 1e-3), r=_full(3, 2.0), v_leak=_full(3, 0.0)),
             "output": nir.Output(output_type=np.array([3]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "ro"), ("ro", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges), list(nodes)


def graph_rec_lif():
    """A recurrent LIF layer through a cycle (lif -> rec -> lif) and an Affine readout."""
    rng = np.random.default_rng(2)
    nodes = {"input": nir.Input(input_type=np.array([5])),
             "fc": nir.Affine(weight=_w(rng, 8, 5, gain=3.0), bias=_full(8, 0.05)),
             "lif": _lif(8, tau=4e-4, r=4.0, th=1.0),
             "rec": nir.Linear(weight=_w(rng, 8, 8, gain=1.0)),
             "out": nir.Affine(weight=_w(rng, 3, 8), bias=_full(3, 0.1)),
             "output": nir.Output(output_type=np.array([3]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out"),
             ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges), ["input", "fc", "lif", "rec", "out", "output"]


def graph_cuba():
    """Linear -> CubaLIF -> Affine -> CubaLI (compiled with dt = 1e-3)."""
    rng = np.random.default_rng(3)
    n = 7
    nodes = {"input": nir.Input(input_type=np.array([4])),
             "w": nir.Linear(weight=_w(rng, n, 4, gain=4.0)),
             "cuba": nir.CubaLIF(tau_syn=_full(n, 4e-3), tau_mem=_full(n, 5e-3), r=_full(n, 3.0),
                                 v_leak=_full(n, 0.0), v_threshold=_full(n, 0.3),
                                 v_reset=_full(n, 0.0), w_in=_full(n, 2.0)),
             "fc": nir.Affine(weight=_w(rng, 2, n), bias=_full(2, 0.0)),
             "li": nir.CubaLI(tau_syn=_full(2, 3e-3), tau_mem=_full(2, 6e-3), r=_full(2, 1.0),
                              v_leak=_full(2, 0.05), w_in=_full(2, 1.5)),
             "output": nir.Output(output_type=np.array([2]))}
    edges = [("input", "w"), ("w", "cuba"), ("cuba", "fc"), ("fc", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges), list(nodes)


def graph_conv2d():
    """Conv2d -> IF -> SumPool2d -> AvgPool2d -> Flatten -> Affine."""
    rng = np.random.default_rng(4)
    nodes = {"input": nir.Input(input_type=np.array([1, 8, 8])),
             "conv": nir.Conv2d(input_shape=(8, 8), weight=_w(rng, 2, 1, 3, 3, gain=2.0),
                                stride=1, padding=1, dilation=1, groups=1,
                                bias=np.array([0.1, -0.1], np.float32)),
             "if": nir.IF(r=np.full((2, 8, 8), 1e4, np.float32),
                          v_threshold=np.full((2, 8, 8), 1.0, np.float32)),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                  padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0,
                                 end_dim=-1),
             "fc": nir.Affine(weight=_w(rng, 3, 8), bias=_full(3, 0.0)),
             "output": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    return (nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False),
            names)


def graph_conv_li():
    """Conv2d (stride 2, groups 1) -> IF -> AvgPool2d -> Flatten -> Affine -> LI readout,
    the convolutional graph the training test learns."""
    rng = np.random.default_rng(6)
    nodes = {"input": nir.Input(input_type=np.array([1, 9, 9])),
             "conv": nir.Conv2d(input_shape=(9, 9), weight=_w(rng, 2, 1, 3, 3, gain=2.0),
                                stride=2, padding=1, dilation=1, groups=1,
                                bias=np.array([0.2, 0.0], np.float32)),
             "if": nir.IF(r=np.full((2, 5, 5), 1e4, np.float32),
                          v_threshold=np.full((2, 5, 5), 1.0, np.float32)),
             "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                  padding=np.array([0, 0])),
             "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0),
             "fc": nir.Affine(weight=_w(rng, 3, 8, gain=3.0), bias=_full(3, 0.0)),
             "li": nir.LI(tau=_full(3, 1e-3), r=_full(3, 10.0), v_leak=_full(3, 0.0)),
             "output": nir.Output(output_type=np.array([3]))}
    names = list(nodes)
    return (nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False),
            names)


def graph_conv1d():
    """Conv1d (stride 2, dilation 1) -> Scale -> Threshold -> Flatten -> Linear -> I."""
    rng = np.random.default_rng(5)
    nodes = {"input": nir.Input(input_type=np.array([2, 9])),
             "conv": nir.Conv1d(input_shape=9, weight=_w(rng, 3, 2, 3, gain=2.0), stride=2,
                                padding=0, dilation=1, groups=1, bias=_full(3, 0.1)),
             "scale": nir.Scale(scale=np.array([[1.5], [0.5], [-1.0]] * np.ones((3, 4)),
                                               np.float32)),
             "th": nir.Threshold(threshold=np.full((3, 4), 0.2, np.float32)),
             "flat": nir.Flatten(input_type={"input": np.array([3, 4])}, start_dim=0),
             "w": nir.Linear(weight=_w(rng, 2, 12)),
             "int": nir.I(r=_full(2, 500.0)),
             "output": nir.Output(output_type=np.array([2]))}
    edges = [("input", "conv"), ("conv", "scale"), ("scale", "th"), ("th", "flat"),
             ("flat", "w"), ("w", "int"), ("int", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), list(nodes)


GRAPHS = {"ff_lif": graph_ff_lif, "rec_lif": graph_rec_lif, "cuba": graph_cuba,
          "conv2d": graph_conv2d, "conv_li": graph_conv_li, "conv1d": graph_conv1d}
DTS = {"cuba": 1e-3}


# ---------------------------------------------------------------------------------
# The independent simulation: NIR's equations, forward Euler (docs/nir.md), float64


def _conv(x, w, b, stride, pad, dilation):
    """Cross-correlation of x [B, C, *S] with w [O, C, *K] (groups 1), loops over the
    output positions."""
    nd = w.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    out_shape = [(x.shape[2 + d] - dilation[d] * (w.shape[2 + d] - 1) - 1) // stride[d] + 1
                 for d in range(nd)]
    y = np.zeros((x.shape[0], w.shape[0], *out_shape))
    for pos in np.ndindex(*out_shape):
        sl = tuple(slice(pos[d] * stride[d],
                         pos[d] * stride[d] + dilation[d] * (w.shape[2 + d] - 1) + 1, dilation[d])
                   for d in range(nd))
        patch = x[(slice(None), slice(None)) + sl]  # [B, C, *K]
        y[(slice(None), slice(None)) + pos] = np.tensordot(patch, w, axes=(list(range(1, patch.ndim)),
                                                                       list(range(1, w.ndim))))
    return y + b.reshape((-1,) + (1,) * nd)


def _pool(x, k, s, mean):
    B, C, H, W = x.shape
    oh, ow = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    y = np.zeros((B, C, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = x[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]].sum((2, 3))
    return y / (k[0] * k[1]) if mean else y


def simulate(graph, order, xs, dt=DT):
    """Outputs [T, B, ...] of ``graph`` on ``xs`` [T, B, ...], and the spike count of
    every spiking node."""
    nodes = graph.nodes
    preds = {n: [s for s, d in graph.edges if d == n] for n in nodes}
    prev = {n: 0.0 for n in nodes}       # last step's output of every node
    state = {n: {"v": 0.0, "i": 0.0} for n in nodes}
    spikes = {}
    ys = []
    for x in xs.astype(np.float64):
        out = {}
        for name in order:
            node = nodes[name]
            kind = type(node).__name__
            if kind == "Input":
                out[name] = x
                continue
            inp = sum(out[p] if p in out else prev[p] for p in preds[name])
            s = state[name]
            f = {k: np.asarray(v, np.float64) for k, v in vars(node).items()
                 if isinstance(v, np.ndarray)}
            if kind == "Output":
                y = inp
            elif kind == "Affine":
                y = inp @ f["weight"].T + f["bias"]
            elif kind == "Linear":
                y = inp @ f["weight"].T
            elif kind == "Scale":
                y = inp * f["scale"]
            elif kind == "Threshold":
                y = (inp > f["threshold"]).astype(np.float64)
            elif kind in ("Conv1d", "Conv2d"):
                nd = 1 if kind == "Conv1d" else 2
                rep = lambda v: tuple(np.broadcast_to(np.asarray(v), (nd,)).tolist())  # noqa: E731
                y = _conv(inp, f["weight"], f["bias"], rep(node.stride), rep(node.padding),
                          rep(node.dilation))
            elif kind in ("SumPool2d", "AvgPool2d"):
                y = _pool(inp, tuple(node.kernel_size), tuple(node.stride), kind == "AvgPool2d")
            elif kind == "Flatten":
                y = inp.reshape(inp.shape[0], -1)
            elif kind in ("LIF", "LI"):
                s["v"] = s["v"] + dt / f["tau"] * (f["v_leak"] - s["v"] + f["r"] * inp)
                y = s["v"]
            elif kind in ("CubaLIF", "CubaLI"):
                s["i"] = s["i"] + dt / f["tau_syn"] * (-s["i"] + f["w_in"] * inp)
                s["v"] = s["v"] + dt / f["tau_mem"] * (f["v_leak"] - s["v"] + f["r"] * s["i"])
                y = s["v"]
            elif kind in ("IF", "I"):
                s["v"] = s["v"] + dt * f["r"] * inp
                y = s["v"]
            else:
                raise AssertionError(kind)
            if kind in ("LIF", "CubaLIF", "IF"):
                z = (s["v"] > f["v_threshold"]).astype(np.float64)
                s["v"] = np.where(z > 0, f["v_reset"], s["v"])
                spikes[name] = spikes.get(name, 0) + z.sum()
                y = z
            out[name] = y
        prev = out
        ys.append(out[[n for n in order if type(nodes[n]).__name__ == "Output"][0]])
    return np.stack(ys), spikes


# ---------------------------------------------------------------------------------
# Compiled artifacts, shared by the tests (and tracec's compile cache across sessions)


@pytest.fixture(scope="session")
def nir_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nir")
    files = {}
    for name, make in GRAPHS.items():
        graph, _ = make()
        files[name] = str(folder / f"{name}.nir")
        nir.write(files[name], graph)
    return files


@pytest.fixture(scope="session")
def compiled(tmp_path_factory, nir_files):
    """compiled(name, algorithm, **nir options) -> path of the .vmfb, built once."""
    import tracec
    from tracec.frontends.nir_input import NirOptions

    folder = tmp_path_factory.mktemp("nir_art")
    done: dict = {}

    def get(name, algorithm="forward", batch=2, **kw):
        key = (name, algorithm, batch, tuple(sorted(kw.items())))
        if key not in done:
            opts = NirOptions(dt=DTS.get(name, DT), batch=batch)
            compile_kw = {"optimizer": "adam", "lr": 1e-2} if algorithm != "forward" else {}
            art = tracec.compile(nir_files[name], algorithm=algorithm, nir_options=opts,
                                 **compile_kw, **kw)
            done[key] = str(folder / f"{name}-{algorithm}-{len(done)}.vmfb")
            art.save(done[key])
        return done[key]

    return get


def _inputs(name, batch=2, seed=0):
    graph, _ = GRAPHS[name]()
    shape = tuple(int(d) for d in graph.nodes["input"].input_type["input"])
    rng = np.random.default_rng(seed)
    return (rng.random((T, batch) + shape) < 0.4).astype(np.float32) * 1.0


# ---------------------------------------------------------------------------------
# Round trips through nir.write / nir.read


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graphs_round_trip_through_nir_files(tmp_path, name):
    graph, _ = GRAPHS[name]()
    path = str(tmp_path / "g.nir")
    nir.write(path, graph)
    back = nir.read(path, type_check=False)
    assert set(back.nodes) == set(graph.nodes)
    assert sorted(map(tuple, back.edges)) == sorted(graph.edges)
    for n, node in graph.nodes.items():
        other = back.nodes[n]
        assert type(other) is type(node)
        for k, v in vars(node).items():
            if isinstance(v, np.ndarray) and k not in ("input_type", "output_type"):
                np.testing.assert_array_equal(np.asarray(getattr(other, k)), v)


def test_export_without_checkpoint_is_the_graph(tmp_path, nir_files):
    out = tmp_path / "same.nir"
    proc = run_cli("export-nir", nir_files["rec_lif"], "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    a, b = nir.read(nir_files["rec_lif"]), nir.read(str(out))
    assert sorted(map(tuple, a.edges)) == sorted(map(tuple, b.edges))
    for n in a.nodes:
        for k, v in vars(a.nodes[n]).items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(getattr(b.nodes[n], k), v)


# ---------------------------------------------------------------------------------
# Forward: tracec's artifact computes what NIR's equations say


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_forward_matches_an_independent_simulation(compiled, name):
    import tracec.runtime

    graph, order = GRAPHS[name]()
    xs = _inputs(name)
    want, spikes = simulate(graph, order, xs, dt=DTS.get(name, DT))
    learner = tracec.runtime.load(compiled(name))
    got = learner.forward_sequence(xs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the check means something: every spiking node spiked, and not always
    for node, count in spikes.items():
        size = np.prod(np.shape(graph.nodes[node].v_threshold)) * xs.shape[1] * T
        assert 0 < count < size, (node, count, size)


def test_recurrent_edge_becomes_state(compiled):
    """The cycle lif -> rec -> lif keeps the LIF's spikes as state (`lif/z`), the way a
    hand-written step keeps them; rec's weight is applied at the start of the step."""
    import tracec.runtime

    learner = tracec.runtime.load(compiled("rec_lif"))
    names = [s["name"] for s in learner.manifest["state"]]
    assert names == ["lif/v", "lif/z"]
    assert [p["name"] for p in learner.manifest["params"]] == [
        "fc/bias", "fc/weight", "out/bias", "out/weight", "rec/weight"]


# ---------------------------------------------------------------------------------
# Training and export of the trained weights


def test_es_d_rtrl_trains_and_export_nir_writes_the_trained_weights(compiled, nir_files,
                                                                     tmp_path):
    import tracec.runtime

    learner = tracec.runtime.load(compiled("rec_lif", algorithm="es-d-rtrl", batch=4))
    rng = np.random.default_rng(7)
    xs = (rng.random((T, 4, 5)) < 0.4).astype(np.float32)
    targets = np.broadcast_to(np.array([0.5, -0.5, 0.2], np.float32), (T, 4, 3)).copy()
    losses = []
    for _ in range(12):
        learner.reset()
        losses.append(float(np.mean(learner.train_sequence(xs, targets))))
    assert losses[-1] < 0.5 * losses[0], losses
    ckpt = str(tmp_path / "trained.npz")
    learner.save_checkpoint(ckpt)
    out = str(tmp_path / "trained.nir")
    proc = run_cli("export-nir", nir_files["rec_lif"], "--checkpoint", ckpt, "-o", out)
    assert proc.returncode == 0, proc.stderr
    back = nir.read(out)
    params = learner.params
    for name, value in params.items():
        node, field = name.split("/")
        np.testing.assert_array_equal(getattr(back.nodes[node], field), value)
    original = nir.read(nir_files["rec_lif"])
    assert not np.array_equal(original.nodes["fc"].weight, back.nodes["fc"].weight)
    np.testing.assert_array_equal(original.nodes["lif"].tau, back.nodes["lif"].tau)
    # the exported graph computes what the trained learner computes
    learner.reset()
    want = learner.forward_sequence(xs)
    got, _ = simulate(back, ["input", "fc", "lif", "rec", "out", "output"], xs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_convolutional_graph_trains(compiled):
    """Conv2d -> IF -> AvgPool2d -> Affine -> LI: the convolution's kernel learns."""
    import tracec.runtime

    learner = tracec.runtime.load(compiled("conv_li", algorithm="es-d-rtrl"))
    xs = _inputs("conv_li", seed=8)
    targets = np.broadcast_to(np.array([1.0, 0.0, -1.0], np.float32), (T, 2, 3)).copy()
    before = learner.params["conv/weight"]
    losses = []
    for _ in range(8):
        learner.reset()
        losses.append(float(np.mean(learner.train_sequence(xs, targets))))
    assert losses[-1] < 0.7 * losses[0], losses
    assert not np.array_equal(learner.params["conv/weight"], before)


def test_export_refuses_a_checkpoint_of_another_model(compiled, nir_files, tmp_path):
    import tracec.runtime

    learner = tracec.runtime.load(compiled("ff_lif"))
    ckpt = str(tmp_path / "ff.npz")
    learner.save_checkpoint(ckpt)
    proc = run_cli("export-nir", nir_files["rec_lif"], "--checkpoint", ckpt,
                   "-o", str(tmp_path / "x.nir"))
    _one_line_error(proc, "ff.npz", "another file")


def test_export_nir_reads_a_jax_model(tmp_path):
    """examples/nir/lif_hard.py (lif2 with a reset to zero) exported from its JAX step:
    LIF layers with recurrent edges and an LI readout whose compiled graph computes what
    the model.py's artifact computes; a checkpoint's parameters become the weights."""
    import tracec
    import tracec.runtime
    from tracec.frontends.nir_input import NirOptions

    model_py = os.path.join(EXAMPLES, "nir", "lif_hard.py")
    art = tracec.compile(model_py)
    art.save(str(tmp_path / "py.vmfb"))
    learner = tracec.runtime.load(str(tmp_path / "py.vmfb"))
    rng = np.random.default_rng(5)
    changed = {k: v + 0.1 * rng.normal(size=v.shape).astype(np.float32)
               for k, v in learner.params.items()}
    learner.set_params(changed)
    learner.save_checkpoint(str(tmp_path / "c.npz"))
    out = str(tmp_path / "lif_hard.nir")
    proc = run_cli("export-nir", model_py, "--checkpoint", str(tmp_path / "c.npz"), "-o", out)
    assert proc.returncode == 0, proc.stderr
    g = nir.read(out)
    kinds = {n: type(v).__name__ for n, v in g.nodes.items()}
    assert kinds == {"input": "Input", "l1.w_in": "Affine", "l1": "LIF", "l1.w_rec": "Linear",
                     "l2.w_in": "Affine", "l2": "LIF", "l2.w_rec": "Linear", "out.w": "Linear",
                     "out": "LI", "output": "Output"}
    assert ("l1.w_rec", "l1") in map(tuple, g.edges) and ("l1", "l1.w_rec") in map(tuple, g.edges)
    np.testing.assert_array_equal(g.nodes["l1.w_in"].weight, changed["l1/w_in"].T)
    np.testing.assert_array_equal(g.nodes["l1.w_in"].bias, changed["l1/b"])
    np.testing.assert_allclose(g.nodes["l1"].tau, DT / (1 - 0.9), rtol=1e-6)
    xs = (rng.random((T, 4, 12)) < 0.4).astype(np.float32)
    want = learner.forward_sequence(xs)
    tracec.compile(out, nir_options=NirOptions(batch=4)).save(str(tmp_path / "nir.vmfb"))
    got = tracec.runtime.load(str(tmp_path / "nir.vmfb")).forward_sequence(xs)
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_export_nir_reads_a_spike_under_the_models_own_custom_jvp(tmp_path):
    """The same model with its spike written as a jax.custom_jvp Heaviside (its own
    surrogate, which NIR does not carry) exports to the same graph."""
    text = open(os.path.join(EXAMPLES, "nir", "lif_hard.py")).read()
    own = text.replace("import tracec\n", """import tracec


@jax.custom_jvp
def heaviside(x):
    return jnp.heaviside(x, 0.0)


@heaviside.defjvp
def _heaviside_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return heaviside(x), t / (1.0 + 5.0 * jnp.abs(x)) ** 2
""", 1).replace('tracec.spike(v - V_TH, surrogate="sigmoid", alpha=4.0)', "heaviside(v - V_TH)")
    assert "heaviside(v - V_TH)" in own
    paths = {}
    for name, source in (("given", text), ("own", own)):
        (tmp_path / f"{name}.py").write_text(source)
        paths[name] = str(tmp_path / f"{name}.nir")
        proc = run_cli("export-nir", str(tmp_path / f"{name}.py"), "-o", paths[name])
        assert proc.returncode == 0, proc.stderr
    given, own_graph = nir.read(paths["given"]), nir.read(paths["own"])
    assert {n: type(v).__name__ for n, v in own_graph.nodes.items()} == \
        {n: type(v).__name__ for n, v in given.nodes.items()}
    assert sorted(map(tuple, own_graph.edges)) == sorted(map(tuple, given.edges))
    for name, node in given.nodes.items():
        for field in ("weight", "bias", "tau", "v_threshold"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(own_graph.nodes[name], field),
                                              getattr(node, field), err_msg=f"{name}.{field}")


# ---------------------------------------------------------------------------------
# The command line: losses, dt, and errors for people


def _one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def test_cli_losses_and_options(tmp_path, nir_files):
    """--loss cross-entropy takes an int32 class target; --loss-file a user's loss and
    target spec; --dt changes the step's constants."""
    from tracec.frontends.nir_input import NirOptions, load_nir_model

    ce = load_nir_model(nir_files["rec_lif"], NirOptions(batch=3, loss="cross-entropy"))
    assert ce.target.shape == (3,) and str(ce.target.dtype) == "int32"
    loss_file = tmp_path / "loss.py"
    loss_file.write_text("import jax, jax.numpy as jnp\n"
                         "target = jax.ShapeDtypeStruct((2,), jnp.int32)\n"
                         "def loss(output, target):\n"
                         "    return jnp.mean(jnp.abs(output[:, 0] - target))\n")
    proc = run_cli(nir_files["ff_lif"], "--batch", "2", "--loss-file", str(loss_file),
                   "--emit", "stablehlo")
    assert proc.returncode == 0, proc.stderr
    assert "func.func" in proc.stdout and "tensor<2xi32>" in proc.stdout
    vmfb = str(tmp_path / "m.vmfb")
    proc = run_cli(nir_files["rec_lif"], "-o", vmfb, "--algorithm", "es-d-rtrl", "--batch", "4",
                   "--optimizer", "adam", "--lr", "0.01")
    assert proc.returncode == 0, proc.stderr
    import tracec.runtime

    learner = tracec.runtime.load(vmfb)
    loss, _ = learner.train_step(np.ones((4, 5), np.float32), np.zeros((4, 3), np.float32))
    assert np.isfinite(loss) and learner.algorithm == "es-d-rtrl"
    a = run_cli(nir_files["ff_lif"], "--emit", "stablehlo", "--dt", "1e-4")
    b = run_cli(nir_files["ff_lif"], "--emit", "stablehlo", "--dt", "2e-4")
    assert a.returncode == 0 and b.returncode == 0 and a.stdout != b.stdout


def test_bad_graphs_are_one_line_errors(tmp_path):
    rng = np.random.default_rng(0)
    delay = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([3])),
                                "d": nir.Delay(delay=np.ones(3, np.float32)),
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "d"), ("d", "output")])
    path = str(tmp_path / "delay.nir")
    nir.write(path, delay)
    _one_line_error(run_cli(path, "-o", str(tmp_path / "x.vmfb")), "delay.nir",
                    "node 'd' is a Delay", "supported nodes")
    two = nir.NIRGraph(nodes={"a": nir.Input(input_type=np.array([3])),
                              "b": nir.Input(input_type=np.array([3])),
                              "l": nir.Linear(weight=_w(rng, 3, 3)),
                              "output": nir.Output(output_type=np.array([3]))},
                       edges=[("a", "l"), ("b", "l"), ("l", "output")])
    path = str(tmp_path / "two.nir")
    nir.write(path, two)
    _one_line_error(run_cli(path, "-o", str(tmp_path / "x.vmfb")), "two.nir", "2 Input")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not hdf5")
    _one_line_error(run_cli(str(junk), "-o", str(tmp_path / "x.vmfb")), "junk.nir",
                    "not a readable NIR graph")
    _one_line_error(run_cli(os.path.join(EXAMPLES, "lif2.py"), "--dt", "1e-3",
                            "-o", str(tmp_path / "x.vmfb")), "--dt", "NIR graphs")
    line = _one_line_error(run_cli("export-nir", os.path.join("examples", "lif2.py"),
                                   "-o", str(tmp_path / "x.nir")),
                           "reset by subtraction", "v * (1 - z)")
    assert line.startswith("examples/lif2.py:42:"), line


# ---------------------------------------------------------------------------------
# An independent producer and consumer: snnTorch, in its own venv (make nir-venv)

NIR_VENV_PYTHON = os.path.join(ROOT, ".venv-nir", "bin", "python")
SNNTORCH_SIDE = os.path.join(EXAMPLES, "nir", "snntorch_side.py")


def _snntorch(*args):
    if not os.path.isfile(NIR_VENV_PYTHON):
        pytest.skip("snnTorch's venv .venv-nir is absent: `make nir-venv` creates it")
    proc = subprocess.run([NIR_VENV_PYTHON, SNNTORCH_SIDE, *args], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def snntorch_graph():
    """Affine -> LIF -> Affine -> LIF with the neuron parameters snnTorch's importer takes
    (v_leak 0, v_reset 0, r = tau/dt, one threshold per layer)."""
    rng = np.random.default_rng(11)

    def lif(n, beta, th):
        tau = np.full(n, DT / (1 - beta), np.float32)
        return nir.LIF(tau=tau, r=tau / DT, v_leak=_full(n, 0.0), v_threshold=_full(n, th),
                       v_reset=_full(n, 0.0))

    nodes = {"input": nir.Input(input_type=np.array([5])),
             "fc1": nir.Affine(weight=_w(rng, 8, 5, gain=3.0), bias=_full(8, 0.1)),
             "lif1": lif(8, 0.8, 1.0),
             "fc2": nir.Affine(weight=_w(rng, 3, 8, gain=2.0), bias=_full(3, 0.1)),
             "lif2": lif(3, 0.7, 0.5),
             "output": nir.Output(output_type=np.array([3]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_a_graph_snntorch_exports_runs_in_tracec(tmp_path):
    """snnTorch's own network (a recurrent RLeaky layer) exported by snnTorch: tracec's
    artifact gives snnTorch's outputs."""
    import tracec
    import tracec.runtime
    from tracec.frontends.nir_input import NirOptions

    xs = _inputs("rec_lif", batch=2, seed=3)
    np.save(tmp_path / "xs.npy", xs)
    _snntorch("export", str(tmp_path / "snn.nir"), str(tmp_path / "xs.npy"),
              str(tmp_path / "ys.npy"))
    want = np.load(tmp_path / "ys.npy")
    art = tracec.compile(str(tmp_path / "snn.nir"), nir_options=NirOptions(batch=2))
    art.save(str(tmp_path / "snn.vmfb"))
    got = tracec.runtime.load(str(tmp_path / "snn.vmfb")).forward_sequence(xs)
    assert 0 < want.sum() < want.size  # the output layer spikes, and not always
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_tracec_export_runs_in_snntorch(tmp_path):
    """A graph trained by tracec and written by export-nir: snnTorch's importer runs it
    and gives tracec's outputs."""
    import tracec
    import tracec.runtime
    from tracec.frontends.nir_input import NirOptions

    if not os.path.isfile(NIR_VENV_PYTHON):
        pytest.skip("snnTorch's venv .venv-nir is absent: `make nir-venv` creates it")
    src = str(tmp_path / "net.nir")
    nir.write(src, snntorch_graph())
    art = tracec.compile(src, algorithm="es-d-rtrl", optimizer="adam", lr=1e-2,
                         nir_options=NirOptions(batch=2))
    art.save(str(tmp_path / "net.vmfb"))
    learner = tracec.runtime.load(str(tmp_path / "net.vmfb"))
    xs = _inputs("rec_lif", batch=2, seed=4)
    targets = np.zeros((T, 2, 3), np.float32)
    for _ in range(3):
        learner.reset()
        learner.train_sequence(xs, targets)
    learner.save_checkpoint(str(tmp_path / "c.npz"))
    proc = run_cli("export-nir", src, "--checkpoint", str(tmp_path / "c.npz"),
                   "-o", str(tmp_path / "trained.nir"))
    assert proc.returncode == 0, proc.stderr
    learner.reset()
    want = learner.forward_sequence(xs)
    np.save(tmp_path / "xs.npy", xs)
    _snntorch("run", str(tmp_path / "trained.nir"), str(tmp_path / "xs.npy"),
              str(tmp_path / "ys.npy"))
    got = np.load(tmp_path / "ys.npy")
    assert 0 < want.sum() < want.size
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
