"""numba set-up shared by the kernels: cached compilation, bit casts, row-parallel calls.

* :func:`jit` compiles with ``cache=True`` (so a fresh process loads machine code instead of
  compiling again) and ``nogil=True`` (so :func:`run_rows` can run row blocks on threads).
  When numba finds no writable cache directory it raises at decoration; we then compile
  without a cache (slower first call, same results).
* :func:`f64_bits` / :func:`bits_f64` reinterpret a float64 as int64 and back (an LLVM
  bitcast: free, and it keeps loops vectorisable).
* :func:`run_rows` splits output rows over a small thread pool.  Threads, not numba's
  ``parallel=True``: its default workqueue layer aborts when two Python threads launch kernels
  at once, and a pool created before ``fork`` (the sweep's process pool) would hang the child.
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, cast

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

__all__ = ["jit", "f64_bits", "bits_f64", "threads", "run_rows"]


def jit(fn: Callable[..., Any] | None = None, *, inline: bool = False) -> Any:
    """``numba.njit(cache=True, nogil=True)``, without the cache where none can be written.

    ``inline=True`` inlines a helper into its callers at numba's IR level: a helper called in
    a hot loop otherwise stays a call that blocks LLVM's vectoriser (measured: 6x slower)."""
    opts: dict[str, Any] = {"nogil": True}
    if inline:
        opts["inline"] = "always"

    def wrap(f: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **opts)(f)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**opts)(f)

    return wrap if fn is None else wrap(fn)


@intrinsic
def _f64_bits(typingctx: Any, x: Any) -> Any:
    """Typing and codegen of :func:`f64_bits`."""
    if x != types.float64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx: Any, x: Any) -> Any:
    """Typing and codegen of :func:`bits_f64`."""
    if x != types.int64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


# The intrinsics are called from compiled code only, as ``f64_bits(x)``: numba's stubs type the
# Python object by its typing function ``(typingctx, x)``, so give them the signature the
# compiled callers see.
#: The IEEE bits of a float64 as an int64.
f64_bits = cast("Callable[[float], np.int64]", _f64_bits)
#: The float64 whose IEEE bits are the int64 ``x``.
bits_f64 = cast("Callable[[np.int64], np.float64]", _bits_f64)


def threads() -> int:
    """Worker threads for :func:`run_rows`: ``PEFORGE_THREADS`` or the CPUs this process may use."""
    env = os.environ.get("PEFORGE_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"PEFORGE_THREADS={env!r} must be a positive integer") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_POOL: dict[str, Any] = {"pid": None, "pool": None, "size": 0}
_POOL_LOCK = threading.Lock()
_MIN_WORK = 1 << 20  # multiply-accumulates below which threads cost more than they save


def _pool(size: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if _POOL["pid"] != os.getpid() or _POOL["size"] != size:  # new process (fork) or size
            _POOL.update(
                pid=os.getpid(),
                size=size,
                pool=ThreadPoolExecutor(max_workers=size, thread_name_prefix="peforge-kernel"),
            )
        return _POOL["pool"]


def run_rows(kernel: Callable[..., Any], rows: int, work: int, *args: Any) -> None:
    """Call ``kernel(r0, r1, *args)`` on disjoint row ranges covering ``0..rows``; the kernel
    writes its rows in place.  With ``work`` (multiply-accumulates) large enough, the ranges
    are a few per thread and the calling thread and ``threads() - 1`` pool threads take them
    one at a time, so a thread the OS preempts on a busy machine does not hold up the rest."""
    size = threads()
    if size <= 1 or rows < 2 or work < _MIN_WORK or threading.current_thread().name.startswith("peforge-kernel"):
        kernel(0, rows, *args)
        return
    n_tasks = min(rows, 4 * size)
    cuts = [rows * t // n_tasks for t in range(n_tasks + 1)]
    counter = itertools.count()  # next() is atomic under the GIL

    def drain() -> None:
        while (t := next(counter)) < n_tasks:
            kernel(cuts[t], cuts[t + 1], *args)

    helpers = [_pool(size - 1).submit(drain) for _ in range(size - 1)]
    drain()
    for f in helpers:
        f.result()
