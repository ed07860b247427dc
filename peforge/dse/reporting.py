"""Sweep report: Pareto tables (rich), plots (matplotlib PNG + SVG) and one self-contained HTML page.

Views, per cost target: accuracy vs area (front of max ``accuracy_mean``, min area), energy
per MAC vs SQNR (min ``energy_pj_per_mac``, max ``sqnr_db_mean``), and a three-objective
front (accuracy, area, energy).  Area is the first of :data:`AREA_COLUMNS` that every row of
the target has (LUTs on FPGA targets, um^2 or NAND2 gates on ASIC ones).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from rich.console import Console
from rich.table import Table

from ..errors import CorruptFileError
from .pareto import Objective, pareto_mask, pareto_rows
from .store import ResultStore, atomic_write

__all__ = ["report", "Report", "View", "AREA_COLUMNS", "area_column", "views_for", "short_label", "print_rows"]

AREA_COLUMNS = ("cost_luts", "cost_area_um2", "cost_gates_nand2")


@dataclass(frozen=True)
class View:
    """One Pareto view: a name, its objectives ((column, min|max), ...) and axis titles."""

    name: str
    objectives: tuple[Objective, ...]
    titles: tuple[str, ...]


@dataclass
class Report:
    """Files a :func:`report` call wrote and the fronts it found (keys: ``<target>/<view>``)."""

    html: Path
    plots: list[Path] = field(default_factory=list)
    fronts: dict[str, list[str]] = field(default_factory=dict)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def area_column(rows: Sequence[dict[str, Any]]) -> Optional[str]:
    """The first of :data:`AREA_COLUMNS` that some row has a positive finite value in."""
    for col in AREA_COLUMNS:
        if any(_finite(r.get(col)) and r[col] > 0 for r in rows):
            return col
    return None


def _covered(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective]) -> int:
    return sum(all(_finite(r.get(c)) for c, _ in objectives) for r in rows)


def views_for(rows: Sequence[dict[str, Any]]) -> list[View]:
    """The standard views that at least one row has every objective of."""
    area = area_column(rows)
    views = []
    if area:
        short = area.removeprefix("cost_")
        views.append(
            View(
                "accuracy_vs_area",
                (("accuracy_mean", "max"), (area, "min")),
                ("network accuracy (mean of MLP, CNN)", short),
            )
        )
    views.append(
        View(
            "energy_vs_sqnr",
            (("sqnr_db_mean", "max"), ("energy_pj_per_mac", "min")),
            ("GEMM SQNR (dB, mean of distributions)", "energy per MAC (pJ)"),
        )
    )
    if area:
        views.append(
            View(
                "accuracy_area_energy",
                (("accuracy_mean", "max"), (area, "min"), ("energy_pj_per_mac", "min")),
                ("accuracy", area.removeprefix("cost_"), "energy pJ/MAC"),
            )
        )
    return [v for v in views if _covered(rows, v.objectives)]


def _fmt(v: Any) -> str:
    """A table cell: 4 significant digits; a metric the point does not have (None, NaN) is "-"."""
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}" if math.isfinite(v) else str(v)
    return "-" if v is None else str(v)


def _table_rows(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> list[list[str]]:
    return [[_fmt(r.get(c)) for c in cols] for r in rows]


def short_label(label: str) -> str:
    """Plot label: the spec name without default-valued tokens (one lane, no stages, n4096)."""
    return re.sub(r"_(l1|s0|n4096)(?=_| |$)", "", label)


def _plot(rows: Sequence[dict[str, Any]], view: View, title: str, stem: Path, baseline: Optional[float]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (ycol, ysense), (xcol, xsense) = view.objectives[:2]
    pts = [r for r in rows if _finite(r.get(xcol)) and _finite(r.get(ycol))]
    if not pts:
        return []
    mask = pareto_mask(pts, view.objectives[:2])
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    families = sorted({r["family"] for r in pts})
    cmap = plt.get_cmap("tab10")
    for i, fam in enumerate(families):
        sel = [r for r in pts if r["family"] == fam]
        ax.scatter([r[xcol] for r in sel], [r[ycol] for r in sel], s=22, color=cmap(i % 10), alpha=0.55, label=fam)
    front = sorted([r for r, m in zip(pts, mask) if m], key=lambda r: r[xcol])
    ax.plot(
        [r[xcol] for r in front],
        [r[ycol] for r in front],
        "-",
        color="black",
        lw=1.2,
        zorder=3,
        drawstyle="steps-post" if xsense == "min" and ysense == "max" else "default",
    )
    ax.scatter(
        [r[xcol] for r in front],
        [r[ycol] for r in front],
        s=70,
        facecolors="none",
        edgecolors="black",
        linewidths=1.5,
        zorder=4,
        label="Pareto front",
    )
    ys = sorted(r[ycol] for r in pts)
    lo = None
    if ysense == "max" and len(ys) >= 6 and ys[-1] - ys[0] > 0.15 and sum(y >= ys[-1] - 0.1 for y in ys) >= 3:
        lo = ys[-1] - 0.1  # zoom on the useful range; the rest is drawn clipped at the bottom
        ax.set_ylim(lo - 0.01, ys[-1] + 0.01)
    for r, m in zip(pts, mask):
        y = r[ycol]
        if lo is not None and y < lo:
            ax.scatter([r[xcol]], [lo - 0.005], marker="v", color="grey", s=18, zorder=2)
            y = lo - 0.005
        ax.annotate(
            f"{short_label(r['label'])}" + (f" ({r[ycol]:.3g})" if lo is not None and r[ycol] < lo else ""),
            (r[xcol], y),
            fontsize=6.5 if m else 5,
            alpha=1.0 if m else 0.6,
            fontweight="bold" if m else "normal",
            xytext=(3, 3),
            textcoords="offset points",
        )
    if baseline is not None and math.isfinite(baseline):
        ax.axhline(baseline, ls="--", color="grey", lw=1, label=f"float32 baseline ({baseline:.4g})")
    if xcol in ("cost_luts", "cost_area_um2", "cost_gates_nand2", "energy_pj_per_mac"):
        xs = [r[xcol] for r in pts]
        if min(xs) > 0 and max(xs) / min(xs) > 20:
            ax.set_xscale("log")
    ax.set_xlabel(view.titles[1] + (" (lower is better)" if xsense == "min" else ""))
    ax.set_ylabel(view.titles[0] + (" (higher is better)" if ysense == "max" else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out = []
    stem.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, metadata={"Date": None} if ext == "svg" else None)
        out.append(path)
    plt.close(fig)
    return out


def print_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "", console: Optional[Console] = None
) -> None:
    """Print ``columns`` of ``rows`` as a rich table (labels shortened, numbers to 4 digits)."""
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c.removeprefix("cost_"), justify="left" if c in ("label", "family") else "right")
    for r in rows:
        table.add_row(*[short_label(str(r.get(c))) if c == "label" else _fmt(r.get(c)) for c in columns])
    (console or (Console() if sys.stdout.isatty() else Console(width=160))).print(table)


def _html_table(header: Sequence[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
    "font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "th{background:#eee}td:first-child{text-align:left}img{max-width:100%}"
)


def report(
    out_dir: Path | str,
    *,
    console: Optional[Console] = None,
    top: int = 15,
    extra: Sequence[tuple[Objective, ...]] = (),
) -> Report:
    """Write ``report.html`` and ``plots/`` into ``out_dir`` from its results; print the fronts.

    ``extra`` adds Pareto tables over other objective tuples (two or three columns each).
    """
    out = Path(out_dir)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top={top!r} (--top): allowed a positive number of rows per table")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out)!r} is a file: expected the results directory of a sweep")
    store = ResultStore(out)
    rows = store.rows()
    if not rows:
        raise ValueError(f"out_dir={str(out)!r} holds no results (results.jsonl): run `peforge sweep` first")
    _check_rows(rows, store.journal)
    _check_objectives(rows, extra)
    console = console or Console()
    for problem in store.problems:
        console.print(f"[yellow]warning:[/] {problem}")
    baselines = _baselines(out)
    result = Report(out / "report.html")
    sections = [
        f"<h1>peforge design-space report</h1><p>{len(rows)} design points from "
        f"<code>{html.escape(str(out))}</code>; space <code>{html.escape(str(rows[0].get('space')))}"
        f"</code>. Quality is measured with every product executed by the PE's bit-exact golden "
        f"model; cost is the analytic estimate (<code>cost_*</code>) unless <code>synth_*</code> "
        f"columns are present.</p>"
    ]
    if baselines:
        sections.append(
            "<h2>float32 baseline</h2>" + _html_table(["metric", "value"], [[k, _fmt(v)] for k, v in baselines.items()])
        )
        table = Table(title="float32 baseline")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in baselines.items():
            table.add_row(k, _fmt(v))
        console.print(table)
    bad = [r for r in rows if r.get("status") != "ok"]
    for target in sorted({r["target"] for r in rows}):
        trows = [r for r in rows if r["target"] == target]
        sections.append(f"<h2>target {html.escape(target)}</h2>")
        views = views_for(trows) + [
            View("custom_" + "_".join(c for c, _ in objs), tuple(objs), tuple(c for c, _ in objs)) for objs in extra
        ]
        for view in views:
            cols = ["label"] + [c for c, _ in view.objectives]
            for c in ("throughput_gmacs", "energy_pj_per_mac", "accuracy_mean", "sqnr_db_mean"):
                # context columns a target has (no Fmax on an ASIC, no energy on an FPGA target)
                if c not in cols and any(_finite(r.get(c)) for r in trows):
                    cols.append(c)
            front = pareto_rows(trows, view.objectives)
            result.fronts[f"{target}/{view.name}"] = [r["key"] for r in front]
            senses = ", ".join(f"{c} ({s})" for c, s in view.objectives)
            table = Table(title=f"{target}: Pareto front of {senses} ({len(front)} of {len(trows)} points)")
            for c in cols:
                table.add_column(c.removeprefix("cost_"), justify="left" if c == "label" else "right")
            for cells in _table_rows(front[:top], cols):
                table.add_row(*cells)
            console.print(table)
            missing = len(trows) - _covered(trows, view.objectives)
            note = f" {missing} point(s) lack one of these columns and are left out." if missing else ""
            sections.append(
                f"<h3>{html.escape(view.name.replace('_', ' '))}</h3><p>Front of {html.escape(senses)}: "
                f"{len(front)} of {len(trows)} points.{note}</p>"
            )
            if len(view.objectives) == 2:
                baseline = baselines.get("accuracy_mean") if view.objectives[0][0] == "accuracy_mean" else None
                paths = _plot(
                    trows,
                    view,
                    f"{target}: {view.name.replace('_', ' ')}",
                    out / "plots" / f"{target}_{view.name}",
                    baseline,
                )
                result.plots += paths
                for p in paths:
                    if p.suffix == ".png":
                        data = base64.b64encode(p.read_bytes()).decode()
                        sections.append(f'<img alt="{html.escape(view.name)}" src="data:image/png;base64,{data}">')
            sections.append(_html_table([c.removeprefix("cost_") for c in cols], _table_rows(front, cols)))
        keep = ["label", "family", "status"] + [c for c in _all_metric_columns(trows)]
        sections.append("<h3>all points</h3>" + _html_table(keep, _table_rows(trows, keep)))
    if bad:
        sections.append(
            "<h2>points with errors</h2>"
            + _html_table(["key", "error"], [[r["key"], str(r.get("error"))] for r in bad])
        )
        console.print(f"[yellow]{len(bad)} point(s) have errors; see report.html[/]")
    invalid = out / "invalid.json"
    if invalid.is_file():
        skipped = _read_json(invalid)
        if not isinstance(skipped, list) or not all(
            isinstance(s, dict) and {"family", "params", "reason"} <= set(s) for s in skipped
        ):
            raise CorruptFileError(invalid, "expected a list of {family, params, reason} objects")
        if skipped:
            sections.append(
                "<h2>invalid points (skipped)</h2>"
                + _html_table(
                    ["family", "params", "reason"],
                    [[s["family"], json.dumps(s["params"]), s["reason"]] for s in skipped],
                )
            )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>peforge DSE report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>"
    )
    atomic_write(result.html, page)
    console.print(f"[green]wrote[/] {result.html} and {len(result.plots)} plot files under {out / 'plots'}")
    return result


def _all_metric_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    wanted = [
        "cost_luts",
        "cost_area_um2",
        "cost_fmax_mhz",
        "throughput_gmacs",
        "energy_pj_per_mac",
        "synth_luts",
        "synth_fmax_mhz",
    ]
    wanted += sorted({k for r in rows for k in r if k.endswith(("_sqnr_db", "_acc"))})
    wanted += ["sqnr_db_mean", "accuracy_mean"]
    return [c for c in wanted if any(c in r for r in rows)]


def _baselines(out: Path) -> dict[str, float]:
    """float32 reference numbers of the sweep's workloads (from its space.json)."""
    path = out / "space.json"
    if not path.is_file():
        return {}
    from .evaluation import EvalSettings, baselines
    from .space import Space

    data = _read_json(path)
    try:
        space = Space.from_dict(data)
    except (ValueError, TypeError, AttributeError) as err:
        raise CorruptFileError(path, f"not a valid space ({err})") from None
    return baselines(EvalSettings(tuple(space.workloads), space.tensor))  # with accuracy_mean


