"""braintrace's side of the whole-brain scale benchmark (benchmarks/scale.py --braintrace).

Runs with a benchmark venv's Python, never tracec's (braintrace 0.2.8 needs Python 3.12:
``make bench-venv-312`` creates ``.venv-bench312``)::

    CONNECTOME_NEURONS=10000 CONNECTOME_CONNECTIONS=215437 \\
        .venv-bench312/bin/python benchmarks/scale_braintrace.py --steps 50 --chunks 5
    ... benchmarks/scale_braintrace.py --backend jax_raw   # brainevent's XLA kernels

The network is examples/connectome.py's, step for step, on the same connection lists
(``connectome()`` of that file, with the same seeds; the example is loaded with a stub
``tracec`` module so this venv needs no tracec)::

    z' = H(v - 1)
    v  = 0.9 v + z' W_rec + x W_in + b;   z = H(v - 1);   v = v - z
    rate = 0.95 rate + 0.05 z;            output = rate[:300]
    loss = mean((output - target)^2)

with H the Heaviside ``x > 0`` and the sigmoid surrogate alpha = 4 (tracec.spike's
default). The connections are written with braintrace's trainable sparse layer: each list
is a ``brainevent.CSR`` (rows: ``pre``, columns: ``post``; the lists are sorted by
``pre``) in a ``braintrace.nn.SparseLinear`` (its ``update`` is
``braintrace.sparse_matmul``, the ETP sparse primitive), one trainable value per
connection; the bias is the recurrent SparseLinear's. SparseLinear is the API that
braintrace's pp_prop example list names for its sparse-operator example
(``09-operator-sparse``); that example itself trains a dense ``braintrace.nn.Linear`` with
a fixed 0/1 mask (its note: the sparse formats lacked batching rules), which cannot hold
these sizes (a dense 139,255 x 139,255 float32 matrix is 77 GB). The neuron is a
brainstate module with two ``brainstate.HiddenState`` (``v``, ``rate``), as braintrace's
own tests of ``sparse_matmul`` with its online learners keep theirs.

Training follows braintrace's pp_prop examples (``online_train_epoch``):
``braintrace.compile(net, braintrace.pp_prop, x0, batch_size=1, decay_or_rank=0.9)``
and, under one ``brainstate.transform.jit``, ``learner.etrace_grad`` over the steps
with an MSE ``step_fn``, then the Adam step (``braintools.optim.Adam``, lr 0.003; no
gradient clipping: the examples clip to norm 1, tracec's run does not). As
tracec's run (``update_every=10``), the weights are updated every 10 steps and the
network and traces are carried from chunk to chunk (compiled once, outside the jit).
Batch 1 uses batched states of size 1; ``--vmap`` compiles with ``vmap=True`` (per-sample
states vmapped over the batch, as the pp_prop examples do), which gives the same losses
and, at batch 1, the same speed within this machine's noise.

The sparse kernels are brainevent's; ``--backend`` picks its CPU backend: ``numba``
(brainevent's default, needs numba: its ``cpu`` extra) or ``jax_raw`` (plain XLA ops).

Timing as benchmarks/scale.py times tracec: chunks of ``--steps`` steps, ms per step the
median of the chunks after the first. Prints one JSON line last (peak RSS is VmHWM).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from benchmarks.common import peak_rss_mib  # noqa: E402


def load_connectome():
    """examples/connectome.py with a stub ``tracec`` (only its constants, lists and
    ``target_activity`` are used here)."""
    stub = types.ModuleType("tracec")
    stub.spike = None
    stub.Model = lambda **kw: kw
    sys.modules.setdefault("tracec", stub)
    spec = importlib.util.spec_from_file_location(
        "connectome", os.path.join(ROOT, "examples", "connectome.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def build(C):
    import brainevent
    import brainstate
    import braintools
    import braintrace
    import jax
    import jax.numpy as jnp
    import numpy as np

    def csr(pre, post, n_rows, data):
        indptr = np.zeros(n_rows + 1, np.int32)
        np.cumsum(np.bincount(pre, minlength=n_rows), out=indptr[1:])
        assert np.all(np.diff(pre) >= 0), "the lists are sorted by pre"
        return brainevent.CSR((jnp.asarray(data), jnp.asarray(post, jnp.int32),
                               jnp.asarray(indptr)), shape=(n_rows, C.N))

    # the example's initial weights, drawn with its init_params keys
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    w_rec = jax.random.normal(k1, (C.NNZ,), jnp.float32) * (0.6 / np.sqrt(C.IN_DEGREE))
    w_in = jax.random.normal(k2, (C.N_IN * C.FAN_OUT_IN,), jnp.float32) * 0.8
    spk = braintools.surrogate.Sigmoid(alpha=4.0)
    # braintools' Heaviside is x >= 0, tracec.spike's x > 0; 1 - H(-x) is x > 0 with the
    # same (even) surrogate derivative
    spike = lambda x: 1.0 - spk(-x)  # noqa: E731

    class Connectome(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.rec = braintrace.nn.SparseLinear(csr(C.PRE, C.POST, C.N, w_rec),
                                                  b_init=braintools.init.ZeroInit())
            self.inp = braintrace.nn.SparseLinear(csr(C.IN_PRE, C.IN_POST, C.N_IN, w_in))

        def init_state(self, batch_size=None, **kw):
            shape = (C.N,) if batch_size is None else (batch_size, C.N)  # None: under vmap
            self.v = brainstate.HiddenState(jnp.zeros(shape, jnp.float32))
            self.rate = brainstate.HiddenState(jnp.zeros(shape, jnp.float32))

        def update(self, x):
            z_old = spike(self.v.value - C.V_TH)
            v = C.TAU_MEM * self.v.value + self.rec(z_old) + self.inp(x)
            z = spike(v - C.V_TH)
            self.v.value = v - z * C.V_TH
            self.rate.value = C.TAU_RATE * self.rate.value + (1.0 - C.TAU_RATE) * z
            return self.rate.value[..., :C.READOUT]

    return Connectome()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="steps per chunk")
    ap.add_argument("--chunks", type=int, default=5, help="chunks (the first is not timed)")
    ap.add_argument("--update-every", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--decay", type=float, default=0.9)
    ap.add_argument("--vmap", action="store_true",
                    help="compile(..., vmap=True): per-sample states, vmapped over the batch")
    ap.add_argument("--backend", default=None,
                    help="brainevent's CPU kernel backend (default: brainevent's own, numba)")
    args = ap.parse_args(argv)

    import brainstate
    import braintools
    import braintrace
    import jax
    import jax.numpy as jnp
    import numpy as np

    if args.backend:
        import brainevent.config
        brainevent.config.set_backend("cpu", args.backend)
    C = load_connectome()
    assert C.B == 1, "batch 1, as the tracec rows"
    t0 = time.perf_counter()
    net = build(C)
    learner = braintrace.compile(net, braintrace.pp_prop, jnp.zeros((C.B, C.N_IN), jnp.float32),
                                 batch_size=C.B, decay_or_rank=args.decay,
                                 vmap=args.vmap)
    build_s = time.perf_counter() - t0
    log(f"built and compiled the etrace graph in {build_s:.1f} s, peak {peak_rss_mib():.0f} MiB")
    weights = net.states(brainstate.ParamState)
    opt = braintools.optim.Adam(lr=args.lr)
    opt.register_trainable_weights(weights)
    U = args.update_every
    assert args.steps % U == 0

    def step_loss(x, y):
        return jnp.mean((learner(x) - y) ** 2)

    @brainstate.transform.jit
    def train_chunk(xs, ys):
        losses = []
        for k in range(args.steps // U):  # an Adam step every U steps, state carried on
            grads, ls = learner.etrace_grad(xs[k * U:(k + 1) * U], ys[k * U:(k + 1) * U],
                                            step_fn=step_loss, return_value=True)
            opt.update(grads)
            losses.append(ls)
        return jnp.concatenate(losses)

    def flat_params():
        return {"/".join(map(str, path)) + "/" + k: np.asarray(v)
                for path, w in weights.items() for k, v in w.value.items()}

    w0 = flat_params()
    T = args.steps
    rng = np.random.default_rng(0)
    targets = jnp.asarray(np.stack([C.target_activity(t) for t in range(T)]))
    times, losses, first_call_s = [], [], None
    for k in range(args.chunks):
        xs = jnp.asarray((rng.random((T, C.B, C.N_IN)) < 0.2).astype(np.float32))
        t0 = time.perf_counter()
        out = jax.block_until_ready(train_chunk(xs, targets))
        dt = time.perf_counter() - t0
        if k == 0:
            first_call_s = dt
        times.append(dt / T)
        losses.append(float(jnp.mean(out)))
        log(f"chunk {k}: {dt / T * 1e3:.2f} ms/step, loss {losses[-1]:.5f}, "
            f"peak {peak_rss_mib():.0f} MiB")
    # how far training moved each parameter (0 would mean pp_prop found no relation)
    moved = {k: float(np.max(np.abs(v - w0[k]))) for k, v in flat_params().items()}
    print(json.dumps({
        "neurons": C.N, "connections": C.NNZ, "build_s": build_s,
        "first_chunk_s": first_call_s,
        "step_ms": float(np.median(times[1:] or times)) * 1e3,
        "run_rss_mib": peak_rss_mib(), "loss_first": losses[0], "loss_last": losses[-1],
        "max_param_change": moved, "chunk_ms_per_step": [t * 1e3 for t in times],
        "backend": args.backend or "default (numba)",
        "versions": {m: __import__(m).__version__
                     for m in ("braintrace", "brainstate", "brainevent", "jax")},
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
