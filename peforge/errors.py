"""User-facing failures and the exit code of each class: the one table the CLI maps through.

Every command of ``peforge`` ends through :func:`classify`: an exception becomes one line
naming the thing that is wrong and what was expected, and a distinct exit code per class of
failure (:class:`ExitCode`).  The library raises ordinary Python exceptions (``ValueError``
for a bad value, ``OSError`` for a path, ...) or the subclasses below, which add an exit code
and keep the base class, so Python callers can catch ``ValueError`` as before.
"""

from __future__ import annotations

import enum
import errno
import subprocess
import sys
from typing import Any

__all__ = [
    "ExitCode",
    "PeforgeError",
    "PathError",
    "InputFileError",
    "CorruptFileError",
    "ResultsConflictError",
    "LockedError",
    "ToolUnavailableError",
    "DeviceFitError",
    "Interrupted",
    "classify",
]


class ExitCode(enum.IntEnum):
    """Exit status of ``peforge`` per class of outcome (documented in the README)."""

    OK = 0
    CHECK_FAILED = 1  #: ran, but a check failed: verify mismatches, doctor found a problem
    BAD_VALUE = 2  #: bad usage or value: an option, a spec field, a space-file key or value
    IO = 3  #: a file or directory is missing, unreadable or unwritable
    CORRUPT = 4  #: a file exists but its content is damaged (results, space.json, ...)
    CONFLICT = 5  #: a results directory holds other results (no --resume / --overwrite, or
    #: --resume with a different space or settings)
    LOCKED = 6  #: a results directory is in use by another running sweep
    TOOL = 7  #: an external tool or service is missing or failed (Yosys, nextpnr,
    #: Verilator, the C++ compiler, a Dask scheduler)
    INTERNAL = 70  #: a bug in peforge (traceback with --debug)
    INTERRUPTED = 130  #: stopped by Ctrl-C or SIGTERM (finished work is kept)


class PeforgeError(Exception):
    """Base of peforge's own user-facing errors; ``exit_code`` says which class it is."""

    exit_code: ExitCode = ExitCode.BAD_VALUE


class PathError(PeforgeError, OSError):
    """A path cannot be used as asked (a file where a directory is expected, read-only, ...)."""

    exit_code = ExitCode.IO

    def __init__(self, what: str, path: Any, problem: str) -> None:
        super().__init__(f"{what} {str(path)!r}: {problem}")


class InputFileError(PeforgeError, ValueError):
    """An input file (a space TOML, ...) is missing or unreadable (a ValueError for callers)."""

    exit_code = ExitCode.IO


class CorruptFileError(PeforgeError, ValueError):
    """A file peforge wrote (or expects) cannot be parsed; the message names file and line."""

    exit_code = ExitCode.CORRUPT

    def __init__(self, path: Any, what: str, line: int | None = None) -> None:
        self.path, self.line = str(path), line
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {what}")


class ResultsConflictError(PeforgeError, ValueError):
    """A results directory holds results that this run must not mix with or drop silently."""

    exit_code = ExitCode.CONFLICT


class LockedError(PeforgeError, RuntimeError):
    """A results directory is locked by another live process (the message names it)."""

    exit_code = ExitCode.LOCKED


class ToolUnavailableError(PeforgeError, RuntimeError):
    """An external tool or service (a Dask scheduler, a compiler) cannot be used."""

    exit_code = ExitCode.TOOL


class DeviceFitError(PeforgeError, ValueError):
    """A design needs more of a resource (LUTs, DSPs, ...) than the chosen FPGA device has: found
    before place and route; the message names need, capacity and what would fit (a bad value)."""

    exit_code = ExitCode.BAD_VALUE


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped long work cleanly; the message says what was kept and how
    to continue.  A ``KeyboardInterrupt``, so Python callers see the usual type."""

    exit_code = ExitCode.INTERRUPTED


# Exception classes of optional parts, by module and name: looked up only when that module is
# already imported (an exception of an unimported module cannot have been raised).
_TOOL_ERRORS = (
    ("peforge.fpga.tools", "ToolError"),
    ("peforge.sim.runner", "SimBuildError"),
    ("peforge.sim.runner", "SimRunError"),
    ("peforge.rtl.lint", "LintError"),
)


def _is_tool_error(exc: BaseException) -> bool:
    for module, name in _TOOL_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if exc.filename is None:
        return what
    names = f"{str(exc.filename)!r}" + (f" -> {str(exc.filename2)!r}" if exc.filename2 else "")
    hint = {
        errno.EROFS: "expected a writable location",
        errno.EACCES: "check its permissions",
        errno.ENOTDIR: "a part of the path is a file, expected a directory",
        errno.EISDIR: "expected a file",
        errno.ENOSPC: "free some space",
    }.get(exc.errno or -1)
    return f"{names}: {what}" + (f" ({hint})" if hint else "")


def classify(exc: BaseException) -> tuple[str, ExitCode]:
    """The one-line message and exit code of ``exc`` (the CLI's single error path)."""
    if isinstance(exc, KeyboardInterrupt):
        return (str(exc) or "interrupted"), ExitCode.INTERRUPTED
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int) and isinstance(exc, PeforgeError):
        return str(exc), ExitCode(code)
    if _is_tool_error(exc) or isinstance(exc, subprocess.SubprocessError):
        return str(exc), ExitCode.TOOL
    if isinstance(exc, ImportError):
        return (
            f"a required Python package is missing or broken: {exc.name or exc} ({exc}); reinstall peforge "
            f"(make test, or pip install -e .)"
        ), ExitCode.TOOL
    if isinstance(exc, OSError):
        return _os_message(exc), ExitCode.IO
    if isinstance(exc, UnicodeDecodeError):  # a ValueError, but about a file's bytes
        return f"a file is not UTF-8 text: {exc}", ExitCode.CORRUPT
    if isinstance(exc, ValueError):
        return str(exc), ExitCode.BAD_VALUE
    if isinstance(exc, MemoryError):
        return (
            "out of memory (a bug: peforge should have refused this size; rerun with --debug and report it)",
            ExitCode.INTERNAL,
        )
    return (
        f"internal error: {type(exc).__name__}: {exc} (a bug in peforge: rerun with --debug for the "
        f"traceback and report it)"
    ), ExitCode.INTERNAL
