"""Reading artifacts: check the integrity digest, recognise the container, extract and
check the manifest.

Every artifact tracec writes ends with ``DIGEST_TAG`` and the 64 hex digits of the
SHA-256 of the artifact as its backend wrote it (78 bytes in all), so any damaged or
cut-short file is refused before IREE or jax parses a byte of it:

- ``.vmfb``: iree-compile writes a zip archive whose end-of-central-directory
  record ends with a comment length of 0; the 78 bytes become the archive's comment
  (comment length 78). IREE's tools and zip tools read the file as before. The
  digest covers the module with comment length 0, i.e. exactly iree-compile's bytes.
- anything else (the XLA container, a bare IREE flatbuffer): the 78 bytes follow
  the backend's bytes; the digest covers everything before them.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct

from tracec.diagnostics import TracecError
from tracec.versions import SUPPORTED_ABI_VERSIONS, SUPPORTED_FORMAT_VERSIONS

XLA_MAGIC = b"TRACEC-XLA\0"
DIGEST_TAG = b"tracec-sha256:"
DIGEST_LEN = len(DIGEST_TAG) + 64  # 78 bytes
_DIGEST = re.compile(rb"tracec-sha256:([0-9a-f]{64})\Z")
_EOCD = b"PK\x05\x06"  # zip end-of-central-directory record (22 bytes + comment)
_EOCD_LEN = 22


class ArtifactError(TracecError):
    """The file is not a usable tracec artifact (truncated, corrupted, foreign, too new)."""


def seal(body: bytes) -> bytes:
    """``body`` (a backend's output) with its integrity digest (module docstring)."""
    tag = DIGEST_TAG + hashlib.sha256(body).hexdigest().encode()
    if len(body) >= _EOCD_LEN and body[-_EOCD_LEN:-_EOCD_LEN + 4] == _EOCD \
            and body[-2:] == b"\0\0":
        return body[:-2] + struct.pack("<H", DIGEST_LEN) + tag  # the zip archive's comment
    return body + tag


def unseal(path: str, data: bytes) -> bytes:
    """The backend's bytes of a sealed artifact, or an :class:`ArtifactError` if the
    digest is missing or does not match (a truncated, damaged or pre-digest file)."""
    if not data:
        raise ArtifactError(f"{path} is empty", hint="recompile it with tracec")
    m = _DIGEST.search(data[-DIGEST_LEN:]) if len(data) >= DIGEST_LEN else None
    if m is None:
        raise ArtifactError(
            f"{path} has no tracec integrity digest at its end: it is truncated or damaged, "
            "or was written by a tracec older than format version 2",
            hint="recompile the model with this tracec")
    want = m.group(1).decode()
    bodies = [data[:-DIGEST_LEN]]
    start = len(data) - DIGEST_LEN - _EOCD_LEN
    if start >= 0 and data[start:start + 4] == _EOCD \
            and data[start + _EOCD_LEN - 2:start + _EOCD_LEN] == struct.pack("<H", DIGEST_LEN):
        bodies.insert(0, data[:-DIGEST_LEN - 2] + b"\0\0")  # the digest is the zip comment
    for body in bodies:
        if hashlib.sha256(body).hexdigest() == want:
            return body
    raise ArtifactError(f"{path} is damaged: its contents do not match its integrity digest",
                        hint="recompile the model, or copy the file again")


def sniff(path: str, data: bytes) -> str:
    """``"iree"`` or ``"xla"``, or an :class:`ArtifactError` saying what the file is not."""
    if data.startswith(XLA_MAGIC):
        return "xla"
    # A .vmfb is a flatbuffer with file identifier "IREE" at bytes 4..8, either bare or
    # wrapped in IREE's zip container (for alignment) as its first member, module.fb.
    if len(data) >= 8 and data[4:8] == b"IREE":
        return "iree"
    if data.startswith(b"PK\x03\x04") and b"module.fb" in data[:64] and b"IREE" in data[:256]:
        return "iree"
    if not data:
        raise ArtifactError(f"{path} is empty", hint="recompile it with tracec")
    raise ArtifactError(f"{path} is not a tracec artifact (no IREE or tracec-XLA header)",
                        hint="compile the model with `tracec model.py -o model.vmfb`")


def check_manifest(path: str, manifest: dict) -> dict:
    if manifest.get("format") != "tracec-artifact":
        raise ArtifactError(f"{path} was not built by tracec (no tracec manifest)")
    for key, (lo, hi) in (("format_version", SUPPORTED_FORMAT_VERSIONS),
                          ("abi_version", SUPPORTED_ABI_VERSIONS)):
        v = manifest.get(key)
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ArtifactError(
                f"{path} has {key.replace('_', ' ')} {v}; this runtime supports {lo} to {hi}",
                hint="recompile the model with a matching tracec, or upgrade the runtime")
    return manifest


def parse_manifest(path: str, text: str | None) -> dict:
    if text is None:
        raise ArtifactError(f"{path} was not built by tracec (no tracec manifest)")
    try:
        return check_manifest(path, json.loads(text))
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} has a damaged manifest: {e.msg}") from e
