"""Pipelining directed by a clock target: the fewest pipeline registers that reach an Fmax goal.

:func:`pick_stages` prices every pipeline depth a spec offers with the cost model's delay
estimate (:func:`peforge.models.cost.estimate`: the slowest pipeline segment, calibrated on
nextpnr) and picks the smallest depth whose estimated Fmax meets the goal with a timing margin.  The depth options
are the spec's integer fields named in :data:`PIPELINE_FIELDS` (``stages``, and a read-out's
``readout_stages`` where a spec has one), each over its declared range: a family that grows a
new register option is priced with the others unchanged, and a combination the spec refuses
is left out.  Where the registers go within a depth is the family's fixed cut order
(``rtl/mac.py``, ``rtl/blockdot.py``).

A PE array (:class:`peforge.arrays.ArraySpec`) keeps its depth in two places: the PE inside it
(its pipeline fields, as above) and the array's own ``pipeline`` (registers that cut the drain's
OR tree).  The pick prices every combination of the two with the array cost model, whose delay
is the slowest segment of the PEs and of the array's own logic, and reports the PE's fields
and ``pipeline`` side by side.

The margin is what a synthesis engineer over-constrains the clock by: the estimate is off by
about its held-out error either way (a segment of a few LUT levels is mostly routing, which a
level count cannot see), so a depth is taken as meeting the goal only when its estimate reaches
``goal * (1 + margin)``.  By default the margin is the delay model's held-out median error on the
target (about 13% on ECP5); ``margin=0`` picks on the bare estimate.

When no depth reaches the goal with the margin, the pick is the fastest estimate and
:attr:`StagePick.limit` names the segment that bounds it.  That is usually the accumulate loop:
its register feeds back into its own logic, so no pipeline register can split it, and its delay
is the design's floor.  Among equally fast depths the pick takes the one with the fewest other
segments within the margin of the limit (any of those may be the real critical path), then the
fewest registers (a register that buys nothing only adds latency).  When the goal is missed it
then prices the accumulator options of the spec that shorten the loop
(:data:`ALTERNATIVES`: deferred rounding, exact accumulation, a carry-segmented loop) and says what they would reach.

    >>> from peforge.spec import IntMacSpec
    >>> pick = pick_stages(IntMacSpec("int8", "int8"), "ecp5", 100.0)
    >>> pick.spec.stages, pick.met        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Iterator

from . import params
from .models import cost
from .models.cost.components import Netlist
from .models.cost.model import segment_delays
from .spec import Spec

__all__ = [
    "PIPELINE_FIELDS",
    "ARRAY_PIPELINE_FIELDS",
    "ALTERNATIVES",
    "TARGETS",
    "Segment",
    "Candidate",
    "Alternative",
    "StagePick",
    "pick_stages",
    "check_goal",
    "check_margin",
    "default_margin",
]

#: Spec fields that set a pipeline depth (registers added, latency grows by each), in the
#: order the pick reports them.  A spec prices every combination of the ones it has.
PIPELINE_FIELDS = ("stages", "readout_stages")
#: Fields of a spec that nests a PE (a PE array) that set its own pipeline depth; the PE's own
#: :data:`PIPELINE_FIELDS` are priced with them.
ARRAY_PIPELINE_FIELDS = ("pipeline",)
#: Accumulator options that shorten a feedback loop: ``(field, value, wording)``.  One is
#: offered when the spec has the field, does not use the value already, and accepts it.
ALTERNATIVES: tuple[tuple[str, Any, str], ...] = (
    ("rounding", "deferred", "deferred rounding (exact window register, rounded once on the way out)"),
    ("acc", "exact", "exact accumulation (Kulisch register, never rounds)"),
    ("segment", 16, "carry-segmented accumulator (16-bit segment adders in the loop, carries resolved on read-out)"),
)
#: Targets with a delay model (xilinx: the iCE40 fit scaled by a speed ratio, uncalibrated).
TARGETS = ("ecp5", "ice40", "xilinx")


@dataclass(frozen=True)
class Segment:
    """One timed pipeline segment (logic between two registers) of a candidate.

    Members
    -------
    index, count : int
        Segment number (0: from the inputs) and the candidate's number of segments.
    delay_ns, fmax_mhz : float
        Its estimated delay and the clock it allows.
    lut_levels, carry_bits : float
        Its critical chain, as the delay model counts it.
    loop : bool
        It holds a feedback loop (an accumulator register feeding its own logic).
    """

    index: int
    count: int
    delay_ns: float
    fmax_mhz: float
    lut_levels: float
    carry_bits: float
    loop: bool
    part: str = ""

    def describe(self) -> str:
        """``the accumulate loop`` or ``pipeline segment i of n``, with its delay and Fmax (in
        an array: of its PE, or of the array's own logic)."""
        what = (
            "the accumulate loop (a feedback loop: no pipeline register can split it)"
            if self.loop
            else f"pipeline segment {self.index + 1} of {self.count} (no cut point of the family splits it further)"
        )
        if self.part:
            what = f"{self.part}'s {what.removeprefix('the ')}"
        return (
            f"{what}: est. {self.delay_ns:.2f} ns = {self.fmax_mhz:.1f} MHz "
            f"({self.lut_levels:g} LUT levels, {self.carry_bits:g} carry bits)"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One pipeline depth priced: its field values, the spec, and the segment that limits it."""

    fields: dict[str, int]
    spec: Spec
    fmax_mhz: float
    delay_ns: float
    limit: Segment
    #: The estimated Fmax of every timed segment (the limit's among them).
    segments_mhz: tuple[float, ...] = ()

    def near_critical(self, margin: float) -> int:
        """Segments other than the limit whose estimate lies within ``margin`` of it."""
        band = self.fmax_mhz * (1.0 + margin)
        return max(sum(f < band for f in self.segments_mhz) - 1, 0)

    @property
    def depth(self) -> int:
        """Registers the pipeline fields add (the latency over the shallowest candidate)."""
        return sum(self.fields.values())

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.fields.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.fields,
            "latency": self.spec.latency,
            "fmax_mhz": self.fmax_mhz,
            "delay_ns": self.delay_ns,
            "limit": self.limit.to_dict(),
        }


@dataclass(frozen=True)
class Alternative:
    """An accumulator option that shortens the loop, priced at its own best pipeline depth."""

    option: str
    wording: str
    spec: Spec
    fmax_mhz: float
    fields: dict[str, int]
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "wording": self.wording,
            "spec": self.spec.name,
            "fmax_mhz": self.fmax_mhz,
            **self.fields,
            "met": self.met,
        }


@dataclass(frozen=True)
class StagePick:
    """The result of :func:`pick_stages`.

    Members
    -------
    target : str
        Cost-model target the delays are estimated for.
    fmax_goal_mhz : float
        The clock goal.
    candidates : tuple of Candidate
        Every depth priced, shallowest first.
    pick : Candidate
        The smallest depth whose estimate meets the goal, else the fastest estimate.
    met : bool
        The pick's estimate meets the goal.
    margin : float
        The timing margin the pick applied (a depth meets when its estimate reaches
        ``fmax_goal_mhz * (1 + margin)``).
    alternatives : tuple of Alternative
        When not met: accumulator options that shorten the limiting loop, with their estimates.
    delay_error : dict
        The delay model's held-out error against nextpnr on this target (median, p90, max).
    """

    target: str
    fmax_goal_mhz: float
    candidates: tuple[Candidate, ...]
    pick: Candidate
    met: bool
    alternatives: tuple[Alternative, ...] = ()
    delay_error: dict[str, Any] = dataclasses.field(default_factory=dict)
    margin: float = 0.0

    @property
    def spec(self) -> Spec:
        """The picked spec (the input spec with its pipeline fields set)."""
        return self.pick.spec

    @property
    def limit(self) -> Segment:
        """The segment that bounds the pick's Fmax."""
        return self.pick.limit

    def message(self) -> str:
        """What was picked and, when the goal is out of reach, what limits it and what would help."""
        p = self.pick
        head = (
            f"{self.spec.name}: {p.label()} (latency {p.spec.latency}) estimated {p.fmax_mhz:.1f} MHz on {self.target}"
        )
        if self.met:
            guarded = self.fmax_goal_mhz * (1.0 + self.margin)
            if self.margin and p.fmax_mhz < guarded:
                return (
                    f"{head}: meets the {self.fmax_goal_mhz:g} MHz goal, but not with the "
                    f"{self.margin:.0%} timing margin ({guarded:.1f} MHz): the fastest depth"
                )
            return f"{head}: meets the {self.fmax_goal_mhz:g} MHz goal" + (
                f" with a {self.margin:.0%} timing margin" if self.margin else ""
            )
        lines = [
            f"{head}: no pipeline depth reaches {self.fmax_goal_mhz:g} MHz "
            f"({self.fmax_goal_mhz - p.fmax_mhz:.1f} MHz short); limited by {self.limit.describe()}"
        ]
        for alt in self.alternatives:
            verdict = "meets the goal" if alt.met else "still short"
            lines.append(
                f"  {alt.wording} ({alt.option}): est. {alt.fmax_mhz:.1f} MHz at "
                f"{', '.join(f'{k}={v}' for k, v in alt.fields.items())} ({verdict})"
            )
        if self.limit.loop and not self.alternatives:
            lines.append("  no accumulator option of this spec shortens the loop")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The manifest record (``pipelining``): target, goal, pick, estimate, candidates, limit."""
        return {
            "target": self.target,
            "fmax_goal_mhz": self.fmax_goal_mhz,
            "margin": self.margin,
            **self.pick.fields,
            "fmax_estimate_mhz": self.pick.fmax_mhz,
            "delay_estimate_ns": self.pick.delay_ns,
            "met_estimate": self.met,
            "limit": self.limit.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "alternatives": [a.to_dict() for a in self.alternatives],
            "delay_model_error": self.delay_error,
        }

    def confirmed(self, achieved_mhz: float, device: str) -> dict[str, Any]:
        """:meth:`to_dict` with place-and-route's achieved Fmax on ``device``: whether it meets
        the goal, the distance to it, and the estimate's error against it."""
        return {
            **self.to_dict(),
            "device": device,
            "fmax_achieved_mhz": achieved_mhz,
            "met": achieved_mhz >= self.fmax_goal_mhz,
            "distance_mhz": round(achieved_mhz - self.fmax_goal_mhz, 1),
            "estimate_error": round(self.pick.fmax_mhz / achieved_mhz - 1.0, 4),
        }

    def confirmation(self, achieved_mhz: float, device: str) -> str:
        """One line: achieved against the goal (met, or how far short) and against the estimate."""
        r = self.confirmed(achieved_mhz, device)
        verdict = "met" if r["met"] else f"NOT met ({-r['distance_mhz']:.1f} MHz short)"
        return (
            f"nextpnr on {device}: {achieved_mhz:.1f} MHz achieved for the {self.fmax_goal_mhz:g} MHz goal: "
            f"{verdict}; estimate {self.pick.fmax_mhz:.1f} MHz ({r['estimate_error']:+.0%} vs achieved)"
        )


def check_goal(target: str, fmax_mhz: float) -> None:
    """ValueError naming the bad target or goal and what is allowed."""
    if target not in TARGETS:
        raise ValueError(
            f"--fmax needs a target with a delay model: target {target!r} is not one of {', '.join(TARGETS)}"
        )
    if isinstance(fmax_mhz, bool) or not isinstance(fmax_mhz, (int, float)) or not 0 < fmax_mhz < 10_000:
        raise ValueError(f"--fmax {fmax_mhz!r}: allowed a clock goal in MHz, above 0 and below 10000")


def _field_range(spec: Spec, name: str) -> range:
    """The declared integer range of pipeline field ``name`` (a named bound read off the spec)."""
    for f, p in params.params(type(spec)):
        if f.name == name:
            lo, hi = (getattr(spec, b) if isinstance(b, str) else b for b in (p.lo, p.hi))
            return range(int(lo or 0), int(hi if hi is not None else 0) + 1)
    raise KeyError(name)


def _nests(spec: Spec) -> bool:
    """A spec that holds a PE spec (``pe``): a PE array."""
    return bool(getattr(spec, "nests_pe", False))


def _variants(spec: Spec) -> Iterator[tuple[dict[str, int], Spec]]:
    """Every combination of the spec's pipeline fields over their ranges that the spec accepts
    (an array: its PE's fields and its own :data:`ARRAY_PIPELINE_FIELDS`)."""
    if _nests(spec):
        array: Any = spec  # an ArraySpec (a Spec has no pe field to type it with)
        own = ARRAY_PIPELINE_FIELDS
        for pe_fields, pe_variant in _variants(array.pe):
            for values in itertools.product(*(_field_range(spec, n) for n in own)):
                try:
                    variant = dataclasses.replace(array, pe=pe_variant, **dict(zip(own, values)))
                except ValueError:
                    continue
                yield {**pe_fields, **dict(zip(own, values))}, variant
        return
    names = [n for n in PIPELINE_FIELDS if n in {f.name for f in dataclasses.fields(spec)}]
    for values in itertools.product(*(_field_range(spec, n) for n in names)):
        fields = dict(zip(names, values))
        try:
            variant = dataclasses.replace(spec, **fields)
        except ValueError:  # e.g. read-out registers without a read-out
            continue
        # a derived field (None -> its default) reads back as what the spec made of it; one that
        # reads back as None does not apply to this spec (read-out registers without a read-out)
        yield {n: int(v) for n in names if (v := getattr(variant, n)) is not None}, variant


def _segments(net: Netlist, target: str, part: str = "") -> Iterator[Segment]:
    """Every timed segment of ``net`` and of the netlists it includes (a PE array's PEs)."""
    delays = segment_delays(net, target)
    count = net.segment + 1
    for seg, delay in delays.items():
        lut, carry = net.depth.get(seg, [0.0, 0.0])
        fmax = round(1000.0 / delay, 1) if delay > 0 else float("inf")
        yield Segment(seg, count, round(delay, 3), fmax, round(lut, 2), round(carry, 2), seg in net.loops, part)
    for sub, n, _family in net.subs:
        if n > 0:  # a negative count takes logic off (its delay is not the design's)
            yield from _segments(sub, target, "the PE")


def _price(fields: dict[str, int], spec: Spec, target: str) -> Candidate:
    net = cost.netlist(spec)
    segs = list(_segments(net, target, "the array" if net.subs else ""))
    # the slowest segment; among equals the array's own before its PE's, in segment order
    worst = max(segs, key=lambda s: s.delay_ns) if segs else Segment(0, 1, 0.0, float("inf"), 0.0, 0.0, False)
    return Candidate(fields, spec, worst.fmax_mhz, worst.delay_ns, worst, tuple(s.fmax_mhz for s in segs))


def _candidates(spec: Spec, target: str) -> tuple[Candidate, ...]:
    seen: dict[Spec, Candidate] = {}
    for fields, variant in _variants(spec):
        if variant not in seen:
            seen[variant] = _price(fields, variant, target)
    if not seen:
        raise ValueError(f"{spec.name}: no pipeline depth of fields {PIPELINE_FIELDS} is valid for this spec")
    return tuple(sorted(seen.values(), key=lambda c: (c.depth, tuple(c.fields.values()))))


def _choose(candidates: tuple[Candidate, ...], goal: float, margin: float = 0.0) -> tuple[Candidate, bool]:
    """The fewest registers whose estimate meets ``goal`` with ``margin``; else the fastest
    (fewest near-critical segments, then fewest registers, among equals); and whether the
    chosen estimate meets the bare goal."""
    meeting = [c for c in candidates if c.fmax_mhz >= goal * (1.0 + margin)]
    if meeting:
        return min(meeting, key=lambda c: (c.depth, -c.fmax_mhz)), True
    best = max(c.fmax_mhz for c in candidates)
    fastest = [c for c in candidates if c.fmax_mhz == best]
    pick = min(fastest, key=lambda c: (c.near_critical(margin), c.depth))
    return pick, pick.fmax_mhz >= goal


def _alternatives(spec: Spec, target: str, goal: float, margin: float = 0.0) -> tuple[Alternative, ...]:
    """The accumulator options of ``spec`` (an array: of its PE) priced at their best depth."""
    array: Any = spec
    inner: Spec = array.pe if _nests(spec) else spec
    names = {f.name for f in dataclasses.fields(inner)}
    flags = {o.name: o.flag for o in params.cli_options(type(inner))}
    out = []
    for name, value, wording in ALTERNATIVES:
        if name not in names or getattr(inner, name) == value:
            continue
        try:
            other = dataclasses.replace(inner, **{name: value})
            if _nests(spec):
                other = dataclasses.replace(array, pe=other)
        except ValueError:  # the spec does not offer it (e.g. exact accumulation of a float block sum)
            continue
        best, met = _choose(_candidates(other, target), goal, margin)
        out.append(
            Alternative(f"{flags.get(name, '--' + name)} {value}", wording, best.spec, best.fmax_mhz, best.fields, met)
        )
    return tuple(out)


def pick_stages(spec: Spec, target: str, fmax_mhz: float, margin: float | None = None) -> StagePick:
    """The smallest pipeline depth of ``spec`` whose estimated Fmax on ``target`` meets
    ``fmax_mhz`` with ``margin`` (see the module docstring); the other fields of ``spec`` are kept.

    Parameters
    ----------
    spec : Spec
        Any PE spec; its pipeline fields (:data:`PIPELINE_FIELDS`) are what the pick sets.  A
        PE array: its PE's pipeline fields and its own (:data:`ARRAY_PIPELINE_FIELDS`).
    target : str
        ``ecp5``, ``ice40`` or ``xilinx`` (:data:`TARGETS`).
    fmax_mhz : float
        The clock goal in MHz.
    margin : float, optional
        Timing margin, a fraction (0.1: the estimate must reach 1.1x the goal).  Default: the
        delay model's held-out median error on ``target`` (:func:`default_margin`).
    """
    check_goal(target, fmax_mhz)
    m = default_margin(target) if margin is None else check_margin(margin)
    candidates = _candidates(spec, target)
    pick, met = _choose(candidates, float(fmax_mhz), m)
    alts = () if met or not pick.limit.loop else _alternatives(spec, target, float(fmax_mhz), m)
    err = cost.estimate(pick.spec, target).error.get("delay_ns", {})
    return StagePick(target, float(fmax_mhz), candidates, pick, met, alts, dict(err), m)


def default_margin(target: str) -> float:
    """The delay model's held-out median relative error on ``target`` (0 when uncalibrated)."""
    from .spec import IntMacSpec

    err = cost.estimate(IntMacSpec("int8", "int8"), target).error.get("delay_ns", {})
    median = err.get("median")
    return round(float(median), 4) if isinstance(median, (int, float)) and median == median else 0.0


def check_margin(margin: float) -> float:
    """ValueError naming a bad margin and what is allowed."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 <= margin < 1.0:
        raise ValueError(f"--margin {margin!r}: allowed a fraction of the clock goal, 0 <= margin < 1 (0.1 = 10%)")
    return float(margin)
