"""Run a sweep: expand the space, evaluate the unfinished points, append each row on arrival.

Executors: in-process (``jobs=1``), a local process pool (``jobs=N``, default), or a Dask
distributed cluster (``scheduler="tcp://..."`` or ``dask_local=N`` for a LocalCluster).  A
task is one (spec, matmul options) with all its targets: it receives plain dicts and returns
their rows.  Only this process writes the result files, so every executor produces the same
rows (apart from :data:`~.evaluation.PROVENANCE`).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .evaluation import EvalSettings, evaluate_dicts, prepare
from .space import Point, Space
from .store import ResultStore, atomic_write

__all__ = ["sweep", "run", "SweepSummary"]


@dataclass
class SweepSummary:
    """What a :func:`sweep` call did."""

    out_dir: str
    points: int
    evaluated: int
    skipped: int
    invalid: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    executor: str = "local"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _settings(space: Space, synth: bool) -> EvalSettings:
    return EvalSettings(tuple(space.workloads), space.tensor, synth, space.digest)


def _tasks(todo: list[Point]) -> list[list[dict[str, Any]]]:
    """One task per distinct (spec, options): its targets share one quality measurement."""
    groups: dict[tuple[str, tuple], list[dict[str, Any]]] = {}
    for p in todo:
        groups.setdefault((p.spec.to_json(), p.options), []).append(p.to_dict())
    return list(groups.values())


def _local(tasks: list[list[dict[str, Any]]], settings: EvalSettings,
           pool: Optional[ProcessPoolExecutor]) -> Iterator[list[dict[str, Any]]]:
    """Row lists of ``tasks`` in completion order; with a pool every task is submitted now, so
    the workers are forked before the caller starts its progress thread."""
    s = settings.to_dict()
    if pool is None:
        return (evaluate_dicts(t, s) for t in tasks)
    pending = {pool.submit(evaluate_dicts, t, s) for t in tasks}

    def completed() -> Iterator[list[dict[str, Any]]]:
        nonlocal pending
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    return completed()


def _pool(jobs: int) -> Optional[ProcessPoolExecutor]:
    """A fork-based pool (created before the progress bar's thread starts): workers inherit the
    loaded modules and networks, and user scripts need no ``if __name__ == "__main__"`` guard."""
    if jobs <= 1:
        return None
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)


def _dask(tasks: list[list[dict[str, Any]]], settings: EvalSettings, scheduler: Optional[str],
          dask_local: Optional[int]) -> Iterator[list[dict[str, Any]]]:
    from distributed import Client, LocalCluster, as_completed

    with ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=dask_local or 1, threads_per_worker=1,
                                                       processes=True, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        s = settings.to_dict()
        futures = [client.submit(evaluate_dicts, t, s, key=f"peforge-dse-{i}-{t[0]['spec']['family']}", pure=False)
                   for i, t in enumerate(tasks)]
        for fut in as_completed(futures):
            yield fut.result()


def sweep(space: Space, out_dir: Path | str, *, resume: bool = False, overwrite: bool = False,
          jobs: Optional[int] = None, scheduler: Optional[str] = None, dask_local: Optional[int] = None,
          synth: bool = False, progress: bool = True, console: Optional[Console] = None,
          on_row: Optional[Callable[[dict[str, Any]], None]] = None) -> SweepSummary:
    """Evaluate every point of ``space`` into ``out_dir`` (see :class:`~.store.ResultStore`).

    Parameters
    ----------
    resume : bool
        Keep the finished rows of an earlier (possibly killed) sweep and skip their points;
        points whose row recorded an error are evaluated again (the new row replaces it).
    overwrite : bool
        Discard earlier results.  Without ``resume`` or ``overwrite`` a directory that already
        holds results is an error, so finished work is never dropped by accident.
    jobs : int, optional
        Local worker processes (default: CPU count; 1 runs in this process).
    scheduler, dask_local : str, int, optional
        Run on the Dask cluster at ``scheduler`` or on a new LocalCluster of ``dask_local``
        worker processes instead of the local pool.
    synth : bool
        Add Yosys / nextpnr numbers (cached) to every row.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    store = ResultStore(out)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs={jobs!r}: allowed a positive integer")
    if dask_local is not None and (not isinstance(dask_local, int) or dask_local < 1):
        raise ValueError(f"dask_local={dask_local!r}: allowed a positive number of workers")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise ValueError(f"scheduler={scheduler!r}: allowed a Dask address such as tcp://host:8786")
    existing = store.rows()
    if existing and not (resume or overwrite):
        raise ValueError(f"out_dir={str(out)!r} already holds {len(existing)} results: "
                         f"pass resume=True (--resume) to continue or overwrite=True (--overwrite)")
    if overwrite and not resume:
        store.clear()
        existing = []
    points, invalid = space.expand()
    done = {r["key"] for r in existing if r.get("status") == "ok"}
    todo = [p for p in points if p.key not in done]
    settings = _settings(space, synth)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "space.json", json.dumps(space.to_dict(), indent=2, sort_keys=True, default=str))
    atomic_write(out / "invalid.json", json.dumps([asdict(i) for i in invalid], indent=2, default=str))
    console = console or Console(stderr=True)
    for bad in invalid:
        console.print(f"[yellow]skipped invalid point[/] {bad.family} {bad.params}: {bad.reason}")
    executor = ("dask:" + scheduler) if scheduler else (f"dask-local:{dask_local}" if dask_local
                                                          else f"local:{jobs or os.cpu_count() or 1}")
    summary = SweepSummary(str(out), len(points), 0, len(points) - len(todo),
                           [asdict(i) for i in invalid], 0, 0.0, executor)
    if todo:
        prepare(settings)  # train / load the networks once, before the workers need them
        use_dask = bool(scheduler or dask_local)
        tasks = _tasks(todo)
        pool = None if use_dask else _pool(min(jobs or os.cpu_count() or 1, len(tasks)))
        results = (_dask(tasks, settings, scheduler, dask_local) if use_dask else _local(tasks, settings, pool))
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with ExitStack() as stack:
            if pool is not None:
                stack.enter_context(pool)
            bar = stack.enter_context(Progress(*columns, console=console, disable=not progress))
            task = bar.add_task(f"sweep {space.name}", total=len(todo))
            for rows in results:
                for row in rows:
                    store.append(row)
                    summary.evaluated += 1
                    summary.errors += row.get("status") != "ok"
                    bar.update(task, advance=1, description=f"{row['label'][:40]}")
                    if on_row is not None:
                        on_row(row)
    elif not store.csv.exists():
        store.write_csv()
    summary.seconds = round(time.perf_counter() - t0, 3)
    atomic_write(out / "sweep.json", json.dumps(summary.to_dict(), indent=2, default=str))
    return summary



def run(space: Space, out_dir: Path | str, **kwargs: Any) -> list[dict[str, Any]]:
    """Sweep ``space`` into ``out_dir`` and return the rows of its points in declaration order.

    Keyword arguments go to :func:`sweep`; without ``resume=True`` earlier results are
    overwritten."""
    kwargs.setdefault("overwrite", not kwargs.get("resume", False))
    sweep(space, out_dir, **kwargs)
    rows = {r["key"]: r for r in ResultStore(out_dir).rows()}
    return [rows[p.key] for p in space.points() if p.key in rows]
