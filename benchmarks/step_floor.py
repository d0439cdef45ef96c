"""How fast can one learning step be? The contractions alone, on IREE and XLA, beside tracec.

    python -m benchmarks.step_floor [--H 64] [--B 32] [--T 180] [--rounds 7] [--no-braintrace]

An ES-D-RTRL step of the 2-layer benchmark network (40 inputs, 2×H recurrent neurons, 10
outputs, batch 32) must run, whatever compiler emits it, the forward step's 5 matrix
products, the 2 that carry the learning signal back (``δ2 = e Woᵀ``, ``δ1 = δ2 W2ᵀ``)
and one outer product per weight matrix, 5, contracted over the batch (``εxᵀ (δ εf)``):
12 products, 2.3 MFLOP at H = 64, as tracec's own IR shows (this script counts the
``dot_general`` ops of its ``train_sequence`` loop body). D-RTRL must in addition read
and write a trace of ``B·I·H`` numbers per weight matrix each step.

This script times *floor programs* that do only that work: one time step whose body is
those products (for D-RTRL: the forward's and the signals' products and one
multiply-add over each hidden weight's trace), with no spike function, no loss, no
optimizer. Each is run over the sequence by XLA (``jax.jit`` of a ``lax.scan``) and by
IREE (the step as a ``tracec.Model`` compiled for the forward pass, so that it runs in
tracec's own time loop, which copies no carried state between steps, unlike IREE's
lowering of a ``lax.scan``; unrolled once and 4 times, 4 fused being tracec's forward
default), and timed interleaved with tracec's own
``forward_sequence`` and ``train_sequence`` on ``benchmarks/networks.py``'s ``lif_v``
network (braintrace's idiomatic form) and JAX's forward and BPTT on it (as the
side-by-side runner writes them; BPTT's backward pass does the same products as the
ES-D-RTRL floor, ``bptt`` in the GFLOP/s column). With ``braintrace`` present (the newest
benchmark venv), its pp_prop and D_RTRL on the same network run next, in their own
process.

The D-RTRL floor updates each trace but never reads it for a gradient, which an exact
rule must do every step. Two rows of work ``d-rtrl`` add that (they are not counted as
floors): ``floor + gradient contracted`` (``Σ_b δ[b,h] ε[h,b,i]`` into ``[H, I]`` each
step, as tracec computes it) and ``floor + gradient per batch row`` (``δ ε``
accumulated element-wise into ``[H, B, I]``, whose batch sum once per update window is
left out: a form a compiler could fuse with the update, at the price of an accumulator
the trace's size). Before timing, the per-row accumulators summed over the batch are
checked equal to the contracted ones over the sequence (XLA).

A floor is not a bound proved for every schedule, but no learning step that does this
work in these kernels can be faster than it: when a floor alone misses a target, the
target cannot be met by changing what the passes emit. Writes
benchmarks/results/step_floor.md. ``--B``: another batch (16: one of two parts of the
batch, what each core runs under ``--batch-shards 2``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks import common
from benchmarks.common import ROOT, interleaved, make_data, write_text

B, N_IN, N_OUT = 32, 40, 10


def weights(H: int, seed: int = 0) -> dict:
    """Weights scaled so that the floor programs' recurrences stay bounded (no overflow,
    no denormals) over any T."""
    rng = np.random.default_rng(seed)
    w = lambda i, o, g: (g * rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32)  # noqa: E731
    return {"W1": w(N_IN, H, 1.0), "R1": w(H, H, 0.3), "W2": w(H, H, 0.5), "R2": w(H, H, 0.3),
            "Wo": w(H, N_OUT, 0.5)}


def forward_body(p, z1, z2, x):
    """The forward step's 5 products: both layers' hidden values and the readout."""
    h1 = x @ p["W1"] + z1 @ p["R1"]
    h2 = h1 @ p["W2"] + z2 @ p["R2"]
    return h1, h2, h2 @ p["Wo"]


def floor_steps(H: int) -> dict:
    """(name -> (step(params, state, x) -> (state, y), init_state(batch))) of the floors:
    one time step each, the state carrying what the next step reads."""
    import jax
    import jax.numpy as jnp

    def forward(p, s, x):
        h1, h2, y = forward_body(p, s["z1"], s["z2"], x)
        return {"z1": h1, "z2": h2}, y

    def es(p, s, x):
        h1, h2, y = forward_body(p, s["z1"], s["z2"], x)
        d2 = y @ p["Wo"].T                  # the learning signal, back through the readout
        d1 = d2 @ p["W2"].T                 # ... and into the first layer
        outer = lambda a, b: jnp.einsum("bi,bh->ih", a, b)  # noqa: E731
        g = {"W1": s["W1"] + outer(x, d1), "R1": s["R1"] + outer(s["z1"], d1),
             "W2": s["W2"] + outer(h1, d2), "R2": s["R2"] + outer(s["z2"], d2),
             "Wo": s["Wo"] + outer(h2, y)}
        return {"z1": h1, "z2": h2, **g}, y

    def drtrl(p, s, x, gradient=None):
        # the products of the forward and the signals, and each hidden weight's trace
        # updated by one multiply-add: read once, written once (a fused kernel could
        # contract it with the signal on the way; none can touch it less). The trace is
        # laid out [H, B, I], neuron-major, as tracec lays out its D-RTRL traces
        # (results/trace_layout.md; the batch-first [B, I, H] form measured within 20% of
        # it here); the barrier keeps the signal's product out of the trace kernel (IREE
        # fuses it in otherwise, ~15% slower here). ``gradient``: the trace also
        # contracted with the signal over the batch each step, as an exact rule must
        # ("contracted", into [H, I]), or accumulated per batch row ("rows", [H, B, I],
        # element-wise; its batch sum, once per update window, is left out)
        h1, h2, y = forward_body(p, s["z1"], s["z2"], x)
        d2 = y @ p["Wo"].T
        d1 = d2 @ p["W2"].T
        d1, d2 = jax.lax.optimization_barrier((d1, d2))
        new = {"z1": h1, "z2": h2}
        for k, inp, d in (("W1", x, d1), ("R1", s["z1"], d1), ("W2", h1, d2), ("R2", s["z2"], d2)):
            decay = 0.9 * (1.0 - 0.01 * jnp.abs(d.T))  # [H, B]
            new[k] = s[k] * decay[:, :, None] + inp[None, :, :]
            if gradient == "contracted":
                new["g" + k] = s["g" + k] + jnp.einsum("bh,hbi->hi", d, new[k])
            elif gradient == "rows":
                new["g" + k] = s["g" + k] + d.T[:, :, None] * new[k]
        return new, y

    def zeros(shapes):
        return lambda b: {k: jnp.zeros(v(b), jnp.float32) for k, v in shapes.items()}

    hidden = {"z1": lambda b: (b, H), "z2": lambda b: (b, H)}
    shapes = {"W1": (N_IN, H), "R1": (H, H), "W2": (H, H), "R2": (H, H), "Wo": (H, N_OUT)}
    grads = {k: (lambda b, v=v: v) for k, v in shapes.items()}
    traces = {k: (lambda b, v=v: (v[1], b, v[0])) for k, v in shapes.items() if k != "Wo"}
    contracted = {"g" + k: (lambda b, v=v: (v[1], v[0])) for k, v in shapes.items() if k != "Wo"}
    rows = {"g" + k: v for k, v in traces.items()}
    return {"forward": (forward, zeros(hidden)), "es-d-rtrl": (es, zeros({**hidden, **grads})),
            "d-rtrl": (drtrl, zeros({**hidden, **traces})),
            "d-rtrl, gradient contracted": (
                lambda p, s, x: drtrl(p, s, x, "contracted"),
                zeros({**hidden, **traces, **contracted})),
            "d-rtrl, gradient per batch row": (
                lambda p, s, x: drtrl(p, s, x, "rows"), zeros({**hidden, **traces, **rows}))}


def check_gradient_forms(H: int, w: dict, xs) -> float:
    """Raise unless the D-RTRL floor's two gradient forms agree over ``xs`` (XLA): the
    per-row accumulators summed over the batch against the contracted ones. Returns the
    largest difference relative to the gradient's largest entry."""
    import jax
    import numpy as np

    floors = floor_steps(H)
    (contracted, _), (rows, _) = (
        xla_sequence(*floors[k])(w, xs) for k in ("d-rtrl, gradient contracted",
                                                 "d-rtrl, gradient per batch row"))
    worst = 0.0
    for k in ("W1", "R1", "W2", "R2"):
        want = np.asarray(jax.device_get(contracted["g" + k]))
        got = np.asarray(jax.device_get(rows["g" + k])).sum(axis=1)
        worst = max(worst, float(np.abs(got - want).max() / max(1e-6, np.abs(want).max())))
    if worst > 1e-4:
        raise SystemExit(f"step_floor: the per-row D-RTRL gradient differs from the "
                         f"contracted one by {worst:.1e} (relative)")
    return worst


