"""``verify(spec)``: regression of a PE's RTL against the golden model on Verilator, any family.

The family supplies its vector sets (its ``vector_sets`` part in
:data:`peforge.families.FAMILIES`) and its golden model (``golden_run``); everything else is
this one shared path: the manifest's ports (:mod:`.ports`), the batch wrapper (:mod:`.wrapper`),
the cycle plan, encoding and vectorised check (:mod:`.batch`) and one simulator process per
regression (:mod:`.session`).  The sets are cut into chunks of about :data:`CHUNK_VECTORS`
vectors; while the simulator runs one chunk, the host computes golden values, encodes the next
chunk and checks the previous one.  ``progress(done, total)`` is called after each chunk.  On a
mismatch the first failing pass is re-run with waveforms (``<build>/waves/dump.vcd``, only
then, so the regression itself stays fast).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from peforge.families import family_of, load_layer

from . import accumulators, batch, vectors
from .batch import Bench
from .session import Session
from .vectors import VectorSet

__all__ = [
    "VerifyResult",
    "verify",
    "verify_sets",
    "mac_sets",
    "sim_jobs",
    "check_request",
    "CHUNK_VECTORS",
    "MAX_VECTORS",
]

#: Vectors per chunk (one simulator round trip): paces progress and overlap, bounds memory.
CHUNK_VECTORS = 1 << 17
#: Most random vectors (times lanes) one call generates up front; more: several seeds.
MAX_VECTORS = 1 << 22
_IN_FLIGHT = 2  # chunks queued in the simulator while the host works on an earlier one
_RUN_COUNTER = itertools.count()


def check_request(spec: Any, vectors: Any, seed: Any) -> None:
    """ValueError naming ``vectors`` or ``seed`` unless they ask for a verification that checks
    something and fits in memory (``vectors`` >= 1; vectors x lanes <= :data:`MAX_VECTORS`)."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise ValueError(
            f"vectors={vectors!r} (--vectors): allowed a positive number of random vectors "
            f"(a verification that checks nothing cannot pass)"
        )
    lanes = max(int(getattr(spec, "lanes", None) or 1), int(getattr(spec, "block", None) or 1))
    if vectors * lanes > MAX_VECTORS:
        raise ValueError(
            f"vectors={vectors!r} (--vectors): at most {MAX_VECTORS // lanes:,} for this "
            f"{lanes}-lane PE (all vectors are generated up front); run several --seed values "
            f"for more"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
        raise ValueError(f"seed={seed!r} (--seed): allowed an integer 0..2**63-1")


Progress = Callable[[int, int], None]


def sim_jobs() -> int:
    """Simulator processes per regression: ``$PEFORGE_SIM_JOBS`` if set, else 2 when the machine
    has a CPU to spare beyond the host's (two or more CPUs and a load average below
    ``CPUs - 1``), else 1.  On a loaded machine a second simulator only adds its start-up cost
    (measured: 1M vectors of an FP32 MAC at load 10 on 2 CPUs, 1 simulator 213k vectors/s,
    2 simulators 179k); inside a pytest-xdist worker it is always 1 (the workers fill the CPUs)."""
    env = os.environ.get("PEFORGE_SIM_JOBS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"PEFORGE_SIM_JOBS={env!r}: allowed a whole number >= 1")
        return int(env)
    cpus = os.cpu_count() or 1
    if os.environ.get("PYTEST_XDIST_WORKER") or cpus < 2:
        return 1
    return 2 if os.getloadavg()[0] < cpus - 1 else 1


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`.

    Members
    -------
    spec : str
        Spec (design) name.
    checked : int
        Vectors checked (each also checks timing; bubble holds and resets come on top).
    mismatches : int
        Disagreeing output samples (0 = pass).
    seconds : float
        Wall time, including vector generation, golden model, build and simulation.
    vectors_per_s : float
        ``checked`` / time from the simulator's start to the last check (build excluded; the
        golden model runs meanwhile).
    report : str
        Text summary; on failure the first 10 mismatches with inputs, expected and actual.
    build_seconds : float
        Time spent in (possibly cached) builds.
    waves : Path or None
        VCD of the first failing pass, when one was recorded.
    sets : dict
        Vectors per set name.
    """

    spec: str
    checked: int
    mismatches: int
    seconds: float
    vectors_per_s: float
    report: str
    build_seconds: float = 0.0
    waves: Path | None = None
    sets: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.checked > 0


def mac_sets(
    spec: Any, vectors_n: int = 100_000, exhaustive: bool = False, seed: int = 0, rows: int = vectors.DEFAULT_ROWS
) -> list[VectorSet]:
    """The minifloat MAC's regression sets (its family's ``vector_sets`` part): the corner sets,
    every code pair with ``exhaustive`` (first=1 and two-step chains), random chains, 1/8 of
    them with bubbles, laid out in :func:`~peforge.sim.vectors.layout_rows` rows."""
    rows = vectors.layout_rows(rows, spec.lanes)
    out: list[VectorSet] = list(vectors.corner_sets(spec, rows=rows))
    out += accumulators.mac_sets(spec, rows=rows, seed=seed)  # segmented / deferred accumulators only
    if exhaustive:
        out.append(vectors.exhaustive_pairs(spec, rows=rows))
        out.append(vectors.exhaustive_chains(spec, rows=rows, seed=seed))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(vectors.random_chains(spec, vectors_n - gap_n if vectors_n > 1 else 1, rows=rows, seed=seed))
        if vectors_n > 1:
            out.append(
                vectors.random_chains(
                    spec, gap_n, rows=rows, seed=seed + 1, gaps=True, max_steps=min(vectors.MAX_CHAIN, 512)
                )
            )
    return out


def _chunks(sets: Sequence[VectorSet], rows: int, bench: Bench) -> list[list[Any]]:
    """Group all passes into chunks of about CHUNK_VECTORS vectors."""
    plan = batch.make_plan(sets, rows, bench.ports)  # cheap: only the schedule
    return batch.consecutive_groups(plan.passes, lambda p: p.nrows * plan.layouts[p.set_index].steps, CHUNK_VECTORS)


def _run_dir(bld: Any, tag: str) -> Path:
    return bld.directory.parent / "runs" / f"{bld.name}-{tag}-{os.getpid()}-{next(_RUN_COUNTER)}"


def verify_sets(
    bench: Bench,
    sets: Sequence[VectorSet],
    *,
    name: str,
    seed: int = 0,
    progress: Progress | None = None,
    waves_on_failure: bool = True,
    rows: int | None = None,
    goldens: Sequence[Mapping[str, Any]] | None = None,
    jobs: int | None = None,
) -> VerifyResult:
    """Simulate ``sets`` on ``bench``'s PE and compare with its golden model (or ``goldens``,
    one raw dict per set as :func:`peforge.sim.batch.golden_for` returns), in ``jobs``
    simulator processes (default :func:`sim_jobs`; never more than there are chunks)."""
    t0 = time.perf_counter()
    rows = rows or batch.rows_for(bench.ports)
    total = sum(vs.size for vs in sets)
    if total == 0:
        raise ValueError(
            f"verify {name}: no vector to check (vectors=0 and no corner or exhaustive set): allowed vectors >= 1"
        )
    bld = batch.wrapper_build(bench, rows)
    build_s = bld.seconds
    names = [f.name for f in batch.checked_outputs(bench.ports)] + [batch.OUT_VALID]
    gold: dict[int, Mapping[str, Any]] = dict(enumerate(goldens)) if goldens is not None else {}
    checked = done = mism_count = 0
    mismatches: list[tuple[batch.Plan, list[batch.Mismatch]]] = []
    first_bad: tuple[batch.Plan, Any] | None = None
    if progress:
        progress(0, total)
    ts = time.perf_counter()
    chunks = _chunks(sets, rows, bench)
    jobs = max(1, min(sim_jobs() if jobs is None else jobs, len(chunks)))
    todo = iter(enumerate(chunks))
    in_flight: deque[tuple[batch.Plan, Session, int]] = deque()
    with contextlib.ExitStack() as stack:
        sessions = [stack.enter_context(Session(bld, _run_dir(bld, f"batch{j}"), batch.TB_MODULE)) for j in range(jobs)]

        def feed() -> None:
            item = next(todo, None)
            if item is not None:
                index, passes = item
                plan = batch.make_plan(sets, rows, bench.ports, passes=passes)
                session = sessions[index % jobs]
                in_flight.append((plan, session, session.submit(batch.encode(plan, seed + index), plan.cycles)))

        for _ in range(_IN_FLIGHT * jobs):
            feed()
        while in_flight:
            plan, session, key = in_flight.popleft()
            for si in sorted({p.set_index for p in plan.passes} - set(gold)):
                gold[si] = batch.golden_for(bench, sets[si])  # while the simulators run
            blob = session.result(key)
            feed()
            res = batch.check(
                plan, batch.decode(blob, plan, names), gold, limit=10 - sum(len(m) for _, m in mismatches)
            )
            checked += res.checked
            if res.mismatches and first_bad is None:
                bad = res.mismatches[0]
                first_bad = next(
                    (
                        (plan, p)
                        for p in plan.passes
                        if plan.sets[p.set_index].name == bad.set_name and p.row0 <= bad.row < p.row0 + p.nrows
                    ),
                    None,
                )
            mism_count += res.mismatch_count
            if res.mismatches:
                mismatches.append((plan, res.mismatches))
            done += plan.vectors
            if progress:
                progress(done, total)
    sim_s = time.perf_counter() - ts
    waves = None
    if first_bad is not None and waves_on_failure:
        waves, wbuild_s = _record_waves(bench, rows, first_bad, seed)
        build_s += wbuild_s
    seconds = time.perf_counter() - t0
    vps = checked / sim_s if sim_s > 0 else 0.0
    set_sizes: dict[str, int] = {}
    for vs in sets:
        set_sizes[vs.name] = set_sizes.get(vs.name, 0) + vs.size
    ports = bench.ports
    lines = [
        f"verify {name}: {bench.label}",
        f"  latency {ports.latency}"
        + (f", {ports.beats} beats per step" if ports.beats > 1 else "")
        + (f", one input every {ports.interval} cycles" if ports.interval > 1 else "")
        + f", {rows} PE copies per simulation, build {bld.seconds:.1f} s{' (cached)' if bld.cached else ''}"
        + (f", waveform build {build_s - bld.seconds:.1f} s" if build_s > bld.seconds else ""),
        "  sets: " + ", ".join(f"{k} {v}" for k, v in set_sizes.items()),
        f"  checked {checked} vectors in {seconds:.2f} s ({vps:,.0f} vectors/s simulated)",
        f"  {'PASS' if mism_count == 0 else 'FAIL'}: {mism_count} mismatching output samples",
    ]
    if mismatches:
        lines.append(f"  first {sum(len(m) for _, m in mismatches)} mismatches:")
        for plan, ms in mismatches:
            lines.append(batch.describe(bench, plan, ms))
    if waves is not None:
        lines.append(f"  waveform of the first failing pass: {waves}")
    return VerifyResult(name, checked, mism_count, seconds, vps, "\n".join(lines), build_s, waves, set_sizes)


def _record_waves(bench: Bench, rows: int, bad: tuple[batch.Plan, Any], seed: int) -> tuple[Path | None, float]:
    """Re-run only the failing pass with tracing on; return the VCD path and build time."""
    plan, p = bad
    try:
        bld = batch.wrapper_build(bench, rows, waves=True)
        single = batch.make_plan(plan.sets, rows, bench.ports, passes=[p])
        run_dir = bld.directory / "waves"
        with Session(bld, run_dir, batch.TB_MODULE, keep=True) as session:
            session.result(session.submit(batch.encode(single, seed), single.cycles))
        vcd = run_dir / "dump.vcd"
        return (vcd if vcd.exists() else None), bld.seconds
    except Exception:  # waveforms are a convenience; never mask the mismatch report
        return None, 0.0


def verify(
    spec: Any, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0, progress: Progress | None = None
) -> VerifyResult:
    """Verify the RTL of ``spec`` against its golden model on Verilator (any family).

    Parameters
    ----------
    spec : Spec
        The PE; its family's ``vector_sets`` part (:data:`peforge.families.FAMILIES`) gives the
        stimulus, its golden model the expected outputs, its manifest the ports and timing.
    vectors : int
        Random vectors (chain steps, blocks for a block-dot PE; some with in_valid bubbles).
    exhaustive : bool
        Add every operand-code pair (first=1 and as two-step chains) where the family has them.
    seed : int
        Seed of the random sets.
    progress : callable or None
        ``progress(done_vectors, total_vectors)`` after each chunk.
    """
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    own = family_of(spec).part("regression")
    if own is not None:  # a family with its own cycle-level testbench (PE arrays: tile streams)
        result: VerifyResult = own(spec, vectors=vectors, exhaustive=exhaustive, seed=seed, progress=progress)
        return result
    bench = batch.bench_for(spec)
    rows = batch.rows_for(bench.ports)
    sets = family_of(spec).part("vector_sets")(spec, vectors, exhaustive, seed, rows)
    return verify_sets(bench, sets, name=spec.name, seed=seed, progress=progress, rows=rows)


load_layer("sim")  # every family's vector sets (its sim module), or a FamilyError now
