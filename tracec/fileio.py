"""Atomic file writes: a failed or interrupted write never replaces a good file."""

from __future__ import annotations

import os
import tempfile

from tracec.diagnostics import TracecError


def atomic_write(path: str, data: bytes | str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over ``path``."""
    mode = "wb" if isinstance(data, bytes) else "w"
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tracec-", dir=directory)
    except OSError as e:
        raise TracecError(f"cannot write {path}: {e.strerror}") from e
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