def chunked_es_step(H: int, K: int):
    """The ES-D-RTRL floor with its 5 gradient products contracted once per chunk of K
    steps, over K·B rows (same FLOPs, larger products; memory still flat in T): one
    "step" of this function is K time steps, ``x [B, K, N_IN]``."""
    import jax.numpy as jnp

    def chunk(p, s, x):
        z1, z2 = s["z1"], s["z2"]
        rows = {k: [] for k in ("x", "z1", "h1", "z2", "h2", "d1", "d2", "y")}
        for k in range(K):
            h1, h2, y = forward_body(p, z1, z2, x[:, k])
            d2 = y @ p["Wo"].T
            d1 = d2 @ p["W2"].T
            for name, v in (("x", x[:, k]), ("z1", z1), ("h1", h1), ("z2", z2), ("h2", h2),
                            ("d1", d1), ("d2", d2), ("y", y)):
                rows[name].append(v)
            z1, z2 = h1, h2
        r = {k: jnp.concatenate(v, axis=0) for k, v in rows.items()}  # [K·B, ·]
        g = {"W1": s["W1"] + r["x"].T @ r["d1"], "R1": s["R1"] + r["z1"].T @ r["d1"],
             "W2": s["W2"] + r["h1"].T @ r["d2"], "R2": s["R2"] + r["z2"].T @ r["d2"],
             "Wo": s["Wo"] + r["h2"].T @ r["y"]}
        return {"z1": z1, "z2": z2, **g}, y

    return chunk, floor_steps(H)["es-d-rtrl"][1]  # the per-step floor's state


