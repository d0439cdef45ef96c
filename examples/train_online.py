"""Train a recurrent LIF network online on a synthetic task, with tracec.

    python examples/train_online.py [--algorithm es-d-rtrl] [--task delayed_match]
                                    [--iterations 60] [--out build/learning_curve.png]

Compiles examples/lif2.py (or --model) with the chosen online rule and Adam, then
for each iteration draws a fresh batch of the task, resets the network and calls
``train_sequence`` once (all T steps inside the binary, the optimizer applied at the
end of the sequence: --update-every T). Prints loss and accuracy as it goes and saves
the learning curve as a PNG.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(HERE, "lif2.py"))
    ap.add_argument("--algorithm", default="es-d-rtrl", choices=["d-rtrl", "es-d-rtrl"])
    ap.add_argument("--task", default="delayed_match", choices=["delayed_match", "evidence_accumulation"])
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", default=os.path.join("build", "learning_curve.png"))
    args = ap.parse_args(argv)

    import tracec
    import tracec.runtime

    make = getattr(tasks, args.task)
    probe_xs, _, probe_mask = make(1, seed=0)
    T = probe_xs.shape[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    vmfb = os.path.splitext(args.out)[0] + ".vmfb"
    t0 = time.perf_counter()
    tracec.compile(args.model, algorithm=args.algorithm, optimizer="adam", lr=args.lr,
                   update_every=T).save(vmfb)
    print(f"compiled {os.path.relpath(args.model)} ({args.algorithm}, T={T}) in "
          f"{time.perf_counter() - t0:.1f} s -> {vmfb}")
    learner = tracec.runtime.load(vmfb)
    B = learner.manifest["input"]["shape"][0]
    losses, accs = [], []
    for it in range(args.iterations):
        xs, labels, mask = make(B, seed=1000 + it)
        targets = np.broadcast_to(labels, (T, B)).astype(np.int32)
        learner.reset()
        step_losses = learner.train_sequence(xs, targets, mask)
        # accuracy on a fresh batch, forward only, read at the decision steps
        xs_t, labels_t, mask_t = make(B, seed=10_000 + it)
        learner.reset()
        outs = learner.forward_sequence(xs_t)
        pred = np.argmax((outs * mask_t[:, None, None]).sum(0), axis=-1)
        acc = float(np.mean(pred == labels_t))
        loss = float((step_losses * mask).sum() / mask.sum())
        losses.append(loss)
        accs.append(acc)
        print(f"iteration {it + 1:4d}/{args.iterations}  loss {loss:.4f}  test accuracy {acc:.3f}",
              flush=True)
    line_plot(args.out, {"loss": np.array(losses) / max(losses), "accuracy": np.array(accs)},
              y_range=(0.0, 1.0))
    print(f"learning curve saved to {args.out} (blue: loss scaled to its maximum, red: accuracy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
