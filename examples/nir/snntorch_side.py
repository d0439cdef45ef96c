"""The snnTorch side of tracec's NIR interoperability check (tests/test_nir.py).

Runs in the optional venv `make nir-venv` builds (.venv-nir: snnTorch, torch, nir), never
in tracec's own:

    .venv-nir/bin/python examples/nir/snntorch_side.py export OUT.nir XS.npy YS.npy
        builds a small snnTorch network (Linear -> Leaky -> Linear -> Leaky, and a
        recurrent RLeaky layer), writes it as a NIR graph with snnTorch's exporter and its
        own outputs on the input sequence XS [T, B, N_IN] to YS [T, B, N_OUT]
    .venv-nir/bin/python examples/nir/snntorch_side.py run IN.nir XS.npy YS.npy
        reads a NIR graph with snnTorch's importer and writes its outputs on XS to YS

The neurons use reset to zero without delay (`reset_mechanism="zero"`,
`reset_delay=False`), the semantics NIR's LIF node states and the ones snnTorch's
importer builds; snnTorch's exporter writes tau = dt/(1-beta), r = tau/dt with
dt = 1e-4 s, which tracec's forward Euler (docs/nir.md) turns back into
v <- beta*v + I.
"""

import sys

import nir
import numpy as np
import torch
import snntorch as snn


N_IN, H, N_OUT = 5, 8, 3


def network():
    """Linear -> RLeaky (all-to-all recurrence) -> Linear -> Leaky, one time step per
    call (the neurons keep their state: init_hidden=True)."""
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(N_IN, H), torch.nn.Linear(H, N_OUT)
    lif1 = snn.RLeaky(beta=0.8, threshold=1.0, linear_features=H, init_hidden=True,
                      reset_mechanism="zero", reset_delay=False)
    # per-neuron beta and threshold: snnTorch's exporter takes the LIF node's shape from them
    lif2 = snn.Leaky(beta=torch.full((N_OUT,), 0.7), threshold=torch.full((N_OUT,), 0.5),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False)
    with torch.no_grad():
        for lin, gain in ((fc1, 1.6), (fc2, 0.8), (lif1.recurrent, 0.5)):
            lin.weight.copy_(torch.randn(lin.weight.shape) * gain)
            lin.bias.copy_(torch.randn(lin.bias.shape) * 0.1)
    return torch.nn.Sequential(fc1, lif1, fc2, lif2)


def export(out_path, xs_path, ys_path):
    from snntorch.export_nir import export_to_nir

    net = network()
    xs = torch.from_numpy(np.load(xs_path))
    with torch.no_grad():
        graph = export_to_nir(net, xs[0], ignore_dims=[0])
        net = network()  # the same weights, fresh state (the export ran a step)
        ys = torch.stack([net(x) for x in xs])
    nir.write(out_path, graph)
    np.save(ys_path, ys.numpy())


def run(in_path, xs_path, ys_path):
    from snntorch.import_nir import import_from_nir

    net = import_from_nir(nir.read(in_path))
    xs = torch.from_numpy(np.load(xs_path))
    state = None
    outs = []
    with torch.no_grad():
        for t in range(xs.shape[0]):
            y, state = net(xs[t], state)
            outs.append(y)
    np.save(ys_path, torch.stack(outs).numpy())


if __name__ == "__main__":
    mode, *paths = sys.argv[1:]
    {"export": export, "run": run}[mode](*paths)
