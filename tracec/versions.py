"""Versions that go into every artifact and every cache key."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from tracec import __version__

#: Artifact container format and calling convention (docs/abi.md). The runtime
#: accepts artifacts whose versions lie in its supported ranges. Format 2: every
#: artifact ends with its integrity digest (tracec/runtime/artifact.py).
FORMAT_VERSION = 2
ABI_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (2, 2)
SUPPORTED_ABI_VERSIONS = (1, 1)


@lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"tracec": __version__}
    for pkg in ("jax", "jaxlib", "xdsl", "iree-base-compiler"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


@lru_cache(maxsize=1)
def sources_hash() -> str:
    """A hash over tracec's own compiler sources, so a code change invalidates the cache."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for sub in ("tracec", "frontends", "passes"):
        base = os.path.join(root, sub)
        if not os.path.isdir(base):
            # Installed (non-editable) layout: everything sits under the tracec package.
            base = os.path.join(os.path.dirname(os.path.abspath(__file__)), sub)
            if not os.path.isdir(base):
                continue
        for dirpath, dirnames, filenames in sorted(os.walk(base)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(".py"):
                    p = os.path.join(dirpath, f)
                    h.update(os.path.relpath(p, root).encode())
                    h.update(open(p, "rb").read())
    return h.hexdigest()
