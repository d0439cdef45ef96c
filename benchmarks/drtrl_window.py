"""D-RTRL's traces over a window of K steps: one pass over each trace per window.

    python -m benchmarks.drtrl_window [--H 256] [--T 180] [--rounds 5] [--windows 4 12]

A D-RTRL weight trace follows ``ε_j = D_j ⊙ ε_{j-1} + x_j``, the decay ``D_j [H, B]``
per neuron and batch row and the layer's input ``x_j [B, I]`` broadcast over neurons
(``benchmarks/step_floor.py``'s D-RTRL floor, whose arithmetic this reuses), and the
gradient is ``Σ_j Σ_b δ_j[b, h] ε_j[h, b, i]``. Per step that reads and writes the
trace ``[H, B, I]`` once each step; at H = 256 (8 MiB per trace) that traffic is the
step. Because the decay is per neuron, K steps compose in closed form from the trace at
the window's start ``ε_0``:

- ``ε_K = P_K ⊙ ε_0 + Σ_k R_k ⊙ x_k``, with ``P_j = D_1 ⋯ D_j`` and
  ``R_k = D_{k+1} ⋯ D_K``;
- ``Σ_j δ_j ε_j = Σ_b A[h, b] ε_0[h, b, i] + Σ_k Σ_b C_k[h, b] x_k[b, i]``, with
  ``A = Σ_j δ_jᵀ ⊙ P_j`` and ``C_k = δ_kᵀ + D_{k+1} ⊙ C_{k+1}``: one contraction with
  the trace and one small product over K·B rows (like ES-D-RTRL's outer products).

The same multiply-adds per trace element, but the trace is read and written once per K
steps. Both forms run as one "step" of tracec's forward path (IREE llvm-cpu,
local-sync, tracec's time loop) and as ``jax.jit`` of a ``lax.scan`` (XLA), timed
interleaved in one process on one core, beside tracec's own D-RTRL ``train_sequence``
on ``benchmarks/networks.py``'s ``lif_v`` network of the same size. Before timing, the
window form's gradients and final traces are checked against the per-step form's over
the whole sequence (XLA). Writes benchmarks/results/drtrl_window_H{H}.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np

from benchmarks import step_floor
from benchmarks.common import ROOT, interleaved, make_data, write_text

KEYS = ("W1", "R1", "W2", "R2")


def signals(p, z1, z2, x):
    """One step of the floor's forward and learning signals: the hidden values, the
    readout, and per hidden weight (its input, its neurons' decay [H, B], δ [B, H])."""
    import jax.numpy as jnp

    h1, h2, y = step_floor.forward_body(p, z1, z2, x)
    d2 = y @ p["Wo"].T
    d1 = d2 @ p["W2"].T
    decay = lambda d: 0.9 * (1.0 - 0.01 * jnp.abs(d.T))  # noqa: E731  (as the floor)
    per = {"W1": (x, d1), "R1": (z1, d1), "W2": (h1, d2), "R2": (z2, d2)}
    return h1, h2, y, {k: (inp, decay(d), d) for k, (inp, d) in per.items()}


def per_step(p, s, x):
    """The floor's D-RTRL step with its gradient contracted each step."""
    import jax.numpy as jnp

    h1, h2, y, per = signals(p, s["z1"], s["z2"], x)
    new = {"z1": h1, "z2": h2}
    for k, (inp, D, d) in per.items():
        new[k] = s[k] * D[:, :, None] + inp[None, :, :]
        new["g" + k] = s["g" + k] + jnp.einsum("bh,hbi->hi", d, new[k])
    return new, y


def window_step(K: int):
    """K steps of ``per_step`` in closed form: ``x [B, K, N_IN]``."""
    import jax.numpy as jnp

    def step(p, s, x):
        z1, z2 = s["z1"], s["z2"]
        steps = []
        for j in range(K):
            h1, h2, y, per = signals(p, z1, z2, x[:, j])
            steps.append(per)
            z1, z2 = h1, h2
        new = {"z1": z1, "z2": z2}
        for k in KEYS:
            inp = [st[k][0] for st in steps]
            D = [st[k][1] for st in steps]
            d = [st[k][2].T for st in steps]  # [H, B]
            P, A = D[0], d[0] * D[0]
            for j in range(1, K):
                P = P * D[j]
                A = A + d[j] * P
            C, R = [None] * K, [None] * K
            C[K - 1], R[K - 1] = d[K - 1], jnp.ones_like(P)
            for j in range(K - 2, -1, -1):
                C[j] = d[j] + D[j + 1] * C[j + 1]
                R[j] = D[j + 1] * R[j + 1]
            e0 = s[k]
            trace = P[:, :, None] * e0
            for j in range(K):
                trace = trace + R[j][:, :, None] * inp[j][None, :, :]
            small = jnp.concatenate(C, axis=1) @ jnp.concatenate(inp, axis=0)  # [H, I]
            new[k] = trace
            new["g" + k] = s["g" + k] + jnp.einsum("hb,hbi->hi", A, e0) + small
        return new, y

    return step


def init_state(H: int):
    """The per-step floor's state with the contracted gradients (both forms share it)."""
    return step_floor.floor_steps(H)["d-rtrl, gradient contracted"][1]


def check(H: int, K: int, w: dict, xs) -> float:
    """Raise unless the window form's gradients and final traces equal the per-step
    form's over ``xs`` (XLA); returns the largest difference relative to each array's
    largest entry."""
    import jax

    init = init_state(H)
    T = xs.shape[0]
    want, _ = step_floor.xla_sequence(per_step, init)(w, xs)
    xk = np.ascontiguousarray(xs.reshape(T // K, K, *xs.shape[1:]).transpose(0, 2, 1, 3))
    got, _ = step_floor.xla_sequence(window_step(K), init)(w, xk)
    worst = 0.0
    for k in KEYS:
        for name in (k, "g" + k):
            a, b = (np.asarray(jax.device_get(v[name])) for v in (want, got))
            worst = max(worst, float(np.abs(a - b).max() / max(1e-6, np.abs(a).max())))
    if worst > 1e-4:
        raise SystemExit(f"drtrl_window: the window of {K} differs from the per-step form "
                         f"by {worst:.1e} (relative)")
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--windows", type=int, nargs="+", default=[4, 12])
    ap.add_argument("--no-tracec", action="store_true", help="leave out tracec's own step")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    import jax

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model

    H, T, B = args.H, args.T, step_floor.B
    xs, ys = make_data(T, B)
    w = step_floor.weights(H)
    init = init_state(H)
    windows = [K for K in args.windows if T % K == 0]
    errors = {K: check(H, K, w, xs) for K in windows}
    os.environ["TRACEC_CACHE"] = "0"
    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        forms = [("per step", per_step, 1, xs)]
        for K in windows:
            xk = np.ascontiguousarray(xs.reshape(T // K, K, B, -1).transpose(0, 2, 1, 3))
            forms.append((f"window of {K}", window_step(K), K, xk))
        for i, (label, step, K, data) in enumerate(forms):
            run = step_floor.xla_sequence(step, init)
            calls[(label, "XLA")] = lambda r=run, d=data: jax.block_until_ready(r(w, d))
            for unroll in ((1, 4) if K == 1 else (1,)):
                path = os.path.join(tmp, f"form-{i}-{unroll}.vmfb")
                tracec.compile(step_floor.floor_model(step, init, w, K), algorithm="forward",
                               scan_unroll=unroll).save(path)
                learner = tracec.runtime.load(path)
                calls[(label, f"IREE (tracec's loop, unroll {unroll})")] = (
                    lambda lr=learner, d=data: lr.forward_sequence(d))
        if not args.no_tracec:
            path = os.path.join(tmp, "tracec.vmfb")
            tracec.compile(make_model(H, "lif_v", B), algorithm="d-rtrl", optimizer="adam",
                           update_every=T).save(path)
            learner = tracec.runtime.load(path)

            def train(lr=learner):
                lr.reset()
                return lr.train_sequence(xs, ys)
            calls[("tracec d-rtrl, lif_v", "IREE")] = train
        for c in calls.values():  # compilation, first touch
            c()
        seconds, _ = interleaved(calls, args.rounds)
    us = {k: statistics.median(v) / T * 1e6 for k, v in seconds.items()}
    lo = {k: min(v) / T * 1e6 for k, v in seconds.items()}
    base = us[("per step", "XLA")]
    mib = 4 * B * (step_floor.N_IN * H + 3 * H * H) / 2**20
    lines = [
        f"# D-RTRL traces over a window of K steps (2×{H}, batch {B}, T = {T})", "",
        f"Command: `python -m benchmarks.drtrl_window --H {H} --T {T} --rounds {args.rounds} "
        f"--windows {' '.join(map(str, args.windows))}` (the script's docstring gives the "
        f"algebra). One process, {args.rounds} interleaved rounds, µs per time step, median "
        f"[min]; one core in use. The four hidden weight traces hold {mib:.1f} MiB; the "
        "per-step form reads and writes them every step, a window of K once per K steps. "
        "Checked before timing (XLA, whole sequence), largest difference from the per-step "
        "form relative to each gradient's and trace's largest entry: "
        + ", ".join(f"window of {K}: {e:.1e}" for K, e in errors.items()) + ".", "",
        "| form | program | µs/step median [min] | vs per step, XLA |", "|---|---|---|---|"]
    for k in calls:
        lines.append(f"| {k[0]} | {k[1]} | {us[k]:.1f} [{lo[k]:.1f}] | {base / us[k]:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = args.out or os.path.join(ROOT, "benchmarks", "results", f"drtrl_window_H{H}.md")
    write_text(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
