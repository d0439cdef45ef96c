"""The Learner: a loaded artifact with its parameters and state kept on the device.

Calls are driven by the manifest: every entry lists its arguments and results as
``role:name`` (docs/abi.md). The learner keeps one device value per carried
``role:name`` (params, state, traces, optimizer state, accumulators, counters), builds
each call's arguments from them plus the call's inputs, and stores what comes back.
"""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from tracec.diagnostics import TracecError
from tracec.fileio import atomic_write
from tracec.runtime.artifact import ArtifactError, sniff, unseal

if TYPE_CHECKING:
    from tracec.runtime.sharded import ShardedLearner

CHECKPOINT_FORMAT = "tracec-checkpoint"
CHECKPOINT_VERSION = 1
#: the metadata file of a checkpoint directory (the arrays are v0.npy, v1.npy, ...)
CHECKPOINT_DIR_META = "checkpoint.json"
CARRIED = ("param", "state", "trace", "opt", "accum", "counter")
# Reset to initial values by reset(); params and optimizer state are kept.
RESET_ROLES = ("state", "trace", "accum", "counter")
# train_sequence leaves a run of steps whose mask is 0 to advance_sequence (where the
# artifact has it) from this many steps on. Cutting a run out costs two calls more, and a
# short call, run between long ones, costs 0.2 ms and more with the network's size beyond
# its steps: skipping pays from runs of 19-22 steps on for 2x64 LIF and ALIF, from 6 on
# for 2x256 LIF (ES-D-RTRL, benchmarks/masked_steps.py).
MIN_SKIPPED_RUN = 24


def mask_runs(mask: np.ndarray, skip: bool) -> list[tuple[str, int, int]]:
    """The entry that runs each part ``[lo, hi)`` of a sequence with loss mask ``mask``:
    with ``skip`` (an artifact compiled with --skip-masked-steps) ``advance_sequence`` for
    each run of at least ``MIN_SKIPPED_RUN`` steps whose mask is 0, ``train_sequence``
    for the rest; without, ``train_sequence`` for all of it."""
    T = len(mask)
    if not skip or T < MIN_SKIPPED_RUN:
        return [("train_sequence", 0, T)]
    zero = np.concatenate([[False], np.asarray(mask) == 0, [False]])
    edges = np.flatnonzero(zero[1:] != zero[:-1])  # where each run of zeros starts and ends
    runs, lo = [], 0
    for start, end in zip(edges[::2].tolist(), edges[1::2].tolist()):
        if end - start >= MIN_SKIPPED_RUN:
            if start > lo:
                runs.append(("train_sequence", lo, start))
            runs.append(("advance_sequence", start, end))
            lo = end
    if lo < T:
        runs.append(("train_sequence", lo, T))
    return runs


def load(path: str, driver: str | None = None, allocator: str | None = "caching",
         threads: int | None = None) -> "Learner | ShardedLearner":
    """Load a ``.vmfb`` (IREE) or XLA artifact built by tracec. ``driver``: the IREE
    driver; by default the one for the target the artifact was compiled for
    (``local-sync`` for CPUs, ``vulkan``, ``cuda``, ``hip`` for rocm). ``allocator``:
    IREE's device allocator on the CPU drivers: ``caching`` (the default) reuses the
    buffers a time step allocates instead of allocating and zeroing them again; None is
    IREE's plain one. Other drivers (Vulkan, CUDA, HIP) keep their own.

    An artifact compiled with ``--batch-shards N`` loads as a data-parallel learner
    (``tracec.runtime.sharded.ShardedLearner``): N learners over the parts of the batch,
    with the same methods, speaking for the whole batch. ``threads``: how many threads
    run its parts (by default one per part, up to the cores this process may use); each
    thread runs its share of the parts one after the other."""
    learner = Learner(path, driver=driver, allocator=allocator)
    if "batch_shards" in learner.manifest:
        from tracec.runtime.sharded import ShardedLearner

        return ShardedLearner(path, driver=driver, allocator=allocator, first=learner,
                              threads=threads)
    if threads not in (None, 1):
        raise ArtifactError(f"threads={threads!r}: {path} runs its whole batch as one part; "
                            "compile it with --batch-shards N to run parts in threads")
    return learner