_ROW_COLUMNS = ("key", "label", "family", "target")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(path, f"not valid JSON ({err})") from None


def _check_rows(rows: Sequence[dict[str, Any]], journal: Path) -> None:
    """Every row names its point (a row without them was not written by a sweep)."""
    for r in rows:
        missing = [c for c in _ROW_COLUMNS if not isinstance(r.get(c), str)]
        if missing:
            raise CorruptFileError(
                journal,
                f"row {r.get('key')!r} has no {missing[0]!r} column (every result row "
                f"has {', '.join(_ROW_COLUMNS)}); the file was edited or damaged",
            )


def _check_objectives(rows: Sequence[dict[str, Any]], extra: Sequence[tuple[Objective, ...]]) -> None:
    """Columns of extra Pareto tables exist with numbers (else the table would be silently empty)."""
    numeric = sorted({k for r in rows for k, v in r.items() if _finite(v)})
    for objs in extra:
        if not 2 <= len(objs) <= 3:
            raise ValueError(
                f"objective {','.join(f'{c}:{s}' for c, s in objs)!r}: allowed 2 or 3 comma-separated column:min|max"
            )
        for col, _ in objs:
            if col not in numeric:
                raise ValueError(
                    f"objective column {col!r} has no numeric value in these results: allowed {', '.join(numeric)}"
                )
