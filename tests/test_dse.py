"""peforge.dse: space expansion, Pareto fronts, result store, sweeps (local, pool, Dask), resume, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from peforge import dse
from peforge.cli import app
from peforge.dse import evaluation as dse_eval
from peforge.dse.evaluation import PROVENANCE
from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec
from peforge.workloads import digits, tensors

ROOT = Path(__file__).resolve().parent.parent

TINY = """
name = "tiny"
targets = ["ice40"]
workloads = ["gaussian", "student_t", "mlp"]
[tensor]
shape = [8, 48, 6]
seed = 3
[[pe]]
family = "intmac"
a = ["int8", "int4", "int3"]
b = ["int8", "int4", "int3"]
zip = [["a", "b"]]
[[pe]]
family = "mac"
a = ["e4m3fn", "e2m1fn"]
b = "e4m3fn"
acc = ["fp32", "exact", "nope"]
"""


def _fake_cost(spec, target):
    """Deterministic stand-in for the analytic cost model (in-process tests only)."""
    bits = spec.a.bits + spec.b.bits
    return {
        "target": target,
        "luts": 10 * bits * bits + (300 if getattr(spec, "acc", None) == "fp32" else 0),
        "fmax_mhz": 200.0 / bits,
        "macs_per_cycle": 1,
        "energy_pj_per_mac": 0.01 * bits * bits,
        "error": {"luts": 0.1},
    }


@pytest.fixture()
def fake_cost(monkeypatch):
    monkeypatch.setattr(dse_eval, "cost_of", _fake_cost)


def _space(tmp_path: Path, text: str = TINY) -> dse.Space:
    p = tmp_path / "space.toml"
    p.write_text(text)
    return dse.load_space(p)


def _result_cols(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in PROVENANCE}


# ---- space ------------------------------------------------------------------------------------


def test_space_expansion_zip_axes_and_invalid(tmp_path: Path) -> None:
    points, invalid = _space(tmp_path).expand()
    names = [p.spec.name for p in points]
    assert names[:3] == ["intmac_int8xint8_l1_s0_n4096", "intmac_int4xint4_l1_s0_n4096", "intmac_int3xint3_l1_s0_n4096"]
    assert len(points) == 3 + 2 * 2  # zip of 3, then a x acc = 2 x 2 valid
    assert len(invalid) == 2  # acc="nope" for both a
    assert all(i.params["acc"] == "nope" and "acc='nope'" in i.reason for i in invalid)
    assert len({p.key for p in points}) == len(points)


@pytest.mark.parametrize(
    "entry,needle",
    [
        ('family = "intmac"\nwidth = 3', "width: not a parameter of family 'intmac'"),
        ('family = "nosuch"', "family='nosuch' is not registered"),
        ('family = "intmac"\na = ["int8", "int4"]\nb = ["int8"]\nzip = [["a", "b"]]', "differ in length"),
    ],
)
def test_bad_entries_are_reported_not_raised(tmp_path: Path, entry: str, needle: str) -> None:
    space = _space(tmp_path, f'[[pe]]\n{entry}\n[[pe]]\nfamily = "intmac"\n')
    points, invalid = space.expand()
    assert len(points) == 1 and len(invalid) == 1 and needle in invalid[0].reason


def test_bad_space_keys_raise_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workloads=.*'imagenet' is unknown"):
        _space(tmp_path, 'workloads = ["imagenet"]\n[[pe]]\nfamily = "intmac"\n')
    with pytest.raises(ValueError, match="space key 'colour' is unknown"):
        _space(tmp_path, 'colour = 1\n[[pe]]\nfamily = "intmac"\n')
    with pytest.raises(ValueError, match="targets=.*target='ecp6' is not allowed"):
        _space(tmp_path, 'targets = ["ecp6"]\n[[pe]]\nfamily = "intmac"\n')
    with pytest.raises(ValueError, match=r"tensor.shape=\[0, 1, 1\]"):
        _space(tmp_path, '[tensor]\nshape = [0, 1, 1]\n[[pe]]\nfamily = "intmac"\n')


def test_default_space_is_about_fifty_points_and_all_valid() -> None:
    space = dse.default_space()
    points, invalid = space.expand()
    assert invalid == []
    # about fifty PEs plus the scaling / FP16-accumulator points (make run: at most today's time + 2 min)
    assert 30 <= len({(p.spec, p.options) for p in points}) <= 90 and len(space.targets) == 2
    assert {"mac", "intmac", "simd"} <= {p.spec.family for p in points}


# ---- pareto -----------------------------------------------------------------------------------


def _brute_front(vals: list[tuple], senses: list[str]) -> list[bool]:
    def better_eq(a, b, s):
        return a <= b if s == "min" else a >= b

    def better(a, b, s):
        return a < b if s == "min" else a > b

    out = []
    for i, v in enumerate(vals):
        if any(x != x for x in v):
            out.append(False)
            continue
        dominated = any(
            all(better_eq(u[j], v[j], senses[j]) for j in range(len(v)))
            and any(better(u[j], v[j], senses[j]) for j in range(len(v)))
            for k, u in enumerate(vals)
            if k != i and not any(x != x for x in u)
        )
        out.append(not dominated)
    return out


@pytest.mark.parametrize("nobj", [2, 3])
def test_pareto_mask_matches_brute_force(nobj: int) -> None:
    rng = np.random.default_rng(nobj)
    vals = [tuple(float(x) for x in rng.integers(0, 6, nobj)) for _ in range(60)]  # many ties
    vals[5] = (float("nan"),) + vals[5][1:]
    senses = ["max", "min", "min"][:nobj]
    cols = [f"c{j}" for j in range(nobj)]
    rows = [dict(zip(cols, v)) for v in vals]
    got = dse.pareto_mask(rows, list(zip(cols, senses)))
    assert got.tolist() == _brute_front(vals, senses)
    with pytest.raises(ValueError, match="objective='x:best'"):
        dse.parse_objective("x:best")


# ---- store ------------------------------------------------------------------------------------


def test_store_survives_a_torn_line(tmp_path: Path) -> None:
    store = dse.ResultStore(tmp_path)
    store.append({"key": "a", "v": 1.0, "w": float("inf")})
    with open(store.journal, "a") as fh:
        fh.write('{"key": "b", "v": 2')  # a writer killed mid-line
    assert [r["key"] for r in store.rows()] == ["a"]
    store.append({"key": "c", "v": float("nan")})
    store.append({"key": "a", "v": 9.0, "w": float("inf")})  # a re-evaluated point replaces its row
    rows = store.rows()
    assert [r["key"] for r in rows] == ["a", "c"] and rows[0]["v"] == 9.0 and rows[0]["w"] == float("inf")
    assert np.isnan(rows[1]["v"])
    csv_rows = dse.read_csv(store.csv)
    assert [r["key"] for r in csv_rows] == ["a", "c"] and csv_rows[0]["w"] == float("inf")
    assert not list(tmp_path.glob(".*.tmp"))


# ---- evaluation against independent references ---------------------------------------------


def _ref_int_matmul(x: np.ndarray, w: np.ndarray, bits: int) -> np.ndarray:
    """Symmetric power-of-two-scaled integer quantisation, exact integer sums (float64 is exact)."""
    qmax = 2 ** (bits - 1) - 1

    def scale(amax: float) -> float:
        e = 0
        while amax > qmax * 2.0**e:
            e += 1
        while amax <= qmax * 2.0 ** (e - 1):
            e -= 1
        return 2.0**e

    sx = scale(float(np.abs(x).max()))
    sw = np.array([scale(float(np.abs(w[:, j]).max())) for j in range(w.shape[1])])
    xq = np.clip(np.rint(x / sx), -qmax - 1, qmax)
    wq = np.clip(np.rint(w / sw), -qmax - 1, qmax)
    return (xq @ wq) * sx * sw


def test_sweep_in_process_matches_independent_quality(tmp_path: Path, fake_cost) -> None:
    space = _space(tmp_path)
    summary = dse.sweep(space, tmp_path / "out", jobs=1, progress=False)
    assert summary.evaluated == 7 and summary.errors == 0 and len(summary.invalid) == 2
    rows = {r["key"]: r for r in dse.read_csv(tmp_path / "out" / "results.csv")}
    assert len(rows) == 7
    n, k, m = space.tensor.shape
    net = digits.mlp()
    for bits in (8, 4):
        row = rows[f"intmac_int{bits}xint{bits}_l1_s0_n4096|ice40"]
        for name, gen in (("gaussian", tensors.gaussian), ("student_t", tensors.student_t)):
            x, w = gen((n, k), seed=3), gen((k, m), seed=4)
            want = tensors.sqnr_db(x @ w, _ref_int_matmul(x, w, bits))
            assert row[f"{name}_sqnr_db"] == pytest.approx(want, rel=1e-12)
        acc = net.accuracy(lambda a, b, bits=bits: _ref_int_matmul(a, b, bits))
        assert row["mlp_acc"] == acc and row["mlp_acc_drop"] == pytest.approx(net.accuracy() - acc)
        cost = _fake_cost(IntMacSpec(a=f"int{bits}", b=f"int{bits}"), "ice40")
        assert row["cost_luts"] == cost["luts"] and row["cost_error_luts"] == 0.1
        assert row["throughput_gmacs"] == pytest.approx(cost["fmax_mhz"] / 1e3)
    # 8-bit integers beat 4-bit on every quality metric
    assert (
        rows["intmac_int8xint8_l1_s0_n4096|ice40"]["gaussian_sqnr_db"]
        > rows["intmac_int4xint4_l1_s0_n4096|ice40"]["gaussian_sqnr_db"] + 15
    )
    with pytest.raises(ValueError, match="already holds 7 results"):
        dse.sweep(space, tmp_path / "out", jobs=1, progress=False)
    again = dse.sweep(space, tmp_path / "out", jobs=1, progress=False, resume=True)
    assert again.evaluated == 0 and again.skipped == 7


def test_errors_are_recorded_not_raised(tmp_path: Path) -> None:
    """No cost model stand-in here: whatever cost.estimate does, quality columns are filled."""
    space = _space(tmp_path, '[[pe]]\nfamily = "intmac"\n')
    space.workloads = ["gaussian"]
    row = dse.evaluate(space.points()[0], dse.EvalSettings(("gaussian",), space.tensor))
    assert row["status"] in ("ok", "error") and np.isfinite(row["gaussian_sqnr_db"])


# ---- report and CLI ---------------------------------------------------------------------------


def test_cli_sweep_and_report(tmp_path: Path, fake_cost) -> None:
    space = tmp_path / "space.toml"
    space.write_text(TINY)
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["sweep", str(space), "-o", str(out), "--jobs", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["evaluated"] == 7
    res = runner.invoke(app, ["report", str(out), "--objective", "gaussian_sqnr_db:max,cost_luts:min"])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Pareto" in res.output
    # a metric a point lacks is "-", and a column no point of the target has is left out
    assert "nan" not in res.output and "<td>nan</td>" not in html
    for view in ("accuracy_vs_area", "energy_vs_sqnr"):
        assert (out / "plots" / f"ice40_{view}.png").stat().st_size > 10_000
        assert (out / "plots" / f"ice40_{view}.svg").read_text().lstrip().startswith("<?xml")
    rows = dse.ResultStore(out).rows()
    rep = dse.report(out)
    for view, objs in (
        ("accuracy_vs_area", [("accuracy_mean", "max"), ("cost_luts", "min")]),
        ("energy_vs_sqnr", [("sqnr_db_mean", "max"), ("energy_pj_per_mac", "min")]),
    ):
        vals = [tuple(r[c] for c, _ in objs) for r in rows]
        want = {r["key"] for r, f in zip(rows, _brute_front(vals, [s for _, s in objs])) if f}
        assert set(rep.fronts[f"ice40/{view}"]) == want
    res = runner.invoke(app, ["sweep", str(space), "-o", str(out), "--jobs", "0"])
    assert res.exit_code == 2 and "jobs=0" in res.output
    res = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "holds no results" in res.output


def test_report_leaves_out_a_column_the_target_lacks(tmp_path: Path, monkeypatch) -> None:
    """A target without an energy model (the FPGA targets) gets no energy column of "nan"s."""

    def no_energy(spec, target):
        cost = _fake_cost(spec, target)
        del cost["energy_pj_per_mac"]
        return cost

    monkeypatch.setattr(dse_eval, "cost_of", no_energy)
    space = tmp_path / "space.toml"
    space.write_text(TINY)
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(app, ["sweep", str(space), "-o", str(out), "--jobs", "1"]).exit_code == 0
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "Pareto" in res.output and "nan" not in res.output and "energy" not in res.output


# ---- executors and resume ---------------------------------------------------------------------

EXEC = """
name = "exec"
targets = ["ice40"]
workloads = ["gaussian", "laplacian"]
[tensor]
shape = [8, 40, 5]
[[pe]]
family = "intmac"
a = ["int8", "int5", "int4"]
[[pe]]
family = "mac"
a = ["e4m3fn", "e3m2fn"]
acc = "bf16"
"""


def _rows_sorted(out: Path) -> str:
    return json.dumps(
        sorted((_result_cols(r) for r in dse.ResultStore(out).rows()), key=lambda r: r["key"]), sort_keys=True
    )


@pytest.mark.parametrize(
    "executor", [{"jobs": 2}, {"dask_local": 2}, {"scheduler": None}], ids=["pool", "dask-local", "dask-scheduler"]
)
def test_executors_give_identical_rows(tmp_path: Path, executor: dict) -> None:
    """The local pool, a Dask LocalCluster and a running Dask scheduler (tcp://) produce the
    rows of an in-process sweep."""
    space = _space(tmp_path, EXEC)
    serial = dse.sweep(space, tmp_path / "serial", jobs=1, progress=False)
    if "scheduler" in executor:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            assert cluster.scheduler_address.startswith("tcp://")
            other = dse.sweep(space, tmp_path / "other", progress=False, scheduler=cluster.scheduler_address)
        assert other.executor.startswith("dask:tcp://")
    else:
        other = dse.sweep(space, tmp_path / "other", progress=False, **executor)
        assert other.executor == ("local:2" if "jobs" in executor else "dask-local:2")
    assert serial.evaluated == other.evaluated == 5
    assert _rows_sorted(tmp_path / "other") == _rows_sorted(tmp_path / "serial")
    assert (tmp_path / "other" / "results.csv").read_text().splitlines()[0] == (
        tmp_path / "serial" / "results.csv"
    ).read_text().splitlines()[0]


_PATCHED_CLI = (
    "import sys; sys.path.insert(0, 'tests'); import tests.test_dse as t, peforge.dse.evaluation as e; "
    "e.cost_of = t._fake_cost; from peforge.cli import app; sys.argv[0] = 'peforge'; app()"
)


def test_killed_sweep_resumes_without_loss_or_duplicates(tmp_path: Path, fake_cost) -> None:
    space_file = tmp_path / "space.toml"
    gate = tmp_path / "gate"  # two points finish, the rest wait for it (tests/gated_workload.py)
    space_file.write_text(
        EXEC.replace('a = ["int8", "int5", "int4"]', 'a = ["int8", "int7", "int6", "int5", "int4"]').replace(
            '"laplacian"]', '"laplacian", "mlp"]'
        )
        + f'[workload.gated]\ncallable = "gated_workload:gated_metric"\n'
        f"options = {{ gate = {json.dumps(str(gate))}, free = 2 }}\n"
    )
    out = tmp_path / "out"
    journal = out / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PATCHED_CLI, "sweep", str(space_file), "-o", str(out), "--jobs", "1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = dse.ResultStore(out).rows()
    assert 2 <= len(before) < 7 and all(r["status"] == "ok" for r in before)
    with open(journal, "a") as fh:
        fh.write('{"key": "torn')  # as if killed mid-write
    space = dse.load_space(space_file)
    gate.touch()
    summary = dse.sweep(space, out, resume=True, jobs=1, progress=False)
    after = dse.ResultStore(out).rows()
    keys = [r["key"] for r in after]
    assert summary.skipped == len(before) and summary.evaluated == 7 - len(before)
    assert sorted(keys) == sorted(p.key for p in space.points()) and len(set(keys)) == 7
    assert json.dumps(after[: len(before)]) == json.dumps(before)  # finished rows are kept untouched
    lines = [json.loads(x) for x in journal.read_text().splitlines() if x.startswith('{"key": "') and x.endswith("}")]
    assert len(lines) == 7  # nothing evaluated twice
    settings = dse.EvalSettings(tuple(space.workloads), space.tensor, space_digest=space.digest)
    for row in after:  # identical to an uninterrupted evaluation
        fresh = dse.evaluate(next(p for p in space.points() if p.key == row["key"]), settings)
        assert json.dumps(_result_cols(fresh), sort_keys=True, default=str) == json.dumps(
            _result_cols(row), sort_keys=True, default=str
        )
    assert len(dse.read_csv(out / "results.csv")) == 7


def test_mac_point_sqnr_improves_with_mantissa(tmp_path: Path, fake_cost) -> None:
    """Sanity of the numbers a user reads: e4m3 beats e2m1 by the mantissa difference (~12 dB)."""
    settings = dse.EvalSettings(("gaussian",), dse.TensorSettings((16, 128, 16), 0))
    sq = {
        a: dse.evaluate(dse.Point(MinifloatMacSpec(a=a, b=a), "ice40"), settings)["gaussian_sqnr_db"]
        for a in ("e4m3fn", "e2m1fn")
    }
    assert 8 < sq["e4m3fn"] - sq["e2m1fn"] < 25


@pytest.mark.slow
def test_synth_adds_yosys_and_nextpnr_numbers(tmp_path: Path) -> None:
    """--synth: synth_* columns are the fpga flow's own (cached) report for the point."""
    from peforge import fpga

    space = _space(
        tmp_path,
        'targets = ["ice40"]\nworkloads = ["gaussian"]\n[tensor]\nshape = [4, 16, 2]\n'
        '[[pe]]\nfamily = "intmac"\na = "int4"\nb = "int4"\n',
    )
    dse.sweep(space, tmp_path / "out", jobs=1, synth=True, progress=False)
    row = dse.ResultStore(tmp_path / "out").rows()[0]
    rep = fpga.synthesize(IntMacSpec(a="int4", b="int4"), "ice40")
    assert row["synth_luts"] == rep.luts and row["synth_ffs"] == rep.ffs
    assert row["synth_fmax_mhz"] == fpga.place_and_route(rep, "hx8k").fmax_mhz > 0


def test_run_time_mode_sets_macs_and_energy_per_mac(monkeypatch) -> None:
    """A SIMD point measured in mode 2x2 gets that mode's MACs/cycle; energy per op is shared."""

    def cost(spec, target):
        return {
            "macs_per_cycle": 1,
            "fmax_mhz": 50.0,
            "energy_pj_per_op": 1.6,
            "energy_pj_per_mac": 1.6,
            "notes": {"macs_per_cycle_by_mode": dict(zip(spec.modes, spec.mode_lanes))},
        }

    monkeypatch.setattr(dse_eval, "cost_of", cost)
    spec = SimdMacSpec(8, modes=("8x8", "2x2"))
    settings = dse.EvalSettings(("gaussian",), dse.TensorSettings((4, 32, 3), 0))
    for mode, lanes in (("8x8", 1), ("2x2", 16), (1, 16)):
        row = dse.evaluate(dse.Point(spec, "asic45", (("mode", mode),)), settings)
        assert row["macs_per_cycle"] == lanes and row["energy_pj_per_mac"] == pytest.approx(1.6 / lanes)
        assert row["throughput_gmacs"] == pytest.approx(lanes * 50.0 / 1e3)
