"""Synthetic tasks for online learning, generated from a seed (no downloads).

Both follow the paper's experiments in spirit (Wang et al. 2026, after Bellec et al.
2020): spiking inputs, a label that depends on information far back in time.

- ``delayed_match(...)``: two cue windows separated by a delay; label 1 if both cues
  come from the same population, else 0. Needs memory across the delay.
- ``evidence_accumulation(...)``: a sequence of cues on a left or right population;
  after a delay, label = the side that got more cues. Needs integration over time.

Each returns ``xs [T, B, n_in]`` (float32 spikes), ``labels [B]`` (int32) and
``mask [T]`` (1 on the decision steps at the end, where the loss counts).
"""

from __future__ import annotations

import numpy as np


def _poisson(rng, shape, rate):
    return (rng.random(shape) < rate).astype(np.float32)


def delayed_match(batch: int, seed: int, n_in: int = 40, cue: int = 10, delay: int = 20,
                  decision: int = 10, rate: float = 0.5, noise: float = 0.01):
    """Match-to-sample: is the second cue from the same population as the first?"""
    rng = np.random.default_rng(seed)
    n_pop = n_in // 4
    T = 2 * cue + delay + decision + delay // 2
    xs = _poisson(rng, (T, batch, n_in), noise)
    first = rng.integers(0, 2, batch)
    second = rng.integers(0, 2, batch)
    for b in range(batch):
        xs[:cue, b, first[b] * n_pop:(first[b] + 1) * n_pop] = _poisson(rng, (cue, n_pop), rate)
        start = cue + delay
        xs[start:start + cue, b, second[b] * n_pop:(second[b] + 1) * n_pop] = \
            _poisson(rng, (cue, n_pop), rate)
    # The last population signals "answer now".
    xs[T - decision:, :, 3 * n_pop:] = _poisson(rng, (decision, batch, n_in - 3 * n_pop), rate)
    labels = (first == second).astype(np.int32)
    mask = np.zeros(T, np.float32)
    mask[T - decision:] = 1.0
    return xs, labels, mask


def evidence_accumulation(batch: int, seed: int, n_in: int = 40, n_cues: int = 7,
                          cue_len: int = 10, gap: int = 5, delay: int = 30, decision: int = 10,
                          rate: float = 0.4, noise: float = 0.01):
    """Which side (left/right population) got more of the ``n_cues`` cues?"""
    rng = np.random.default_rng(seed)
    n_pop = n_in // 4
    T = n_cues * (cue_len + gap) + delay + decision
    xs = _poisson(rng, (T, batch, n_in), noise)
    sides = rng.integers(0, 2, (batch, n_cues))
    for b in range(batch):
        for k in range(n_cues):
            t0 = k * (cue_len + gap)
            lo = sides[b, k] * n_pop
            xs[t0:t0 + cue_len, b, lo:lo + n_pop] = _poisson(rng, (cue_len, n_pop), rate)
    xs[T - decision:, :, 3 * n_pop:] = _poisson(rng, (decision, batch, n_in - 3 * n_pop), rate)
    labels = (sides.sum(axis=1) > n_cues // 2).astype(np.int32)
    mask = np.zeros(T, np.float32)
    mask[T - decision:] = 1.0
    return xs, labels, mask
