"""Synthetic tasks for online learning, generated from a seed (no downloads).

Both follow the paper's experiments in spirit (Wang et al. 2026, after Bellec et al.
2020): 40 spiking inputs in four populations of 10 (cue A / left, cue B / right, a
silent population, "answer now"), background noise on all of them, and a label that
depends on cues seen long before the answer.

- ``delayed_match(...)``: a cue from population A or B, a delay of ``delay`` steps, a
  second cue, a short wait, then the answer window; label 1 if both cues come from the
  same population, else 0. The label depends on both cues (an XOR of them), so the
  first must be held across the delay, ~50 steps before the answer.
- ``evidence_accumulation(...)``: ``n_cues`` cues, each on the left or the right
  population; after a delay of ``delay`` steps, label 1 if the right side got more
  cues. Needs the count of all cues, the first of them ~60 steps before the answer.

With the defaults both tasks last T = 67 steps, so one compiled binary (whose
``--update-every`` is T) trains on either.

Each returns ``xs [T, B, n_in]`` (float32 spikes), ``labels [B]`` (int32) and
``mask [T]`` (1 on the decision steps at the end, where the loss counts and where the
answer is read). ``delayed_match_windows()`` and ``evidence_accumulation_windows()``
give the steps each cue occupies.

Defaults are sized so that the spikes decide the label: an exact counter of the left
and right cue spikes gets 99.98 % of evidence-accumulation trials right at the default
cue rate 0.7, 99.75 % at 0.6 and 97.5 % at 0.4 (too close to 95 % for a network whose
memory leaks), while every decision still needs memory: between the last cue and the
answer window the cue populations carry only background noise.
"""

from __future__ import annotations

import numpy as np


def _poisson(rng, shape, rate):
    return (rng.random(shape) < rate).astype(np.float32)


def delayed_match_windows(cue: int = 5, delay: int = 42):
    """Steps of the first and second cue: ``[(start, stop), (start, stop)]``."""
    return [(0, cue), (cue + delay, 2 * cue + delay)]


def delayed_match(batch: int, seed: int, n_in: int = 40, cue: int = 5, delay: int = 42,
                  wait: int = 5, decision: int = 10, rate: float = 0.5, noise: float = 0.01):
    """Match-to-sample: is the second cue from the same population as the first?"""
    rng = np.random.default_rng(seed)
    n_pop = n_in // 4
    T = 2 * cue + delay + wait + decision
    xs = _poisson(rng, (T, batch, n_in), noise)
    first = rng.integers(0, 2, batch)
    second = rng.integers(0, 2, batch)
    for b in range(batch):
        for (t0, t1), side in zip(delayed_match_windows(cue, delay), (first[b], second[b])):
            xs[t0:t1, b, side * n_pop:(side + 1) * n_pop] = _poisson(rng, (t1 - t0, n_pop), rate)
    # The last population signals "answer now".
    xs[T - decision:, :, 3 * n_pop:] = _poisson(rng, (decision, batch, n_in - 3 * n_pop), rate)
    labels = (first == second).astype(np.int32)
    mask = np.zeros(T, np.float32)
    mask[T - decision:] = 1.0
    return xs, labels, mask


def evidence_accumulation_windows(n_cues: int = 7, cue_len: int = 4, gap: int = 2):
    """Steps of each cue: ``[(start, stop), ...]``."""
    return [(k * (cue_len + gap), k * (cue_len + gap) + cue_len) for k in range(n_cues)]


def evidence_accumulation(batch: int, seed: int, n_in: int = 40, n_cues: int = 7,
                          cue_len: int = 4, gap: int = 2, delay: int = 15, decision: int = 10,
                          rate: float = 0.7, noise: float = 0.01):
    """Which side (left/right population) got more of the ``n_cues`` cues?"""
    rng = np.random.default_rng(seed)
    n_pop = n_in // 4
    T = n_cues * (cue_len + gap) + delay + decision
    xs = _poisson(rng, (T, batch, n_in), noise)
    sides = rng.integers(0, 2, (batch, n_cues))
    for b in range(batch):
        for k, (t0, t1) in enumerate(evidence_accumulation_windows(n_cues, cue_len, gap)):
            lo = sides[b, k] * n_pop
            xs[t0:t1, b, lo:lo + n_pop] = _poisson(rng, (t1 - t0, n_pop), rate)
    xs[T - decision:, :, 3 * n_pop:] = _poisson(rng, (decision, batch, n_in - 3 * n_pop), rate)
    labels = (sides.sum(axis=1) > n_cues // 2).astype(np.int32)
    mask = np.zeros(T, np.float32)
    mask[T - decision:] = 1.0
    return xs, labels, mask
