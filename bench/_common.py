"""Plumbing the FPGA benchmarks share (``bench/qor.py``, ``bench/fpga.py``, ``bench/fmax_pick.py``,
``bench/lmul.py``, ``bench/cost_model.py``): the parallel measure loop behind a progress bar,
the table header, the flow's command-line options.  What each bench measures and prints stays
in the bench; a bench imports this module by name (``bench/`` is the script's directory).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Sequence, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = ["measure_all", "add_columns", "flow_options"]

Work = TypeVar("Work", bound=Sequence[Any])
Row = TypeVar("Row")


def measure_all(
    work: Sequence[Work],
    measure: Callable[..., Row],
    *,
    jobs: int,
    progress: bool,
    label: str = "synth + pnr",
    describe: Callable[[Work], str] | None = None,
) -> list[Row]:
    """``measure(*item)`` for every item of ``work`` in ``jobs`` threads (the tools run as
    subprocesses), results in ``work``'s order, behind a rich progress bar titled ``label``
    (``describe(item)`` retitles it as each item completes; ``progress=False`` hides it)."""
    rows: list[Row] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(label, total=len(work))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(measure, *item) for item in work]
            for item, fut in zip(work, futures):
                rows.append(fut.result())
                bar.update(task, advance=1, **({"description": describe(item)} if describe else {}))
    return rows


def add_columns(table: Table, names: Sequence[str], left: Collection[str]) -> None:
    """Columns ``names`` of ``table``: those in ``left`` left-justified (labels), the rest right
    (numbers)."""
    for name in names:
        table.add_column(name, justify="left" if name in left else "right")


def flow_options(ap: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--seed`` and ``--json`` of a bench that synthesises and places designs."""
    ap.add_argument("--jobs", type=int, default=2, help="parallel synthesis/pnr runs (default 2)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placer seed")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
