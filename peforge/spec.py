"""PE specifications: one frozen, validated, hashable spec class per PE family.

Every other part (RTL generator, golden model, cost model, testbench, sweeps) reads a spec
independently; a spec never imports any of them.  Specs round-trip through JSON
(:meth:`Spec.to_dict` / :func:`from_dict`) and their :attr:`Spec.name` is stable, so it is
used for module names, file names and result keys.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Optional, Union

from . import accumulator as _acc
from . import formats
from .formats import ApotFormat, FloatFormat, IntFormat, PotFormat
from .params import Converted, Converter, param, validate

__all__ = [
    "Spec",
    "MinifloatMacSpec",
    "IntMacSpec",
    "SimdMacSpec",
    "LutSpec",
    "ShiftAddSpec",
    "BlockDotSpec",
    "BLOCKDOT_ELEMENTS",
    "BLOCKDOT_SCALES",
    "BLOCKDOT_MAX_BLOCK",
    "signed_width",
    "ACC_EXACT",
    "MULTS",
    "ROUNDINGS",
    "from_dict",
    "from_json",
    "families",
]

ACC_EXACT = "exact"
MULTS = ("exact", "lmul")
ROUNDINGS = _acc.ROUNDINGS


def families() -> dict[str, type["Spec"]]:
    """Spec class of every PE family in use by name (``mac``, ...), from :func:`peforge.families.table`."""
    from .families import table  # the table imports this module

    return {f.name: f.spec for f in table()}


def _format(field: str, value: Any) -> formats.Format:
    try:
        return formats.get(value)
    except ValueError as err:
        raise ValueError(f"{field}={value!r}: {err}") from None


def _float_format(field: str, value: Any, min_bits: int, max_bits: int) -> FloatFormat:
    fmt = _format(field, value)
    if not isinstance(fmt, FloatFormat) or not fmt.signed:
        raise ValueError(f"{field}={value!r} must be a signed float format (eXmY), got {fmt.name}")
    if not min_bits <= fmt.bits <= max_bits:
        raise ValueError(f"{field}={fmt.name} has {fmt.bits} bits: allowed {min_bits}..{max_bits}")
    return fmt


def _int_format(field: str, value: Any, min_bits: int, max_bits: int) -> IntFormat:
    fmt = _format(field, value)
    if not isinstance(fmt, IntFormat) or fmt.frac_bits:
        raise ValueError(f"{field}={value!r} must be an integer format (intN / uintN), got {fmt.name}")
    if not min_bits <= fmt.bits <= max_bits:
        raise ValueError(f"{field}={fmt.name} has {fmt.bits} bits: allowed {min_bits}..{max_bits}")
    return fmt


def float_format(min_bits: int, max_bits: int) -> Converter:
    """Converter to a signed float format of ``min_bits..max_bits`` bits."""
    return lambda _spec, field, value: _float_format(field, value, min_bits, max_bits)


def int_format(min_bits: int, max_bits: int) -> Converter:
    """Converter to an integer format ``intN`` / ``uintN`` of ``min_bits..max_bits`` bits."""
    return lambda _spec, field, value: _int_format(field, value, min_bits, max_bits)


def _ieee_acc(_spec: Any, field: str, value: Any) -> FloatFormat:
    """An IEEE-style accumulator format of 8..32 bits with at least 1 mantissa bit."""
    acc = _float_format(field, value, 8, 32)
    if acc.man_bits < 1 or acc.special != "ieee":
        raise ValueError(
            f"{field}={acc.name} must be an ieee float with at least 1 mantissa bit (fp32, bf16, fp16, eXmY)"
        )
    return acc


def _act_format(_spec: Any, field: str, value: Any) -> IntFormat | FloatFormat:
    """An activation: ``intN`` / ``uintN`` of 2..16 bits or a signed float of at most 8 bits."""
    fmt = _format(field, value)
    if isinstance(fmt, IntFormat):
        return _int_format(field, fmt.name, 2, 16)
    if isinstance(fmt, FloatFormat):
        return _float_format(field, fmt.name, 2, 8)
    raise ValueError(
        f"{field}={value!r} must be an integer format (int2..int16, uint2..uint16) "
        f"or a signed float format of at most 8 bits, got {fmt.name}"
    )


#: A float format field (a format or its name on construction).
FloatField = Converted[FloatFormat, Union[FloatFormat, str]]
#: An integer format field.
IntField = Converted[IntFormat, Union[IntFormat, str]]
#: An activation format field (integer or float).
ActField = Converted[Union[IntFormat, FloatFormat], Union[IntFormat, FloatFormat, str]]


@dataclass(frozen=True)
class Spec:
    """Base of every family's spec: validation from the fields' :func:`~peforge.params.param`
    metadata, naming, JSON round trip.  A family adds cross-field rules in :meth:`_check`."""

    family: ClassVar[str]

    def __post_init__(self) -> None:
        validate(self)
        self._check()

    def _check(self) -> None:
        """Rules between fields that their metadata cannot state (none by default)."""

    @property
    def name(self) -> str:  # pragma: no cover - every family overrides
        raise NotImplementedError

    @property
    def latency(self) -> int:  # pragma: no cover - every family overrides
        """Cycles from an input to the output value that includes it."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.name if isinstance(v, (FloatFormat, IntFormat, PotFormat, ApotFormat)) else v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        return self.name


