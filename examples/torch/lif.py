"""One time step of a layer of leaky integrate-and-fire neurons with a linear readout,
written in PyTorch (export.py turns it into a StableHLO file tracec compiles).

Weights are in PyTorch's layout, ``[out, in]`` as ``nn.Linear`` stores them, and used
with ``F.linear``. The spikes are the plain comparison ``(v > threshold).float()``:
tracec differentiates it with its default surrogate and says so with a warning.

The module holds only constants (decay, threshold); the parameters, the state and the
input are arguments of ``forward``, so that they stay arguments of the exported step
(tracec trains what the runtime passes in, it does not train values frozen into the
code).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

B, I, H, O = 4, 10, 32, 3   # batch, inputs, neurons, outputs


class LIFStep(nn.Module):
    """``forward(w_in, w_out, v, x) -> (v', y)``:

    v' = decay·v + W_in x - H(v - thr)      (reset by the previous step's spike)
    z  = H(v' - thr)
    y  = W_out (z + 0.1·v')
    """

    def __init__(self, decay: float = 0.9, threshold: float = 1.0, leak_out: float = 0.1):
        super().__init__()
        self.decay, self.threshold, self.leak_out = decay, threshold, leak_out

    def forward(self, w_in, w_out, v, x):
        z_prev = (v > self.threshold).float()
        v_new = self.decay * v + F.linear(x, w_in) - z_prev
        z = (v_new > self.threshold).float()
        y = F.linear(z + self.leak_out * v_new, w_out)
        return v_new, y


class Loss(nn.Module):
    """The per-step loss: the mean squared error of the output against the target."""

    def forward(self, y, target):
        return F.mse_loss(y, target)


#: parameter and state names, in the step's argument order
PARAMS = ("w_in", "w_out")
STATE = ("v",)


def init_params(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"w_in": torch.randn(H, I, generator=g) * 0.8,
            "w_out": torch.randn(O, H, generator=g) / H ** 0.5}


def init_state(batch: int = B) -> dict[str, torch.Tensor]:
    return {"v": torch.zeros(batch, H)}


class InitParams(nn.Module):
    """No arguments; returns the initial parameters (frozen into the export as constants)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        for name, value in init_params(seed).items():
            self.register_buffer(name, value)

    def forward(self):
        return tuple(getattr(self, n).clone() for n in PARAMS)


class InitState(nn.Module):
    def forward(self):
        return tuple(init_state()[n] for n in STATE)
