"""Checks of the paths a command writes to, so a bad one fails before any work is done."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import PathError

__all__ = ["output_dir", "output_file"]

_WHY = {
    errno.EROFS: "on a read-only file system",
    errno.EACCES: "permission denied",
    errno.ENOTDIR: "a part of the path is a file",
    errno.ENOENT: "a part of the path does not exist",
    errno.ENOSPC: "no space left on the device",
}


def output_dir(path: str | Path, what: str = "output directory") -> Path:
    """``path`` as a writable directory, created if missing; :class:`PathError` naming ``what``
    (the option, e.g. ``--out``) and the path otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PathError(what, p, "is a file, expected a directory (created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PathError(what, p, "a part of the path is a file, expected directories") from None
    except OSError as err:
        raise PathError(what, p, f"cannot create the directory: {_WHY.get(err.errno or -1, err.strerror)}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        ro = os.statvfs(p).f_flag & os.ST_RDONLY
        raise PathError(what, p, "is on a read-only file system" if ro else "is not writable (permission denied)")
    return p


def output_file(path: str | Path, what: str = "output file") -> Path:
    """``path`` as a file that can be (re)written: its directory is checked with
    :func:`output_dir`, and the path itself must not be a directory."""
    p = Path(path)
    if p.is_dir():
        raise PathError(what, p, "is a directory, expected a file name")
    output_dir(p.parent if str(p.parent) else Path("."), f"directory of {what}")
    return p
