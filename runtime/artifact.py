"""Reading artifacts: recognise the container, extract and check the manifest."""

from __future__ import annotations

import json

from tracec.diagnostics import TracecError
from tracec.versions import SUPPORTED_ABI_VERSIONS, SUPPORTED_FORMAT_VERSIONS

XLA_MAGIC = b"TRACEC-XLA\0"


class ArtifactError(TracecError):
    """The file is not a usable tracec artifact (truncated, corrupted, foreign, too new)."""


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
