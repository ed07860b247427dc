"""Analytic cost model against synthesis: held-out error, scatter plots, speed, energy.

Run: ``.venv/bin/python bench/cost_model.py [--out build/bench/cost_model] [--json]``.

* **Accuracy.**  For every target, the model's estimates of the held-out specs (never used in
  the fit) against the Yosys results shipped with the calibration
  (``models/cost/data/calibration.json``; ``peforge calibrate`` regenerates both), side by
  side with a baseline: the same features with one shared coefficient (a "count the bits"
  model).  Median / p90 / worst relative |error| and Spearman rank correlation, checked
  against the issue's targets (median <= 10%, worst <= 25%, Spearman >= 0.95; FFs exact).
  Scatter plots (estimated vs synthesised, log-log, one colour per family) go to ``--out``.
* **Speed.**  Estimates per second on one core, with the netlist cache cleared (first
  estimate of a spec) and warm (a sweep pricing a spec for several targets), median of 5;
  ratio against the median Yosys run time of the same specs.
* **Energy.**  Energy per MAC on ``asic45`` for random operands vs real ones (scikit-learn's
  digits through a ridge classifier, quantised to the operand formats), from the golden
  model's toggle counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import add_columns
from rich.console import Console
from rich.table import Table

from peforge import spec as spec_mod
from peforge.models import cost
from peforge.models.cost import calibration, energy, fit
from peforge.models.cost.assembly import assemble, netlist
from peforge.models.cost.model import features
from peforge.spec import IntMacSpec, MinifloatMacSpec

__all__ = ["accuracy", "speed", "energy_table", "main"]

_METRICS = (
    ("ice40", "luts"),
    ("ice40", "carry"),
    ("ice40", "ffs"),
    ("ecp5", "luts"),
    ("ecp5", "carry"),
    ("ecp5", "ffs"),
    ("xilinx", "luts"),
    ("xilinx", "ffs"),
    ("generic", "nand2"),
    ("generic", "ffs"),
)
_TARGETS = {"median": 0.10, "max": 0.25, "spearman": 0.95}


def _spec(row: dict[str, Any]) -> spec_mod.Spec:
    return spec_mod.from_dict(dict(row["spec"]))


def _model(spec: spec_mod.Spec, target: str, metric: str) -> float:
    tgt = "asic45" if target == "generic" else target
    key = "gates_nand2" if metric == "nand2" else metric
    return float(getattr(cost.estimate(spec, tgt), key))


def _baseline_coef(train: list[dict[str, Any]], target: str, metric: str) -> float:
    """One shared coefficient on the plain feature sum, least relative squares."""
    train = [r for r in train if fit.measured_value(r, metric) > 0]  # a design mapped into DSPs alone
    x = np.array([sum(features(assemble(_spec(r)), target)[0][:-1]) for r in train])
    y = np.array([fit.measured_value(r, metric) for r in train])
    a = x / y
    return float(a.sum() / (a @ a))


def accuracy(cal: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (target, metric): model and baseline error stats on the held-out set."""
    held, train = cal["measurements"]["heldout"], cal["measurements"]["training"]
    rows = []
    for target, metric in _METRICS:
        h = [r for r in held if r["target"] == target and r.get(metric if metric != "nand2" else "nand2_eq")]
        t = [r for r in train if r["target"] == target]
        if not h:
            continue
        meas = [fit.measured_value(r, metric) for r in h]
        if metric == "ffs":
            est = [_model(_spec(r), target, "ffs") for r in h]
            base = None
        else:
            est = [_model(_spec(r), target, metric) for r in h]
            c = _baseline_coef(t, target, metric)
            base = fit.error_stats([c * sum(features(assemble(_spec(r)), target)[0][:-1]) for r in h], meas)
        stats = fit.error_stats(est, meas)
        fams: dict[str, list[float]] = {}
        for r, e, m in zip(h, est, meas):
            fams.setdefault(r["spec"]["family"], []).append(abs(e - m) / m)
        rows.append(
            {
                "target": target,
                "metric": metric,
                "model": stats,
                "baseline": base,
                "exact": sum(abs(e - m) < 0.5 for e, m in zip(est, meas)) if metric == "ffs" else None,
                "families": {
                    k: (round(float(np.median(v)), 3), round(float(max(v)), 3), len(v)) for k, v in sorted(fams.items())
                },
                "points": [(r["spec"]["family"], e, m) for r, e, m in zip(h, est, meas)],
            }
        )
    return rows


