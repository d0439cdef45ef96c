"""The Learner: a loaded artifact with its parameters and state kept on the device."""

from __future__ import annotations

import io
import json
import os

import numpy as np

from tracec.diagnostics import TracecError
from tracec.fileio import atomic_write
from tracec.runtime.artifact import ArtifactError, sniff

CHECKPOINT_FORMAT = "tracec-checkpoint"
CHECKPOINT_VERSION = 1


def load(path: str, driver: str = "local-sync") -> "Learner":
    """Load a ``.vmfb`` (IREE) or XLA artifact built by tracec."""
    return Learner(path, driver=driver)


def _executor(path: str, driver: str):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror}") from e
    kind = sniff(path, data)
    if kind == "xla":
        from tracec.runtime.xla_executor import XlaExecutor

        return XlaExecutor(path, data)
    from tracec.runtime.iree_executor import IreeExecutor

    return IreeExecutor(path, data, driver)


class Learner:
    """Runs one artifact. Every method returns numpy arrays once the call has finished."""

    def __init__(self, path: str, driver: str = "local-sync"):
        self.path = path
        self._exec = _executor(path, driver)
        m = self.manifest = self._exec.manifest
        self._param_specs = m["params"]
        self._state_specs = m["state"]
        self._input = m["input"]
        self._outputs = m["outputs"]
        self._params = list(self._exec.call("init_params", []))
        self._state = list(self._exec.call("init_state", []))
        self.steps_since_reset = 0

    # -- inspection ------------------------------------------------------------------

    @property
    def algorithm(self) -> str:
        return self.manifest.get("algorithm", "forward")

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {s["name"]: self._exec.to_numpy(v) for s, v in zip(self._param_specs, self._params)}

    @property
    def state(self) -> dict[str, np.ndarray]:
        return {s["name"]: self._exec.to_numpy(v) for s, v in zip(self._state_specs, self._state)}

    def set_params(self, mapping: dict) -> None:
        """Replace parameters by name; names not given keep their values."""
        by_name = {s["name"]: i for i, s in enumerate(self._param_specs)}
        unknown = sorted(set(mapping) - set(by_name))
        if unknown:
            raise TracecError(f"set_params: unknown parameter(s) {', '.join(unknown)}",
                              hint=f"parameters are {', '.join(by_name)}")
        new = list(self._params)
        for name, value in mapping.items():
            spec = self._param_specs[by_name[name]]
            new[by_name[name]] = self._exec.to_device(self._check(value, spec, f"parameter '{name}'"))
        self._params = new

    # -- running ---------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the state (to init_state's values) and the step counter; params stay."""
        self._state = list(self._exec.call("init_state", []))
        self.steps_since_reset = 0

    def forward(self, x):
        """One step without learning: returns the output ``[B, ...]``."""
        x = self._check(x, self._input, "input x")
        res = self._exec.call("forward", self._params + self._state + [x])
        n = len(self._state_specs)
        self._state = list(res[:n])
        self.steps_since_reset += 1
        return self._outputs_numpy(res[n:])

    def forward_sequence(self, xs):
        """T steps inside the binary: ``xs [T, B, ...]`` -> outputs ``[T, B, ...]``."""
        xs = self._check(xs, self._input, "inputs xs", leading=True)
        res = self._exec.call("forward_sequence", self._params + self._state + [xs])
        n = len(self._state_specs)
        self._state = list(res[:n])
        self.steps_since_reset += int(xs.shape[0])
        return self._outputs_numpy(res[n:])

    def train_step(self, x, target, mask=1):
        raise self._no_training("train_step")

    def train_sequence(self, xs, targets, mask=None):
        raise self._no_training("train_sequence")

    def _no_training(self, what: str) -> TracecError:
        return TracecError(f"{self.path} was compiled with --algorithm {self.algorithm}; "
                           f"it has no {what}",
                           hint="recompile with --algorithm d-rtrl or es-d-rtrl to train online")

    def _outputs_numpy(self, values):
        outs = [self._exec.to_numpy(v) for v in values]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _check(self, value, spec: dict, what: str, leading: bool = False) -> np.ndarray:
        arr = np.asarray(value)
        want = np.dtype(spec["dtype"])
        shape = tuple(spec["shape"])
        got_shape = arr.shape[1:] if leading else arr.shape
        if (leading and arr.ndim < 1) or got_shape != shape:
            expect = f"[T, {', '.join(map(str, shape))}]" if leading else f"{list(shape)}"
            raise TracecError(f"{what} has shape {list(arr.shape)}, expected {expect}")
        if arr.dtype != want:
            if arr.dtype.kind != want.kind:
                raise TracecError(f"{what} has dtype {arr.dtype}, expected {want}")
            arr = arr.astype(want)
        return np.ascontiguousarray(arr)

    # -- checkpoints -----------------------------------------------------------------

    def _identity(self) -> dict:
        m = self.manifest
        return {"params": m["params"], "state": m["state"], "algorithm": m.get("algorithm"),
                "source": m.get("source", {}).get("sha256")}

    def save_checkpoint(self, path: str) -> None:
        """Everything needed to resume exactly, written atomically."""
        arrays = {}
        for prefix, specs, values in (("param", self._param_specs, self._params),
                                      ("state", self._state_specs, self._state)):
            for i, (s, v) in enumerate(zip(specs, values)):
                arrays[f"{prefix}{i}"] = self._exec.to_numpy(v)
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "identity": self._identity(), "steps_since_reset": self.steps_since_reset}
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        atomic_write(path, buf.getvalue())

    def load_checkpoint(self, path: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["__meta__"]).decode())
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
        except (OSError, ValueError, KeyError) as e:
            raise TracecError(f"{path} is not a readable tracec checkpoint ({type(e).__name__})") from e
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
            raise TracecError(f"{path} is not a tracec checkpoint of version {CHECKPOINT_VERSION}")
        if meta.get("identity") != self._identity():
            raise TracecError(f"{path} was saved from a different model or algorithm than {self.path}")
        self._params = [self._exec.to_device(arrays[f"param{i}"]) for i in range(len(self._param_specs))]
        self._state = [self._exec.to_device(arrays[f"state{i}"]) for i in range(len(self._state_specs))]
        self.steps_since_reset = int(meta["steps_since_reset"])

    def __repr__(self) -> str:
        return (f"<tracec Learner {os.path.basename(self.path)}: {self.algorithm}, "
                f"{len(self._param_specs)} params, {len(self._state_specs)} state tensors>")
