"""Same rule, same network? tracec's online gradients vs braintrace's, side by side.

    python -m benchmarks.braintrace_parity [--H 16] [--T 20] [--variant lif alif lif_v alif_v task_lif task_alif]

For each network of benchmarks/networks.py (``lif_v`` / ``alif_v``: the lif network and an
ALIF network as braintrace's own examples write them, braintrace_side.py's
``build_idiomatic_net``, and tracec's copies of them with the same hidden states, the
membrane alone / the membrane and the adaptation): one sequence of T random input spikes and
labels from the initial state (for ``task_lif`` / ``task_alif``, the networks of
examples/task_lif.py / task_alif.py, which fix H and the batch: one delayed_match batch
of examples/tasks.py, its 67 steps, the loss masked to the decision steps as in
training); tracec's outputs (``forward_sequence``) and its gradient for D-RTRL and
ES-D-RTRL (compiled with ``--optimizer sgd --lr 1 --update-every T``: the parameter
change over one ``train_sequence`` is minus the summed gradient), braintrace's outputs
and its gradient for D_RTRL and pp_prop (``etrace_grad(..., reduction="sum")`` with the
same initial parameters, through ``benchmarks/braintrace_side.py grads`` in each
benchmark venv), and the exact BPTT gradient from JAX (``networks.bptt_grads``) and
from brainstate. Prints, per parameter, the relative difference ``|a-b|/|b|``, the
cosine and the largest absolute difference. Writes
benchmarks/results/braintrace_parity.md. Needs a benchmark venv (``make bench-venv``,
``make bench-venv-312``); runs against every one that exists.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks.common import BRAINTRACE_SIDE as SIDE
from benchmarks.common import ROOT, bench_pythons, braintrace_version, write_text

# braintrace_side.py's variant -> the tracec model file of tracec's accuracy tests
TASK_MODELS = {"task_lif": os.path.join(ROOT, "examples", "task_lif.py"),
               "task_alif": os.path.join(ROOT, "examples", "task_alif.py")}


NOTE = ("Expected: D-RTRL equal to float32 rounding for every parameter; ES-D-RTRL equal for "
        "every weight matrix, but not for the biases `l*/b`: tracec keeps the exact per-neuron "
        "trace for element-wise parameters under both rules (docs/design.md section 3), so its "
        "ES-D-RTRL bias gradient equals its D-RTRL one, while braintrace's pp_prop smooths the "
        "element-wise trace like the f-side (eps = a D eps + (1-a) Df, divided by 1-a^(n+1)). "
        "brainstate BPTT equal to JAX BPTT shows the two networks are the same function; the "
        "forward outputs (readout over the sequence, from the same initial parameters) equal "
        "shows it for tracec's compiled network and braintrace's.")


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """rel = |a-b|/|b|, cosine, max |a-b|."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    nb = np.linalg.norm(b)
    rel = np.linalg.norm(a - b) / nb if nb > 0 else float(np.linalg.norm(a))
    na = np.linalg.norm(a)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")
    return float(rel), cos, float(np.max(np.abs(a - b)))


def model_and_data(variant: str, H: int, T: int):
    """The tracec model of ``variant`` and one sequence: xs [T, B, 40], ys [T, B], mask [T]
    (None: every step)."""
    if variant in TASK_MODELS:
        from benchmarks.learning_curves import load_model, tasks

        model = load_model(TASK_MODELS[variant])
        xs, labels, mask = tasks.delayed_match(model.input.shape[0], seed=1)
        return model, xs, np.broadcast_to(labels, (xs.shape[0], len(labels))).astype(np.int32), mask
    from benchmarks.networks import make_model

    rng = np.random.default_rng(1)
    xs = (rng.random((T, 32, 40)) < 0.2).astype(np.float32)
    ys = rng.integers(0, 10, (T, 32)).astype(np.int32)
    return make_model(H, variant), xs, ys, None