def _executor(path: str, driver: str | None, allocator: str | None = "caching"):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror}") from e
    data = unseal(path, data)  # before any parser sees a byte of it
    kind = sniff(path, data)
    if kind == "xla":
        from tracec.runtime.xla_executor import XlaExecutor

        return XlaExecutor(path, data)
    from tracec.runtime.iree_executor import IreeExecutor

    return IreeExecutor(path, data, driver, allocator)


_ZIP_MAGIC = b"PK\x03\x04"


def checkpoint_identity(manifest: dict) -> dict:
    """What a checkpoint must share with the artifact that loads it."""
    m = manifest
    return {"params": m["params"], "state": m["state"], "algorithm": m.get("algorithm"),
            "traces": m.get("traces", []), "source": m.get("source", {}).get("sha256")}


def checkpoint_meta(manifest: dict, steps_since_reset: int, keys) -> dict:
    """A checkpoint's metadata: the ``__meta__`` member of an ``.npz`` checkpoint, the
    ``checkpoint.json`` of a checkpoint directory. ``keys``: the carried ``role:name``s;
    array ``i`` (``v{i}``) holds the i-th of them in sorted order."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "identity": checkpoint_identity(manifest), "keys": sorted(keys),
            "steps_since_reset": steps_since_reset}


def write_checkpoint(path: str, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` checkpoint, written atomically: ``meta`` (from :func:`checkpoint_meta`)
    as its ``__meta__`` member, ``arrays[key]`` as ``v{i}`` for its i-th key."""
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             **{f"v{i}": arrays[k] for i, k in enumerate(meta["keys"])})
    atomic_write(path, buf.getvalue())


def _check_keys(meta) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("keys"), list) \
            or not all(isinstance(k, str) for k in meta["keys"]) \
            or len(set(meta["keys"])) != len(meta["keys"]):
        raise ValueError("bad metadata")


