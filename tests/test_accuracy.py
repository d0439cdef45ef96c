"""Accuracy: on the synthetic tasks of examples/tasks.py (delayed
match-to-sample, evidence accumulation), a 2-layer recurrent LIF network
(examples/task_lif.py) and a 2-layer ALIF network (examples/task_alif.py), trained
online with D-RTRL and with ES-D-RTRL, reach >= 95 % accuracy on held-out sequences.

Training is examples/train_online.py's own loop with its defaults (Adam, lr 1e-3,
ES-D-RTRL decay 0.98, one optimizer step per batch of 64 sequences, 400 batches); the
test set is 256 sequences drawn from a seed no training batch uses. Everything is
seeded. Both tasks last 67 steps, so the second task's compile of a (network, rule)
pair is a hit in tracec's compile cache.
"""

from __future__ import annotations

import os
import sys

import pytest

from conftest import EXAMPLES

sys.path.insert(0, EXAMPLES)
import train_online  # noqa: E402

MODELS = {"lif": "task_lif.py", "alif": "task_alif.py"}


@pytest.mark.parametrize("algorithm", ["es-d-rtrl", "d-rtrl"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("task", train_online.TASKS)
def test_online_learning_reaches_95_percent(task, model, algorithm, tmp_path):
    learner = train_online.compile_learner(os.path.join(EXAMPLES, MODELS[model]), algorithm,
                                           task, str(tmp_path / f"{model}.vmfb"))
    before = train_online.accuracy(learner, task)
    losses, _ = train_online.train(learner, task, train_online.ITERATIONS)
    after = train_online.accuracy(learner, task)
    assert after >= 0.95, (f"{model} + {algorithm} on {task}: test accuracy {after:.3f} "
                           f"(untrained {before:.3f}, last losses {losses[-5:]})")
    # The untrained network answers near chance: the accuracy comes from learning.
    assert before < 0.8
