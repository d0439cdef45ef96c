"""The data-parallel learner: one artifact compiled with ``--batch-shards N``, run as N
learners over equal parts of the batch, side by side in threads (iree.runtime lets go of
the GIL while a call runs): by default one thread per part up to the cores the process
may use, each thread running its share of the parts one after the other.

Each part runs the training entries on its rows; they accumulate the gradient and never
apply the optimizer themselves. At the end of every update window (``update_every``
steps since the last one, counted by the parts' ``k``) the learner sums the parts'
accumulators (their mean where the loss is a mean over the batch), hands the result to
every part and runs ``apply_update`` on each: every part computes the same update from
the same values, so the parameters and optimizer state stay identical in every part,
and equal to the whole batch's to float32 rounding (the batch's sum is taken in another
order). A window is never cut by a call: ``train_sequence`` runs each window's steps as
one call per part, and the update between them.

What the learner returns speaks for the whole batch: outputs, state and losses put
together from the parts (the loss as the artifact's loss reduces over the batch);
``traces`` stacks each part's traces on a new leading axis of length N.
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

from tracec.diagnostics import TracecError
from tracec.runtime.learner import (Learner, _key, _read_checkpoint, checkpoint_meta,
                                    write_checkpoint)


def _split(value, parts: int, axis: int, batch: int, what: str) -> list:
    """``value`` (an array, or a dict / tuple / list of them: several streams) cut into
    ``parts`` equal pieces along ``axis``, which must hold the batch's ``batch`` rows."""
    if isinstance(value, dict):
        cut = {k: _split(v, parts, axis, batch, f"{what} '{k}'") for k, v in value.items()}
        return [{k: cut[k][i] for k in value} for i in range(parts)]
    if isinstance(value, (list, tuple)):
        cut = [_split(v, parts, axis, batch, what) for v in value]
        return [type(value)(c[i] for c in cut) for i in range(parts)]
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TracecError(f"{what} is not an array of numbers ({type(value).__name__})") from e
    if arr.ndim <= axis or arr.shape[axis] != batch:
        where = "[T, B, ...]" if axis else "[B, ...]"
        raise TracecError(f"{what} has shape {list(arr.shape)}, expected {where} with the "
                          f"batch B = {batch}; nothing was updated")
    return np.split(arr, parts, axis=axis)