def from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a spec from :meth:`Spec.to_dict` output."""
    data = dict(data)
    family = data.pop("family", None)
    classes = families()
    if family not in classes:
        raise ValueError(f"unknown PE family {family!r}: allowed {sorted(classes)}")
    return classes[family](**data)


def from_json(text: str) -> Spec:
    return from_dict(json.loads(text))


def _mac_acc(_spec: Any, field: str, value: Any) -> FloatFormat | str:
    """``"exact"`` or an IEEE float accumulator of 8..32 bits with at least 1 mantissa bit."""
    if value == ACC_EXACT:
        return ACC_EXACT
    acc = _float_format(field, value, 8, 32)
    if acc.man_bits < 1:
        raise ValueError(
            f"{field}={acc.name} needs at least 1 mantissa bit (round-to-nearest-even is ambiguous without one)"
        )
    if acc.special != "ieee":
        raise ValueError(
            f"{field}={acc.name} must use the ieee special-value convention (fp32, bf16, fp16, eXmY) or be 'exact'"
        )
    return acc


def _segment(_spec: Any, field: str, value: Any) -> int:
    """Bits per carry segment: 0 (one carry chain) or 2..256."""
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or 2 <= value <= 256):
        raise ValueError(
            f"{field}={value!r} is out of range: allowed 0 (one carry chain) or 2..256 bits per carry segment"
        )
    return value


@dataclass(frozen=True)
class MinifloatMacSpec(Spec):
    """Minifloat multiply-accumulate / fused dot-product PE (family ``mac``).

    Parameters
    ----------
    a, b : FloatFormat or str
        Operand formats, 2..16 bits each (may differ).
    acc : FloatFormat, str or ``"exact"``
        IEEE accumulator format (``fp32``, ``bf16``, ``fp16``, any ieee ExMy of 8..32 bits),
        rounded to nearest even once per cycle, or ``"exact"`` for a fixed-point Kulisch
        accumulator that never rounds (width derived from a, b, lanes and ``max_count``).
    lanes : int
        Products per cycle, summed exactly (1..64).
    stages : int
        Pipeline registers before the accumulator (0..6); latency = stages + 1.  In order:
        the loop's input, the product (a DSP's output register), the aligned terms, half way
        down the adder tree (one lane: the multiplier operands, a DSP's input registers), then
        the multiplier operands (one lane: the product again, in the fabric after the DSP's own
        output register), then the lane aligner's shifter split in half (not for a one-lane
        per-step float accumulator, whose product is normalised, not aligned).
    subnormals : bool
        False flushes subnormal inputs and subnormal results to zero (sign kept).
    max_count : int
        Accumulation steps the exact accumulator must hold without overflow (1..2**20).
    mult : str
        ``exact`` significand multiplier, or ``lmul``: L-Mul (Luo & Sun 2024), the product
        of ``(1 + fx) 2**ex`` and ``(1 + fy) 2**ey`` approximated by ``(1 + fx + fy +
        2**-l(m)) 2**(ex + ey)`` with one adder; subnormal operands are normalised first,
        ``m = max(a.man_bits, b.man_bits)`` (see :attr:`lmul_offset_exp`).
    segment : int
        Bits per carry segment of a fixed-point accumulator loop (0: one carry chain, today's
        register).  With ``acc="exact"`` > 0 gives the carry-segmented Kulisch register
        (:mod:`peforge.accumulator`): the loop is one ``segment``-bit adder, a read-out resolves
        the pending carries.  With ``rounding="deferred"`` it segments the window register.
    rounding : str
        Float accumulator: ``per-step`` (one round-to-nearest-even per cycle, the default) or
        ``deferred``: the running sum is kept exactly in a window register (the Kulisch range:
        exact for ``max_count`` steps) and rounded to ``acc`` once, on the way out, by a
        pipelined read-out; leaving the window sets the ``acc_flags`` overflow bit and gives
        inf (see :mod:`peforge.models.golden.accumulate`).
    readout_stages : int or None
        Registers of the read-out (segmented or deferred accumulators; the ``acc`` register
        included): latency grows by this.  None picks the fewest that keep each read-out stage
        within the loop's delay (:func:`peforge.accumulator.stage_budget`).
    """

    a: FloatField = param(
        "e4m3fn",
        "Format of operand a.",
        convert=float_format(2, 16),
        allowed="a signed float format of 2..16 bits (e4m3fn, e5m2, e2m1fn, eXmY, ...)",
    )
    b: FloatField = param(
        "e4m3fn", "Format of operand b.", convert=float_format(2, 16), allowed="a signed float format of 2..16 bits"
    )
    acc: Converted[Union[FloatFormat, str], Union[FloatFormat, str]] = param(
        "fp32",
        "Accumulator: an IEEE float rounded once per cycle, or 'exact' (Kulisch, never rounds).",
        convert=_mac_acc,
        allowed="fp32, bf16, fp16, an ieee eXmY of 8..32 bits, or exact",
    )
    lanes: int = param(1, "Products per cycle, summed exactly (fused dot product).", lo=1, hi=64)
    stages: int = param(0, "Pipeline registers before the accumulator (latency = stages + 1).", lo=0, hi=6)
    subnormals: bool = param(True, "Support subnormals (--no-subnormals flushes them to zero).")
    max_count: int = param(4096, "Accumulations the exact accumulator holds without overflow.", lo=1, hi=1 << 20)
    mult: str = param(
        "exact", "Significand multiplier: exact, or L-Mul (lmul: one adder, Luo & Sun 2024).", choices=MULTS
    )

    segment: int = param(
        0,
        "Bits per carry segment of a fixed-point accumulator loop (acc exact, or "
        "--rounding deferred); 0: one carry chain.",
        convert=_segment,
        cli=int,
        allowed="0 (one carry chain) or 2..256",
    )
    rounding: str = param(
        "per-step",
        "Float accumulator: per-step (one RNE per cycle) or deferred (exact "
        "window register, rounded once on the way out).",
        choices=ROUNDINGS,
    )
    readout_stages: Optional[int] = param(
        None,
        "Read-out registers of a segmented / deferred accumulator (default: as many as keep up with the loop).",
        lo=0,
        hi=_acc.MAX_READOUT_STAGES,
    )

    family: ClassVar[str] = "mac"

    def _check(self) -> None:
        _check_accumulator(self, fixed_point=self.is_exact or self.rounding == "deferred")
        if self.is_exact and self.rounding != "per-step":
            raise ValueError(
                f"rounding={self.rounding!r} needs a float acc: acc='exact' never rounds "
                "(use rounding='per-step', or a float acc such as fp32)"
            )
        if self.stages == 6 and self.lanes == 1 and not (self.is_exact or self.rounding == "deferred"):
            raise ValueError(
                f"stages={self.stages!r}: the sixth cut splits the lane aligner, which a one-lane MAC "
                "with a per-step rounded float accumulator does not have (its product is normalised "
                "into the loop): allowed 0..5 here, or 6 with acc='exact' or rounding='deferred'"
            )
        plan = self.accumulator  # without one the fields keep their defaults (compiled kernels check them)
        object.__setattr__(self, "readout_stages", None if plan is None else plan.readout_stages)

    @property
    def accumulator(self) -> Optional[_acc.AccumulatorPlan]:
        """The segmented-exact / deferred accumulator's plan (None for today's accumulators)."""
        if self.rounding == "deferred":
            lsb, msb = _acc.mac_window(self.product_lsb_exp, self.exact_width)
            return _mac_plan(
                "deferred", lsb, msb, self.segment, self.readout_stages, 0, self.acc_format, self.subnormals
            )
        if self.is_exact and self.segment:
            lsb, msb = _acc.mac_window(self.product_lsb_exp, self.exact_width)
            return _mac_plan("segmented", lsb, msb, self.segment, self.readout_stages, 0, None, True)
        return None

    @property
    def is_exact(self) -> bool:
        return self.acc == ACC_EXACT

    @property
    def acc_format(self) -> FloatFormat:
        """The float accumulator's format (ValueError for an exact accumulator)."""
        if isinstance(self.acc, FloatFormat):
            return self.acc
        raise ValueError(f"{self.name}: acc={self.acc!r} has no float format")

    @property
    def acc_name(self) -> str:
        return ACC_EXACT if self.is_exact else self.acc_format.name

    @property
    def name(self) -> str:
        parts = [f"mac_{self.a.name}x{self.b.name}_{self.acc_name}", f"l{self.lanes}", f"s{self.stages}"]
        if not self.subnormals:
            parts.append("ftz")
        if self.is_exact or self.rounding == "deferred":
            parts.append(f"n{self.max_count}")
        if self.mult != "exact":
            parts.append(self.mult)
        parts += _accumulator_tags(self)
        return "_".join(parts)

    @property
    def latency(self) -> int:
        """Cycles from an input to the accumulator value that includes it (read-out included)."""
        plan = self.accumulator
        return self.stages + (plan.latency if plan is not None else 1)

    # --- exact (Kulisch) accumulator geometry -----------------------------------------------
    @property
    def product_lsb_exp(self) -> int:
        """Exponent of the least significant bit of any product (normal or subnormal).

        ``lmul``: products are ``(1 + fx + fy + 2**-l) 2**(ex + ey)`` on the grid
        ``2**-lmul_frac_bits``, with ``ex >= emin - man_bits`` (normalised subnormals) or
        ``ex >= emin`` when ``subnormals=False``."""
        a, b = self.a, self.b
        if self.mult == "lmul":
            sub = self.subnormals
            return (a.emin - (a.man_bits if sub else 0)) + (b.emin - (b.man_bits if sub else 0)) - self.lmul_frac_bits
        return (a.emin - a.man_bits) + (b.emin - b.man_bits)

    @property
    def product_max_exp(self) -> int:
        """floor(log2(max |product|)): the product's most significant bit position."""
        if self.mult == "lmul":  # L-Mul is monotone in |x| and |y|: its max is at (max, max)
            (fa, ea), (fb, eb) = (_unit_frac(f.max) for f in (self.a, self.b))
            return ea + eb + int(1 + fa + fb + 2.0**-self.lmul_offset_exp >= 2)
        return math.floor(math.log2(self.a.max * self.b.max))

    # --- L-Mul (mult="lmul") ----------------------------------------------------------------
    @property
    def lmul_frac_bits(self) -> int:
        """m = max(a.man_bits, b.man_bits): fraction bits of the L-Mul adder (its grid 2**-m)."""
        return max(self.a.man_bits, self.b.man_bits)

    @property
    def lmul_offset_exp(self) -> int:
        """l(m) of the L-Mul offset 2**-l(m): m for m <= 3, 3 for m == 4, 4 for m > 4."""
        m = self.lmul_frac_bits
        return m if m <= 3 else (3 if m == 4 else 4)

    @property
    def exact_width(self) -> int:
        """Kulisch register width: product span + guard bits for lanes * max_count + sign."""
        span = self.product_max_exp - self.product_lsb_exp + 1
        guard = math.ceil(math.log2(self.lanes * self.max_count)) if self.lanes * self.max_count > 1 else 0
        return span + guard + 1


