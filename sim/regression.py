"""``verify(spec)``: regression of a PE's RTL against the golden model on Verilator.

Runs the named corner sets, ``vectors`` random vectors (chains of up to 4096 steps, one set
with bubble cycles) and, with ``exhaustive=True``, every operand-code pair (first=1 and as
two-step chains).  Each simulation run drives up to :data:`RUN_VECTORS` vectors through the
batch wrapper and is checked in one vectorised comparison; ``progress(done, total)`` is called
after each run.  On a mismatch the first failing pass is re-run with waveforms
(``<build>/waves/dump.vcd``, only then, so the regression itself stays fast).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from peforge.families import family_of, load_layer

from . import batch, vectors
from .batch import Target
from .vectors import VectorSet

__all__ = ["VerifyResult", "verify", "verify_mac", "verify_target", "vector_sets", "check_request",
           "RUN_VECTORS", "MAX_VECTORS"]

#: Vectors per simulation run (one simulator process); bounds memory and paces progress.
RUN_VECTORS = 1 << 19
#: Most random vectors (times lanes) one call generates up front; more: several seeds.
MAX_VECTORS = 1 << 22


def check_request(spec: Any, vectors: Any, seed: Any) -> None:
    """ValueError naming ``vectors`` or ``seed`` unless they ask for a verification that checks
    something and fits in memory (``vectors`` >= 1; vectors x lanes <= :data:`MAX_VECTORS`)."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise ValueError(f"vectors={vectors!r} (--vectors): allowed a positive number of random vectors "
                         f"(a verification that checks nothing cannot pass)")
    lanes = max(int(getattr(spec, "lanes", None) or 1), int(getattr(spec, "block", None) or 1))
    if vectors * lanes > MAX_VECTORS:
        raise ValueError(f"vectors={vectors!r} (--vectors): at most {MAX_VECTORS // lanes:,} for this "
                         f"{lanes}-lane PE (all vectors are generated up front); run several --seed values "
                         f"for more")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 1 << 63:
        raise ValueError(f"seed={seed!r} (--seed): allowed an integer 0..2**63-1")

Progress = Callable[[int, int], None]


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
        ``checked`` / time spent simulating and comparing (build excluded).
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


