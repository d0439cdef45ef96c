"""Write inputs and JAX-computed expected outputs for `iree-run-module` (a ctest helper).

    python make_io.py MODEL.py MODULE.vmfb OUT_DIR [--steps T]

For each entry point (init_params, init_state, forward, forward_sequence) it writes one
.npy file per argument and per result under OUT_DIR, and a flagfile OUT_DIR/<entry>.flags
with `--input=@...npy` and `--expected_output=@...npy` lines in the order of the
artifact's manifest. `iree-run-module --module=MODULE.vmfb --function=<entry>
--flagfile=OUT_DIR/<entry>.flags` then exits non-zero if any result differs.

Reference values: params = model.init_params(PRNGKey(manifest seed)), state =
model.init_state(batch), a random x (or xs[T] for forward_sequence), results from
jax.jit(model.step). Pytree leaves are named like tracec's manifest ("l1/w_in") and
matched by name, so the test also checks tracec's argument order. forward_wrong.flags is
forward.flags with the expected output shifted by 0.5: a ctest that must fail to compare,
so a checker that silently passes everything is caught.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def named_leaves(tree) -> dict[str, np.ndarray]:
    import jax

    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out["/".join(_key_name(k) for k in path)] = np.asarray(leaf)
    return out


def output_leaves(tree) -> list[np.ndarray]:
    import jax

    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


def lookup(values: dict[str, dict[str, np.ndarray]], outputs: list[np.ndarray],
           slot: str, entry: str, index: int) -> np.ndarray:
    role, _, name = slot.partition(":")
    if role == "output":
        return outputs[index]
    if role == "input":  # one input per entry ("x", or "xs" for forward_sequence)
        return values["input"]["value"]
    try:
        return values[role][name]
    except KeyError:
        sys.exit(f"make_io: {entry}: manifest slot '{slot}' has no match in the JAX model "
                 f"(JAX has {sorted(values.get(role, {}))})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("vmfb")
    ap.add_argument("out_dir")
    ap.add_argument("--steps", type=int, default=4, help="T for forward_sequence")
    a = ap.parse_args()

    import jax

    import tracec.runtime
    from tracec.frontends.model_loader import load_model

    manifest = tracec.runtime.load(a.vmfb).manifest
    model, _ = load_model(a.model)
    seed = int(manifest.get("options", {}).get("seed", 0))
    batch = int(manifest["input"]["shape"][0])
    in_shape = tuple(manifest["input"]["shape"])
    in_dtype = np.dtype(manifest["input"]["dtype"])

    rng = np.random.default_rng(1234)

    def random_input(shape):
        if np.issubdtype(in_dtype, np.floating):
            return rng.standard_normal(shape).astype(in_dtype)
        return rng.integers(0, 2, shape).astype(in_dtype)

    params = model.init_params(jax.random.PRNGKey(seed))
    state0 = model.init_state(batch)
    step = jax.jit(model.step)
    p_named, s0_named = named_leaves(params), named_leaves(state0)

    # forward: one step from init_state.
    x = random_input(in_shape)
    s1, y1 = step(params, state0, x)
    # forward_sequence: T steps from init_state (exercises the recurrence).
    xs = random_input((a.steps,) + in_shape)
    s, ys = state0, []
    for t in range(a.steps):
        s, y = step(params, s, xs[t])
        ys.append(output_leaves(y))
    ys = [np.stack(col) for col in zip(*ys)]

    cases = {
        "init_params": ({}, {"param": p_named}, []),
        "init_state": ({}, {"state": s0_named}, []),
        "forward": ({"param": p_named, "state": s0_named, "input": {"value": x}},
                    {"state": named_leaves(s1)}, output_leaves(y1)),
        "forward_sequence": ({"param": p_named, "state": s0_named, "input": {"value": xs}},
                             {"state": named_leaves(s)}, ys),
    }

    os.makedirs(a.out_dir, exist_ok=True)
    out_dir = os.path.abspath(a.out_dir)
    cases["forward_wrong"] = cases["forward"]
    for name, (arg_values, result_values, outputs) in cases.items():
        wrong = name.endswith("_wrong")
        entry = name.removesuffix("_wrong")
        spec = manifest["entries"].get(entry)
        if spec is None:
            continue
        lines = [f"# {name}: inputs and expected outputs from jax.jit(step) (tests/cmake/make_io.py)"]
        for i, slot in enumerate(spec["args"]):
            arr = lookup(arg_values, [], slot, entry, i)
            path = os.path.join(out_dir, f"{entry}.arg{i:02d}.npy")
            np.save(path, np.ascontiguousarray(arr))
            lines.append(f"--input=@{path}")
        n_out = 0
        for i, slot in enumerate(spec["results"]):
            is_output = slot.startswith("output:")
            arr = lookup(result_values, outputs, slot, entry, n_out)
            n_out += is_output
            if wrong and is_output:
                arr = arr + np.asarray(0.5, arr.dtype)
            path = os.path.join(out_dir, f"{name}.expected{i:02d}.npy")
            np.save(path, np.ascontiguousarray(arr))
            lines.append(f"--expected_output=@{path}")
        with open(os.path.join(out_dir, f"{name}.flags"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