_mac_plan = functools.lru_cache(maxsize=1024)(_acc.plan)


def _check_accumulator(spec: Any, fixed_point: bool) -> None:
    """``segment`` and ``readout_stages`` need a fixed-point loop (shared by mac and blockdot;
    their ranges are the fields' metadata)."""
    if not fixed_point:
        what = "acc='exact' or rounding='deferred'" if spec.family == "mac" else "rounding='deferred'"
        if spec.segment:
            raise ValueError(f"segment={spec.segment!r} needs a fixed-point accumulator loop: {what}")
        if spec.readout_stages:
            raise ValueError(
                f"readout_stages={spec.readout_stages!r} needs a read-out: segment > 0 with "
                f"acc='exact', or rounding='deferred'"
            )


def _accumulator_tags(spec: Any) -> list[str]:
    """Name parts of a segmented / deferred accumulator (none for today's)."""
    plan = spec.accumulator
    if plan is None:
        return []
    tags = ["deferred"] if plan.kind == "deferred" else []
    if getattr(spec, "family", "") == "blockdot":
        tags.append(f"w{_signed_tag(plan.lsb_exp)}to{_signed_tag(plan.msb_exp)}")
    if spec.segment:
        tags.append(f"seg{spec.segment}")
    if plan.align_steps:
        tags.append(f"al{plan.align_stages}")
    tags.append(f"ro{plan.readout_stages}")
    return tags


def _signed_tag(v: int) -> str:
    return f"m{-v}" if v < 0 else str(v)


def _unit_frac(v: float) -> tuple[float, int]:
    """(f, e) with v = (1 + f) * 2**e, 0 <= f < 1, for a positive finite float (exact)."""
    m, e = math.frexp(v)
    return 2 * m - 1, e - 1


def signed_width(lo: int, hi: int) -> int:
    """Fewest two's complement bits that hold every integer in lo..hi."""
    return max((~lo).bit_length() + 1 if lo < 0 else 1, hi.bit_length() + 1 if hi > 0 else 1)


OVERFLOWS = ("wrap", "saturate")


@dataclass(frozen=True)
class IntMacSpec(Spec):
    """Integer multiply-accumulate / dot-product PE (family ``intmac``): the cost baseline.

    Parameters
    ----------
    a, b : IntFormat or str
        Operand formats ``intN`` / ``uintN``, 2..16 bits.
    acc_bits : int or None
        Accumulator width; None derives the narrowest two's complement width that holds
        ``lanes * max_count`` worst-case products exactly (never overflows).
    lanes, stages, max_count
        As for :class:`MinifloatMacSpec`.
    overflow : str
        ``wrap`` (two's complement) or ``saturate`` when a given ``acc_bits`` overflows.
    """

    a: IntField = param("int8", "Format of operand a.", convert=int_format(2, 16), allowed="intN / uintN, 2..16 bits")
    b: IntField = param("int8", "Format of operand b.", convert=int_format(2, 16), allowed="intN / uintN, 2..16 bits")
    acc_bits: Optional[int] = param(
        None, "Accumulator width (default: derived, never overflows).", lo="product_bits", hi=64, needs=("a", "b")
    )
    lanes: int = param(1, "Products per cycle (dot product).", lo=1, hi=64)
    stages: int = param(0, "Pipeline registers before the accumulator (latency = stages + 1).", lo=0, hi=4)
    max_count: int = param(4096, "Accumulations the derived width holds without overflow.", lo=1, hi=1 << 20)
    overflow: str = param("wrap", "Overflow of a given --acc-bits.", choices=OVERFLOWS)

    family: ClassVar[str] = "intmac"

    @property
    def product_range(self) -> tuple[int, int]:
        a, b = self.a, self.b
        corners = [x * y for x in (a.min_int, a.max_int) for y in (b.min_int, b.max_int)]
        return min(corners), max(corners)

    @property
    def product_bits(self) -> int:
        return signed_width(*self.product_range)

    @property
    def width(self) -> int:
        """Accumulator width in bits (given or derived)."""
        if self.acc_bits is not None:
            return self.acc_bits
        lo, hi = self.product_range
        n = self.lanes * self.max_count
        return signed_width(lo * n, hi * n)

    @property
    def name(self) -> str:
        parts = [f"intmac_{self.a.name}x{self.b.name}", f"l{self.lanes}", f"s{self.stages}"]
        parts.append(
            f"w{self.acc_bits}{'sat' if self.overflow == 'saturate' else ''}" if self.acc_bits else f"n{self.max_count}"
        )
        return "_".join(parts)

    @property
    def latency(self) -> int:
        return self.stages + 1


SIMD_ARCHS = ("bricks", "sub4")
SIMD_DEFAULT_MODES: dict[int, tuple[str, ...]] = {
    8: ("8x8", "8x4", "4x4", "4x2", "2x2"),
    16: ("16x16", "16x8", "8x8", "8x4", "4x4"),
}
#: Operand bits per multiplier cell of each SIMD architecture.
SIMD_DIGIT_BITS = {"bricks": 2, "sub4": 4}


def _parse_mode(base: int, arch: str, mode: Any) -> tuple[int, int]:
    digit = SIMD_DIGIT_BITS[arch]
    allowed = [w for w in (2, 4, 8, 16) if w <= base and w % digit == 0]
    try:
        a_txt, b_txt = str(mode).lower().split("x")
        a_bits, b_bits = int(a_txt), int(b_txt)
    except ValueError:
        raise ValueError(f"modes: {mode!r} is not 'AxB' (a_bits x b_bits, e.g. '8x4')") from None
    for side, w in (("a", a_bits), ("b", b_bits)):
        if w not in allowed:
            raise ValueError(
                f"modes: {mode!r} has {side} width {w}: with base={base} and arch={arch!r} "
                f"each width must be one of {allowed} (a power of two dividing the base"
                f"{', a multiple of 4 for sub4' if digit == 4 else ''})"
            )
    return a_bits, b_bits