def vector_sets(spec: Any, vectors_n: int = 100_000, exhaustive: bool = False, seed: int = 0,
                rows: int = vectors.DEFAULT_ROWS, corners: bool = True) -> list[VectorSet]:
    """The standard regression sets for a MAC spec."""
    out: list[VectorSet] = []
    if corners:
        out += vectors.corner_sets(spec, rows=rows)
    if exhaustive:
        out.append(vectors.exhaustive_pairs(spec, rows=rows))
        out.append(vectors.exhaustive_chains(spec, rows=rows, seed=seed))
    if vectors_n > 0:
        gap_n = max(1, vectors_n // 8)
        out.append(vectors.random_chains(spec, vectors_n - gap_n if vectors_n > 1 else 1, rows=rows, seed=seed))
        if vectors_n > 1:
            out.append(vectors.random_chains(spec, gap_n, rows=rows, seed=seed + 1, gaps=True,
                                             max_steps=min(vectors.MAX_CHAIN, 512)))
    return out


def _runs(sets: Sequence[VectorSet], rows: int, iface: Any) -> list[list[batch._Pass]]:
    """Group all passes into runs of about RUN_VECTORS vectors."""
    plan = batch.make_plan(sets, rows, iface)  # cheap enough to lay out once for grouping
    runs: list[list[batch._Pass]] = [[]]
    count = 0
    for p in plan.passes:
        n = p.nrows * plan.layouts[p.set_index].steps
        if runs[-1] and count + n > RUN_VECTORS:
            runs.append([])
            count = 0
        runs[-1].append(p)
        count += n
    return runs


def verify_target(target: Target, sets: Sequence[VectorSet], *, name: str, seed: int = 0,
                  progress: Progress | None = None, waves_on_failure: bool = True,
                  rows: int | None = None, goldens: Sequence[dict] | None = None) -> VerifyResult:
    """Simulate ``sets`` on ``target`` and compare with its golden model (or ``goldens``)."""
    t0 = time.perf_counter()
    if sum(vs.size for vs in sets) == 0:
        raise ValueError(f"verify {name}: no vector to check (vectors=0 and no corner or exhaustive set): "
                         f"allowed vectors >= 1")
    rows = rows or batch.rows_for(target.iface)
    bld = batch.wrapper_build(target, rows)
    build_s = bld.seconds
    if goldens is None:
        goldens = [batch.golden_for(target, vs) for vs in sets]
    total = sum(vs.size for vs in sets)
    done = 0
    checked = 0
    mism_count = 0
    mismatches: list = []
    first_bad: tuple[batch.Plan, batch._Pass] | None = None
    sim_s = 0.0
    if progress:
        progress(0, total)
    for run_passes in _runs(sets, rows, target.iface):
        ts = time.perf_counter()
        plan = batch.make_plan(sets, rows, target.iface, seed=seed, passes=run_passes)
        raw = batch.simulate(target, plan, bld)
        res = batch.check(plan, raw, goldens, limit=10 - len(mismatches))
        sim_s += time.perf_counter() - ts
        checked += res.checked
        if res.mismatch_count and first_bad is None:
            bad = res.mismatches[0] if res.mismatches else None
            for p in plan.passes:
                if bad is not None and plan.sets[p.set_index].name == bad.set_name \
                        and p.row0 <= bad.row < p.row0 + p.nrows:
                    first_bad = (plan, p)
                    break
        mism_count += res.mismatch_count
        if res.mismatches:
            mismatches.append((plan, res.mismatches))
        done += plan.vectors
        if progress:
            progress(done, total)
    waves = None
    if first_bad is not None and waves_on_failure:
        waves, wbuild_s = _record_waves(target, rows, first_bad, seed)
        build_s += wbuild_s
    seconds = time.perf_counter() - t0
    vps = checked / sim_s if sim_s > 0 else 0.0
    set_sizes: dict[str, int] = {}
    for vs in sets:
        set_sizes[vs.name] = set_sizes.get(vs.name, 0) + vs.size
    lines = [f"verify {name}: {target.label}",
             f"  latency {target.iface.latency}, {rows} PE copies per simulation, "
             f"build {build_s:.1f} s{' (cached)' if bld.cached else ''}",
             "  sets: " + ", ".join(f"{k} {v}" for k, v in set_sizes.items()),
             f"  checked {checked} vectors in {seconds:.2f} s ({vps:,.0f} vectors/s simulated)",
             f"  {'PASS' if mism_count == 0 else 'FAIL'}: {mism_count} mismatching output samples"]
    if mismatches:
        lines.append(f"  first {sum(len(m) for _, m in mismatches)} mismatches:")
        for plan, ms in mismatches:
            lines.append(batch.describe(target, plan, ms))
    if waves is not None:
        lines.append(f"  waveform of the first failing pass: {waves}")
    return VerifyResult(name, checked, mism_count, seconds, vps, "\n".join(lines), build_s, waves, set_sizes)


def _record_waves(target: Target, rows: int, bad: tuple[batch.Plan, batch._Pass], seed: int) -> tuple[Path | None, float]:
    """Re-run only the failing pass with tracing on; return the VCD path and build time."""
    plan, p = bad
    try:
        bld = batch.wrapper_build(target, rows, waves=True)
        single = batch.make_plan(plan.sets, rows, target.iface, seed=seed, passes=[p])
        run_dir = bld.directory / "waves"
        batch.simulate(target, single, bld, run_dir=run_dir, keep=True)
        vcd = run_dir / "dump.vcd"
        return (vcd if vcd.exists() else None), bld.seconds
    except Exception:  # waveforms are a convenience; never mask the mismatch report
        return None, 0.0


def verify(spec: Any, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
           progress: Progress | None = None) -> VerifyResult:
    """Verify the RTL of ``spec`` against its golden model on Verilator (any family).

    Parameters
    ----------
    spec : Spec
        The PE; its family's ``verify`` part (:data:`peforge.families.FAMILIES`) runs the
        family's vector sets.
    vectors : int
        Random vectors (chain steps; some with in_valid bubbles).
    exhaustive : bool
        Add every operand-code pair (first=1 and as two-step chains) where the family has them.
    seed : int
        Seed of the random sets.
    progress : callable or None
        ``progress(done_vectors, total_vectors)`` after each simulation run.
    """
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    return family_of(spec).part("verify")(spec, vectors=vectors, exhaustive=exhaustive, seed=seed,
                                          progress=progress)


def verify_mac(spec: Any, vectors: int = 100_000, exhaustive: bool = False, seed: int = 0,
               progress: Progress | None = None) -> VerifyResult:
    """Regression of a :class:`~peforge.spec.MinifloatMacSpec` PE (see :func:`verify`)."""
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 0:
        raise ValueError(f"vectors={vectors!r} must be an int >= 0")
    target = batch.spec_target(spec)
    rows = batch.rows_for(target.iface)
    sets = vector_sets(spec, vectors, exhaustive, seed, rows=rows)
    return verify_target(target, sets, name=spec.name, seed=seed, progress=progress, rows=rows)


load_layer("sim")  # every family's verify part (its sim module), or a FamilyError now