def _verdict(row: dict[str, Any]) -> str:
    s = row["model"]
    if row["metric"] == "ffs":
        return "exact" if s["max"] == 0 else f"{row['exact']}/{s['n']} exact"
    ok = s["median"] <= _TARGETS["median"] and s["max"] <= _TARGETS["max"] and s["spearman"] >= _TARGETS["spearman"]
    return "[green]meets[/]" if ok else "[red]misses[/]"


def accuracy_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Held-out error vs Yosys (relative |error|; baseline = one coefficient on the feature sum)")
    heads = ("target", "metric", "n", "median", "p90", "worst", "Spearman", "baseline median", "baseline worst")
    add_columns(t, (*heads, "median ratio", "targets"), left=("target", "metric", "targets"))
    for r in rows:
        s, b = r["model"], r["baseline"]
        ratio = f"{b['median'] / s['median']:.1f}x" if b and s["median"] > 0 else "-"
        t.add_row(
            r["target"],
            r["metric"],
            str(s["n"]),
            f"{100 * s['median']:.1f}%",
            f"{100 * s['p90']:.1f}%",
            f"{100 * s['max']:.1f}%",
            f"{s['spearman']:.3f}",
            f"{100 * b['median']:.1f}%" if b else "-",
            f"{100 * b['max']:.1f}%" if b else "-",
            ratio,
            _verdict(r),
        )
    return t


def family_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Held-out LUT / gate error per family: median / worst (n)")
    keys = [(r["target"], r["metric"]) for r in rows if r["metric"] in ("luts", "nand2")]
    fams = sorted({f for r in rows for f in r["families"]})
    t.add_column("family")
    for k in keys:
        t.add_column(f"{k[0]} {k[1]}", justify="right")
    by = {(r["target"], r["metric"]): r for r in rows}
    for f in fams:
        cells = [f]
        for k in keys:
            v = by[k]["families"].get(f)
            cells.append(f"{100 * v[0]:.0f}% / {100 * v[1]:.0f}% ({v[2]})" if v else "-")
        t.add_row(*cells)
    return t


