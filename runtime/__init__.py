"""tracec's runtime: load an artifact, run it, train it online, checkpoint it.

Imports only ``iree.runtime`` and numpy (plus tracec's dependency-free helpers), so it
runs where the model is deployed. An XLA artifact (``--target xla``) is run through
jax, imported only when such an artifact is loaded.

    learner = tracec.runtime.load("model.vmfb")
    out = learner.forward(x)                # one step, state stays on the device
    outs = learner.forward_sequence(xs)     # T steps inside the binary
"""

from __future__ import annotations

from tracec.runtime.learner import ArtifactError, Learner, load
from tracec.runtime.sharded import ShardedLearner

__all__ = ["load", "Learner", "ShardedLearner", "ArtifactError"]