def _read_checkpoint_dir(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A checkpoint directory (what the driver of ``tracec plan`` writes):
    ``checkpoint.json`` (the metadata) and ``v{i}.npy`` for its i-th key. The driver
    writes ``checkpoint.json`` last, so a directory without it is an unfinished save."""
    meta_path = os.path.join(path, CHECKPOINT_DIR_META)
    try:
        with open(meta_path, "rb") as f:
            text = f.read()
    except FileNotFoundError as e:
        raise TracecError(f"{path} is a directory without {CHECKPOINT_DIR_META}, not a "
                          "complete tracec checkpoint",
                          hint="a driver run stopped while saving leaves none; use an "
                               "earlier checkpoint") from e
    except OSError as e:
        raise TracecError(f"cannot read checkpoint {meta_path}: {e.strerror}") from e
    arrays: dict[str, np.ndarray] = {}
    try:
        meta = json.loads(text.decode("utf-8"))
        _check_keys(meta)
        for i, k in enumerate(meta["keys"]):
            name = os.path.join(path, f"v{i}.npy")
            if not os.path.isfile(name):
                raise TracecError(f"{path} is an incomplete tracec checkpoint: v{i}.npy "
                                  f"('{k}') is missing")
            arr = np.load(name, allow_pickle=False)
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"v{i}.npy is not a single array")
            arrays[k] = arr
    except TracecError:
        raise
    except Exception as e:  # json, numpy's format reader, the OS: many error types
        raise TracecError(f"{path} is not a readable tracec checkpoint: it is truncated or "
                          f"damaged ({type(e).__name__})",
                          hint="use another checkpoint, or save a new one") from e
    return meta, arrays


def _read_checkpoint(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, {role:name: array}) of a checkpoint file; any damage is a one-line error
    naming the file (the .npz members carry CRC-32s, which zipfile checks on reading)."""
    if os.path.isdir(path):
        return _read_checkpoint_dir(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TracecError(f"cannot read checkpoint {path}: {e.strerror}") from e
    if not data:
        raise TracecError(f"{path} is empty, not a tracec checkpoint")
    if not data.startswith(_ZIP_MAGIC):
        what = "a single .npy array" if data.startswith(b"\x93NUMPY") else "not a .npz archive"
        raise TracecError(f"{path} is not a tracec checkpoint ({what})",
                          hint="load a file written by Learner.save_checkpoint")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(bytes(z["__meta__"]).decode("utf-8"))
            _check_keys(meta)
            arrays = {k: np.asarray(z[f"v{i}"]) for i, k in enumerate(meta["keys"])}
            if set(z.files) != {"__meta__"} | {f"v{i}" for i in range(len(arrays))}:
                raise ValueError("unexpected members")
    except Exception as e:  # zipfile, numpy's format reader, json: many error types
        raise TracecError(f"{path} is not a readable tracec checkpoint: it is truncated or "
                          f"damaged ({type(e).__name__})",
                          hint="use another checkpoint, or save a new one") from e
    return meta, arrays


def _flatten(tree, prefix: str = "") -> dict:
    """A nested dict/tuple/list as {leaf name: leaf}, named like the compiler names
    pytree leaves (keys or indices joined with '/', dict keys sorted)."""
    if isinstance(tree, dict):
        items = [(str(k), tree[k]) for k in sorted(tree)]
    elif isinstance(tree, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(tree)]
    else:
        return {prefix: tree}
    out: dict = {}
    for k, v in items:
        out.update(_flatten(v, f"{prefix}/{k}" if prefix else k))
    return out


def _key(spec: dict) -> str:
    return f"{spec['role']}:{spec['name']}"


class Learner:
    """Runs one artifact. Every method returns numpy arrays once the call has finished."""

    def __init__(self, path: str, driver: str | None = None, allocator: str | None = "caching"):
        self.path = path
        self._exec = _executor(path, driver, allocator)
        m = self.manifest = self._exec.manifest
        self._param_specs = m["params"]
        self._state_specs = m["state"]
        self._input = m["input"]
        self._outputs = m["outputs"]
        # The target of one step (train_step's `target`); the source's description
        # carries it (a model's target spec, or a .mlir file's @loss argument).
        source = m.get("source") if isinstance(m.get("source"), dict) else {}
        target = source.get("target")
        self._target = target if isinstance(target, dict) else None
        # Several streams (a pytree of inputs or targets) travel packed in one tensor.
        self._input_leaves = source.get("input_leaves")
        self._target_leaves = source.get("target_leaves")
        self._values: dict[str, object] = {}
        for spec, v in zip(self._param_specs, self._exec.call("init_params", [])):
            self._values[_key(spec)] = v
        for key in ("optimizer_state",):
            for spec in m.get(key, []):
                self._values[_key(spec)] = self._zeros(spec)
        self.steps_since_reset = 0
        self._initial: dict | None = None
        self.reset()

    def _zeros(self, spec: dict):
        return self._exec.to_device(np.zeros(spec["shape"], np.dtype(spec["dtype"])))

    # -- inspection ------------------------------------------------------------------

    @property
    def algorithm(self) -> str:
        return self.manifest.get("algorithm", "forward")

    def _named(self, specs) -> dict[str, np.ndarray]:
        return {s["name"]: self._host(self._values[_key(s)]) for s in specs}

    def _host(self, value) -> np.ndarray:
        """A fresh, writable numpy copy: never a view of the device buffer the learner
        keeps (IREE's to_host maps it) nor jax's read-only array."""
        return np.array(self._exec.to_numpy(value), copy=True)

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self._named(self._param_specs)

    @property
    def state(self) -> dict[str, np.ndarray]:
        return self._named(self._state_specs)

    @property
    def traces(self) -> dict[str, np.ndarray]:
        return self._named(self.manifest.get("traces", []))

    def set_params(self, mapping: dict) -> None:
        """Replace parameters by name; names not given keep their values."""
        by_name = {s["name"]: s for s in self._param_specs}
        unknown = sorted(set(mapping) - set(by_name))
        if unknown:
            raise TracecError(f"set_params: unknown parameter(s) {', '.join(unknown)}",
                              hint=f"parameters are {', '.join(by_name)}")
        checked = {name: self._check(v, by_name[name], f"parameter '{name}'")
                   for name, v in mapping.items()}
        for name, value in checked.items():
            self._values[_key(by_name[name])] = self._exec.to_device(value)

    # -- running ---------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the state (to init_state's values), traces, accumulated gradient and the
        step counters; parameters and optimizer state stay. The values are made once
        and handed out again on every reset: an entry point never writes its arguments
        (each returns new buffers), so they stay as made."""
        if self._initial is None:
            initial = {_key(spec): v for spec, v in
                       zip(self._state_specs, self._exec.call("init_state", []))}
            for key in ("traces", "accumulators", "counters"):
                for spec in self.manifest.get(key, []):
                    initial[_key(spec)] = self._zeros(spec)
            self._initial = initial
        self._values.update(self._initial)
        self.steps_since_reset = 0

    def _call(self, entry: str, inputs: dict) -> dict:
        sig = self.manifest["entries"].get(entry)
        if sig is None:
            raise TracecError(f"{self.path} has no entry '{entry}'")
        args = [inputs[k] if k in inputs else self._values[k] for k in sig["args"]]
        res = self._exec.call(entry, args)
        out: dict = {}
        for k, v in zip(sig["results"], res):
            if k.split(":", 1)[0] in CARRIED:
                self._values[k] = v
            else:
                out.setdefault(k.split(":", 1)[0], []).append(v)
        return out

    # Each public call checks everything it is given (``_prepare_*``, which raises before
    # anything runs) and then runs (``_run_*``); a data-parallel learner checks every
    # part's share before it runs any of them.

    def forward(self, x):
        """One step without learning: returns the output ``[B, ...]``."""
        return self._run_forward(self._prepare_forward(x))

    def _prepare_forward(self, x):
        return self._check(self._pack(x, self._input_leaves, "input x"), self._input, "input x")

    def _run_forward(self, x):
        out = self._call("forward", {f"input:{self._input['name']}": x})
        self.steps_since_reset += 1
        return self._outputs_numpy(out["output"])

    def forward_sequence(self, xs):
        """T steps inside the binary: ``xs [T, B, ...]`` -> outputs ``[T, B, ...]``."""
        return self._run_forward_sequence(self._prepare_forward_sequence(xs))

    def _prepare_forward_sequence(self, xs):
        return self._check(self._pack(xs, self._input_leaves, "inputs xs", True), self._input,
                           "inputs xs", leading=True)

    def _run_forward_sequence(self, xs):
        out = self._call("forward_sequence", {"input:xs": xs})
        self.steps_since_reset += int(xs.shape[0])
        return self._outputs_numpy(out["output"])

    def train_step(self, x, target, mask=1.0):
        """One online step: traces, gradient, optimizer when due. Returns ``(loss, output)``.
        With a mask of 0, an artifact compiled with --skip-masked-steps runs
        ``advance_step``, which computes no gradient, with the same results."""
        return self._run_train_step(*self._prepare_train_step(x, target, mask))

    def _prepare_train_step(self, x, target, mask):
        self._require_training("train_step")
        x = self._pack(x, self._input_leaves, "input x")
        target = self._pack(target, self._target_leaves, "target")
        x = self._finite(self._check(x, self._input, "input x"), "input x")
        target = self._finite(self._check(target, self._target, "target"), "target")
        mask = self._mask(mask, (), "mask", "a scalar for train_step")
        return x, target, mask

    def _run_train_step(self, x, target, mask):
        entry = ("advance_step" if mask == 0 and "advance_step" in self.manifest["entries"]
                 else "train_step")
        out = self._call(entry, {f"input:{self._input['name']}": x,
                                 f"target:{self._target['name']}": target, "mask:mask": mask})
        self.steps_since_reset += 1
        return float(self._exec.to_numpy(out["loss"][0])), self._outputs_numpy(out["output"])

    def train_sequence(self, xs, targets, mask=None):
        """T online steps inside the binary; returns the per-step losses ``[T]``. In an
        artifact compiled with --skip-masked-steps, each run of ``MIN_SKIPPED_RUN`` or
        more steps whose mask is 0 runs through ``advance_sequence``, which computes no
        gradient; the results are those of ``train_sequence`` alone."""
        return self._run_train_sequence(*self._prepare_train_sequence(xs, targets, mask))

    def _prepare_train_sequence(self, xs, targets, mask):
        self._require_training("train_sequence")
        xs = self._pack(xs, self._input_leaves, "inputs xs", True)
        targets = self._pack(targets, self._target_leaves, "targets", True)
        xs = self._finite(self._check(xs, self._input, "inputs xs", leading=True), "inputs xs")
        targets = self._finite(self._check(targets, self._target, "targets", leading=True), "targets")
        T = xs.shape[0]
        if targets.shape[0] != T:
            raise TracecError(f"targets have {targets.shape[0]} steps, inputs {T}")
        mask = (np.ones(T, np.float32) if mask is None
                else self._mask(mask, (T,), "mask", f"of shape [T] = [{T}]"))
        return xs, targets, mask

    def _run_train_sequence(self, xs, targets, mask):
        losses = []
        for entry, lo, hi in mask_runs(mask, "advance_sequence" in self.manifest["entries"]):
            out = self._call(entry, {"input:xs": xs[lo:hi], "target:targets": targets[lo:hi],
                                     "mask:masks": mask[lo:hi]})
            self.steps_since_reset += hi - lo
            losses.append(self._host(out["loss"][0]))
        return losses[0] if len(losses) == 1 else np.concatenate(losses)

    def _require_training(self, what: str) -> None:
        if what not in self.manifest["entries"]:
            raise TracecError(f"{self.path} was compiled with --algorithm {self.algorithm}; "
                              f"it has no {what}",
                              hint="recompile with --algorithm d-rtrl or es-d-rtrl to train online")
        if self._target is None:
            raise TracecError(f"{self.path} has no target spec in its manifest "
                              "(source.target), so its targets cannot be checked",
                              hint="recompile it with this tracec")

    @staticmethod
    def _mask(mask, shape: tuple, what: str, expected: str) -> np.ndarray:
        """A loss mask as float32: the given shape, every weight finite and in [0, 1]."""
        if shape == () and type(mask) in (int, float) and 0 <= mask <= 1:
            return np.asarray(mask, np.float32)  # a plain number: train_step's usual mask
        try:
            arr = np.asarray(mask)
            if arr.dtype.kind not in "biuf":
                raise TypeError
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as e:
            raise TracecError(f"{what} must be a number in [0, 1] ({expected}), got "
                              f"{type(mask).__name__}; nothing was updated") from e
        if arr.shape != shape:
            raise TracecError(f"{what} must be {expected}, got shape {list(arr.shape)}; "
                              "nothing was updated")
        if not np.all(np.isfinite(arr)):
            raise TracecError(f"{what} contains NaN or Inf; nothing was updated",
                              hint="a mask weighs each step's loss: 1 learns, 0 skips")
        if np.any(arr < 0) or np.any(arr > 1):
            bad = float(arr[(arr < 0) | (arr > 1)].flat[0])
            raise TracecError(f"{what} must be in [0, 1], got {bad:g}; nothing was updated",
                              hint="a mask weighs each step's loss: 1 learns, 0 skips")
        return np.ascontiguousarray(arr) if arr.ndim else arr

    @staticmethod
    def _pack(value, leaves, what: str, leading: bool = False):
        """Several streams (a dict/tuple/list like the model's spec, or a flat dict keyed
        by the leaf names of the manifest) packed into the one float32 tensor the entry
        points take (docs/abi.md, "Several streams")."""
        if not leaves:
            return value
        names = [leaf["name"] for leaf in leaves]
        given = _flatten(value)
        if isinstance(value, dict) and set(names) <= set(value):
            given = {n: value[n] for n in names}
        missing, unknown = sorted(set(names) - set(given)), sorted(set(given) - set(names))
        if missing or unknown:
            raise TracecError(f"{what}: streams {', '.join(names)} expected, "
                              + (f"missing {', '.join(missing)}" if missing else
                                 f"unknown {', '.join(unknown)}"),
                              hint="give a dict (or tuple) shaped like the model's spec")
        parts, lead = [], None
        for leaf in leaves:
            arr = np.asarray(given[leaf["name"]])
            shape = tuple(leaf["shape"])
            n_lead = arr.ndim - len(shape)
            if n_lead != (1 if leading else 0) or arr.shape[n_lead:] != shape:
                want = ("[T, " if leading else "[") + ", ".join(map(str, shape)) + "]"
                raise TracecError(f"{what}: stream '{leaf['name']}' has shape "
                                  f"{list(arr.shape)}, expected {want}")
            if lead is None:
                lead = arr.shape[:n_lead]
            elif arr.shape[:n_lead] != lead:
                raise TracecError(f"{what}: the streams have different numbers of steps")
            kind = np.dtype(leaf["dtype"]).kind
            if arr.dtype.kind == "f" and kind != "f":
                raise TracecError(f"{what}: stream '{leaf['name']}' has dtype {arr.dtype}, "
                                  f"expected {leaf['dtype']}")
            if kind != "f" and arr.size and np.abs(arr.astype(np.int64)).max() >= 1 << 24:
                raise TracecError(f"{what}: stream '{leaf['name']}' holds integers of 2^24 or "
                                  "more, which the packed float32 tensor cannot carry exactly")
            parts.append(arr.astype(np.float32).reshape(lead + (shape[0], -1)))
        return np.ascontiguousarray(np.concatenate(parts, axis=-1))

    @staticmethod
    def _finite(arr: np.ndarray, what: str) -> np.ndarray:
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise TracecError(f"{what} contains NaN or Inf; nothing was updated")
        return arr

    def _outputs_numpy(self, values):
        outs = [self._host(v) for v in values]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _check(self, value, spec: dict, what: str, leading: bool = False) -> np.ndarray:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise TracecError(f"{what} is not an array of numbers "
                              f"({type(value).__name__})") from e
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
        return np.asarray(arr, order="C")

    # -- checkpoints -----------------------------------------------------------------

    def _identity(self) -> dict:
        return checkpoint_identity(self.manifest)

    def save_checkpoint(self, path: str) -> None:
        """Everything needed to resume exactly, written atomically."""
        arrays = {k: self._exec.to_numpy(v) for k, v in self._values.items()}
        write_checkpoint(path, checkpoint_meta(self.manifest, self.steps_since_reset, arrays),
                         arrays)

    def _carried_specs(self) -> dict[str, dict]:
        """``role:name`` -> spec of every value the learner carries (and checkpoints)."""
        m = self.manifest
        specs = {}
        for key in ("params", "state", "traces", "optimizer_state", "accumulators", "counters"):
            for spec in m.get(key, []):
                specs[_key(spec)] = spec
        return specs

    def load_checkpoint(self, path: str) -> None:
        """Restore what :meth:`save_checkpoint` wrote, or a checkpoint directory (what the
        driver of ``tracec plan`` writes). Everything is read and checked
        against this artifact's manifest (names, shapes, dtypes, finite values) before
        anything is replaced: on an error the learner is unchanged."""
        meta, arrays = _read_checkpoint(path)
        steps = self._checked_checkpoint(path, meta, arrays)
        self._values = {k: self._exec.to_device(v) for k, v in arrays.items()}
        self.steps_since_reset = steps

    def _checked_checkpoint(self, path: str, meta: dict, arrays: dict) -> int:
        """Raise unless ``arrays`` (with ``meta``) is a checkpoint of this artifact;
        returns its step counter."""
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
            raise TracecError(f"{path} is not a tracec checkpoint of version {CHECKPOINT_VERSION}")
        if meta.get("identity") != self._identity() or set(arrays) != set(self._values):
            raise TracecError(f"{path} was saved from a different model or algorithm than {self.path}")
        steps = meta.get("steps_since_reset")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise TracecError(f"{path} is damaged: its step counter is {steps!r}")
        specs = self._carried_specs()
        for key, arr in arrays.items():
            spec = specs.get(key)
            if spec is None:  # a value the manifest does not list (cannot happen for tracec's)
                raise TracecError(f"{path} holds '{key}', which {self.path} does not carry")
            want_shape, want_dtype = tuple(spec["shape"]), np.dtype(spec["dtype"])
            if arr.shape != want_shape or arr.dtype != want_dtype:
                raise TracecError(
                    f"{path}: '{key}' is {arr.dtype}{list(arr.shape)}, but {self.path} needs "
                    f"{want_dtype}{list(want_shape)}",
                    hint="the checkpoint does not belong to this artifact")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise TracecError(f"{path}: '{key}' contains NaN or Inf",
                                  hint="the checkpoint was saved from a diverged run or is damaged")
        return steps

    def __repr__(self) -> str:
        return (f"<tracec Learner {os.path.basename(self.path)}: {self.algorithm}, "
                f"{len(self._param_specs)} params, {len(self._state_specs)} state tensors>")