class ShardedLearner:
    """N :class:`Learner` over equal parts of the batch, trained as one (module doc)."""

    def __init__(self, path: str, driver: str | None = None, allocator: str | None = "caching",
                 first: Learner | None = None, threads: int | None = None):
        first = first or Learner(path, driver=driver, allocator=allocator)
        record = first.manifest["batch_shards"]
        self.path = path
        self.manifest = first.manifest
        self.batch = int(record["batch"])
        self.loss_reduction = record.get("loss", "mean")
        self._state_axes = record["state_axes"]
        self.parts = [first] + [Learner(path, driver=driver, allocator=allocator)
                                for _ in range(int(record["parts"]) - 1)]
        n = len(self.parts)
        if threads is None:
            cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count() or 1)
            threads = min(n, cores)
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= n:
            raise TracecError(f"threads={threads!r} for {path}: give a whole number from 1 to "
                              f"the artifact's {n} parts of the batch")
        self.threads = threads
        self._pool = (concurrent.futures.ThreadPoolExecutor(max_workers=threads - 1)
                      if threads > 1 else None)
        self._window = int(self.manifest.get("options", {}).get("update_every", 1))

    # -- running the parts -----------------------------------------------------------

    def _each(self, fn, args: list | None = None) -> list:
        """``fn(part, *args[i])`` for every part; the results in order. Thread ``j`` of
        ``threads`` runs parts ``j, j + threads, ...`` one after the other, thread 0 being
        the calling one (3-4 % faster per step at 2×64 LIF than handing its parts to the
        pool as well, ES-D-RTRL and D-RTRL)."""
        n, t = len(self.parts), self.threads
        args = args if args is not None else [()] * n

        def group(j):
            return [fn(self.parts[i], *args[i]) for i in range(j, n, t)]

        jobs = [self._pool.submit(group, j) for j in range(1, t)]
        try:
            done = [group(0)]
        except BaseException:
            concurrent.futures.wait(jobs)  # no part left running behind an error
            raise
        done += [j.result() for j in jobs]
        return [done[i % t][i // t] for i in range(n)]

    def _cut(self, value, axis: int, what: str) -> list:
        return _split(value, len(self.parts), axis, self.batch, what)

    def _join_loss(self, losses: list):
        total = sum(losses)
        return total / len(losses) if self.loss_reduction == "mean" else total

    @staticmethod
    def _join(outs: list, axis: int):
        """The parts' outputs (an array or a tuple of them) put back together."""
        if isinstance(outs[0], tuple):
            return tuple(np.concatenate(o, axis=axis) for o in zip(*outs))
        return np.concatenate(outs, axis=axis)

    def _k(self) -> int:
        """Steps into the current update window (the same in every part)."""
        p = self.parts[0]
        return int(p._host(p._values["counter:k"]))

    def _apply_update(self) -> None:
        """The window's end: the parts' accumulated gradients reduced, the optimizer run on
        the result in every part."""
        keys = [_key(s) for s in self.manifest["accumulators"]]
        accs = [{k: p._host(p._values[k]) for k in keys} for p in self.parts]
        total = {k: sum(a[k] for a in accs) for k in keys}
        if self.loss_reduction == "mean":
            total = {k: v / np.float32(len(self.parts)) for k, v in total.items()}

        def update(part):
            for k, v in total.items():
                part._values[k] = part._exec.to_device(v)
            part._call("apply_update", {})

        self._each(update)

    # -- the Learner's interface ---------------------------------------------------------

    @property
    def algorithm(self) -> str:
        return self.parts[0].algorithm

    @property
    def steps_since_reset(self) -> int:
        return self.parts[0].steps_since_reset

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.parts[0].params

    @property
    def state(self) -> dict[str, np.ndarray]:
        each = [p.state for p in self.parts]
        return {name: each[0][name] if axis is None else
                np.concatenate([s[name] for s in each], axis=axis)
                for name, axis in zip(each[0], self._state_axes)}

    @property
    def traces(self) -> dict[str, np.ndarray]:
        each = [p.traces for p in self.parts]
        return {name: np.stack([t[name] for t in each]) for name in each[0]}

    def set_params(self, mapping: dict) -> None:
        """Replace parameters by name in every part (checked before any is replaced)."""
        self.parts[0].set_params(mapping)
        for p in self.parts[1:]:
            p.set_params(mapping)

    def reset(self) -> None:
        for p in self.parts:
            p.reset()

    def forward(self, x):
        xs = [p._prepare_forward(v) for p, v in zip(self.parts, self._cut(x, 0, "input x"))]
        return self._join(self._each(Learner._run_forward, [(v,) for v in xs]), 0)

    def forward_sequence(self, xs):
        cut = self._cut(xs, 1, "inputs xs")
        args = [(p._prepare_forward_sequence(v),) for p, v in zip(self.parts, cut)]
        return self._join(self._each(Learner._run_forward_sequence, args), 1)

    def train_step(self, x, target, mask=1.0):
        """One online step of every part; the update when the window ends with it.
        Returns ``(loss, output)`` for the whole batch."""
        args = [p._prepare_train_step(v, t, mask) for p, v, t in
                zip(self.parts, self._cut(x, 0, "input x"), self._cut(target, 0, "target"))]
        due = self._k() + 1 >= self._window
        done = self._each(Learner._run_train_step, args)
        if due:
            self._apply_update()
        return self._join_loss([d[0] for d in done]), self._join([d[1] for d in done], 0)

    def train_sequence(self, xs, targets, mask=None):
        """T online steps of every part, one call per update window and part; returns
        the whole batch's per-step losses ``[T]``."""
        args = [p._prepare_train_sequence(v, t, mask) for p, v, t in
                zip(self.parts, self._cut(xs, 1, "inputs xs"), self._cut(targets, 1, "targets"))]
        T = args[0][0].shape[0]
        losses, lo, k = [], 0, self._k()
        while lo < T:
            hi = min(T, lo + self._window - k)
            done = self._each(Learner._run_train_sequence,
                              [(x[lo:hi], t[lo:hi], m[lo:hi]) for x, t, m in args])
            losses.append(self._join_loss(done))
            if k + hi - lo >= self._window:
                self._apply_update()
            lo, k = hi, 0
        return np.concatenate(losses) if losses else np.zeros(0, np.float32)

    # -- checkpoints -----------------------------------------------------------------

    def save_checkpoint(self, path: str) -> None:
        """Every part's values (``{i}/role:name``), written atomically."""
        arrays = {f"{i}/{k}": p._exec.to_numpy(v)
                  for i, p in enumerate(self.parts) for k, v in p._values.items()}
        meta = checkpoint_meta(self.manifest, self.steps_since_reset, arrays)
        meta["parts"] = len(self.parts)
        write_checkpoint(path, meta, arrays)

    def load_checkpoint(self, path: str) -> None:
        """Restore what :meth:`save_checkpoint` wrote; every part's values are checked
        before any is replaced."""
        meta, arrays = _read_checkpoint(path)
        n = len(self.parts)
        if meta.get("parts") != n:
            raise TracecError(f"{path} was not saved by a learner over {n} parts of the batch",
                              hint="load it with the artifact (and --batch-shards) that saved it")
        per = [{} for _ in range(n)]
        for key, arr in arrays.items():
            i, _, rest = key.partition("/")
            if not i.isdigit() or int(i) >= n:
                raise TracecError(f"{path} holds '{key}', which no part of {self.path} carries")
            per[int(i)][rest] = arr
        steps = [p._checked_checkpoint(path, meta, a) for p, a in zip(self.parts, per)]
        for p, a, s in zip(self.parts, per, steps):
            p._values = {k: p._exec.to_device(v) for k, v in a.items()}
            p.steps_since_reset = s

    def __repr__(self) -> str:
        return (f"<tracec data-parallel Learner: {len(self.parts)} parts of a batch of "
                f"{self.batch}, {self.parts[0]!r}>")
