"""GPU code on a Vulkan device: the example compiled with ``--target vulkan`` runs through
``tracec.runtime`` (driver chosen from the manifest's target) and equals llvm-cpu to
1e-4, for forward, forward_sequence, train_step and train_sequence. On a machine without
a GPU the device is lavapipe, Mesa's Vulkan on the CPU (Debian's mesa-vulkan-drivers,
which ``make test`` installs when it runs as root)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tracec
import tracec.runtime
from conftest import EXAMPLES

LIF2 = os.path.join(EXAMPLES, "lif2.py")


def _vulkan_device_or_skip():
    import iree.runtime as rt

    try:
        rt.Config("vulkan")
    except (ValueError, RuntimeError) as e:
        pytest.skip(f"no Vulkan device here ({str(e).splitlines()[0][:120]}); install Debian's "
                    "mesa-vulkan-drivers for lavapipe")


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(a).max()))
    assert np.abs(a - b).max() <= 1e-4 * scale, f"{what}: {np.abs(a - b).max()}"


@pytest.mark.parametrize("algorithm", ["es-d-rtrl", "d-rtrl"])
def test_vulkan_equals_llvm_cpu(algorithm, tmp_path):
    _vulkan_device_or_skip()
    learners = {}
    for target in ("llvm-cpu", "vulkan"):
        path = str(tmp_path / f"{target}.vmfb")
        tracec.compile(LIF2, target=target, algorithm=algorithm, optimizer="adam", lr=0.01,
                       update_every=2).save(path)
        learners[target] = tracec.runtime.load(path)
    cpu, gpu = learners["llvm-cpu"], learners["vulkan"]
    assert gpu.manifest["target"] == "vulkan" and gpu._exec.driver == "vulkan"
    B, I = cpu.manifest["input"]["shape"]
    rng = np.random.default_rng(0)
    xs = (rng.random((5, B, I)) < 0.3).astype(np.float32)
    targets = rng.integers(0, 10, (5, B)).astype(np.int32)
    _close(cpu.forward(xs[0]), gpu.forward(xs[0]), "forward")
    _close(cpu.forward_sequence(xs), gpu.forward_sequence(xs), "forward_sequence")
    for learner in (cpu, gpu):
        learner.reset()
    loss_c, out_c = cpu.train_step(xs[0], targets[0])
    loss_g, out_g = gpu.train_step(xs[0], targets[0])
    _close(loss_c, loss_g, "train_step loss")
    _close(out_c, out_g, "train_step output")
    _close(cpu.train_sequence(xs, targets), gpu.train_sequence(xs, targets), "train_sequence")
    for name, value in cpu.params.items():
        _close(value, gpu.params[name], f"parameter {name}")
    for name, value in cpu.traces.items():
        _close(value, gpu.traces[name], f"trace {name}")
