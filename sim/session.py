"""One simulator process that runs chunk after chunk of a regression (see :mod:`peforge.sim.tb`).

Starting Verilator + cocotb costs about 0.2 CPU seconds, so a regression keeps one simulator
process for all its chunks, and the host prepares the next chunk (golden model, encoding) and
checks the previous one while the simulator runs: the two cores work at the same time.

:class:`Session` starts the cocotb test ``batch`` in a thread (the thread only waits for the
simulator process), and talks to it through two named pipes in the run directory: ``submit``
writes a chunk's ``din`` words to a file and queues ``run K IN OUT N``; ``result`` waits for
``done K`` and returns the ``dout`` words.  The host holds both pipes open read-write, so no
open ever blocks, a message never fills a pipe, and an exited simulator is noticed (the
thread ends) instead of waited for: :class:`~peforge.sim.runner.SimRunError` with the log.
Closing a session writes ``end`` and keeps the pipe open until the simulator has ended, so a
session that was sent no chunk ends too.
"""

from __future__ import annotations

import os
import select
import shutil
import threading
from pathlib import Path
from typing import Any

from . import runner

__all__ = ["Session"]

_POLL_S = 0.5


class Session:
    """A running simulation of ``bld`` (a batch-wrapper build) in ``run_dir`` (context manager).

    Parameters
    ----------
    bld : runner.Build
        The wrapper build.
    run_dir : Path
        Fresh directory for the pipes, chunk files and the cocotb log.
    test_module : str
        The cocotb module holding the ``batch`` test.
    keep : bool
        Keep ``run_dir`` (and the chunk files) afterwards, e.g. for a waveform.
    """

    def __init__(self, bld: runner.Build, run_dir: Path, test_module: str, keep: bool = False) -> None:
        self._bld, self._dir, self._module, self._keep = bld, Path(run_dir), test_module, keep
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._ack = b""
        self._done: set[int] = set()
        self._next = 0

    def __enter__(self) -> "Session":
        self._dir.mkdir(parents=True, exist_ok=True)
        ctl, ack = self._dir / "ctl.fifo", self._dir / "ack.fifo"
        for path in (ctl, ack):
            if path.exists():
                path.unlink()
            os.mkfifo(path)
        self._ctl_fd = os.open(ctl, os.O_RDWR)
        self._ack_fd = os.open(ack, os.O_RDWR | os.O_NONBLOCK)
        # no pytest assertion rewriting in the simulator: the test asserts nothing, and setting it
        # up imports pytest's plugins (a large part of the simulator's start-up time)
        env = {"PEFORGE_SIM_CTL": str(ctl), "PEFORGE_SIM_ACK": str(ack), "COCOTB_REWRITE_ASSERTION_FILES": ""}
        self._thread = threading.Thread(
            target=self._run, args=(env,), daemon=True, name=f"peforge-sim-{self._bld.name}"
        )
        self._thread.start()
        return self

    def _run(self, env: dict[str, str]) -> None:
        try:
            runner.run_test(self._bld, self._module, self._dir, testcase="batch", env=env)
        except BaseException as err:  # reported by the host thread (result / close)
            self._error = err

    def submit(self, words: bytes, count: int) -> int:
        """Queue one chunk of ``count`` ``din`` words; returns its key for :meth:`result`."""
        key = self._next
        self._next += 1
        src, dst = self._dir / f"in{key}.bin", self._dir / f"out{key}.bin"
        src.write_bytes(words)
        os.write(self._ctl_fd, f"run {key} {src} {dst} {count}\n".encode())
        return key

    def result(self, key: int) -> bytes:
        """The ``dout`` words of chunk ``key`` (waits for the simulator)."""
        while key not in self._done:
            ready, _, _ = select.select([self._ack_fd], [], [], _POLL_S)
            if ready:
                self._ack += os.read(self._ack_fd, 1 << 16)
                *lines, self._ack = self._ack.split(b"\n")
                self._done.update(int(line.split()[1]) for line in lines if line.startswith(b"done "))
            elif self._thread is not None and not self._thread.is_alive():
                self._raise(f"the simulator stopped before chunk {key}")
        dst = self._dir / f"out{key}.bin"
        data = dst.read_bytes()
        if not self._keep:
            dst.unlink()
            (self._dir / f"in{key}.bin").unlink(missing_ok=True)
        return data

    def _raise(self, what: str) -> None:
        if self._error is not None:
            raise self._error
        raise runner.SimRunError(f"simulation of {self._bld.name!r}: {what}; see {self._dir / 'sim.log'}")

    def __exit__(self, *exc: Any) -> None:
        # "end" stays in the pipe only while a descriptor is open on it: closing ours before the
        # simulator has opened the pipe (a session that was sent no chunk) would drop it and
        # leave the simulator waiting for a writer, so ours stays open until the simulator ends
        try:
            os.write(self._ctl_fd, b"end\n")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join()
        os.close(self._ctl_fd)
        os.close(self._ack_fd)
        if exc[0] is None and self._error is not None:
            raise self._error
        if not self._keep:
            shutil.rmtree(self._dir, ignore_errors=True)
