"""Design-space exploration: sweeps of numerical quality against cost, Pareto fronts, reports.

Typical use::

    from peforge import dse
    space = dse.load_space("space.toml")          # or dse.default_space(), or dse.Space(...)
    dse.sweep(space, "build/dse", jobs=2)          # resumable: resume=True skips finished points
    dse.report("build/dse")                        # tables, plots (PNG + SVG), report.html

The CLI is ``peforge sweep SPACE.toml -o DIR [--resume] [--jobs N] [--scheduler ADDR]`` and
``peforge report DIR``.
"""

from .evaluation import EvalSettings, baselines, cost_of, evaluate
from .pareto import pareto_mask, pareto_rows, parse_objective
from .reporting import Report, print_rows, report, short_label
from .runner import SweepSummary, run, sweep
from .space import WORKLOADS, Invalid, Point, Space, TensorSettings, default_space, load_space
from .store import ResultStore, read_csv

__all__ = [
    "Space",
    "Point",
    "Invalid",
    "TensorSettings",
    "WORKLOADS",
    "load_space",
    "default_space",
    "EvalSettings",
    "evaluate",
    "cost_of",
    "baselines",
    "sweep",
    "run",
    "SweepSummary",
    "ResultStore",
    "read_csv",
    "pareto_mask",
    "pareto_rows",
    "parse_objective",
    "report",
    "Report",
    "print_rows",
    "short_label",
]