#: Chunk sizes of the chunked ES-D-RTRL floor (used where they divide T).
CHUNKS = (4, 12)


def xla_sequence(step, init_state):
    """``jax.jit`` of the step scanned over ``xs`` from the zero state."""
    import jax

    @jax.jit
    def run(params, xs):
        return jax.lax.scan(lambda s, x: step(params, s, x), init_state(B), xs)
    return run


def floor_model(step, init_state, w: dict, steps: int = 1):
    """The floor step as a tracec.Model: compiled with tracec's forward path, its
    ``forward_sequence`` runs the step in tracec's own time loop (no copies of the
    carried state between steps)."""
    import jax
    import jax.numpy as jnp

    import tracec

    return tracec.Model(init_params=lambda key: {k: jnp.asarray(v) for k, v in w.items()},
                        init_state=init_state, step=step,
                        loss=lambda y, t: jnp.mean(y),
                        input=jax.ShapeDtypeStruct((B, steps, N_IN) if steps > 1 else (B, N_IN),
                                                   jnp.float32),
                        target=jax.ShapeDtypeStruct((B, N_OUT), jnp.float32))


#: tracec's forward path compiles the floors with the time loop unrolled 1 and 4 times
#: (4, with kernels fused across the steps, is its default for forward artifacts).
UNROLLS = (1, 4)


def flops(H: int) -> dict:
    """Multiply-adds ×2 of the products each step (D-RTRL: the forward and the signals;
    its trace work is counted in bytes)."""
    fwd = B * (N_IN * H + 3 * H * H + H * N_OUT)
    signals = B * (N_OUT * H + H * H)
    return {"forward": 2 * fwd, "es-d-rtrl": 2 * (2 * fwd + signals),
            "d-rtrl": 2 * (fwd + signals), "bptt": 2 * (2 * fwd + signals)}


def trace_bytes(H: int) -> int:
    """D-RTRL: the bytes of the four hidden weight traces, each read and written once."""
    return 2 * 4 * B * (N_IN * H + 3 * H * H)


def tracec_dots(H: int) -> int:
    """``dot_general`` ops in one time step of tracec's ES-D-RTRL ``train_sequence``."""
    import tracec.cli

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "net.py")
        with open(model, "w") as f:
            f.write("from benchmarks.networks import make_model\n"
                    f"model = make_model({H}, 'lif_v')\n")
        out = os.path.join(tmp, "es.mlir")
        sys.path.insert(0, ROOT)
        try:
            tracec.cli.main([model, "--algorithm", "es-d-rtrl", "--scan-unroll", "1",
                             "--emit", "iree-input", "-o", out, "--no-cache"])
            rc = 0
        except SystemExit as e:  # the command line's exit status
            rc = e.code
        if rc:
            raise SystemExit(f"step_floor: tracec --emit iree-input failed ({rc})")
        text = open(out).read()
    body = text[text.index('sym_name = "train_sequence"'):]
    return len(re.findall(r"stablehlo\.dot_general", body))


