"""Export the PyTorch LIF step (lif.py) to a StableHLO file that tracec compiles.

    .venv-torch/bin/python examples/torch/export.py OUT_DIR     # make torch-venv first
    tracec OUT_DIR/lif_torch.mlir -o lif.vmfb --algorithm es-d-rtrl

torch-mlir writes the step as it exports every model: a public ``@main`` whose
arguments are ``%arg0``..., in ``forward``'s order (parameters, state, input, the order
tracec reads), constants as ``arith.constant`` with their data in the file's resource
section. This script exports three more functions with torch-mlir the same way,
``@loss``, ``@init_params`` and ``@init_state``, and puts them in the same module; the
only thing it writes itself is a ``tracec.name`` on each initial value, so that the
runtime knows the parameters and the state by name (docs/abi.md, "StableHLO input
files").

It also writes OUT_DIR/reference.npz: the initial parameters, a random input sequence
``xs [T, B, I]`` and PyTorch's own outputs ``ys [T, B, O]`` and final state ``v`` for it,
stepping from the initial state, to compare tracec's forward against.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lif  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)


def _export(module, *args, name):
    from torch_mlir import fx
    return fx.export_and_import(module, *args, output_type="stablehlo", func_name=name)


def _name_results(fn, names) -> None:
    from torch_mlir import ir
    fn.attributes["res_attrs"] = ir.ArrayAttr.get(
        [ir.DictAttr.get({"tracec.name": ir.StringAttr.get(n)}) for n in names])


def export(out_dir: str, seed: int = 0, steps: int = 20) -> str:
    from torch_mlir import ir

    params, state = lif.init_params(seed), lif.init_state()
    p_args = [params[n] for n in lif.PARAMS]
    s_args = [state[n] for n in lif.STATE]
    x = torch.zeros(lif.B, lif.I)
    step = _export(lif.LIFStep(), *p_args, *s_args, x, name="main")
    y = lif.LIFStep()(*p_args, *s_args, x)[-1]
    parts = [(_export(lif.Loss(), y, torch.zeros_like(y), name="loss"), None),
             (_export(lif.InitParams(seed), name="init_params"), lif.PARAMS),
             (_export(lif.InitState(), name="init_state"), lif.STATE)]
    with step.context:
        for module, names in parts:
            # each export has its own context: its text (resources included) is read
            # into the step's, and its function moved over
            moved = ir.Module.parse(module.operation.get_asm(enable_debug_info=True))
            for op in list(moved.body.operations):
                if names is not None:
                    _name_results(op, names)
                step.body.append(op)
            del moved
        text = step.operation.get_asm(enable_debug_info=True)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "lif_torch.mlir")
    with open(path, "w") as f:
        f.write(text)

    # PyTorch's own forward over a random input sequence, from the initial state
    rng = np.random.default_rng(seed + 1)
    xs = (rng.random((steps, lif.B, lif.I)) < 0.3).astype(np.float32)
    model, v, ys = lif.LIFStep(), state["v"], []
    with torch.no_grad():
        for x_t in xs:
            v, y = model(*p_args, v, torch.from_numpy(x_t))
            ys.append(y.numpy())
    np.savez(os.path.join(out_dir, "reference.npz"), xs=xs, ys=np.stack(ys), v=v.numpy(),
             **{n: t.numpy() for n, t in params.items()})
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20, help="length of the reference sequence")
    args = ap.parse_args()
    print(export(args.out_dir, args.seed, args.steps))


if __name__ == "__main__":
    main()
