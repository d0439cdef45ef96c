"""Writing output files: atomic for regular files, written through for anything else.

``atomic_write(path, data)`` never leaves half a file and never replaces what is not
a regular file:

- a regular file, or a path that does not exist yet: the data goes to a temporary
  file beside it (``.tracec-<pid>-<random>.tmp``), is fsynced, then renamed over it
  (the mode bits of a file it replaces are kept);
- a symbolic link: the same, at the link's final target, so the link stays a link
  (a link into ``/proc`` or ``/dev``, like ``/dev/stdout``, is written through);
- a device (``/dev/null``), a FIFO or a socket: opened and written, never replaced;
- a directory: an error.

A temporary whose writer died (``kill -9``) is removed by the next write into the
same folder: one whose process id is no longer running, or any ``.tracec-*`` older
than an hour.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time

from tracec.diagnostics import TracecError

TEMP_PREFIX = ".tracec-"
#: A temporary older than this is stale whoever wrote it (seconds).
STALE_AFTER_S = 3600.0
_TEMP_NAME = re.compile(r"^\.tracec-(\d+)-.*\.tmp$")


def _error(path: str, e: OSError) -> TracecError:
    return TracecError(f"cannot write {path}: {e.strerror or type(e).__name__}")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we wrote; leave it to the age rule
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # it exists, owned by another user
    except (ProcessLookupError, OverflowError, ValueError):
        return False  # no such process (or a number no process id can be)
    return True


def clean_stale_temporaries(directory: str, now: float | None = None) -> list[str]:
    """Remove the ``.tracec-*`` temporaries in ``directory`` whose writer is gone;
    returns the names removed. Errors are ignored (another process may race us)."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            m = _TEMP_NAME.match(entry.name)
            dead = m is not None and not _pid_alive(int(m.group(1)))
            if dead or now - st.st_mtime > STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _through_special(path: str) -> bool:
    """Whether ``path`` is a symlink chain that passes through /proc or /dev (like
    /dev/stdout -> /proc/self/fd/1): such a name is written through, never replaced."""
    cur = os.path.abspath(path)
    for _ in range(40):
        if not os.path.islink(cur):
            return False
        try:
            cur = os.path.normpath(os.path.join(os.path.dirname(cur), os.readlink(cur)))
        except OSError:
            return True
        if cur.startswith(("/proc/", "/dev/")):
            return True
    return True


def _write_through(path: str, data: bytes | str) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(path, mode) as f:
            f.write(data)
    except OSError as e:
        raise _error(path, e) from e


def atomic_write(path: str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` (see the module docstring for what happens to
    symlinks, devices and FIFOs); errors are :class:`TracecError` naming the file."""
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _error(path, e) from e
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise TracecError(f"cannot write {path}: it is a directory",
                          hint="give a file name, e.g. -o model.vmfb")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(path, data)  # a device, FIFO or socket: never replaced
        return
    if os.path.islink(path):
        if _through_special(path):
            _write_through(path, data)
            return
        path = os.path.realpath(path)  # replace the link's target, keep the link
    _replace(path, data, st)


def _replace(path: str, data: bytes | str, st: os.stat_result | None) -> None:
    """Write to a temporary beside ``path``, fsync, then rename over ``path``."""
    mode = "wb" if isinstance(data, bytes) else "w"
    directory = os.path.dirname(os.path.abspath(path))
    clean_stale_temporaries(directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".tmp",
                                   dir=directory)
    except OSError as e:
        raise _error(path, e) from e
    try:
        if st is not None:
            perms = stat.S_IMODE(st.st_mode)  # keep the replaced file's mode
        else:
            # mkstemp creates 0600; give the file the permissions a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            perms = 0o666 & ~umask
        os.chmod(tmp, perms)
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _error(path, e) from e
        raise


def same_file(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same existing file (through links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(output: str, inputs, flag: str = "-o") -> None:
    """An error if ``output`` is one of the files the compilation read."""
    for path in inputs:
        if path and same_file(output, path):
            raise TracecError(f"{flag} {output} is the input file {path}: writing it would "
                              "destroy the source", hint="choose another output file name")