def scatter(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """Estimated vs synthesised, log-log, per (target, metric) panel; one PNG for all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [r for r in rows if r["metric"] in ("luts", "nand2", "carry")]
    cols = 3
    fig, axes = plt.subplots(
        (len(panels) + cols - 1) // cols, cols, figsize=(5 * cols, 4.5 * ((len(panels) + cols - 1) // cols))
    )
    colours = {
        "mac": "tab:blue",
        "intmac": "tab:orange",
        "simd": "tab:green",
        "shiftadd": "tab:red",
        "blockdot": "tab:purple",
        "lut": "tab:brown",
    }
    for ax, r in zip(np.ravel(axes), panels):
        for fam in sorted({p[0] for p in r["points"]}):
            pts = [(m, e) for f, e, m in r["points"] if f == fam]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, label=fam, color=colours.get(fam))
        lo = min(min(p[1], p[2]) for p in r["points"]) * 0.8
        hi = max(max(p[1], p[2]) for p in r["points"]) * 1.25
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k-", lw=0.8)
        ax.plot(xs, xs * 1.25, "k:", lw=0.6)
        ax.plot(xs, xs / 1.25, "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"Yosys {r['metric']}")
        ax.set_ylabel(f"estimated {r['metric']}")
        s = r["model"]
        ax.set_title(
            f"{r['target']} {r['metric']}: median {100 * s['median']:.1f}%, worst {100 * s['max']:.0f}%, "
            f"rho {s['spearman']:.3f}",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    for ax in np.ravel(axes)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("peforge cost model: held-out specs (dotted: +-25%)")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scatter.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def speed(cal: dict[str, Any], repeats: int = 5) -> dict[str, Any]:
    """Estimates per second (one core) with a cold and a warm netlist cache."""
    specs = [_spec(r) for r in cal["measurements"]["heldout"] if r["target"] == "ecp5"]
    targets = ("ice40", "ecp5", "xilinx", "asic45")
    cold, warm = [], []
    for _ in range(repeats):
        netlist.cache_clear()
        t0 = time.perf_counter()
        for s in specs:
            cost.estimate(s, "ecp5")
        cold.append(len(specs) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for s in specs:
            for t in targets:
                cost.estimate(s, t)
        warm.append(len(specs) * len(targets) / (time.perf_counter() - t0))
    secs = [
        r["seconds"]
        for r in cal["measurements"]["heldout"] + cal["measurements"]["training"]
        if r.get("seconds") and r["target"] in ("ice40", "ecp5", "generic", "xilinx")
    ]
    yosys = statistics.median(secs) if secs else None
    out = {
        "specs": len(specs),
        "cold_per_s": round(statistics.median(cold)),
        "warm_per_s": round(statistics.median(warm)),
        "yosys_median_s": yosys,
    }
    if yosys:
        out["speedup_cold"] = round(yosys * out["cold_per_s"])
    return out


ENERGY_SPECS = (
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=4),
    MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16", lanes=4),
    MinifloatMacSpec("e5m2", "e5m2", "fp16"),
    MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", lanes=4),
    IntMacSpec("int8", "int8"),
    IntMacSpec("int4", "int4", lanes=4),
)


def energy_table(specs: tuple[spec_mod.Spec, ...] = ENERGY_SPECS) -> list[dict[str, Any]]:
    rows = []
    for s in specs:
        rnd = energy.energy(s, "random")
        real = energy.energy(s, "digits")
        rows.append(
            {
                "spec": s.name,
                "random_pj_per_mac": rnd.energy_pj_per_mac,
                "digits_pj_per_mac": real.energy_pj_per_mac,
                "ratio": round(real.energy_pj_per_mac / rnd.energy_pj_per_mac, 3),
                "activity": real.notes["activity"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/bench/cost_model"), help="directory for the PNG")
    ap.add_argument("--json", action="store_true", help="print everything as JSON")
    ap.add_argument("--no-energy", action="store_true", help="skip the (slower) toggle-count energy table")
    args = ap.parse_args(argv)
    cal = calibration.load()
    acc = accuracy(cal)
    spd = speed(cal)
    en = [] if args.no_energy else energy_table()
    pngs = scatter(acc, args.out)
    if args.json:
        print(
            json.dumps(
                {
                    "accuracy": [{k: v for k, v in r.items() if k != "points"} for r in acc],
                    "speed": spd,
                    "energy": en,
                    "scatter": [str(p) for p in pngs],
                    "delay": {t: cal["error"].get(t, {}).get("delay_ns") for t in ("ice40", "ecp5")},
                },
                indent=1,
            )
        )
        return 0
    console = Console(width=200)
    console.print(f"calibration {calibration.path()} ({cal['created']}, {cal['yosys_version']})")
    console.print(accuracy_table(acc))
    console.print(family_table(acc))
    for target, device in (("ice40", "hx8k"), ("ecp5", "25k")):
        d = cal["error"].get(target, {}).get("delay_ns")
        if d:
            console.print(
                f"{target} critical path (nextpnr {device}, leave-one-out over {d['n']} PEs): median "
                f"{100 * d['median']:.1f}%, worst {100 * d['max']:.1f}%, Spearman {d['spearman']:.3f}"
            )
    console.print(
        f"speed (one core, {spd['specs']} held-out specs, median of 5): {spd['cold_per_s']:,} estimates/s "
        f"cold (first estimate of a spec), {spd['warm_per_s']:,}/s warm; median Yosys run "
        f"{spd['yosys_median_s']} s -> one cold estimate is {spd.get('speedup_cold', '?'):,}x faster"
    )
    if en:
        t = Table(title="Energy per MAC on asic45: random vs real (digits) operands, toggle-count model")
        for col in ("spec", "random pJ/MAC", "digits pJ/MAC", "ratio", "activity (digits / random) per class"):
            t.add_column(col, justify="left" if col in ("spec", "activity (digits / random) per class") else "right")
        for r in en:
            t.add_row(
                r["spec"],
                f"{r['random_pj_per_mac']:.4f}",
                f"{r['digits_pj_per_mac']:.4f}",
                f"{r['ratio']:.2f}",
                ", ".join(f"{k} {v:.2f}" for k, v in r["activity"].items()),
            )
        console.print(t)
    console.print(f"scatter plot: {', '.join(str(p) for p in pngs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
