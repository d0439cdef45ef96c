"""The synthetic task generators: deterministic, balanced, and the label is in the input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import EXAMPLES

sys.path.insert(0, EXAMPLES)
import tasks  # noqa: E402


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


def test_labels_follow_the_cues():
    """An oracle reading the cue windows recovers every label (the task is solvable)."""
    xs, labels, _ = tasks.delayed_match(128, seed=0)
    n_pop = 10
    first = xs[:10, :, n_pop:2 * n_pop].sum((0, 2)) > xs[:10, :, :n_pop].sum((0, 2))
    second = xs[30:40, :, n_pop:2 * n_pop].sum((0, 2)) > xs[30:40, :, :n_pop].sum((0, 2))
    np.testing.assert_array_equal((first == second).astype(np.int32), labels)
    xs, labels, _ = tasks.evidence_accumulation(128, seed=0)
    cue = xs[:105]
    right = cue[:, :, n_pop:2 * n_pop].sum((0, 2))
    left = cue[:, :, :n_pop].sum((0, 2))
    assert np.mean((right > left).astype(np.int32) == labels) > 0.95
