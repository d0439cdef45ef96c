"""Run an XLA artifact (``--target xla``) through ``jax.export``.

The container (``XLA_MAGIC``, a u64 little-endian header length, a JSON header with
the manifest and each entry's ``[offset, length]`` and sha256, then the serialized
``jax.export.Exported`` blobs) is described in ``tracec/xla_backend.py``. jax is
imported only here, when such an artifact is loaded; values stay on jax's default
device between calls. Each entry is ``jax.jit``-compiled on first use (and
``forward_sequence`` once per distinct sequence length T).
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from tracec.diagnostics import TracecError
from tracec.runtime.artifact import XLA_MAGIC, ArtifactError, check_manifest

_HEADER_LEN = struct.Struct("<Q")


def read_container(path: str, data: bytes) -> tuple[dict, dict[str, bytes]]:
    """(header, {entry: blob}) of an XLA artifact, or an :class:`ArtifactError`."""
    damaged = f"{path} is truncated or corrupted"
    hint = "recompile the model with `tracec model.py --target xla`"
    start = len(XLA_MAGIC) + _HEADER_LEN.size
    if not data.startswith(XLA_MAGIC) or len(data) < start:
        raise ArtifactError(f"{damaged}: the XLA artifact header is cut short", hint=hint)
    (n,) = _HEADER_LEN.unpack_from(data, len(XLA_MAGIC))
    if start + n > len(data):
        raise ArtifactError(f"{damaged}: the XLA artifact header is cut short", hint=hint)
    try:
        header = json.loads(data[start:start + n].decode("utf-8"))
        entries = header["entries"]
        sums = header["sha256"]
        if not isinstance(header["manifest"], dict) or not isinstance(entries, dict):
            raise TypeError
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"{damaged}: its XLA header is damaged ({type(e).__name__})",
                            hint=hint) from e
    payload = memoryview(data)[start + n:]
    blobs = {}
    end = 0
    for name, pos in entries.items():
        try:
            off, length = (int(v) for v in pos)
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"{damaged}: its XLA header is damaged", hint=hint) from e
        if off < 0 or length < 0 or off + length > len(payload):
            raise ArtifactError(f"{damaged}: entry '{name}' runs past the end of the file",
                                hint=hint)
        blob = bytes(payload[off:off + length])
        if hashlib.sha256(blob).hexdigest() != sums.get(name):
            raise ArtifactError(f"{damaged}: entry '{name}' fails its checksum", hint=hint)
        blobs[name] = blob
        end = max(end, off + length)
    if end != len(payload):
        raise ArtifactError(f"{damaged}: {len(payload) - end} stray bytes after the last entry",
                            hint=hint)
    return header, blobs


class XlaExecutor:
    def __init__(self, path: str, data: bytes):
        header, blobs = read_container(path, data)
        self.manifest = check_manifest(path, header["manifest"])
        missing = [e for e in ("forward", "forward_sequence", "init_params", "init_state")
                   if e not in blobs]
        if missing:
            raise ArtifactError(f"{path} is incomplete: no entry {', '.join(missing)}",
                                hint="recompile the model")
        try:
            import jax
            from jax import export
        except ImportError as e:
            raise ArtifactError(f"{path} is an XLA artifact; running it needs jax "
                                f"(and flatbuffers): {e}",
                                hint="pip install jax flatbuffers, or compile for an IREE target")
        self._jax = jax
        self._exported = {}
        for name, blob in blobs.items():
            try:
                self._exported[name] = export.deserialize(bytearray(blob))
            except ImportError as e:
                raise ArtifactError(f"{path}: jax cannot deserialize it: {e}",
                                    hint="pip install flatbuffers") from e
            except Exception as e:
                msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                raise ArtifactError(f"{path} is truncated or corrupted: jax cannot read entry "
                                    f"'{name}' ({msg})", hint="recompile the model") from e
        self._fns = {}
        self._seq_args: dict[str, list[int]] = {}

    def call(self, entry: str, args: list) -> list:
        fn = self._fns.get(entry)
        if fn is None:
            exp = self._exported.get(entry)
            if exp is None:
                raise ArtifactError(f"this artifact has no entry '{entry}'")
            fn = self._fns[entry] = self._jax.jit(exp.call)
            self._seq_args[entry] = [i for i, a in enumerate(exp.in_avals)
                                     if any(not isinstance(d, int) for d in a.shape)]
        for i in self._seq_args[entry]:
            if 0 in np.shape(args[i]):
                raise TracecError(f"{entry}: a sequence of length 0 cannot run on the XLA "
                                  "target (jax.export needs T >= 1)",
                                  hint="skip the call, or compile for an IREE target")
        res = fn(*args)
        return list(res) if isinstance(res, (tuple, list)) else [res]

    def to_numpy(self, value) -> np.ndarray:
        return np.asarray(value)

    def to_device(self, array: np.ndarray):
        return self._jax.device_put(np.asarray(array, order="C"))
