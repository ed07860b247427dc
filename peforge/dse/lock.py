"""An exclusive lock on a results directory, naming its holder, that dies with its holder.

``DIR/.peforge.lock`` holds one JSON line (pid, host, start time, command) and is held with
``flock``: the kernel releases it when the holding process exits, however it exits (SIGKILL
included), so a lock left behind by a dead sweep is recognised as stale and taken over.  A
second sweep into a locked directory fails at once with :class:`~peforge.errors.LockedError`
naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import LockedError

__all__ = ["DirectoryLock", "LOCK_NAME"]

LOCK_NAME = ".peforge.lock"


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "an unknown process"
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}" + (
        f" ({holder['command']})" if holder.get("command") else ""
    )


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        data = json.loads(os.read(fd, 1 << 16).decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class DirectoryLock:
    """Context manager: hold ``directory``'s lock for the duration of a sweep.

    Members
    -------
    path : Path
        The lock file.
    stale : dict or None
        After :meth:`acquire`: the record of a previous holder that died without releasing
        it (its process is gone), else None.
    fd : int
        The open lock file (a forked worker closes its inherited copy).
    """

    def __init__(self, directory: Path | str, purpose: str = "sweep") -> None:
        self.path = Path(directory) / LOCK_NAME
        self.purpose = purpose
        self.stale: Optional[dict[str, Any]] = None
        self.fd = -1

    def acquire(self) -> "DirectoryLock":
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise LockedError(
                    f"results directory {str(self.path.parent)!r} is in use by another "
                    f"{holder.get('purpose', 'sweep')}: {_describe(holder)}; wait for it to "
                    f"finish or stop it, or use another -o directory"
                ) from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and flock
                os.close(fd)
                continue
            previous = _read(fd)
            self.stale = previous or None
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "purpose": self.purpose,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(sys.argv),
            }
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record) + "\n").encode())
            self.fd = fd
            return self
        raise LockedError(
            f"results directory {str(self.path.parent)!r}: its lock file keeps changing; "
            f"is another sweep starting in it?"
        )

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                self.path.unlink()
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)  # releases the flock
            self.fd = -1

    def stale_note(self) -> Optional[str]:
        """One line about a stale lock that was taken over, or None."""
        if not self.stale:
            return None
        return f"took over the stale lock of {_describe(self.stale)}, which is no longer running"

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