def _simd_default_modes(spec: Any) -> tuple[str, ...]:
    """The base's default modes that the architecture supports."""
    digit = SIMD_DIGIT_BITS[spec.arch]
    return tuple(m for m in SIMD_DEFAULT_MODES[spec.base] if all(int(w) % digit == 0 for w in m.split("x")))


def _simd_modes(spec: Any, field: str, value: Any) -> tuple[str, ...]:
    """1..16 distinct modes ``AxB`` (a tuple, a list or a comma-separated string), canonical."""
    modes = tuple(m.strip() for m in value.split(",") if m.strip()) if isinstance(value, str) else value
    if not isinstance(modes, (tuple, list)) or not 1 <= len(modes) <= 16:
        raise ValueError(f"{field}={value!r} must be 1..16 strings 'AxB' (e.g. ('8x8', '4x4'))")
    canon = tuple("{}x{}".format(*_parse_mode(spec.base, spec.arch, m)) for m in modes)
    if len(set(canon)) != len(canon):
        raise ValueError(f"{field}={value!r} lists a mode twice: each mode may appear once")
    return canon


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << bits) - 1  # union of the signed and unsigned ranges


@dataclass(frozen=True)
class SimdMacSpec(Spec):
    """Run-time mixed-precision SIMD dot-product PE (family ``simd``), Bit Fusion style.

    One ``base`` x ``base`` multiplier array serves every mode ``AxB``: ``lanes =
    base**2 / (A * B)`` products of an A-bit a by a B-bit b per cycle, summed into one
    accumulator.  The ``mode`` input picks the mode per input, ``a_signed`` / ``b_signed`` the
    operands' signedness.

    Parameters
    ----------
    base : int
        Width of the full-precision operands: 8 or 16.
    modes : tuple of str or None
        Supported modes ``"AxB"``; ``mode`` input value i selects ``modes[i]``.  None takes the
        base's default (:data:`SIMD_DEFAULT_MODES`, restricted to what ``arch`` supports).
    arch : str
        ``bricks``: fused 2-bit x 2-bit BitBricks with shift-add fusion (Bit Fusion, ISCA 2018);
        ``sub4``: 4-bit x 4-bit sub-multipliers (operand widths must be multiples of 4).
    acc_bits : int or None
        Accumulator width (wraps modulo 2**acc_bits); None derives the narrowest width that
        holds ``max_count`` steps of the mode with the widest sum, any signedness.
    stages : int
        Pipeline registers before the accumulator (0..4); latency = stages + 1.
    max_count : int
        Accumulation steps the derived width holds without overflow (1..2**20).
    """

    base: int = param(8, "Full-precision operand width.", choices=tuple(SIMD_DEFAULT_MODES))
    modes: Converted[tuple[str, ...], Union[tuple[str, ...], list[str], str, None]] = param(
        None,
        "Comma-separated modes AxB (e.g. 8x8,8x4,4x4,4x2,2x2); default per base.",
        convert=_simd_modes,
        derive=_simd_default_modes,
        needs=("base", "arch"),
        allowed="1..16 distinct AxB with A, B powers of two up to the base (multiples of 4 for sub4)",
    )
    arch: str = param(
        "bricks",
        "Multiplier cells: bricks (fused 2b x 2b BitBricks) or sub4 (4b x 4b sub-multipliers).",
        choices=SIMD_ARCHS,
    )
    acc_bits: Optional[int] = param(
        None, "Accumulator width, wraps (default: derived, never overflows).", lo="step_bits", hi=64, needs=("modes",)
    )
    stages: int = param(0, "Pipeline registers before the accumulator (latency = stages + 1).", lo=0, hi=4)
    max_count: int = param(4096, "Accumulations the derived width holds without overflow.", lo=1, hi=1 << 20)

    family: ClassVar[str] = "simd"

    # --- mode geometry ----------------------------------------------------------------------
    @property
    def mode_widths(self) -> tuple[tuple[int, int], ...]:
        """(a_bits, b_bits) of every mode, in ``mode`` input order."""
        return tuple((int(a), int(b)) for a, b in (m.split("x") for m in self.modes))

    @property
    def digit_bits(self) -> int:
        """Operand bits per multiplier cell: 2 (``bricks``) or 4 (``sub4``)."""
        return SIMD_DIGIT_BITS[self.arch]

    def cell_layout(self) -> list[dict[tuple[int, int], tuple[int, bool, int, bool]]]:
        """Per mode: cell (r, c) -> (a bit offset, a digit is top, b bit offset, b digit is
        top), the digit pair each multiplier cell takes (shared by the RTL and the cost model)."""
        d = self.digit_bits
        n = self.base // d
        out = []
        for a_bits, b_bits in self.mode_widths:
            da, db = a_bits // d, b_bits // d
            per_row = self.base // b_bits  # lanes along the column axis
            cells = {}
            for r in range(n):
                for c in range(n):
                    lane = (r // da) * per_row + c // db
                    cells[(r, c)] = (
                        lane * a_bits + d * (r % da),
                        r % da == da - 1,
                        lane * b_bits + d * (c % db),
                        c % db == db - 1,
                    )
            out.append(cells)
        return out

    @property
    def mode_lanes(self) -> tuple[int, ...]:
        """Products per cycle (lanes) of every mode: base**2 / (a_bits * b_bits)."""
        return tuple(self.base * self.base // (a * b) for a, b in self.mode_widths)

    @property
    def mode_bits(self) -> int:
        """Width of the ``mode`` input (at least 1)."""
        return max(1, (len(self.modes) - 1).bit_length())

    @property
    def a_width(self) -> int:
        return max(n * a for n, (a, _) in zip(self.mode_lanes, self.mode_widths))

    @property
    def b_width(self) -> int:
        return max(n * b for n, (_, b) in zip(self.mode_lanes, self.mode_widths))

    def step_range(self, mode: int) -> tuple[int, int]:
        """Smallest and largest sum of one step in ``mode``, over every signedness."""
        (a, b), n = self.mode_widths[mode], self.mode_lanes[mode]
        ra, rb = _signed_range(a), _signed_range(b)
        corners = [x * y for x in ra for y in rb]
        return n * min(corners), n * max(corners)

    @property
    def step_bits(self) -> int:
        """Two's complement bits of the widest one-step sum (any mode, any signedness)."""
        return max(signed_width(*self.step_range(i)) for i in range(len(self.modes)))

    @property
    def width(self) -> int:
        """Accumulator width in bits (given or derived)."""
        if self.acc_bits is not None:
            return self.acc_bits
        return max(
            signed_width(lo * self.max_count, hi * self.max_count)
            for lo, hi in map(self.step_range, range(len(self.modes)))
        )

    @property
    def name(self) -> str:
        modes = "_".join(self.modes)
        tail = f"w{self.acc_bits}" if self.acc_bits is not None else f"n{self.max_count}"
        return f"simd{self.base}_{self.arch}_{modes}_s{self.stages}_{tail}"

    @property
    def latency(self) -> int:
        return self.stages + 1


LUT_TERNARY = "ternary"


def _lut_weight_bits(_spec: Any, field: str, value: Any) -> int | str:
    """1..4 (two's complement weights, a digit string too) or ``"ternary"``."""
    wb = int(value) if isinstance(value, str) and value.strip().isdigit() else value
    if wb != LUT_TERNARY and (isinstance(wb, bool) or not isinstance(wb, int) or not 1 <= wb <= 4):
        raise ValueError(f"{field}={value!r} is not allowed: use 1..4 (two's complement) or {LUT_TERNARY!r}")
    return wb


@dataclass(frozen=True)
class LutSpec(Spec):
    """LUT-based mixed-precision dot-product PE (family ``lut``), LUT Tensor Core style.

    Per input step the PE takes ``group`` activations (port ``a``) and, for each of ``lanes``
    weight columns, ``group`` low-bit weights (port ``b``).  A table unit precomputes the
    signed sums of the activations once; every weight bit-plane (a ``group``-bit mask) then
    selects one table entry per lane, and the lane shift-adds the entries bit-serially, one
    plane per cycle (``planes`` cycles per step), so 1..4-bit weights use the same datapath.
    ``acc[lane] := (first ? 0 : acc[lane]) + sum_j a_j * w[lane][j]``, exactly.

    Parameters
    ----------
    act : IntFormat, FloatFormat or str
        Activation format: ``intN`` / ``uintN`` (2..16 bits) or a signed float format of at
        most 8 bits, read as an exact fixed-point integer times ``2**act_lsb_exp``
        (non-finite codes, NaN and inf, read as 0: the PE has no special values).
    weight_bits : int or str
        1..4: two's complement weights (1 bit: {-1, 0}); or ``"ternary"``: BitNet weights
        {-1, 0, +1} as 2-bit sign-magnitude codes (0b00 = 0, 0b01 = +1, 0b11 = -1, 0b10 = 0),
        which agree with two's complement on -1, 0 and +1.
    group : int
        Activations per table (2..8).
    symmetric : bool
        True stores 2**(group-1) entries (table symmetrisation: S(~m) = -S(m), negated per
        lane, plus one correction per step); False stores all 2**group subset sums.
    lanes : int
        Weight columns served per cycle from the one table (1..64).
    acc_bits : int or None
        Accumulator width per lane, wraps modulo 2**acc_bits; None derives the narrowest width
        that holds ``max_count`` steps exactly.
    stages : int
        0..2 pipeline registers: 1 registers each looked-up entry before the shift-add, 2 also
        registers the inputs before the table precompute.
    max_count : int
        Steps the derived accumulator width holds without overflow (1..2**20).
    """

    act: ActField = param(
        "int8",
        "Activation format.",
        convert=_act_format,
        allowed="intN / uintN (2..16 bits) or a signed float of <= 8 bits",
    )
    weight_bits: Converted[Union[int, str], Union[int, str]] = param(
        4,
        "Weight width (two's complement) or 'ternary' ({-1, 0, +1}).",
        convert=_lut_weight_bits,
        allowed=f"1..4 or {LUT_TERNARY}",
    )
    group: int = param(4, "Activations per table; the table has 2**(group-1) entries if symmetric.", lo=2, hi=8)
    symmetric: bool = param(True, "Symmetrised half table (--no-symmetric stores all 2**group sums).")
    lanes: int = param(1, "Weight columns served per cycle from one table.", lo=1, hi=64)
    acc_bits: Optional[int] = param(
        None,
        "Accumulator width per lane, wraps (default: derived, never overflows).",
        lo="step_bits",
        hi=64,
        needs=("act", "weight_bits", "group"),
    )
    stages: int = param(0, "Pipeline registers (latency = planes + 2 + stages).", lo=0, hi=2)
    max_count: int = param(4096, "Steps the derived accumulator width holds without overflow.", lo=1, hi=1 << 20)

    family: ClassVar[str] = "lut"

    # --- formats ------------------------------------------------------------------------------
    @property
    def ternary(self) -> bool:
        return self.weight_bits == LUT_TERNARY

    @property
    def weight_code_bits(self) -> int:
        """Bits per weight code on port ``b`` (2 for ternary)."""
        return 2 if self.ternary else int(self.weight_bits)

    @property
    def weight_range(self) -> tuple[int, int]:
        if self.ternary:
            return -1, 1
        k = int(self.weight_bits)
        return -(1 << (k - 1)), (1 << (k - 1)) - 1

    @property
    def act_lsb_exp(self) -> int:
        """Activation ``a`` = integer * 2**act_lsb_exp (0 for integer formats)."""
        act = self.act
        return act.emin - act.man_bits if isinstance(act, FloatFormat) else 0

    @property
    def act_range(self) -> tuple[int, int]:
        """Smallest and largest activation integer (fixed-point value / 2**act_lsb_exp)."""
        act = self.act
        if isinstance(act, FloatFormat):
            top = int(math.ldexp(act.max, -self.act_lsb_exp))
            return -top, top
        return act.min_int, act.max_int

    @property
    def act_int_bits(self) -> int:
        """Two's complement width of one decoded activation integer."""
        return signed_width(*self.act_range)

    # --- datapath geometry ----------------------------------------------------------------------
    @property
    def planes(self) -> int:
        """Weight bit-planes per step = cycles per step (2 for ternary: plus and minus masks)."""
        return 2 if self.ternary else int(self.weight_bits)

    @property
    def cycles_per_weight_bit(self) -> int:
        return 1

    @property
    def initiation_interval(self) -> int:
        """Cycles between two inputs (the PE is busy for ``planes`` cycles per step)."""
        return self.planes

    @property
    def table_entries(self) -> int:
        return 1 << (self.group - 1) if self.symmetric else 1 << self.group

    @property
    def macs_per_cycle(self) -> float:
        return self.lanes * self.group / self.planes

    @property
    def step_range(self) -> tuple[int, int]:
        """Smallest and largest group dot product of one lane (one step)."""
        (alo, ahi), (wlo, whi) = self.act_range, self.weight_range
        corners = [x * y for x in (alo, ahi) for y in (wlo, whi)]
        return self.group * min(corners), self.group * max(corners)

    @property
    def step_bits(self) -> int:
        return signed_width(*self.step_range)

    @property
    def width(self) -> int:
        """Accumulator width per lane (given or derived)."""
        if self.acc_bits is not None:
            return self.acc_bits
        lo, hi = self.step_range
        return signed_width(lo * self.max_count, hi * self.max_count)

    @property
    def name(self) -> str:
        w = "t" if self.ternary else str(self.weight_bits)
        tail = f"w{self.acc_bits}" if self.acc_bits is not None else f"n{self.max_count}"
        return (
            f"lut_{self.act.name}_w{w}_g{self.group}_{'sym' if self.symmetric else 'full'}"
            f"_l{self.lanes}_s{self.stages}_{tail}"
        )

    @property
    def latency(self) -> int:
        """Cycles from an input to the accumulator value that includes it."""
        return self.planes + 2 + self.stages


SHIFTADD_MODES = ("pot", "apot", "bitserial", "shiftadd-int")
#: Name fragment of each mode (module names must be Verilog identifiers).
_SHIFTADD_TAG = {"pot": "pot", "apot": "apot", "bitserial": "bitserial", "shiftadd-int": "int"}
SHIFTADD_SCALES = ("fp16", "bf16", "e8m0fnu", "intN", "uintN")


def _ident(text: str) -> str:
    return text.replace("-", "m")


@functools.lru_cache(maxsize=None)
def _pow2_lsb(fmt: Any) -> int:
    """-L for the smallest L with every value of ``fmt`` times 2**L an integer."""
    lsb = 0
    for v in fmt.values():
        f = abs(float(v))
        while f * 2.0**lsb != math.floor(f * 2.0**lsb):
            lsb += 1
    return -lsb


def _shiftadd_act(_spec: Any, field: str, value: Any) -> IntFormat | FloatFormat:
    fmt = _format(field, value)
    if isinstance(fmt, IntFormat) and not fmt.frac_bits and 2 <= fmt.bits <= 16:
        return fmt
    if isinstance(fmt, FloatFormat) and fmt.signed and fmt.bits <= 8:
        return fmt
    raise ValueError(
        f"{field}={value!r} ({fmt.name}) is not allowed: use intN / uintN with 2..16 bits "
        "or a signed float format of at most 8 bits (e4m3fn, e5m2, e2m1fn, ...)"
    )


#: Weight format class, bit range and allowed text of every shift-add mode.
_SHIFTADD_WEIGHTS: dict[str, tuple[type, int, int, str]] = {
    "pot": (PotFormat, 2, 6, "potN or potNeK with N = 2..6"),
    "apot": (ApotFormat, 3, 9, "apotN or apotNeK with N = 3..9"),
    "bitserial": (IntFormat, 2, 8, "intK / uintK with K = 2..8"),
    "shiftadd-int": (IntFormat, 2, 8, "intK / uintK with K = 2..8"),
}


def _shiftadd_weight(spec: Any, field: str, value: Any) -> PotFormat | ApotFormat | IntFormat:
    fmt = _format(field, value)
    cls, lo, hi, text = _SHIFTADD_WEIGHTS[spec.mode]
    if (
        isinstance(fmt, (PotFormat, ApotFormat, IntFormat))
        and isinstance(fmt, cls)
        and lo <= fmt.bits <= hi
        and not (isinstance(fmt, IntFormat) and fmt.frac_bits)
    ):
        return fmt
    raise ValueError(f"{field}={value!r} ({fmt.name}) is not allowed with mode={spec.mode!r}: use {text}")


def _shiftadd_scale(spec: Any, field: str, value: Any) -> FloatFormat | IntFormat | None:
    """The group scale: required exactly when ``group`` is given."""
    if spec.group is None:
        if value is not None:
            raise ValueError(f"{field}={value!r} needs group: give group (1..4096) or scale=None")
        return None
    if value is None:
        raise ValueError(f"{field}=None: group={spec.group} needs a scale format, one of {SHIFTADD_SCALES}")
    fmt = _format(field, value)
    if isinstance(fmt, FloatFormat) and fmt.name in ("fp16", "bf16", "e8m0fnu"):
        return fmt
    if isinstance(fmt, IntFormat) and not fmt.frac_bits and 2 <= fmt.bits <= 16:
        return fmt
    raise ValueError(
        f"{field}={value!r} ({fmt.name}) is not allowed: use fp16, bf16, e8m0fnu or intN / uintN with 2..16 bits"
    )


@dataclass(frozen=True)
class ShiftAddSpec(Spec):
    """Multiplier-free shift-add PE (family ``shiftadd``): PoT / APoT / INTk weights.

    Every product ``act * weight`` is formed by shifts and adds into an exact fixed-point
    word with LSB ``2**product_lsb_exp`` and summed into an integer accumulator; with
    ``group`` the integer sum is dequantised once per group into an FP32 accumulator.

    Parameters
    ----------
    act : IntFormat, FloatFormat or str
        Activation (port ``a``): ``intN`` / ``uintN`` with 2..16 bits, or a signed float format
        of at most 8 bits (read as an exact fixed-point value; NaN and inf codes read as 0).
    weight : PotFormat, ApotFormat, IntFormat or str
        Weight (port ``b``): ``potN[eK]`` (N = 2..6) for mode ``pot``, ``apotN[eK]`` (N = 3..9)
        for ``apot``, ``intK`` / ``uintK`` (K = 2..8) for ``bitserial`` and ``shiftadd-int``.
    mode : str
        ``pot``: one shifter per lane; ``apot``: two shifters and an adder; ``shiftadd-int``:
        the K shifted copies of the activation selected by the weight bits summed in one
        cycle (unrolled); ``bitserial``: the same sum over K cycles, one weight bit per cycle
        (MSB first), so the PE takes one input every K cycles.
    acc_bits : int or None
        Integer accumulator width; None derives the narrowest width that never overflows
        (``group`` steps when grouped, else ``max_count`` steps).
    lanes : int
        Products per input, summed exactly (1..64).
    stages : int
        Pipeline registers before the accumulator (0..4).
    group : int or None
        Per-group dequantisation: after ``group`` inputs the integer sum is multiplied by the
        scale presented with the group's last input and added into an FP32 accumulator with
        one round-to-nearest-even (1..4096).  None: the ``acc`` port is the integer sum.
    scale : FloatFormat, IntFormat, str or None
        Group scale format (port ``scale``): ``fp16``, ``bf16``, ``e8m0fnu`` or ``intN`` /
        ``uintN`` (2..16 bits); required exactly when ``group`` is given.
    overflow : str
        ``wrap`` or ``saturate`` when a given ``acc_bits`` overflows.
    max_count : int
        Inputs the derived width holds without ``group`` (1..2**20).
    """

    act: ActField = param(
        help="Activation (port a).",
        convert=_shiftadd_act,
        allowed="intN / uintN (2..16 bits) or a signed float of <= 8 bits",
    )
    weight: Converted[Union[PotFormat, ApotFormat, IntFormat], Union[PotFormat, ApotFormat, IntFormat, str]] = param(
        help="Weight (port b).",
        convert=_shiftadd_weight,
        needs=("mode",),
        allowed="potN[eK] (mode pot), apotN[eK] (apot), intK / uintK (bitserial, shiftadd-int)",
    )
    mode: str = param(
        help="Shift-add datapath: bitserial takes one weight bit per cycle, shiftadd-int sums them unrolled.",
        choices=SHIFTADD_MODES,
    )
    acc_bits: Optional[int] = param(
        None,
        "Integer accumulator width (default: derived, never overflows).",
        lo="step_bits",
        hi=128,
        needs=("act", "weight", "lanes"),
    )
    lanes: int = param(1, "Products per input, summed exactly.", lo=1, hi=64)
    stages: int = param(0, "Pipeline registers before the accumulator.", lo=0, hi=4)
    group: Optional[int] = param(
        None, "Dequantise into an FP32 accumulator every GROUP inputs (needs --scale).", lo=1, hi=4096
    )
    scale: Converted[Union[FloatFormat, IntFormat, None], Union[FloatFormat, IntFormat, str, None]] = param(
        None,
        "Group scale format (port scale).",
        convert=_shiftadd_scale,
        needs=("group",),
        allowed="fp16, bf16, e8m0fnu, intN / uintN (2..16 bits); with --group only",
    )
    overflow: str = param("wrap", "Overflow of a given --acc-bits.", choices=OVERFLOWS)
    max_count: int = param(4096, "Inputs the derived width holds without overflow (no --group).", lo=1, hi=1 << 20)

    family: ClassVar[str] = "shiftadd"

    def _check(self) -> None:
        if self.acc_bits is None and self.width > 128:
            raise ValueError(
                f"act={self.act.name}, weight={self.weight.name}, lanes={self.lanes}: the "
                f"derived accumulator needs {self.width} bits, allowed up to 128 (lower max_count "
                "or group, or give acc_bits)"
            )

    # --- fixed-point geometry -----------------------------------------------------------------
    @property
    def act_lsb_exp(self) -> int:
        """Exponent of the activation's fixed-point LSB (0 for integers)."""
        return self.act.min_exp if isinstance(self.act, FloatFormat) else 0

    @property
    def act_range(self) -> tuple[int, int]:
        """Smallest and largest activation in units of ``2**act_lsb_exp``."""
        a = self.act
        if isinstance(a, IntFormat):
            return a.min_int, a.max_int
        top = int(math.ldexp(a.max, -a.min_exp))
        return -top, top

    @property
    def weight_lsb_exp(self) -> int:
        """Exponent of the weight's fixed-point LSB (0 for integer weights)."""
        w = self.weight
        if isinstance(w, IntFormat):
            return 0
        return _pow2_lsb(w)

    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest weight in units of ``2**weight_lsb_exp``."""
        w = self.weight
        if isinstance(w, IntFormat):
            return w.min_int, w.max_int
        top = int(math.ldexp(w.max, -self.weight_lsb_exp))
        return -top, top

    @property
    def product_lsb_exp(self) -> int:
        """Exponent of the LSB of every product and of the integer accumulator."""
        return self.act_lsb_exp + self.weight_lsb_exp

    @property
    def product_range(self) -> tuple[int, int]:
        (alo, ahi), (wlo, whi) = self.act_range, self.weight_range
        corners = [x * y for x in (alo, ahi) for y in (wlo, whi)]
        return min(corners), max(corners)

    @property
    def product_bits(self) -> int:
        return signed_width(*self.product_range)

    @property
    def step_bits(self) -> int:
        """Two's complement bits of one input's lane sum."""
        lo, hi = self.product_range
        return signed_width(lo * self.lanes, hi * self.lanes)

    @property
    def count(self) -> int:
        """Inputs the derived accumulator width covers: ``group`` or ``max_count``."""
        return self.group if self.group is not None else self.max_count

    @property
    def width(self) -> int:
        """Integer accumulator width in bits (given or derived)."""
        if self.acc_bits is not None:
            return self.acc_bits
        lo, hi = self.product_range
        n = self.lanes * self.count
        return signed_width(lo * n, hi * n)

    @property
    def out_bits(self) -> int:
        """Width of the ``acc`` port: 32 (FP32) with ``group``, else :attr:`width`."""
        return 32 if self.group is not None else self.width

    # --- timing -------------------------------------------------------------------------------
    @property
    def cycles_per_input(self) -> int:
        """Cycles between inputs (``weight.bits`` for ``bitserial``, else 1)."""
        return self.weight.bits if self.mode == "bitserial" else 1

    @property
    def latency(self) -> int:
        """Cycles from an input to the ``acc`` value that includes it."""
        lat = self.stages + 1
        if self.mode == "bitserial":
            lat += self.weight.bits
        return lat + (1 if self.group is not None else 0)

    @property
    def name(self) -> str:
        parts = [
            f"shiftadd_{_SHIFTADD_TAG[self.mode]}_{self.act.name}x{_ident(self.weight.name)}",
            f"l{self.lanes}",
            f"s{self.stages}",
        ]
        if self.scale is not None:
            parts.append(f"g{self.group}{self.scale.name}")
        if self.acc_bits is not None:
            parts.append(f"w{self.acc_bits}{'sat' if self.overflow == 'saturate' else ''}")
        elif self.group is None:
            parts.append(f"n{self.max_count}")
        return "_".join(parts)


#: Element formats of the ``blockdot`` family: the OCP MX float element types and ``intN``
#: (N = 2..8) two's complement elements with the MX implied scale 2^-(N-2) (``int8`` is MXINT8
#: = ``int8f6``, ``int6`` MXINT6 = ``int6f4``, ``int4`` MXINT4 / NVINT4 = ``int4f2``).
BLOCKDOT_ELEMENTS = (
    "e4m3fn",
    "e5m2",
    "e3m2fn",
    "e2m3fn",
    "e2m1fn",
    "int2",
    "int3",
    "int4",
    "int5",
    "int6",
    "int7",
    "int8",
)
#: Block scale formats: OCP MX E8M0, NVFP4's FP8 E4M3, and the unsigned UE4M3 / UE5M3.
BLOCKDOT_SCALES = ("e8m0fnu", "e4m3fn", "ue4m3", "ue5m3")
#: Largest block (elements per scale).
BLOCKDOT_MAX_BLOCK = 256


def _blockdot_element(_spec: Any, field: str, value: Any) -> FloatFormat | IntFormat:
    try:
        fmt = formats.block_element(value)
    except ValueError as err:
        raise ValueError(f"{field}={value!r}: {err}; allowed {BLOCKDOT_ELEMENTS}") from None
    if isinstance(fmt, IntFormat) and fmt.signed and 2 <= fmt.bits <= 8 and fmt.frac_bits == fmt.bits - 2:
        return fmt
    if isinstance(fmt, FloatFormat) and fmt.name in BLOCKDOT_ELEMENTS:
        return fmt
    raise ValueError(
        f"{field}={value!r} is not a block element format: allowed {BLOCKDOT_ELEMENTS} "
        "(intN means MXINT-N, two's complement times 2**-(N-2); int8 is MXINT8)"
    )


def _blockdot_scale(_spec: Any, field: str, value: Any) -> FloatFormat:
    try:
        fmt = formats.get(value)
    except ValueError as err:
        raise ValueError(f"{field}={value!r}: {err}; allowed {BLOCKDOT_SCALES}") from None
    if not isinstance(fmt, FloatFormat) or fmt.name not in BLOCKDOT_SCALES:
        raise ValueError(f"{field}={value!r} is not a block scale format: allowed {BLOCKDOT_SCALES}")
    return fmt


def _blockdot_lanes(spec: Any, field: str, value: Any) -> int:
    """A divisor of ``block``."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= spec.block and spec.block % value:
        divisors = [d for d in range(1, spec.block + 1) if spec.block % d == 0]
        raise ValueError(f"{field}={value!r} does not divide block={spec.block}: allowed {divisors}")
    return value


_BLOCKDOT_ELEMENT_TEXT = (
    "e4m3fn, e5m2, e3m2fn, e2m3fn, e2m1fn or intN, N = 2..8 (MXINT-N: int8 = MXINT8, int4 = MXINT4 / NVINT4)"
)

#: A block element format field.
ElementField = Converted[Union[FloatFormat, IntFormat], Union[FloatFormat, IntFormat, str]]


@dataclass(frozen=True)
class BlockDotSpec(Spec):
    """Block-scaled dot-product PE (family ``blockdot``): OCP MX, NVFP4, NVINT4, UE5M3 blocks.

    One *block step* takes ``block`` element pairs and one scale per operand, sums the
    element products exactly, multiplies the sum by both scales exactly and adds it to the
    accumulator with one round-to-nearest-even (see :mod:`peforge.models.golden.blockdot`).

    Parameters
    ----------
    element_a, element_b : FloatFormat, IntFormat or str
        Element formats, one of :data:`BLOCKDOT_ELEMENTS` (``intN`` is MXINT-N: two's
        complement times 2**-(N-2), stored as ``int{N}f{N-2}``; ``int8`` is MXINT8).
    scale_a, scale_b : FloatFormat or str
        Scale formats, one of :data:`BLOCKDOT_SCALES` (E8M0 for MX, E4M3 for NVFP4 / NVINT4,
        the unsigned UE4M3 / UE5M3).
    block : int
        Elements per scale (1..256; MX uses 32, NVFP4 / NVINT4 16).
    lanes : int or None
        Element products per cycle, a divisor of ``block`` (None: ``block``).  A block then
        takes ``block // lanes`` cycles (*beats*).
    acc : FloatFormat or str
        IEEE accumulator (``fp32``, ``bf16``, ``fp16`` or an ieee eXmY of 8..32 bits).
    stages : int
        Pipeline registers before the accumulator (0..9); latency = stages + 1 cycles from a
        block's last beat (plus the read-out's latency with ``rounding="deferred"``).  In
        order: the loop's input, the products (the DSPs' output registers), the lane sum, the
        scaled block sum, the aligned terms, half way down the lane adder tree, the multiplier
        operands (the DSPs' input registers), before the tree's last level, the block sum
        (before the scales).
    rounding : str
        ``per-step`` (one round-to-nearest-even per block step, the default) or ``deferred``:
        the block values are added into a fixed-point window register and the running sum is
        rounded to ``acc`` once, on the way out (:mod:`peforge.accumulator`).
    window_lsb, window_msb : int or None
        ``deferred``: the window on the grid ``2**window_lsb`` holding ``-2**(window_msb+1) <=
        sum < 2**(window_msb+1)``.  Block-value bits below ``window_lsb`` are rounded away
        (nearest, ties to even, per block: the sticky ``inexact`` flag); leaving the window
        sets the ``overflow`` flag and gives inf.  None: the default of
        :func:`peforge.accumulator.blockdot_default_window`.
    segment : int
        ``deferred``: bits per carry segment of the window register (0: one carry chain).
    readout_stages : int or None
        ``deferred``: registers of the normalise / round read-out (>= 1, the ``acc`` register
        included); None picks the fewest that keep each stage within the loop's delay.
    align_stages : int or None
        ``deferred``: registers of the window aligner in front of the loop (the last at the
        loop's input; 0: combinational); None picks the fewest that keep each stage within the
        loop's delay.  ``stages``' register nearest the loop sits at the aligner's input.
    """

    element_a: ElementField = param(
        "e4m3fn", "Element format of a.", convert=_blockdot_element, allowed=_BLOCKDOT_ELEMENT_TEXT
    )
    element_b: ElementField = param(
        "e4m3fn", "Element format of b.", convert=_blockdot_element, allowed=_BLOCKDOT_ELEMENT_TEXT
    )
    scale_a: FloatField = param(
        "e8m0fnu",
        "Block scale format of a: e8m0fnu (OCP MX), e4m3fn (NVFP4 / NVINT4), ue4m3 or ue5m3 (unsigned).",
        convert=_blockdot_scale,
        allowed="e8m0fnu, e4m3fn, ue4m3 or ue5m3",
    )
    scale_b: FloatField = param(
        "e8m0fnu", "Block scale format of b.", convert=_blockdot_scale, allowed="e8m0fnu, e4m3fn, ue4m3 or ue5m3"
    )
    block: int = param(32, "Elements per scale (MX: 32, NVFP4 / NVINT4: 16).", lo=1, hi=BLOCKDOT_MAX_BLOCK)
    lanes: Converted[int, Optional[int]] = param(
        None,
        "Products per cycle, a divisor of --block (default: --block); a block takes block/lanes cycles.",
        convert=_blockdot_lanes,
        lo=1,
        hi="block",
        needs=("block",),
        derive=lambda spec: spec.block,
        allowed="a divisor of block",
    )
    acc: FloatField = param(
        "fp32",
        "Accumulator, rounded once per block (round to nearest even).",
        convert=_ieee_acc,
        allowed="fp32, bf16, fp16 or an ieee eXmY of 8..32 bits",
    )
    stages: int = param(0, "Pipeline registers before the accumulator (latency = stages + 1).", lo=0, hi=9)

    rounding: str = param(
        "per-step",
        "per-step (one RNE per block) or deferred (exact window register, rounded once on the way out).",
        choices=ROUNDINGS,
    )
    window_lsb: Optional[int] = param(
        None, "Deferred: exponent of the window's LSB (default: exact products at moderate scales).", lo=-1000, hi=1000
    )
    window_msb: Optional[int] = param(
        None,
        "Deferred: the window holds |sum| < 2**(MSB+1) (default: 4096 blocks of the largest moderate-scale blocks).",
        lo=-1000,
        hi=1000,
    )
    segment: int = param(
        0,
        "Deferred: bits per carry segment of the window register (0: one chain).",
        convert=_segment,
        cli=int,
        allowed="0 (one carry chain) or 2..256",
    )
    readout_stages: Optional[int] = param(
        None,
        "Deferred: read-out registers (default: as many as keep up with the loop).",
        lo=0,
        hi=_acc.MAX_READOUT_STAGES,
    )
    align_stages: Optional[int] = param(
        None,
        "Deferred: window-aligner registers in front of the loop (default: as many as keep up with the loop).",
        lo=0,
        hi=_acc.MAX_READOUT_STAGES,
    )

    family: ClassVar[str] = "blockdot"

    def _check(self) -> None:
        deferred = self.rounding == "deferred"
        _check_accumulator(self, fixed_point=deferred)
        for field in ("window_lsb", "window_msb"):
            value = getattr(self, field)
            if value is not None and not deferred:
                raise ValueError(
                    f"{field}={value!r} needs rounding='deferred' (the per-step accumulator has no window)"
                )
        if deferred:
            lsb, msb = _acc.blockdot_window(self)
            if msb < lsb or msb - lsb + 2 > _acc.MAX_WINDOW_BITS:
                raise ValueError(
                    f"window_lsb={lsb}, window_msb={msb}: the window needs window_msb >= "
                    f"window_lsb and at most {_acc.MAX_WINDOW_BITS} bits "
                    f"(window_msb - window_lsb + 2 = {msb - lsb + 2})"
                )
            object.__setattr__(self, "window_lsb", lsb)
            object.__setattr__(self, "window_msb", msb)
        elif self.align_stages:
            raise ValueError(
                f"align_stages={self.align_stages!r} needs rounding='deferred' (the "
                "per-step accumulator has no window aligner)"
            )
        plan = self.accumulator  # without one the fields keep their defaults (compiled kernels check them)
        object.__setattr__(self, "readout_stages", None if plan is None else plan.readout_stages)
        object.__setattr__(self, "align_stages", None if plan is None else plan.align_stages)

    @property
    def accumulator(self) -> Optional[_acc.AccumulatorPlan]:
        """The deferred accumulator's plan (None with per-step rounding)."""
        if self.rounding != "deferred" or self.window_lsb is None or self.window_msb is None:
            return None
        return _mac_plan(
            "deferred",
            self.window_lsb,
            self.window_msb,
            self.segment,
            self.readout_stages,
            self.beats - 1,
            self.acc,
            True,
            _acc.blockdot_value_bits(self),
            self.align_stages,
        )

    @property
    def beats(self) -> int:
        """Cycles (valid inputs) per block: ``block // lanes``."""
        return self.block // self.lanes

    @property
    def latency(self) -> int:
        """Cycles from a block's last beat to the accumulator value that includes it."""
        plan = self.accumulator
        return self.stages + (plan.latency if plan is not None else 1)

    @property
    def name(self) -> str:
        return "_".join(
            [
                f"blockdot_{self.element_a.name}x{self.element_b.name}_"
                f"{self.scale_a.name}x{self.scale_b.name}_k{self.block}_l{self.lanes}_"
                f"{self.acc.name}_s{self.stages}",
                *_accumulator_tags(self),
            ]
        )
