"""Accumulator architectures that pipeline: the carry-segmented fixed-point loop and its read-out.

Pure Python beside :mod:`peforge.spec`: the spec, the RTL generator, the golden model, the
cost model and the manifest all read the geometry from here.

Two architectures share one loop (FloPoCo's long accumulator, de Dinechin et al., FPT 2008):

* **segmented exact** (``MinifloatMacSpec(acc="exact", segment=s)``): the Kulisch register of
  ``exact_width`` bits is cut into carry segments of ``s`` bits.  Each cycle every segment
  adds its slice of the (sign-extended) addend and the carry its lower neighbour produced one
  cycle earlier; its own carry-out is registered for the segment above.  The loop is one
  ``s``-bit adder.  The register's value is ``sum(segments) + sum(pending carries)`` modulo
  ``2**width``; a read-out adds the pending carries (pipelined over ``readout_stages``
  registers), so ``acc`` shows exactly the plain Kulisch register's value, later by
  :attr:`AccumulatorPlan.readout_latency` cycles.
* **deferred rounding** (``rounding="deferred"``, float accumulators of ``mac`` and
  ``blockdot``): the running sum is kept exactly in a two's complement *window* register on
  the grid ``2**lsb_exp`` (the Xilinx floating-point accumulator's idea) built from the same
  segmented loop, and rounded to the accumulator format once, on the way out: resolve the
  pending carries, normalise the two's complement sum (leading-sign count), round to nearest
  even with the negation fused into the increment, all pipelined.
  The window holds ``-2**(msb_exp+1) <= sum < 2**(msb_exp+1)``; the loop register has one
  more (headroom) bit so the step that leaves the window is seen before it could wrap.

The read-out is a list of :class:`ReadoutStep` s of about one LUT level each, with an
estimated delay (LUT levels plus carry bits, weighted by :data:`CARRY_UNIT`);
``readout_stages`` registers are placed where they balance those delays, at the narrowest
points among equal placements (:func:`place_cuts`), the last one being the ``acc`` register
itself (``0`` is allowed for the segmented exact accumulator: ``acc`` is then the
combinational resolve of the loop registers).  ``readout_stages=None`` picks the fewest
registers that keep every read-out stage within :func:`stage_budget` (a later ``--fmax`` pick
can set it from a clock target: :func:`stages_for_budget`).

With beats > 1 (a block-dot PE with ``lanes < block``) a block step arrives at most every
``beats`` cycles.  The loop then runs every cycle with a zero addend between steps, so the
pending carries ripple up by themselves, one segment per idle cycle; the read-out samples the
register ``settle = min(segments - 1, beats - 1)`` cycles after the step and only resolves
the carries that cannot have settled yet (none when ``beats >= segments``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional, Sequence

__all__ = [
    "ROUNDINGS",
    "CARRY_UNIT",
    "MIN_BUDGET",
    "MAX_WINDOW_BITS",
    "MAX_READOUT_STAGES",
    "ReadoutStep",
    "AccumulatorPlan",
    "segment_widths",
    "readout_steps",
    "stage_delays",
    "place_cuts",
    "stages_for_budget",
    "stage_budget",
    "loop_delay",
    "plan",
    "normalise_facts",
    "lzc_levels",
    "sticky_levels",
    "mac_window",
    "blockdot_window",
    "blockdot_default_window",
    "blockdot_value_lsb_range",
    "blockdot_value_bits",
    "align_steps",
    "align_dropped",
    "DATA_EXP_RANGE",
    "CHAIN_BITS",
]

#: ``rounding`` values of the float-accumulating families.
ROUNDINGS = ("per-step", "deferred")
#: Delay of one carry bit relative to one LUT level with its routing, measured with nextpnr on
#: these accumulators alone on ECP5-25k: about 1.07 ns per LUT level, 0.075 ns per carry bit
#: and 2 ns of register overhead per stage.
CARRY_UNIT = 0.07
#: Smallest per-stage delay budget of the automatic read-out depth: three LUT levels (about
#: 200 MHz on ECP5-25k by the measurements above).
MIN_BUDGET = 3.0
#: Widest window a deferred accumulator may have.
MAX_WINDOW_BITS = 512
#: Most read-out registers a spec may ask for.
MAX_READOUT_STAGES = 24
#: Default block-dot window: exact for the element products of blocks whose absolute maxima
#: lie in ``2**DATA_EXP_RANGE[0] .. 2**DATA_EXP_RANGE[1]`` (so E8M0 scale exponents of
#: ``DATA_EXP_RANGE - emax_elem``, the OCP MX scale rule), with ``CHAIN_BITS`` bits of headroom
#: (a chain of 4096 block steps of the largest such blocks).
DATA_EXP_RANGE = (-8, 8)
CHAIN_BITS = 12


@dataclass(frozen=True)
class ReadoutStep:
    """One combinational step of the read-out between two possible register positions.

    Members
    -------
    name : str
        ``resolve<k>``, ``lzc<l>``, ``limit``, ``shift<j>``, ``sticky<l>``, ``inc``, ``mag``,
        ``pack``, ``final`` (:func:`readout_steps`); ``ashift<k>``, ``apost``
        (:func:`align_steps`).
    lut : float
        LUT levels.
    carry : int
        Carry-chain bits.
    chain : str
        Consecutive steps of one chain in one stage form one carry chain (one LUT level).
    side : float
        LUT levels of logic beside this step (from the step's inputs): the stage takes at
        least the delay before the step plus ``side``.
    bits : int
        Register bits a pipeline register after this step holds (the data still live).
    """

    name: str
    lut: float
    carry: int
    chain: str = ""
    side: float = 0.0
    bits: int = 0


@dataclass(frozen=True)
class AccumulatorPlan:
    """Geometry and read-out pipeline of a segmented-exact or deferred-rounding accumulator.

    Members
    -------
    kind : str
        ``segmented`` (exact, wraps like the Kulisch register) or ``deferred``.
    lsb_exp : int
        Exponent of the register's least significant bit.
    msb_exp : int
        ``deferred``: the window holds ``-2**(msb_exp+1) <= sum < 2**(msb_exp+1)``;
        ``segmented``: the exponent of the register's top bit below the sign.
    width : int
        Loop register bits (``deferred``: the window's ``msb_exp - lsb_exp + 2`` bits plus one
        headroom bit).
    segment : int
        Requested bits per carry segment (0: one carry chain).
    segment_widths : tuple of int
        Widths of the segments, least significant first.
    settle : int
        Idle cycles the read-out waits after a step (the carries settle in the loop).
    readout_stages : int
        Read-out registers, the ``acc`` register included.
    steps : tuple of ReadoutStep
    cuts : tuple of int
        Internal read-out registers: one after ``steps[i]`` for each ``i``.
    acc_format : FloatFormat or None
        ``deferred``: the format ``acc`` is rounded to.
    subnormals : bool
        ``deferred``: False flushes subnormal results to zero.
    align_steps : tuple of ReadoutStep
        Block-dot only: the window aligner in front of the loop (:func:`align_steps`).
    align_stages : int
        Registers of the aligner, the last one at the loop's input.
    align_cuts : tuple of int
        Internal aligner registers: one after ``align_steps[i]`` for each ``i``.
    """

    kind: str
    lsb_exp: int
    msb_exp: int
    width: int
    segment: int
    segment_widths: tuple[int, ...]
    settle: int
    readout_stages: int
    steps: tuple[ReadoutStep, ...]
    cuts: tuple[int, ...]
    acc_format: Any = None
    subnormals: bool = True
    align_steps: tuple[ReadoutStep, ...] = ()
    align_stages: int = 0
    align_cuts: tuple[int, ...] = ()

    @property
    def segments(self) -> int:
        return len(self.segment_widths)

    @property
    def readout_latency(self) -> int:
        """Cycles the read-out adds to the PE's latency."""
        return self.settle + self.readout_stages

    @property
    def latency(self) -> int:
        """Cycles the accumulator adds to the PE's latency: aligner, loop register, read-out."""
        return self.align_stages + 1 + self.readout_latency

    @property
    def window_bits(self) -> int:
        """Bits of the two's complement window (``deferred``) or register (``segmented``)."""
        return self.width - 1 if self.kind == "deferred" else self.width

    @property
    def loop_delay(self) -> float:
        return loop_delay(self.segment_widths)

    @property
    def stage_delays(self) -> list[float]:
        """Estimated delay of each read-out stage (one entry even for ``readout_stages=0``)."""
        return stage_delays(self.steps, self.cuts)

    def to_dict(self) -> dict[str, Any]:
        """Manifest view (the ``accumulator`` section)."""
        out: dict[str, Any] = {
            "architecture": self.kind,
            "lsb_exp": self.lsb_exp,
            "msb_exp": self.msb_exp,
            "register_bits": self.width,
            "segment": self.segment,
            "segment_widths": list(self.segment_widths),
            "loop": f"one {max(self.segment_widths) + 1}-bit carry chain per segment; carries "
            "registered into the next segment one cycle later",
            "settle_cycles": self.settle,
            "readout_stages": self.readout_stages,
            "readout_latency": self.readout_latency,
            **(
                {
                    "align_stages": self.align_stages,
                    "align_steps": [s.name for s in self.align_steps],
                    "align_cuts_after": [self.align_steps[i].name for i in self.align_cuts],
                }
                if self.align_steps
                else {}
            ),
            "readout_steps": [s.name for s in self.steps],
            "readout_cuts_after": [self.steps[i].name for i in self.cuts],
        }
        if self.kind == "deferred":
            out["window"] = {
                "lsb_exp": self.lsb_exp,
                "msb_exp": self.msb_exp,
                "bits": self.window_bits,
                "range": f"-2**{self.msb_exp + 1} <= sum < 2**{self.msb_exp + 1}, grid 2**{self.lsb_exp}",
            }
        return out


# --- delay model and cut placement --------------------------------------------------------------


def segment_widths(width: int, segment: int) -> tuple[int, ...]:
    """Segment widths (least significant first) of a ``width``-bit register cut every
    ``segment`` bits (0: one segment)."""
    if segment <= 0 or segment >= width:
        return (width,)
    k = -(-width // segment)
    return (segment,) * (k - 1) + (width - segment * (k - 1),)


def loop_delay(widths: Sequence[int]) -> float:
    """Estimated loop delay: one LUT level and the widest segment's carry chain (+ carry-in)."""
    return 1 + CARRY_UNIT * (max(widths) + 1)


def _stage_delay(steps: Sequence[ReadoutStep]) -> float:
    total, floor, prev = 0.0, 0.0, ""
    for s in steps:
        floor = max(floor, total + s.side)
        total += CARRY_UNIT * s.carry + (0.0 if s.chain and s.chain == prev else s.lut)
        prev = s.chain
    return max(total, floor)


def stage_delays(steps: Sequence[ReadoutStep], cuts: Sequence[int]) -> list[float]:
    """Delay of each stage when registers follow ``steps[i]`` for ``i`` in ``cuts``."""
    bounds = [0, *(c + 1 for c in sorted(cuts)), len(steps)]
    return [_stage_delay(steps[a:b]) for a, b in zip(bounds, bounds[1:])]


def place_cuts(steps: Sequence[ReadoutStep], stages: int, budget: float = 0.0) -> tuple[int, ...]:
    """``max(stages - 1, 0)`` internal register positions: the slowest stage as fast as
    possible (stages within ``budget`` count as equally fast), then the fewest register bits
    (dynamic programming over the step boundaries; the earliest optimum wins)."""
    n, k = len(steps), max(stages, 1)
    if k > max(n, 1):
        raise ValueError(f"readout_stages={stages} exceeds the {n} read-out steps")
    if k == 1:
        return ()

    def cost(a: int, b: int) -> float:
        return max(_stage_delay(steps[a:b]), budget)

    @functools.lru_cache(maxsize=None)
    def best(i: int, parts: int) -> tuple[float, int, tuple[int, ...]]:
        if parts == 1:
            return cost(i, n), 0, ()
        out: tuple[float, int, tuple[int, ...]] = (math.inf, 0, ())
        for j in range(i + 1, n - parts + 2):  # first stage = steps[i:j], a register after steps[j-1]
            delay, bits, cuts = best(j, parts - 1)
            cand = (max(cost(i, j), delay), bits + steps[j - 1].bits, (j - 1, *cuts))
            if cand[0] < out[0] - 1e-9 or (abs(cand[0] - out[0]) <= 1e-9 and cand[1] < out[1]):
                out = cand
        return out

    return best(0, k)[2]


def stages_for_budget(steps: Sequence[ReadoutStep], budget: float, minimum: int = 1) -> int:
    """Fewest read-out registers (at least ``minimum``) whose stages all fit ``budget``
    delay units (or the slowest single step, when that is slower)."""
    budget = max([budget, *(_stage_delay([s]) for s in steps)])  # an atomic step sets a floor
    for r in range(minimum, max(len(steps), minimum) + 1):
        if max(stage_delays(steps, place_cuts(steps, r, budget)), default=0.0) <= budget + 1e-9:
            return r
    return max(len(steps), minimum)


def stage_budget(widths: Sequence[int]) -> float:
    """Default per-stage budget: the loop's own delay, at least :data:`MIN_BUDGET`."""
    return max(MIN_BUDGET, loop_delay(widths))


# --- read-out steps -----------------------------------------------------------------------------


def _bounds(widths: Sequence[int]) -> list[tuple[int, int]]:
    out, lo = [], 0
    for w in widths:
        out.append((lo, lo + w))
        lo += w
    return out


def normalise_facts(width: int, lsb_exp: int, fmt: Any) -> dict[str, int]:
    """Geometry of the deferred read-out's normalise / round of a resolved ``width``-bit two's
    complement sum (the loop register, headroom bit included) on the grid ``2**lsb_exp``.

    The word is the sum without its headroom bit (``width - 1`` bits, sign on top), with
    ``pad_lo`` zero bits below (so a significand, a guard bit and the sign fit) and ``pad_hi``
    copies of the sign above (so the subnormal boundary lies at or below the top magnitude
    bit): ``word`` bits.  ``cb``: biased exponent of the top magnitude bit (``word - 2``);
    ``limit``: the normalising shift that reaches biased exponent 1; ``limited``: whether the
    shift can reach it; ``shift_bits``: width of the shift amount."""
    m = fmt.man_bits
    pad_lo = max(0, m + 4 - (width - 1))
    pad_hi = max(0, 1 - (lsb_exp + width - 3 + fmt.bias))
    w = pad_lo + width - 1 + pad_hi
    cb = lsb_exp - pad_lo + w - 2 + fmt.bias
    return {
        "pad_lo": pad_lo,
        "pad_hi": pad_hi,
        "word": w,
        "cb": cb,
        "limit": cb - 1,
        "limited": int(cb - 1 < w - 1),
        "shift_bits": (w - 1).bit_length(),
    }


def lzc_levels(width: int) -> int:
    """Levels of the leading-zero tree over ``width`` bits (pairs of bits at level 0)."""
    return max(1, (width - 1).bit_length())


def sticky_levels(width: int) -> int:
    """Levels of 4-input ORs that reduce ``width`` bits to one (0 when ``width <= 1``)."""
    levels = 0
    while width > 1:
        width = -(-width // 4)
        levels += 1
    return levels


def readout_steps(
    kind: str, widths: Sequence[int], settle: int, lsb_exp: int = 0, fmt: Any = None
) -> tuple[ReadoutStep, ...]:
    """The read-out of a loop register with segments ``widths`` (see module docstring).

    ``segmented``: ``resolve<k>`` adds the pending carry into segment ``k`` (from the lowest
    unsettled one up), then ``final`` (the sticky flags).  ``deferred`` continues on the
    resolved two's complement sum without taking its magnitude, in steps of one LUT level
    that registers can separate anywhere: ``lzc<l>`` is level ``l`` of a leading-sign count
    (a leading-zero tree over the bits XOR the sign: exact but for a negative power of two,
    one place short), ``limit`` caps the shift at the subnormal boundary, ``shift<j>``
    normalise by ``2**j``, ``sticky<l>`` reduce the bits below the guard bit, ``inc`` forms the
    round-to-nearest-even increment of the two's complement significand, ``mag`` is one narrow
    adder that applies it and the negation together (``|r| = (f ^ s) + (inc ^ s)``), ``pack``
    fixes the exponent (a rounding or power-of-two carry) and overflow, and ``final`` selects a
    special value.  The sticky flags update beside ``lzc0``, the special value is chosen
    beside ``pack``."""
    width, segs = sum(widths), len(widths)
    info = 3 if kind == "segmented" else 9  # valid, first and the step's flags
    steps = [
        ReadoutStep(f"resolve{k}", 1, w, "resolve", bits=width + 1 + (segs - 1 - k) + info)
        for k, (lo, hi) in enumerate(_bounds(widths))
        if k > settle
        for w in (hi - lo,)
    ]
    if kind == "segmented":
        return (*steps, ReadoutStep("final", 0, 0))
    facts = normalise_facts(width, lsb_exp, fmt)
    wn, sb, m = facts["word"], facts["shift_bits"], fmt.man_bits
    flags = 9  # valid, sign and the seven sticky flags
    levels = lzc_levels(wn - 1)  # the sticky flags update beside the first level
    size = 1 << levels
    steps += [
        ReadoutStep(
            f"lzc{lv}",
            1,
            0,
            side=3.0 if lv == 0 else 0.0,
            bits=wn + flags + (size >> (lv + 1)) * (lv + 2) if lv + 1 < levels else wn + flags + 2 * sb,
        )
        for lv in range(levels)
    ]
    if facts["limited"]:
        steps.append(ReadoutStep("limit", 1, sb, bits=wn + flags + 2 * sb))
    steps += [ReadoutStep(f"shift{j}", 1, 0, bits=wn + flags + 2 * sb) for j in reversed(range(sb))]
    low = wn - 3 - m
    steps += [
        ReadoutStep(f"sticky{lv}", 1, 0, bits=m + 3 + flags + 2 * sb + -(-low // 4 ** (lv + 1)))
        for lv in range(sticky_levels(low))
    ]
    steps.append(ReadoutStep("inc", 1, 0, bits=m + 4 + flags + 2 * sb))
    steps.append(ReadoutStep("mag", 1, m + 3, bits=m + 3 + flags + 2 * sb))
    steps.append(ReadoutStep("pack", 2, sb + 2, side=2.0, bits=2 * fmt.bits + 4))  # + the special value
    steps.append(ReadoutStep("final", 1, 0))
    return tuple(steps)


def align_dropped(mag_bits: int, window_mag: int, k: int) -> int:
    """Bits of the aligner's level ``k`` (a right shift by ``2**k``, least significant level
    first) that can be nonzero and fall off the bottom: the value enters at the top of the
    word and has spread down by at most ``2**k - 1`` before this level.  A level that shifts by
    the whole word drops the value itself (its nonzero test is taken at the input)."""
    width = 1 + window_mag + mag_bits
    if (1 << k) >= width:
        return 0
    return max(0, min(1 << k, (2 << k) - width + mag_bits - 1))


def align_steps(mag_bits: int, window_mag: int) -> tuple[ReadoutStep, ...]:
    """The window aligner of a ``mag_bits``-bit block value into a window of ``window_mag``
    magnitude bits (``rtl/accumulators.py``), in steps of one LUT level: ``ashift<k>`` (shift
    right by ``2**k``; beside it the OR of the nonzero bits it can drop,
    :func:`align_dropped`), ``apost`` (bits above the window, sticky, the round-to-nearest-even
    increment, the sign's one's complement).  The clamped shift amount comes from the scale
    exponents in front of the aligner, beside the block value."""
    width = 1 + window_mag + mag_bits
    bits = width.bit_length()
    steps = []
    for k in range(bits):
        drop = align_dropped(mag_bits, window_mag, k)
        side = 1 + math.ceil(math.log(drop, 4)) if drop > 1 else 1.0
        steps.append(
            ReadoutStep(f"ashift{k}", 1, 0, side=side, bits=min(width, mag_bits + (2 << k) - 1) + bits + 12 + k)
        )
    steps.append(
        ReadoutStep("apost", 2, 0, side=1 + math.ceil(math.log(max(mag_bits, 2), 4)), bits=window_mag + 2 + 10)
    )
    return tuple(steps)


def plan(
    kind: str,
    lsb_exp: int,
    msb_exp: int,
    segment: int,
    readout_stages: Optional[int],
    settle_limit: int = 0,
    acc_format: Any = None,
    subnormals: bool = True,
    align_mag_bits: int = 0,
    align_stages: Optional[int] = None,
) -> AccumulatorPlan:
    """The :class:`AccumulatorPlan` of a ``segmented`` (exact) or ``deferred`` accumulator.

    ``msb_exp``: see :class:`AccumulatorPlan`; ``settle_limit``: idle cycles guaranteed
    between steps (``beats - 1``); ``readout_stages=None`` picks the automatic depth.
    ``align_mag_bits`` > 0 adds the block-dot window aligner (``align_stages``, None: the
    automatic depth)."""
    width = msb_exp - lsb_exp + (3 if kind == "deferred" else 2)
    widths = segment_widths(width, segment)
    settle = min(len(widths) - 1, settle_limit)
    steps = readout_steps(kind, widths, settle, lsb_exp, acc_format)
    minimum = 1 if kind == "deferred" else 0
    budget = stage_budget(widths)
    if readout_stages is None:
        readout_stages = stages_for_budget(steps, budget, minimum)
    elif not minimum <= readout_stages <= len(steps):
        raise ValueError(
            f"readout_stages={readout_stages!r} is out of range: allowed {minimum}.."
            f"{len(steps)} for this {kind} accumulator ({len(steps)} read-out steps)"
        )
    a_steps: tuple[ReadoutStep, ...] = ()
    a_cuts: tuple[int, ...] = ()
    if align_mag_bits:
        a_steps = align_steps(align_mag_bits, width - 2)
        if align_stages is None:
            align_stages = stages_for_budget(a_steps, budget, 0)
        elif not 0 <= align_stages <= len(a_steps):
            raise ValueError(
                f"align_stages={align_stages!r} is out of range: allowed 0..{len(a_steps)} "
                f"({len(a_steps)} aligner steps)"
            )
        a_cuts = place_cuts(a_steps, align_stages, budget)
    elif align_stages:
        raise ValueError(f"align_stages={align_stages!r} needs a window aligner (a deferred block-dot PE)")
    return AccumulatorPlan(
        kind,
        lsb_exp,
        msb_exp,
        width,
        segment,
        widths,
        settle,
        readout_stages,
        steps,
        place_cuts(steps, readout_stages, budget),
        acc_format,
        subnormals,
        a_steps,
        align_stages or 0,
        a_cuts,
    )


# --- windows ------------------------------------------------------------------------------------


def mac_window(product_lsb_exp: int, exact_width: int) -> tuple[int, int]:
    """(lsb, msb) of a minifloat MAC's window: the Kulisch range (exact for ``max_count``
    steps): LSB of the smallest product, ``exact_width`` two's complement bits."""
    return product_lsb_exp, product_lsb_exp + exact_width - 2


def _elem(fmt: Any) -> tuple[int, Fraction, int]:
    """(LSB exponent, largest magnitude, emax_elem) of a block element format."""
    if hasattr(fmt, "exp_bits"):
        return fmt.min_exp, Fraction(fmt.max), fmt.emax
    lsb = -fmt.frac_bits
    top = Fraction(-fmt.min_int) * Fraction(2) ** lsb
    return lsb, top, math.floor(math.log2(fmt.max_int * 2.0**lsb))


def _scale_range(scale: Any, emax_elem: int, data_range: tuple[int, int]) -> tuple[int, Fraction]:
    """(smallest LSB exponent, largest value) of a block scale under the default's data rule."""
    if scale.man_bits == 0:  # E8M0: X = 2**(floor(log2 amax) - emax_elem), clipped to the codes
        lo = max(data_range[0] - emax_elem, scale.emin)
        hi = min(data_range[1] - emax_elem, scale.emax)
        return lo, Fraction(2) ** hi
    return scale.min_exp, Fraction(scale.max)  # FP8 scales: their whole range is cheap


def blockdot_default_window(element_a: Any, element_b: Any, scale_a: Any, scale_b: Any, block: int) -> tuple[int, int]:
    """(lsb, msb) of the default block-dot window: exact for every element product of blocks
    whose absolute maxima lie in ``2**DATA_EXP_RANGE`` (E8M0 scales by the OCP MX rule; an
    FP8 scale's whole range), and ``CHAIN_BITS`` of headroom above the largest such block."""
    (la, ma, ea), (lb, mb, eb) = _elem(element_a), _elem(element_b)
    (xa, xma), (xb, xmb) = _scale_range(scale_a, ea, DATA_EXP_RANGE), _scale_range(scale_b, eb, DATA_EXP_RANGE)
    top = block * ma * mb * xma * xmb
    msb = top.numerator.bit_length() - top.denominator.bit_length()
    if Fraction(2) ** msb > top:
        msb -= 1
    return la + lb + xa + xb, msb + CHAIN_BITS


def blockdot_value_lsb_range(element_a: Any, element_b: Any, scale_a: Any, scale_b: Any) -> tuple[int, int]:
    """Smallest and largest LSB exponent a block value ``S * Xa * Xb`` can have (its bits below
    a window LSB above the smallest are rounded away: the ``inexact`` flag)."""
    lo = _elem(element_a)[0] + _elem(element_b)[0]
    return lo + scale_a.min_exp + scale_b.min_exp, lo + (scale_a.emax - scale_a.man_bits) + (
        scale_b.emax - scale_b.man_bits
    )


def blockdot_value_bits(spec: Any) -> int:
    """Bits of a block value's magnitude ``|S| * sig(Xa) * sig(Xb)`` (``rtl/blockdot.py``
    ``BlockDotGeometry.v_width``): the aligner's input."""

    def units(fmt: Any) -> int:
        if hasattr(fmt, "exp_bits"):
            return int(Fraction(fmt.max) / Fraction(2) ** fmt.min_exp)
        return -fmt.min_int

    def sig(fmt: Any) -> int:
        return (1 << (fmt.man_bits + 1)) - 1 if fmt.man_bits else 1

    span = (units(spec.element_a) * units(spec.element_b)).bit_length()
    bsw = span + (spec.lanes - 1).bit_length() + 1 + (spec.beats - 1).bit_length()
    xbits = (sig(spec.scale_a) * sig(spec.scale_b)).bit_length()
    return bsw + (xbits if xbits > 1 else 0)


def blockdot_window(spec: Any) -> tuple[int, int]:
    """(lsb, msb) of a deferred block-dot spec: the given fields or the default."""
    lo, hi = blockdot_default_window(spec.element_a, spec.element_b, spec.scale_a, spec.scale_b, spec.block)
    return (lo if spec.window_lsb is None else spec.window_lsb, hi if spec.window_msb is None else spec.window_msb)
