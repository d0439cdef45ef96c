"""Run the compiled example against JAX: `python examples/run_lif2.py build/lif2.vmfb`.

Loads the artifact with tracec's runtime (no model source needed for that part),
feeds 200 steps of Poisson spikes one step at a time and then as one sequence,
and compares every output with `jax.jit(step)` of examples/lif2.py.
"""

import os
import sys
import time

import numpy as np

import tracec.runtime


def main(path: str, steps: int = 200) -> int:
    learner = tracec.runtime.load(path)
    print(f"loaded {path}: {learner}")
    B, n_in = learner.manifest["input"]["shape"]
    rng = np.random.default_rng(0)
    xs = (rng.random((steps, B, n_in)) < 0.2).astype(np.float32)

    t0 = time.perf_counter()
    outs = np.stack([learner.forward(x) for x in xs])
    t_step = (time.perf_counter() - t0) / steps
    learner.reset()
    t0 = time.perf_counter()
    seq = learner.forward_sequence(xs)
    t_seq = (time.perf_counter() - t0) / steps

    # The reference: the same model in JAX, with the artifact's own initial values.
    import jax
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lif2

    params = lif2.init_params(jax.random.PRNGKey(learner.manifest["options"]["seed"]))
    state = lif2.init_state(B)
    step = jax.jit(lif2.step)
    ref = []
    for x in xs:
        state, y = step(params, state, x)
        ref.append(np.asarray(y))
    ref = np.stack(ref)
    err_step = np.max(np.abs(outs - ref))
    err_seq = np.max(np.abs(seq - ref))
    print(f"forward (one call per step):   {t_step * 1e6:8.1f} µs/step, max |tracec - jax| = {err_step:.2e}")
    print(f"forward_sequence (one call):   {t_seq * 1e6:8.1f} µs/step, max |tracec - jax| = {err_seq:.2e}")
    ok = np.allclose(outs, ref, rtol=1e-5, atol=1e-5) and np.allclose(seq, ref, rtol=1e-5, atol=1e-5)
    print("outputs match jax.jit(step) over", steps, "steps" if ok else "steps: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/lif2.vmfb"))
