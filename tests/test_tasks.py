"""The synthetic task generators: deterministic, balanced, the label is in the cues, and
nothing after the cues tells it (the networks must remember)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import EXAMPLES

sys.path.insert(0, EXAMPLES)
import tasks  # noqa: E402

N_POP = 10  # neurons per input population at the default n_in = 40


@pytest.mark.parametrize("make", [tasks.delayed_match, tasks.evidence_accumulation])
def test_seeded_and_shaped(make):
    a = make(64, seed=3)
    b = make(64, seed=3)
    c = make(64, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    xs, labels, mask = a
    assert xs.dtype == np.float32 and labels.dtype == np.int32 and xs.ndim == 3
    assert xs.shape[1] == 64 and mask.shape == (xs.shape[0],) and mask.sum() > 0
    assert set(np.unique(xs)) <= {0.0, 1.0}
    assert 0.3 < labels.mean() < 0.7


def _side(xs, window):
    """Per sequence, 1 if population B (right) spiked more than A (left) in the window."""
    t0, t1 = window
    return (xs[t0:t1, :, N_POP:2 * N_POP].sum((0, 2)) > xs[t0:t1, :, :N_POP].sum((0, 2)))


def test_labels_follow_the_cues():
    """An oracle reading the cue windows recovers the labels (the task is solvable)."""
    xs, labels, _ = tasks.delayed_match(512, seed=0)
    first, second = (_side(xs, w) for w in tasks.delayed_match_windows())
    np.testing.assert_array_equal((first == second).astype(np.int32), labels)
    xs, labels, _ = tasks.evidence_accumulation(512, seed=0)
    votes = sum(_side(xs, w).astype(int) for w in tasks.evidence_accumulation_windows())
    np.testing.assert_array_equal((votes > 3).astype(np.int32), labels)
    # Counting the spikes, without knowing the windows, is right on all but a few trials.
    right = xs[:, :, N_POP:2 * N_POP].sum((0, 2))
    left = xs[:, :, :N_POP].sum((0, 2))
    assert np.mean((right > left).astype(np.int32) == labels) > 0.99


def _chance(xs, labels):
    """How far from chance the side with more spikes predicts the label."""
    return abs(np.mean(_side(xs, (0, xs.shape[0])) == labels) - 0.5)


def test_the_answer_needs_memory():
    """The information that decides lies far before the answer window: after it, the cue
    populations tell nothing about the label."""
    xs, labels, mask = tasks.delayed_match(2048, seed=1)
    (_, first_end), (_, second_end) = tasks.delayed_match_windows()
    answer = int(np.argmax(mask))
    assert answer - first_end >= 40 and answer - second_end >= 5
    assert _chance(xs[first_end:], labels) < 0.05      # the second cue alone is a coin flip
    xs, labels, mask = tasks.evidence_accumulation(2048, seed=1)
    last_end = tasks.evidence_accumulation_windows()[-1][1]
    assert int(np.argmax(mask)) - last_end >= 15
    assert xs[last_end:, :, :2 * N_POP].mean() < 0.02  # background noise only
    assert _chance(xs[last_end:], labels) < 0.05
