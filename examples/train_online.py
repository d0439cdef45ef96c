"""Train a spiking network online on a synthetic task, with tracec.

    python examples/train_online.py [--model examples/task_alif.py] [--algorithm d-rtrl]
                                    [--task delayed_match] [--iterations 400]
                                    [--out build/learning_curve.png]

Compiles the model (default examples/task_lif.py, a 2-layer recurrent LIF network;
examples/task_alif.py is the ALIF one) with the chosen online rule and Adam, then for
each iteration draws a fresh batch of the task, resets the network and calls
``train_sequence`` once (all T steps inside the binary, the optimizer applied at the
end of the sequence: --update-every T). Every --eval-every iterations it measures the
accuracy on a held-out test set (--test-batch sequences drawn from a seed no training
batch uses), forward only, the answer being the readout summed over the decision
window. Prints loss and accuracy as it goes and saves the learning curve as a PNG.

tests/test_accuracy.py trains through the same functions (`compile_learner`, `train`,
`accuracy`) with the defaults below and asserts >= 95 % test accuracy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tasks  # noqa: E402
from plot_png import line_plot  # noqa: E402

TASKS = ("delayed_match", "evidence_accumulation")
# Defaults shared by this script and tests/test_accuracy.py.
ITERATIONS = 400      # training sequences (batches of the model's batch size)
LR = 1e-3
DECAY = 0.98          # ES-D-RTRL trace decay (ignored by D-RTRL)
TRAIN_SEED = 1000     # training batch i is drawn with seed TRAIN_SEED + i
TEST_SEED = 999_999   # the held-out test set
TEST_BATCH = 256


def task_steps(task: str) -> int:
    return getattr(tasks, task)(1, seed=0)[0].shape[0]


def compile_learner(model: str, algorithm: str, task: str, path: str, lr: float = LR,
                    decay: float = DECAY, seed: int = 0):
    """Compile ``model`` for ``task`` (optimizer applied once per sequence) and load it."""
    import tracec
    import tracec.runtime

    tracec.compile(model, algorithm=algorithm, optimizer="adam", lr=lr, decay=decay,
                   update_every=task_steps(task), seed=seed).save(path)
    return tracec.runtime.load(path)


def batch_size(learner) -> int:
    return learner.manifest["input"]["shape"][0]


def accuracy(learner, task: str, n: int = TEST_BATCH, seed: int = TEST_SEED) -> float:
    """Fraction of ``n`` fresh sequences answered right, forward only; the answer is the
    readout summed over the decision window. ``n`` is rounded up to whole batches."""
    B = batch_size(learner)
    n = -(-n // B) * B
    xs, labels, mask = getattr(tasks, task)(n, seed=seed)
    correct = 0
    for i in range(0, n, B):
        learner.reset()
        outs = learner.forward_sequence(np.ascontiguousarray(xs[:, i:i + B]))
        pred = np.argmax((outs * mask[:, None, None]).sum(0), axis=-1)
        correct += int((pred == labels[i:i + B]).sum())
    return correct / n


def train(learner, task: str, iterations: int, seed: int = TRAIN_SEED, eval_every: int = 0,
          test_batch: int = TEST_BATCH, log=None):
    """``iterations`` times: a fresh batch, reset, one ``train_sequence``. Returns the mean
    loss over the decision steps per iteration and ``[(iteration, test accuracy)]`` measured
    every ``eval_every`` iterations (0: never)."""
    make = getattr(tasks, task)
    B = batch_size(learner)
    losses, accs = [], []
    for it in range(iterations):
        xs, labels, mask = make(B, seed=seed + it)
        targets = np.broadcast_to(labels, (xs.shape[0], B)).astype(np.int32)
        learner.reset()
        step_losses = learner.train_sequence(xs, targets, mask)
        losses.append(float((step_losses * mask).sum() / mask.sum()))
        if eval_every and ((it + 1) % eval_every == 0 or it + 1 == iterations):
            accs.append((it + 1, accuracy(learner, task, test_batch)))
            if log:
                log(f"iteration {it + 1:4d}/{iterations}  loss {losses[-1]:.4f}  "
                    f"test accuracy {accs[-1][1]:.3f}")
    return losses, accs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(HERE, "task_lif.py"),
                    help="model file (examples/task_lif.py, examples/task_alif.py, ...)")
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["d-rtrl", "es-d-rtrl"])
    ap.add_argument("--task", default="evidence_accumulation", choices=TASKS)
    ap.add_argument("--iterations", type=int, default=ITERATIONS, help="training sequences")
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--decay", type=float, default=DECAY, help="ES-D-RTRL trace decay")
    ap.add_argument("--seed", type=int, default=0, help="parameter initialisation seed")
    ap.add_argument("--test-batch", type=int, default=TEST_BATCH,
                    help="held-out test sequences (rounded up to whole batches)")
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--out", default=os.path.join("build", "learning_curve.png"))
    args = ap.parse_args(argv)
    iterations = args.iterations

    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    vmfb = os.path.splitext(args.out)[0] + ".vmfb"
    t0 = time.perf_counter()
    learner = compile_learner(args.model, args.algorithm, args.task, vmfb, lr=args.lr,
                              decay=args.decay, seed=args.seed)
    print(f"compiled {os.path.relpath(args.model)} ({args.algorithm}, T={task_steps(args.task)}, "
          f"batch {batch_size(learner)}) in {time.perf_counter() - t0:.1f} s -> {vmfb}")
    t0 = time.perf_counter()
    losses, accs = train(learner, args.task, iterations, eval_every=args.eval_every,
                         test_batch=args.test_batch, log=lambda s: print(s, flush=True))
    print(f"trained {iterations} sequences in {time.perf_counter() - t0:.1f} s; final test "
          f"accuracy {accs[-1][1]:.3f} on {args.test_batch} held-out sequences")
    # Test accuracy interpolated between measurements, so both curves share the x axis.
    acc_curve = np.interp(np.arange(1, iterations + 1), [a for a, _ in accs], [b for _, b in accs])
    line_plot(args.out, {"loss": np.array(losses) / max(losses), "accuracy": acc_curve},
              y_range=(0.0, 1.0))
    print(f"learning curve saved to {args.out} (blue: loss scaled to its maximum, red: accuracy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
