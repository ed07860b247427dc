"""Run a sweep: expand the space, evaluate the unfinished points, append each row on arrival.

Executors: in-process (``jobs=1``), a local process pool (``jobs=N``, default), or a Dask
distributed cluster (``scheduler="tcp://..."`` or ``dask_local=N`` for a LocalCluster).  A
task is one (spec, matmul options) with all its targets: it receives plain dicts and returns
their rows.  Only this process writes the result files, so every executor produces the same
rows (apart from :data:`~.evaluation.PROVENANCE`).

Trust: the directory is locked for the sweep (:mod:`.lock`); ``resume`` checks the stored
space and settings (:data:`SETTINGS_FILE`) and lists the differences instead of mixing rows;
``overwrite`` deletes the old results only when the first new row exists; Ctrl-C / SIGTERM
end the workers at once (:mod:`.workers`), keep every finished row and raise
:class:`~peforge.errors.Interrupted` saying how to resume.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import CorruptFileError, Interrupted, ResultsConflictError, ToolUnavailableError
from ..paths import output_dir
from .evaluation import EvalSettings, evaluate_dicts, prepare
from .lock import DirectoryLock
from .space import Point, Space
from .store import ResultStore, atomic_write
from .workers import interrupts, stop_pool
from .workers import pool as make_pool

__all__ = ["sweep", "run", "SweepSummary", "SETTINGS_FILE"]

#: What a sweep directory was measured with; ``--resume`` refuses to mix other settings in.
SETTINGS_FILE = "settings.json"
#: Files of an earlier sweep that ``overwrite`` replaces (once the first new row exists).
_PREVIOUS = ("results.jsonl", "results.csv", "space.json", "invalid.json", SETTINGS_FILE, "sweep.json", "report.html")


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


class _Tasks:
    """Row lists of the tasks in completion order, from this process, a process pool or Dask;
    :meth:`stop` ends the workers at once and returns the rows that finished meanwhile."""

    def __init__(
        self, tasks: list[list[dict[str, Any]]], settings: EvalSettings, executor: Optional[ProcessPoolExecutor]
    ) -> None:
        self.settings = settings.to_dict()
        self.executor = executor
        self.tasks = tasks
        # with a pool every task is submitted now, so the workers fork before any thread starts
        self.pending: set[Future] = (
            {executor.submit(evaluate_dicts, t, self.settings) for t in tasks} if executor is not None else set()
        )

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self.executor is None:
            for t in self.tasks:
                yield evaluate_dicts(t, self.settings)
            return
        while self.pending:
            done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            fut = next(iter(done))  # one at a time: the others stay pending (see stop)
            self.pending.discard(fut)
            yield fut.result()

    def stop(self) -> list[list[dict[str, Any]]]:
        """End the workers; the rows of tasks that had finished but were not yet consumed."""
        if self.executor is None:
            return []
        finished = [f for f in self.pending if f.done() and not f.cancelled() and f.exception() is None]
        stop_pool(self.executor)
        return [f.result() for f in finished]


def _dask(
    tasks: list[list[dict[str, Any]]], settings: EvalSettings, scheduler: Optional[str], dask_local: Optional[int]
) -> Iterator[list[dict[str, Any]]]:
    from distributed import Client, LocalCluster, as_completed

    with ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except (OSError, TimeoutError, ValueError) as err:
                raise ToolUnavailableError(
                    f"--scheduler {scheduler!r}: cannot reach the Dask scheduler ({err}); "
                    f"start one with `dask scheduler` or run locally with --dask-local N "
                    f"or --jobs N"
                ) from None
        else:
            cluster = stack.enter_context(
                LocalCluster(n_workers=dask_local or 1, threads_per_worker=1, processes=True, dashboard_address=None)
            )
            client = stack.enter_context(Client(cluster))
        s = settings.to_dict()
        futures = [
            client.submit(evaluate_dicts, t, s, key=f"peforge-dse-{i}-{t[0]['spec']['family']}", pure=False)
            for i, t in enumerate(tasks)
        ]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel([f for f in futures if not f.done()])


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def _diff(stored: Any, given: Any, path: str = "") -> list[str]:
    """Human-readable differences between two JSON values (``path: stored X, given Y``)."""
    if isinstance(stored, dict) and isinstance(given, dict):
        out: list[str] = []
        for k in sorted(set(stored) | set(given), key=str):
            sub = f"{path}.{k}" if path else str(k)
            if k not in stored:
                out.append(f"{sub}: not in the stored sweep, given {given[k]!r}")
            elif k not in given:
                out.append(f"{sub}: stored {stored[k]!r}, not given")
            else:
                out += _diff(stored[k], given[k], sub)
        return out
    if (
        isinstance(stored, list)
        and isinstance(given, list)
        and len(stored) == len(given)
        and any(isinstance(x, dict) for x in stored + given)
    ):
        return [d for i, (a, b) in enumerate(zip(stored, given)) for d in _diff(a, b, f"{path}[{i}]")]
    return [] if stored == given else [f"{path}: stored {stored!r}, given {given!r}"]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(
            path, f"not valid JSON ({err}); the sweep directory is damaged: use --overwrite or another -o directory"
        ) from None


def _record(space: Space, settings: EvalSettings) -> dict[str, Any]:
    """What :data:`SETTINGS_FILE` stores: the space and the evaluation settings."""
    stored = space.to_dict()
    evaluation = {k: v for k, v in settings.to_dict().items() if k != "space_digest" and k not in stored}
    return _jsonable({"space": stored, "evaluation": evaluation})


def _check_resume(out: Path, space: Space, settings: EvalSettings, rows: list[dict[str, Any]]) -> None:
    """Refuse to resume into results measured with another space or other settings."""
    given = _record(space, settings)
    path = out / SETTINGS_FILE
    if path.is_file():
        stored = _read_json(path)
        if not isinstance(stored, dict):
            raise CorruptFileError(path, "expected a JSON object with 'space' and 'evaluation'")
    elif (out / "space.json").is_file():  # a directory written before settings.json existed
        stored = {
            "space": _read_json(out / "space.json"),
            "evaluation": dict(given["evaluation"], synth=any(k.startswith("synth_") for r in rows for k in r)),
        }
    else:
        raise ResultsConflictError(
            f"--resume: {str(out)!r} holds {len(rows)} results but no {SETTINGS_FILE} or "
            f"space.json saying what they measured: use --overwrite or another -o directory"
        )
    diffs = _diff(stored.get("space"), given["space"]) + _diff(stored.get("evaluation", {}), given["evaluation"])
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise ResultsConflictError(
            f"--resume: the space or settings differ from those of the {len(rows)} results in {str(out)!r}: "
            f"{shown}. Resume with the same space and options, or use --overwrite or another -o directory"
        )


def _discard_previous(out: Path) -> None:
    for name in _PREVIOUS:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "plots", ignore_errors=True)


def _check_options(
    resume: bool, overwrite: bool, jobs: Optional[int], scheduler: Optional[str], dask_local: Optional[int]
) -> None:
    if resume and overwrite:
        raise ValueError(
            "resume and overwrite (--resume, --overwrite) exclude each other: --resume keeps the "
            "finished results, --overwrite replaces them"
        )
    most = max(8, 4 * (os.cpu_count() or 1))  # more processes than that only thrash
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= most):
        raise ValueError(f"jobs={jobs!r}: allowed a positive integer up to {most} (4 x the CPU count)")
    if dask_local is not None and (
        isinstance(dask_local, bool) or not isinstance(dask_local, int) or not 1 <= dask_local <= most
    ):
        raise ValueError(
            f"dask_local={dask_local!r}: allowed a positive number of workers up to {most} (4 x the CPU count)"
        )
    if scheduler is not None and (
        not isinstance(scheduler, str) or not scheduler.startswith(("tcp://", "tls://", "inproc://", "ucx://"))
    ):
        raise ValueError(f"scheduler={scheduler!r}: allowed a Dask address such as tcp://host:8786")
    chosen = [
        n
        for n, v in (
            ("jobs (--jobs)", jobs),
            ("scheduler (--scheduler)", scheduler),
            ("dask_local (--dask-local)", dask_local),
        )
        if v is not None
    ]
    if len(chosen) > 1:
        raise ValueError(
            f"{' and '.join(chosen)} exclude each other: pick one executor (--jobs N for local "
            f"processes, --dask-local N for a Dask LocalCluster, --scheduler ADDR for a cluster)"
        )


def sweep(
    space: Space,
    out_dir: Path | str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    jobs: Optional[int] = None,
    scheduler: Optional[str] = None,
    dask_local: Optional[int] = None,
    synth: bool = False,
    progress: bool = True,
    console: Optional[Console] = None,
    on_row: Optional[Callable[[dict[str, Any]], None]] = None,
    resume_hint: Optional[str] = None,
) -> SweepSummary:
    """Evaluate every point of ``space`` into ``out_dir`` (see :class:`~.store.ResultStore`).

    Parameters
    ----------
    resume : bool
        Keep the finished rows of an earlier (possibly killed) sweep and skip their points;
        points whose row recorded an error are evaluated again (the new row replaces it).
        The space and settings must be those of the stored results
        (:class:`~peforge.errors.ResultsConflictError` lists the differences otherwise).
    overwrite : bool
        Replace earlier results.  They stay untouched until the first new row exists (an
        interrupted or failing sweep loses nothing).  Without ``resume`` or ``overwrite`` a
        directory that already holds results is an error, so finished work is never dropped
        by accident.
    jobs : int, optional
        Local worker processes (default: CPU count; 1 runs in this process).
    scheduler, dask_local : str, int, optional
        Run on the Dask cluster at ``scheduler`` or on a new LocalCluster of ``dask_local``
        worker processes instead of the local pool.
    synth : bool
        Add Yosys / nextpnr numbers (cached) to every row.
    resume_hint : str, optional
        How to continue after an interrupt (the CLI passes the command line).

    Raises
    ------
    ValueError
        Bad options, or a space without a single valid point (nothing is written then).
    peforge.errors.LockedError
        Another sweep is running in ``out_dir``.
    peforge.errors.Interrupted
        Ctrl-C or SIGTERM: the workers are stopped, every finished row is kept, and the
        message says how to resume (a ``KeyboardInterrupt``).
    """
    t0 = time.perf_counter()
    _check_options(resume, overwrite, jobs, scheduler, dask_local)
    points, invalid = space.expand()
    if not points:
        reasons = "; ".join(f"{b.family} {b.params}: {b.reason}" for b in invalid[:3])
        raise ValueError(
            f"space {space.name!r} has no valid design point ({len(invalid)} invalid: {reasons}"
            f"{'; ...' if len(invalid) > 3 else ''}); nothing was evaluated or written"
        )
    out = output_dir(out_dir, "results directory (-o)")
    console = console or Console(stderr=True)
    settings = _settings(space, synth)
    with DirectoryLock(out) as lock:
        note = lock.stale_note()
        if note:
            console.print(f"[yellow]note:[/] {note}")
        store = ResultStore(out)
        existing = store.rows()
        for problem in store.problems:
            console.print(f"[yellow]warning:[/] {problem}")
        if existing and not (resume or overwrite):
            raise ResultsConflictError(
                f"out_dir={str(out)!r} already holds {len(existing)} results: pass resume=True (--resume) to "
                f"continue or overwrite=True (--overwrite) to replace them"
            )
        if resume and existing:
            _check_resume(out, space, settings, existing)
        if overwrite:
            existing = []
        done = {r["key"] for r in existing if r.get("status") == "ok"}
        todo = [p for p in points if p.key not in done]

        def write_meta() -> None:
            atomic_write(out / "space.json", json.dumps(space.to_dict(), indent=2, sort_keys=True, default=str))
            atomic_write(out / SETTINGS_FILE, json.dumps(_record(space, settings), indent=2, sort_keys=True))
            atomic_write(out / "invalid.json", json.dumps([asdict(i) for i in invalid], indent=2, default=str))

        if not overwrite:
            write_meta()
        for bad in invalid:
            console.print(f"[yellow]skipped invalid point[/] {bad.family} {bad.params}: {bad.reason}")
        executor = (
            ("dask:" + scheduler)
            if scheduler
            else (f"dask-local:{dask_local}" if dask_local else f"local:{jobs or os.cpu_count() or 1}")
        )
        summary = SweepSummary(
            str(out), len(points), 0, len(points) - len(todo), [asdict(i) for i in invalid], 0, 0.0, executor
        )
        if todo:

            def replace_previous() -> None:
                _discard_previous(out)
                write_meta()

            _evaluate(
                todo,
                space,
                settings,
                store,
                summary,
                console,
                progress,
                on_row,
                replace_previous=replace_previous if overwrite else None,
                lock_fd=lock.fd,
                jobs=jobs,
                scheduler=scheduler,
                dask_local=dask_local,
                resume_hint=resume_hint or f"dse.sweep(space, {str(out)!r}, resume=True)",
            )
        elif not store.csv.exists():
            store.write_csv()
        summary.seconds = round(time.perf_counter() - t0, 3)
        atomic_write(out / "sweep.json", json.dumps(summary.to_dict(), indent=2, default=str))
    return summary


def _evaluate(
    todo: list[Point],
    space: Space,
    settings: EvalSettings,
    store: ResultStore,
    summary: SweepSummary,
    console: Console,
    progress: bool,
    on_row: Optional[Callable[[dict[str, Any]], None]],
    *,
    replace_previous: Optional[Callable[[], None]],
    lock_fd: int,
    jobs: Optional[int],
    scheduler: Optional[str],
    dask_local: Optional[int],
    resume_hint: str,
) -> None:
    """Evaluate ``todo`` and append each row on arrival; on Ctrl-C / SIGTERM stop the workers,
    keep every finished row and raise :class:`~peforge.errors.Interrupted`."""
    pending_replace = [replace_previous] if replace_previous is not None else []

    def keep(row: dict[str, Any]) -> None:
        if pending_replace:  # overwrite: the old results go only once a new row exists
            pending_replace.pop()()
        store.append(row)
        summary.evaluated += 1
        summary.errors += row.get("status") != "ok"
        if on_row is not None:
            on_row(row)

    use_dask = bool(scheduler or dask_local)
    tasks = _tasks(todo)
    results: Any = None
    with interrupts():
        try:
            if progress and any(w in settings.workloads for w in ("mlp", "cnn")):
                console.print("[dim]preparing workloads (the digits networks are trained once and cached)...[/]")
            prepare(settings)  # train / load the networks once, before the workers need them
            pool = None if use_dask else make_pool(min(jobs or os.cpu_count() or 1, len(tasks)), (lock_fd,))
            results = _dask(tasks, settings, scheduler, dask_local) if use_dask else _Tasks(tasks, settings, pool)
            columns = (
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console, disable=not progress) as bar:
                task = bar.add_task(f"sweep {space.name}", total=len(todo))
                for rows in results:
                    for row in rows:
                        keep(row)
                        bar.update(task, advance=1, description=f"{row['label'][:40]}")
            if pool is not None:
                pool.shutdown(wait=True)
        except KeyboardInterrupt as stop:
            late = results.stop() if isinstance(results, _Tasks) else []
            if results is not None and not isinstance(results, _Tasks):
                results.close()  # Dask: cancel the futures, close the client / cluster
            for rows in late:
                for row in rows:
                    keep(row)
            kept = len(store.rows()) if not pending_replace else 0
            why = str(stop) or "Ctrl-C"
            if pending_replace:
                raise Interrupted(
                    f"stopped by {why} before the first new point finished: the previous results in "
                    f"{str(store.dir)!r} are untouched"
                ) from None
            raise Interrupted(
                f"stopped by {why}: {summary.evaluated} point(s) finished in this run, {kept} of "
                f"{summary.points} in {str(store.dir)!r} are kept; continue with: {resume_hint}"
            ) from None
        except BrokenExecutor:
            if isinstance(results, _Tasks):
                results.stop()
            raise RuntimeError(
                f"a worker process died (killed, or out of memory); the {summary.evaluated} point(s) "
                f"finished in this run are kept in {str(store.dir)!r}; continue with: "
                f"{resume_hint}"
            ) from None
        except BaseException:
            if isinstance(results, _Tasks):
                results.stop()
            raise


def run(space: Space, out_dir: Path | str, **kwargs: Any) -> list[dict[str, Any]]:
    """Sweep ``space`` into ``out_dir`` and return the rows of its points in declaration order.

    Keyword arguments go to :func:`sweep`; without ``resume=True`` earlier results are
    overwritten."""
    kwargs.setdefault("overwrite", not kwargs.get("resume", False))
    sweep(space, out_dir, **kwargs)
    rows = {r["key"]: r for r in ResultStore(out_dir).rows()}
    return [rows[p.key] for p in space.points() if p.key in rows]