def run(variant: str, H: int, T: int, decay: float, tmp: str, pys: list[str]) -> list[tuple]:
    import jax
    import jax.numpy as jnp

    import tracec
    import tracec.runtime
    from benchmarks.networks import bptt_grads

    model, xs, ys, mask = model_and_data(variant, H, T)
    T, B = xs.shape[:2]
    ours = {}
    params0 = None
    for alg in ("d-rtrl", "es-d-rtrl"):
        path = os.path.join(tmp, f"{variant}{H}-{alg}.vmfb")
        tracec.compile(model, algorithm=alg, decay=decay, optimizer="sgd", lr=1.0,
                       update_every=T).save(path)
        learner = tracec.runtime.load(path)
        before = {k: np.array(v) for k, v in learner.params.items()}
        params0 = before
        learner.reset()
        ours["forward"] = np.asarray(learner.forward_sequence(xs))
        learner.reset()
        ours[alg + ":losses"] = np.asarray(learner.train_sequence(xs, ys, mask))
        after = learner.params
        for k in before:
            ours[f"{alg}:{k}"] = before[k] - after[k]
    nested = {}
    for k, v in params0.items():
        a, b = k.split("/")
        nested.setdefault(a, {})[b] = jnp.asarray(v)
    g = bptt_grads(model, nested, jnp.asarray(xs), jnp.asarray(ys), mask)
    for path, v in jax.tree_util.tree_flatten_with_path(g)[0]:
        ours["jax-bptt:" + "/".join(p.key for p in path)] = np.asarray(v)

    inp, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
    H = params0["l1/w_rec"].shape[0]  # the task models' own
    np.savez(inp, xs=xs, ys=ys, H=H, variant=variant, decay=decay,
             **({} if mask is None else {"mask": mask}),
             **{f"param:{k}": v for k, v in params0.items()})
    rows = []
    for py in pys:
        subprocess.run([py, SIDE, "grads", inp, out], check=True)
        theirs = dict(np.load(out))
        rows += compare(f"{variant} H={H} B={B} T={T}", f"braintrace {braintrace_version(py)}",
                        ours, theirs, sorted(params0))
    return rows


def compare(net: str, bt: str, ours: dict, theirs: dict, names: list[str]) -> list[tuple]:
    """The rows of one network against one braintrace version ``bt``."""
    rows = [(net, bt, "tracec vs braintrace forward outputs", "—",
             *_compare(ours["forward"], theirs["forward"]))]
    pairs = [("tracec d-rtrl", "d-rtrl", "braintrace D_RTRL", "d_rtrl"),
             ("tracec es-d-rtrl", "es-d-rtrl", "braintrace pp_prop", "es_d_rtrl"),
             ("brainstate BPTT", None, "JAX BPTT", "bptt"),
             ("tracec d-rtrl", "d-rtrl", "JAX BPTT", "jax-bptt"),
             ("tracec es-d-rtrl", "es-d-rtrl", "JAX BPTT", "jax-bptt")]
    for a_name, a_key, b_name, b_key in pairs:
        for k in names:
            if a_key is None:  # brainstate BPTT vs JAX BPTT
                a, b = theirs[f"bptt:{k}"], ours[f"jax-bptt:{k}"]
            elif b_key == "jax-bptt":
                a, b = ours[f"{a_key}:{k}"], ours[f"jax-bptt:{k}"]
            else:
                a, b = ours[f"{a_key}:{k}"], theirs[f"{b_key}:{k}"]
            rows.append((net, bt, f"{a_name} vs {b_name}", k, *_compare(a, b)))
    rel, _, abs_ = _compare(ours["d-rtrl:losses"], theirs["d_rtrl:losses"])
    rows.append((net, bt, "tracec vs braintrace per-step losses", "—", rel, float("nan"), abs_))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", nargs="+", default=["lif", "alif", "lif_v", "alif_v", *TASK_MODELS],
                    choices=["lif", "alif", "lif_v", "alif_v", *TASK_MODELS])
    ap.add_argument("--H", type=int, default=16, help="lif, alif, lif_v, alif_v (task_* fix their own)")
    ap.add_argument("--T", type=int, default=20, help="lif, alif, lif_v, alif_v (task_*: the task's 67 steps)")
    ap.add_argument("--decay", type=float, default=0.9)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "braintrace_parity.md"))
    args = ap.parse_args(argv)
    pys = bench_pythons()
    if not pys:
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variant:
            rows += run(variant, args.H, args.T, args.decay, tmp, pys)
    versions = "; ".join(subprocess.run([py, SIDE, "info"], capture_output=True, text=True).stdout.strip()
                         for py in pys)
    lines = [f"# tracec vs braintrace gradients (T={args.T}, H={args.H}, decay {args.decay})",
             "", f"Command: `python -m benchmarks.braintrace_parity --H {args.H} --T {args.T} "
             f"--variant {' '.join(args.variant)}`; benchmark venvs: `{versions}`.", "",
             "Gradient summed over the T steps of one sequence from the initial state "
             "(task_*: the networks of examples/task_*.py, which fix H and the batch, on one "
             "delayed_match batch, the loss masked to its decision steps). "
             "rel = |a-b|/|b|, max abs = max |a-b|.", "", NOTE, "",
             "| net | braintrace | a vs b | parameter | rel | cosine | max abs |",
             "|---|---|---|---|---|---|---|"]
    for net, bt, what, k, rel, cos, abs_ in rows:
        lines.append(f"| {net} | {bt} | {what} | {k} | {rel:.2e} | {cos:.6f} | {abs_:.2e} |")
    text = "\n".join(lines) + "\n"
    write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