def braintrace_rows(H: int, T: int, rounds: int) -> dict:
    """braintrace's pp_prop and D_RTRL on lif_v in the newest benchmark venv (its own
    process): (our algorithm name -> {version, us, min}); empty without the venv."""
    pys = common.bench_pythons()
    if not pys:
        return {}
    py = pys[-1]
    got = common.braintrace_side(["time", "--variant", "lif_v", "--H", str(H), "--batch", str(B),
                                  "--algorithm", "es_d_rtrl", "d_rtrl", "--T", str(T),
                                  "--repeats", str(rounds), "--optimizer", "adam"], python=py)
    names = {"es_d_rtrl": "es-d-rtrl", "d_rtrl": "d-rtrl"}
    return {names[r["algorithm"]]: {"version": common.braintrace_version(py),
                                    "us": r["us_per_step_median"], "min": r["us_per_step_min"],
                                    "name": {"d_rtrl": "D_RTRL"}.get(r["braintrace_algorithm"],
                                                                     r["braintrace_algorithm"])}
            for r in got or [] if r["algorithm"] in names}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--H", type=int, default=64)
    ap.add_argument("--B", type=int, default=B,
                    help="batch (16: one of two parts, what a core runs under --batch-shards 2)")
    ap.add_argument("--T", type=int, default=180)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-braintrace", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "step_floor.md"))
    args = ap.parse_args(argv)
    globals()["B"] = args.B  # every program here reads the module's B
    import jax

    import tracec
    import tracec.runtime
    from benchmarks.networks import make_model
    from benchmarks.side_by_side import jax_calls

    H, T = args.H, args.T
    xs, ys = make_data(T, B)
    w = weights(H)
    calls = {}
    os.environ["TRACEC_CACHE"] = "0"  # compile times below are cold ones
    check_gradient_forms(H, w, xs)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (step, init_state)) in enumerate(floor_steps(H).items()):
            # the D-RTRL floor with its gradient: a row of work "d-rtrl", not a floor
            name, _, extra = name.partition(", ")
            prog = f"floor + {extra}" if extra else "floor"
            run = xla_sequence(step, init_state)
            calls[(name, f"{prog}, XLA")] = lambda r=run: jax.block_until_ready(r(w, xs))
            for unroll in UNROLLS:
                path = os.path.join(tmp, f"floor-{i}-{unroll}.vmfb")
                tracec.compile(floor_model(step, init_state, w), algorithm="forward",
                               scan_unroll=unroll).save(path)
                learner = tracec.runtime.load(path)
                calls[(name, f"{prog}, IREE (tracec's loop, unroll {unroll})")] = (
                    lambda lr=learner: lr.forward_sequence(xs))
        for K in (k for k in CHUNKS if T % k == 0):
            step, init_state = chunked_es_step(H, K)
            xk = np.ascontiguousarray(xs.reshape(T // K, K, B, N_IN).transpose(0, 2, 1, 3))
            run = xla_sequence(step, init_state)
            label = f"gradients per chunk of {K} steps"
            calls[("es-d-rtrl", f"floor, XLA, {label}")] = (
                lambda r=run, xk=xk: jax.block_until_ready(r(w, xk)))
            path = os.path.join(tmp, f"floor-chunked-{K}.vmfb")
            tracec.compile(floor_model(step, init_state, w, K), algorithm="forward",
                           scan_unroll=1).save(path)
            learner = tracec.runtime.load(path)
            calls[("es-d-rtrl", f"floor, IREE (tracec's loop), {label}")] = (
                lambda lr=learner, xk=xk: lr.forward_sequence(xk))
        model = make_model(H, "lif_v", B)
        compile_s = {}
        for alg, fuse in (("forward", None), ("es-d-rtrl", None), ("es-d-rtrl", True),
                          ("d-rtrl", None), ("d-rtrl", True)):
            path = os.path.join(tmp, f"tracec-{alg}-{fuse}.vmfb")
            t0 = time.perf_counter()
            tracec.compile(model, algorithm=alg, optimizer="adam", update_every=T,
                           fuse_steps=fuse).save(path)
            label = "tracec, IREE" + (", --fuse-steps" if fuse else "")
            compile_s[(alg, label)] = time.perf_counter() - t0
            learner = tracec.runtime.load(path)
            if alg == "forward":
                calls[(alg, label)] = lambda lr=learner: lr.forward_sequence(xs)
            else:
                def train(lr=learner):
                    lr.reset()
                    return lr.train_sequence(xs, ys)
                calls[(alg, label)] = train
        jx = jax_calls(model, xs, ys, optimizer="adam")
        calls[("forward", "JAX jit(lax.scan)")] = jx["forward"]
        calls[("bptt", "JAX BPTT, jit(value_and_grad) + Adam")] = jx["bptt"]
        for c in calls.values():  # first calls: compilation, first touch
            c()
        seconds, _ = interleaved(calls, args.rounds)
    us = {k: statistics.median(v) / T * 1e6 for k, v in seconds.items()}
    lo = {k: min(v) / T * 1e6 for k, v in seconds.items()}
    dots = tracec_dots(H)
    bt = {} if args.no_braintrace else braintrace_rows(H, T, args.rounds)
    fl = flops(H)
    fwd = us[("forward", "tracec, IREE")]
    lines = [f"# How fast can one learning step be? (2×{H} network, batch {B}, T = {T})", "",
             f"Command: `python -m benchmarks.step_floor --H {H} --B {B} --T {T} --rounds {args.rounds}`"
             f" (benchmarks/step_floor.py says what the floor programs compute). One process, "
             f"{args.rounds} interleaved rounds, µs per time step, median [min]; tracec on "
             f"IREE llvm-cpu local-sync, XLA from jax {jax.__version__}, one core in use.", "",
             f"tracec's ES-D-RTRL step has {dots} `dot_general` ops (the floor programs: 12); "
             f"the products are {fl['es-d-rtrl'] / 1e6:.2f} MFLOP per step for ES-D-RTRL, "
             f"{fl['forward'] / 1e6:.2f} for the forward; D-RTRL moves in addition "
             f"{trace_bytes(H) / 2**20:.1f} MiB of traces per step.", "",
             "| work | program | µs/step median [min] | × tracec's forward | GFLOP/s of the products | tracec compile s (cold) |",
             "|---|---|---|---|---|---|"]
    for key in calls:
        alg, prog = key
        cs = f"{compile_s[key]:.1f}" if key in compile_s else ""
        lines.append(f"| {alg} | {prog} | {us[key]:.1f} [{lo[key]:.1f}] | {us[key] / fwd:.2f}× | "
                     f"{fl[alg] / (us[key] * 1e3):.0f} | {cs} |")
    for alg, r in bt.items():
        lines.append(f"| {alg} | braintrace {r['version']} {r['name']} (own process) | "
                     f"{r['us']:.1f} [{r['min']:.1f}] | {r['us'] / fwd:.2f}× | "
                     f"{fl[alg] / (r['us'] * 1e3):.0f} | |")
    lines.append("")
    floor = lambda alg: min(t for (a, prog), t in us.items()  # noqa: E731
                            if a == alg and prog.startswith("floor,"))
    bptt = us[("bptt", "JAX BPTT, jit(value_and_grad) + Adam")]
    needs = [("es-d-rtrl", "ES-D-RTRL ≤ 2.5× tracec's forward", 2.5 * fwd),
             ("es-d-rtrl", "ES-D-RTRL ≥ 1.3× JAX BPTT", bptt / 1.3),
             ("d-rtrl", "D-RTRL ≤ 6× tracec's forward", 6 * fwd)]
    for alg, factor in (("es-d-rtrl", 2), ("d-rtrl", 10)):
        if alg in bt:
            r = bt[alg]
            needs.append((alg, f"{alg.upper()} ≥ {factor}× braintrace {r['version']} {r['name']}",
                          r["us"] / factor))
    targets = [f"- {text} needs ≤ {need:.1f} µs; the fastest floor is {floor(alg):.1f} µs "
               f"({floor(alg) / fwd:.2f}× the forward); tracec's is "
               f"{us[(alg, 'tracec, IREE')]:.1f} µs." for alg, text, need in needs]
    lines += ["What the targets need, against the floors:", "", *targets, ""]
    text = "\n".join(lines)
    print(text)
    write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
