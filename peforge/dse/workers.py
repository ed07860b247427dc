"""Worker processes that stop when asked and die with their parent.

* Pool workers ignore SIGINT: Ctrl-C reaches the whole foreground process group, and only the
  parent decides what to do (stop the pool, keep finished rows).  The parent turns SIGTERM
  into the same ``KeyboardInterrupt`` (:func:`interrupts`).
* A worker asks the kernel to SIGKILL it when its parent dies (``PR_SET_PDEATHSIG`` on
  Linux, through ctypes); elsewhere a watchdog thread polls the parent pid.  So a sweep
  killed with SIGKILL leaves no orphans computing for nobody.
* :func:`stop_pool` cancels what has not started and terminates the running workers at once
  (a plain ``shutdown`` would wait for every running task).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterator, Optional, Sequence

__all__ = ["pool", "stop_pool", "worker_init", "interrupts", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (its parent) dies."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="peforge-parent-watchdog", daemon=True).start()


def worker_init(parent_pid: int, close_fds: Sequence[int] = ()) -> None:
    """Process-pool initializer: ignore SIGINT, default SIGTERM, die with the parent, close the
    parent's lock file (a forked worker must not keep the results directory locked)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    die_with_parent(parent_pid)


def pool(jobs: int, close_fds: Sequence[int] = ()) -> Optional[ProcessPoolExecutor]:
    """A fork-based pool of ``jobs`` workers (None for ``jobs <= 1``): workers inherit the loaded
    modules and networks, and user scripts need no ``if __name__ == "__main__"`` guard.
    Create it before any thread starts (a progress bar's)."""
    if jobs <= 1:
        return None
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=worker_init, initargs=(os.getpid(), tuple(close_fds))
    )


def stop_pool(executor: ProcessPoolExecutor, timeout: float = 3.0) -> None:
    """Cancel pending tasks and end the workers now (SIGTERM, then SIGKILL after ``timeout``)."""
    procs = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
