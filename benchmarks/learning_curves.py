"""Accuracy after a fixed number of updates on the synthetic tasks of examples/tasks.py.

Each function trains one model for ``iterations`` updates, exactly as
examples/train_online.py does (per iteration: a fresh batch with seed 1000+i, reset,
the whole sequence, one Adam step at its end; then test accuracy on a fresh batch with
seed 10000+i, forward only, read at the decision steps), and returns a dict with the
per-iteration ``accuracy`` and ``loss`` lists, ``iteration_s`` (seconds of each
iteration, training and test; the first includes JAX's jit) and ``wall_s``::

    tracec_curve(model_path, "es-d-rtrl", "delayed_match", 400, lr=1e-3, decay=0.98)
    jax_bptt_curve(model_path, "delayed_match", 400, lr=1e-3)      # jax.grad through lax.scan

The defaults are those of examples/train_online.py and tracec's accuracy tests
(tests/test_accuracy.py): examples/task_lif.py, 400 updates, Adam lr 1e-3, ES-D-RTRL
decay 0.98. braintrace's curve comes from ``benchmarks/braintrace_side.py accuracy``
(its own venv; variants ``task_lif`` / ``task_alif`` are the same networks, started from
the parameters ``tracec_curve(..., params_out=PATH.npz)`` writes).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import ROOT

sys.path.insert(0, os.path.join(ROOT, "examples"))
import tasks  # noqa: E402  (numpy only)
import train_online  # noqa: E402  (numpy at import; tracec inside its functions)

# examples/train_online.py's defaults (its --model default, ITERATIONS, LR, DECAY), but
# the task: delayed_match (tests/test_accuracy.py trains both)
DEFAULT_MODEL = os.path.join(ROOT, "examples", "task_lif.py")
DEFAULT_TASK = "delayed_match"
DEFAULT_ITERATIONS, DEFAULT_LR = train_online.ITERATIONS, train_online.LR  # 400, 1e-3
DEFAULT_DECAY = train_online.DECAY  # ES-D-RTRL's trace decay, 0.98


def _batches(task: str, batch: int, it: int):
    """(train xs, targets [T, B], mask) and (test xs, labels, mask) of iteration ``it``."""
    make = getattr(tasks, task)
    xs, labels, mask = make(batch, seed=1000 + it)
    targets = np.broadcast_to(labels, (xs.shape[0], batch)).astype(np.int32)
    return (xs, targets, mask), make(batch, seed=10_000 + it)


def _accuracy(outs: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    pred = np.argmax((np.asarray(outs) * mask[:, None, None]).sum(0), axis=-1)
    return float(np.mean(pred == labels))


def _masked_mean(step_losses, mask) -> float:
    return float((np.asarray(step_losses) * mask).sum() / mask.sum())


def _curve(train_one, test_one, task: str, batch: int, iterations: int) -> dict:
    accs, losses, times = [], [], []
    for it in range(iterations):
        t0 = time.perf_counter()
        (xs, targets, mask), (xs_t, labels_t, mask_t) = _batches(task, batch, it)
        losses.append(_masked_mean(train_one(xs, targets, mask), mask))
        accs.append(_accuracy(test_one(xs_t), labels_t, mask_t))
        times.append(time.perf_counter() - t0)
    return {"accuracy": accs, "loss": losses, "iteration_s": times, "wall_s": sum(times)}


def tracec_curve(model_path: str, algorithm: str, task: str = DEFAULT_TASK,
                 iterations: int = DEFAULT_ITERATIONS, lr: float = DEFAULT_LR,
                 decay: float = DEFAULT_DECAY, target: str = "llvm-cpu",
                 params_out: str | None = None) -> dict:
    """tracec ``algorithm`` ("es-d-rtrl" / "d-rtrl") with Adam, one update per sequence.
    ``params_out``: write the initial parameters (``learner.params``, name -> array, seed
    0) there as .npz, for braintrace_side.py's ``--params``."""
    import tracec
    import tracec.runtime

    T = getattr(tasks, task)(1, seed=0)[0].shape[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.xla" if target == "xla" else "m.vmfb")
        tracec.compile(model_path, algorithm=algorithm, optimizer="adam", lr=lr, decay=decay,
                       update_every=T, target=target).save(path)
        learner = tracec.runtime.load(path)
    batch = learner.manifest["input"]["shape"][0]
    if params_out:
        np.savez(params_out, **learner.params)

    def train_one(xs, targets, mask):
        learner.reset()
        return learner.train_sequence(xs, targets, mask)

    def test_one(xs):
        learner.reset()
        return learner.forward_sequence(xs)

    return _curve(train_one, test_one, task, batch, iterations)


def load_model(model_path: str):
    spec = importlib.util.spec_from_file_location("bench_task_model", model_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.model


def jax_bptt_curve(model_path: str, task: str = DEFAULT_TASK, iterations: int = DEFAULT_ITERATIONS,
                   lr: float = DEFAULT_LR, seed: int = 0) -> dict:
    """JAX BPTT: jax.grad of sum_t mask_t loss_t through lax.scan, the same Adam as tracec's
    (β1 0.9, β2 0.999, ε 1e-8, bias-corrected), the same initial parameters (seed 0)."""
    import jax
    import jax.numpy as jnp

    from benchmarks.networks import sequence_losses

    model = load_model(model_path)
    batch = model.input.shape[0]
    b1, b2, eps = 0.9, 0.999, 1e-8

    def total(params, xs, targets, mask):
        losses = sequence_losses(model, params, xs, targets)
        return jnp.sum(losses * mask), losses

    @jax.jit
    def update(params, m, v, t, xs, targets, mask):
        (_, losses), g = jax.value_and_grad(total, has_aux=True)(params, xs, targets, mask)
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        adam = lambda p, m, v: p - lr * (m / (1 - b1 ** t)) / (jnp.sqrt(v / (1 - b2 ** t)) + eps)  # noqa: E731
        return (jax.tree.map(adam, params, m, v), m, v, t), losses

    @jax.jit
    def forward(params, xs):
        return jax.lax.scan(lambda s, x: model.step(params, s, x), model.init_state(batch), xs)[1]

    params = model.init_params(jax.random.PRNGKey(seed))
    zeros = jax.tree.map(jnp.zeros_like, params)
    carry = [(params, zeros, zeros, jnp.zeros((), jnp.float32))]  # (params, m, v, t)

    def train_one(xs, targets, mask):
        carry[0], losses = update(*carry[0], xs, targets, mask)
        return np.asarray(losses)

    return _curve(train_one, lambda xs: forward(carry[0][0], xs), task, batch, iterations)
