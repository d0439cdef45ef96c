"""A scatter whose indices come from data and fall outside the array is dropped, as in
JAX, on the compiled binary too (guard-scatter-indices). Without the guard IREE writes
past the buffer and the process that runs the model dies of heap corruption, so the
binary runs in a child process here."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

MODEL = textwrap.dedent('''
    import jax
    import jax.numpy as jnp
    import tracec

    B, N, H = 4, 6, 8

    def init_params(key):
        return {"w": 0.5 * jax.random.normal(key, (N, H), jnp.float32)}

    def init_state(batch):
        return {"h": jnp.zeros((batch, H), jnp.float32)}

    def step(p, s, x):
        bins = jnp.floor(x[:, 0] * 6.0).astype(jnp.int32)       # some < 0, some >= H
        h = 0.5 * s["h"] + jnp.tanh(x @ p["w"])
        h = h.at[jnp.arange(B), bins].add(1.0)                    # adds, 2-component index
        h = h.at[bins].set(x[:, 1:2] * jnp.ones((B, H)))          # overwrites whole rows
        seg = jax.ops.segment_sum(x[:, 2], bins, num_segments=H)  # adds, scalar index
        return {"h": h}, h + seg[None, :]

    model = tracec.Model(init_params=init_params, init_state=init_state, step=step,
                         input=jax.ShapeDtypeStruct((B, N), jnp.float32))
''')

RUN = textwrap.dedent('''
    import sys, numpy as np
    import tracec.runtime
    learner = tracec.runtime.load(sys.argv[1])
    xs = np.load(sys.argv[2])
    np.save(sys.argv[3], np.stack([learner.forward(x) for x in xs]))
''')


def _inputs(T=6, B=4, N=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.5, 2.5, size=(T, B, N)).astype(np.float32)


def test_out_of_range_scatter_indices_are_dropped_in_the_binary(tmp_path):
    import jax
    import tracec

    model_py = tmp_path / "model.py"
    model_py.write_text(MODEL)
    vmfb = str(tmp_path / "m.vmfb")
    art = tracec.compile(str(model_py), algorithm="forward")
    art.save(vmfb)
    ir = art.ir["iree-input"]
    assert "stablehlo.pad" in ir, "the overwriting scatter should go through padding"

    xs = _inputs()
    bins = np.floor(xs[:, :, 0] * 6.0).astype(np.int32)
    assert (bins < 0).any() and (bins >= 8).any(), "the inputs must hold out-of-range bins"
    np.save(tmp_path / "xs.npy", xs)
    run = subprocess.run([sys.executable, "-c", RUN, vmfb, str(tmp_path / "xs.npy"),
                          str(tmp_path / "ys.npy")], capture_output=True, text=True,
                         timeout=300, cwd=str(tmp_path))
    assert run.returncode == 0, f"the binary died (exit {run.returncode}): {run.stderr[-2000:]}"
    got = np.load(tmp_path / "ys.npy")

    sys.path.insert(0, str(tmp_path))
    try:
        import importlib
        mod = importlib.import_module("model")
        mod = importlib.reload(mod)
    finally:
        sys.path.remove(str(tmp_path))
    p = _binary_params(vmfb, tmp_path)  # JAX runs the very weights the binary starts from
    state = mod.init_state(4)
    want = []
    step = jax.jit(mod.step)
    for x in xs:
        state, y = step(p, state, x)
        want.append(np.asarray(y))
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-5, atol=1e-5)


def _binary_params(vmfb, tmp_path):
    """The parameters the binary starts from (so JAX runs the very same weights)."""
    code = ("import sys, numpy as np, tracec.runtime\n"
            "l = tracec.runtime.load(sys.argv[1])\n"
            "np.save(sys.argv[2], np.asarray(l.params['w']))\n")
    out = tmp_path / "w.npy"
    run = subprocess.run([sys.executable, "-c", code, vmfb, str(out)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return {"w": np.load(out)}
