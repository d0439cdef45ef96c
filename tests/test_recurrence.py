"""Recurrence analysis on the model zoo: groups, relations and diagnostics.

The expected values are written from the models' equations (see each file in
examples/zoo/), not recorded from the compiler's output.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import EXAMPLES, ROOT, run_cli
from tracec.diagnostics import TracecError
from tracec.inspect import analyse

ZOO = os.path.join(EXAMPLES, "zoo")
B, I, H, O = 8, 12, 16, 4


def G(states, derived=(), zero=False):
    return {"states": list(states), "derived": list(derived), "zero_recurrence": zero}


def dense(param, group, x=(B, H), y=(B, H)):
    return {"param": param, "kind": "dense", "x_shape": list(x), "y_shape": list(y), "groups": [group]}


def conv(param, group, x=(B, 4, 6, 6), y=(B, 4, 6, 6)):
    return {"param": param, "kind": "conv", "x_shape": list(x), "y_shape": list(y), "groups": [group]}


def ew(param, group, y=(B, H)):
    return {"param": param, "kind": "element-wise", "y_shape": list(y), "groups": [group]}


LIF = [dense("w_in", 0, x=(B, I)), dense("w_rec", 0)]

EXPECTED = {
    "lif_carry": ([G(["v"], ["z"])], LIF, []),
    "lif_recompute": ([G(["v"])], LIF, []),
    "lif_scan": ([G(["v"])], LIF, []),  # lif_recompute as a lax.scan sequence function
    "alif": ([G(["a", "v"])], [ew("b", 0)] + LIF, []),
    "gif3": ([G(["i1", "i2", "v"])], LIF, []),
    "lif_syn": ([G(["g", "v"])], LIF, []),
    "lif_soft": ([G(["v"])], LIF, []),
    "lif_soft_sg": ([G(["v"])], LIF, []),
    "lif_hard": ([G(["v"])], LIF, []),
    "lif_hard_sg": ([G(["v"])], LIF, []),
    "lif_readout": ([G(["v"])], LIF, ["w_out"]),
    "rnn_tanh": ([G(["h"], zero=True)], [ew("b", 0), dense("u", 0), dense("w", 0, x=(B, I))], []),
    "gru": ([G(["h"])], [dense("un", 0), dense("ur", 0), dense("uz", 0),
                         dense("wn", 0, x=(B, I)), dense("wr", 0, x=(B, I)), dense("wz", 0, x=(B, I))], []),
    "lstm": ([G(["c", "h"])], [ew("b", 0, y=(B, 4 * H)), dense("u", 0, y=(B, 4 * H)),
                               dense("w", 0, x=(B, I), y=(B, 4 * H))], []),
    "conv_lif": ([G(["v"])], [conv("w_in", 0, x=(B, 2, 6, 6)), conv("w_rec", 0)], ["w_out"]),
    "snn3": ([G(["v1"]), G(["v2"]), G(["v3"]), G(["y"])],
             [dense("l1/w_in", 0, x=(B, I)), dense("l1/w_rec", 0), dense("l2/w_in", 1),
              dense("l2/w_rec", 1), dense("l3/w_in", 2), dense("l3/w_rec", 2),
              ew("out/b", 3, y=(B, O)), dense("out/w", 3, y=(B, O))], []),
}


def _strip(info):
    groups = [{k: g[k] for k in ("states", "derived", "zero_recurrence")} for g in info["groups"]]
    rels = [{k: r[k] for k in ("param", "kind", "x_shape", "y_shape", "groups") if k in r}
            for r in info["relations"]]
    return groups, rels, info["readout_params"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_groups_and_relations(name):
    info = analyse(os.path.join(ZOO, f"{name}.py"))
    assert _strip(info) == EXPECTED[name]


def test_carrying_or_recomputing_spikes_gives_the_same_structure():
    carry = analyse(os.path.join(ZOO, "lif_carry.py"))
    recompute = analyse(os.path.join(ZOO, "lif_recompute.py"))
    assert carry["groups"][0]["states"] == recompute["groups"][0]["states"] == ["v"]
    assert carry["groups"][0]["derived"] == ["z"]
    assert _strip(carry)[1] == _strip(recompute)[1]


def test_scan_sequence_model_runs_like_jax(tmp_path):
    """The step extracted from a lax.scan computes what the scan computes."""
    import sys

    import jax
    import numpy as np

    import tracec
    import tracec.runtime

    path = str(tmp_path / "scan.vmfb")
    art = tracec.compile(os.path.join(ZOO, "lif_scan.py"))
    assert 'tracec.carried = ["stacked-input", "param", "param", "counter", "state", ' \
           '"stacked-output"]' in art.ir["tracec"]
    art.save(path)
    sys.path.insert(0, ZOO)
    import lif_scan

    xs = np.random.default_rng(0).random((40, B, I)).astype(np.float32)
    params = lif_scan.init_params(jax.random.PRNGKey(0))
    final, ref = lif_scan.sequence(params, lif_scan.model.init_state(B), xs)
    learner = tracec.runtime.load(path)
    np.testing.assert_allclose(learner.forward_sequence(xs), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(learner.state["v"], final["v"], rtol=1e-5, atol=1e-6)


def test_stop_gradient_is_a_reported_cut():
    cuts = analyse(os.path.join(ZOO, "lif_soft_sg.py"))["cuts"]
    sg = [c for c in cuts if c["reason"] == "tracec.stop_gradient"]
    assert len(sg) == 1 and sg[0]["loc"] == "examples/zoo/lif_soft_sg.py:16:8"
    assert sg[0]["from"] == ["v"] and sg[0]["to"] == ["v"]
    assert not [c for c in analyse(os.path.join(ZOO, "lif_soft.py"))["cuts"]
                if c["reason"] == "tracec.stop_gradient"]


def test_two_layer_example():
    info = analyse(os.path.join(EXAMPLES, "lif2.py"))
    assert [g["states"] for g in info["groups"]] == [["l1/v", "l1/z"], ["l2/v", "l2/z"], ["out/y"]]
    rel = {r["param"]: r for r in info["relations"]}
    assert rel["l2/w_in"]["x_shape"] == [32, 64] and rel["l2/w_in"]["groups"] == [1]
    assert rel["l1/w_in"]["x_shape"] == [32, 40]


def test_inspect_json_cli_and_graph(tmp_path):
    graph = tmp_path / "g.svg"
    proc = run_cli("inspect", os.path.join("examples", "zoo", "alif.py"), "--json", "--graph", str(graph))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"groups", "relations", "readout_params", "cuts"}
    assert data["groups"][0]["states"] == ["a", "v"]
    svg = graph.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    for name in ("a", "v", "w_in", "w_rec", "group 0"):
        assert f">{name}" in svg or name in svg
    import xml.dom.minidom

    xml.dom.minidom.parseString(svg)  # well-formed
    table = run_cli("inspect", os.path.join("examples", "zoo", "alif.py"))
    assert "Hidden groups" in table.stdout and "[0] a, v" in table.stdout


def test_analysis_results_are_ir_attributes():
    proc = run_cli(os.path.join("examples", "zoo", "alif.py"), "--emit", "tracec",
                   "-p", "identify-recurrent-state,find-hidden-groups,find-param-relations")
    assert proc.returncode == 0, proc.stderr
    assert 'tracec.groups = [{states = ["a", "v"]' in proc.stdout
    assert "tracec.relations = [" in proc.stdout and "tracec.cuts = [" in proc.stdout


DIAGNOSTICS = {
    "norm_relation": (9, "non-element-wise coupling between parameter 'w' and the neurons it feeds, "
                         "through stablehlo.reduce"),
    "norm_state": (9, "non-element-wise coupling between state 'v' and state 'v' through stablehlo.reduce"),
    "nested_loop": (10, "a loop inside the step has no trip count known at compile time"),
    "shape_mismatch": (8, "the states of one hidden group have different shapes: 'flat' [32], 'v' [4, 8]"),
    "not_recurrent": (7, "nothing recurrent found"),
    "constant_state": (9, "the new value of state 'c' depends on nothing"),
    "scan_uses_time": (13, "the time loop carries a value that is not part of the model's state"),
}


@pytest.mark.parametrize("name", sorted(DIAGNOSTICS))
def test_diagnostics_name_the_line(name):
    line, message = DIAGNOSTICS[name]
    path = os.path.join("tests", "models", "recurrence", f"{name}.py")
    with pytest.raises(TracecError) as e:
        analyse(os.path.join(ROOT, path))
    assert e.value.loc is not None and e.value.loc.line == line
    assert e.value.loc.file == path
    assert message in e.value.message
    proc = run_cli("inspect", path)
    assert proc.returncode == 1 and proc.stderr.startswith(f"{path}:{line}:")
    assert len(proc.stderr.strip().splitlines()) == 1
