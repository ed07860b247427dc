"""PE specifications: one frozen, validated, hashable spec class per PE family.

Every other part (RTL generator, golden model, cost model, testbench, sweeps) reads a spec
independently; a spec never imports any of them.  Specs round-trip through JSON
(:meth:`Spec.to_dict` / :func:`from_dict`) and their :attr:`Spec.name` is stable, so it is
used for module names, file names and result keys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Optional, Union

from . import formats
from .formats import FloatFormat, IntFormat

__all__ = ["Spec", "MinifloatMacSpec", "IntMacSpec", "SimdMacSpec", "signed_width", "ACC_EXACT", "MULTS", "from_dict", "from_json", "families"]

ACC_EXACT = "exact"
MULTS = ("exact", "lmul")

_FAMILIES: dict[str, type["Spec"]] = {}


def families() -> dict[str, type["Spec"]]:
    """Registered PE families by name (``mac``, ...)."""
    return dict(_FAMILIES)


def _register(cls: type["Spec"]) -> type["Spec"]:
    _FAMILIES[cls.family] = cls
    return cls


def _float_format(field: str, value: Any, min_bits: int, max_bits: int) -> FloatFormat:
    try:
        fmt = formats.get(value)
    except ValueError as err:
        raise ValueError(f"{field}={value!r}: {err}") from None
    if not isinstance(fmt, FloatFormat) or not fmt.signed:
        raise ValueError(f"{field}={value!r} must be a signed float format (eXmY), got {fmt.name}")
    if not min_bits <= fmt.bits <= max_bits:
        raise ValueError(f"{field}={fmt.name} has {fmt.bits} bits: allowed {min_bits}..{max_bits}")
    return fmt


def _int_field(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{field}={value!r} is out of range: allowed integers {lo}..{hi}")
    return value


class Spec:
    """Base of every family's spec: naming, JSON round trip."""

    family: ClassVar[str]

    @property
    def name(self) -> str:  # pragma: no cover - every family overrides
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.name if isinstance(v, (FloatFormat, IntFormat)) else v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        return self.name


def from_dict(data: dict[str, Any]) -> Spec:
    """Rebuild a spec from :meth:`Spec.to_dict` output."""
    data = dict(data)
    family = data.pop("family", None)
    if family not in _FAMILIES:
        raise ValueError(f"unknown PE family {family!r}: allowed {sorted(_FAMILIES)}")
    return _FAMILIES[family](**data)


def from_json(text: str) -> Spec:
    return from_dict(json.loads(text))


@_register
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
        Pipeline registers before the accumulator (0..4); latency = stages + 1.
    subnormals : bool
        False flushes subnormal inputs and subnormal results to zero (sign kept).
    max_count : int
        Accumulation steps the exact accumulator must hold without overflow (1..2**20).
    mult : str
        ``exact`` significand multiplier, or ``lmul`` (approximate L-Mul adder).
    """

    a: Union[FloatFormat, str] = "e4m3fn"
    b: Union[FloatFormat, str] = "e4m3fn"
    acc: Union[FloatFormat, str] = "fp32"
    lanes: int = 1
    stages: int = 0
    subnormals: bool = True
    max_count: int = 4096
    mult: str = "exact"

    family: ClassVar[str] = "mac"

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", _float_format("a", self.a, 2, 16))
        object.__setattr__(self, "b", _float_format("b", self.b, 2, 16))
        if self.acc != ACC_EXACT:
            acc = _float_format("acc", self.acc, 8, 32)
            if acc.man_bits < 1:
                raise ValueError(f"acc={acc.name} needs at least 1 mantissa bit (round-to-nearest-even "
                                 f"is ambiguous without one)")
            if acc.special != "ieee":
                raise ValueError(f"acc={acc.name} must use the ieee special-value convention "
                                 f"(fp32, bf16, fp16, eXmY) or be 'exact'")
            object.__setattr__(self, "acc", acc)
        _int_field("lanes", self.lanes, 1, 64)
        _int_field("stages", self.stages, 0, 4)
        _int_field("max_count", self.max_count, 1, 1 << 20)
        if not isinstance(self.subnormals, bool):
            raise ValueError(f"subnormals={self.subnormals!r} must be True or False")
        if self.mult not in MULTS:
            raise ValueError(f"mult={self.mult!r} is not allowed: use one of {MULTS}")

    @property
    def is_exact(self) -> bool:
        return self.acc == ACC_EXACT

    @property
    def acc_name(self) -> str:
        return ACC_EXACT if self.is_exact else self.acc.name  # type: ignore[union-attr]

    @property
    def name(self) -> str:
        parts = [f"mac_{self.a.name}x{self.b.name}_{self.acc_name}", f"l{self.lanes}", f"s{self.stages}"]
        if not self.subnormals:
            parts.append("ftz")
        if self.is_exact:
            parts.append(f"n{self.max_count}")
        if self.mult != "exact":
            parts.append(self.mult)
        return "_".join(parts)

    @property
    def latency(self) -> int:
        """Cycles from an input to the accumulator value that includes it."""
        return self.stages + 1

    # --- exact (Kulisch) accumulator geometry -----------------------------------------------
    @property
    def product_lsb_exp(self) -> int:
        """Exponent of the least significant bit of any exact product (normal or subnormal)."""
        a, b = self.a, self.b
        return (a.emin - a.man_bits) + (b.emin - b.man_bits)  # type: ignore[union-attr]

    @property
    def product_max_exp(self) -> int:
        """floor(log2(max |product|)): the product's most significant bit position."""
        return math.floor(math.log2(self.a.max * self.b.max))  # type: ignore[union-attr]

    @property
    def exact_width(self) -> int:
        """Kulisch register width: product span + guard bits for lanes * max_count + sign."""
        span = self.product_max_exp - self.product_lsb_exp + 1
        guard = math.ceil(math.log2(self.lanes * self.max_count)) if self.lanes * self.max_count > 1 else 0
        return span + guard + 1


def _int_format(field: str, value: Any, min_bits: int, max_bits: int) -> IntFormat:
    try:
        fmt = formats.get(value)
    except ValueError as err:
        raise ValueError(f"{field}={value!r}: {err}") from None
    if not isinstance(fmt, IntFormat) or fmt.frac_bits:
        raise ValueError(f"{field}={value!r} must be an integer format (intN / uintN), got {fmt.name}")
    if not min_bits <= fmt.bits <= max_bits:
        raise ValueError(f"{field}={fmt.name} has {fmt.bits} bits: allowed {min_bits}..{max_bits}")
    return fmt


def signed_width(lo: int, hi: int) -> int:
    """Fewest two's complement bits that hold every integer in lo..hi."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


OVERFLOWS = ("wrap", "saturate")


@_register
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

    a: Union[IntFormat, str] = "int8"
    b: Union[IntFormat, str] = "int8"
    acc_bits: Optional[int] = None
    lanes: int = 1
    stages: int = 0
    max_count: int = 4096
    overflow: str = "wrap"

    family: ClassVar[str] = "intmac"

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", _int_format("a", self.a, 2, 16))
        object.__setattr__(self, "b", _int_format("b", self.b, 2, 16))
        _int_field("lanes", self.lanes, 1, 64)
        _int_field("stages", self.stages, 0, 4)
        _int_field("max_count", self.max_count, 1, 1 << 20)
        if self.acc_bits is not None:
            _int_field("acc_bits", self.acc_bits, self.product_bits, 64)
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow={self.overflow!r} is not allowed: use one of {OVERFLOWS}")

    @property
    def product_range(self) -> tuple[int, int]:
        a, b = self.a, self.b
        corners = [x * y for x in (a.min_int, a.max_int) for y in (b.min_int, b.max_int)]  # type: ignore[union-attr]
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
        parts.append(f"w{self.acc_bits}{'sat' if self.overflow == 'saturate' else ''}" if self.acc_bits
                     else f"n{self.max_count}")
        return "_".join(parts)

    @property
    def latency(self) -> int:
        return self.stages + 1


SIMD_ARCHS = ("bricks", "sub4")
SIMD_DEFAULT_MODES: dict[int, tuple[str, ...]] = {
    8: ("8x8", "8x4", "4x4", "4x2", "2x2"),
    16: ("16x16", "16x8", "8x8", "8x4", "4x4"),
}
_SIMD_DIGIT = {"bricks": 2, "sub4": 4}


def _parse_mode(base: int, arch: str, mode: Any) -> tuple[int, int]:
    digit = _SIMD_DIGIT[arch]
    allowed = [w for w in (2, 4, 8, 16) if w <= base and w % digit == 0]
    try:
        a_txt, b_txt = str(mode).lower().split("x")
        a_bits, b_bits = int(a_txt), int(b_txt)
    except ValueError:
        raise ValueError(f"modes: {mode!r} is not 'AxB' (a_bits x b_bits, e.g. '8x4')") from None
    for side, w in (("a", a_bits), ("b", b_bits)):
        if w not in allowed:
            raise ValueError(f"modes: {mode!r} has {side} width {w}: with base={base} and arch={arch!r} "
                             f"each width must be one of {allowed} (a power of two dividing the base"
                             f"{', a multiple of 4 for sub4' if digit == 4 else ''})")
    return a_bits, b_bits


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << bits) - 1  # union of the signed and unsigned ranges


@_register
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

    base: int = 8
    modes: Optional[tuple[str, ...]] = None
    arch: str = "bricks"
    acc_bits: Optional[int] = None
    stages: int = 0
    max_count: int = 4096

    family: ClassVar[str] = "simd"

    def __post_init__(self) -> None:
        if self.base not in SIMD_DEFAULT_MODES or isinstance(self.base, bool):
            raise ValueError(f"base={self.base!r} is not allowed: use one of {tuple(SIMD_DEFAULT_MODES)}")
        if self.arch not in SIMD_ARCHS:
            raise ValueError(f"arch={self.arch!r} is not allowed: use one of {SIMD_ARCHS}")
        modes = self.modes
        if modes is None:
            digit = _SIMD_DIGIT[self.arch]
            modes = tuple(m for m in SIMD_DEFAULT_MODES[self.base]
                          if all(int(w) % digit == 0 for w in m.split("x")))
        elif isinstance(modes, str):
            modes = tuple(m.strip() for m in modes.split(",") if m.strip())
        if not isinstance(modes, (tuple, list)) or not 1 <= len(modes) <= 16:
            raise ValueError(f"modes={self.modes!r} must be 1..16 strings 'AxB' (e.g. ('8x8', '4x4'))")
        parsed = [_parse_mode(self.base, self.arch, m) for m in modes]
        canon = tuple(f"{a}x{b}" for a, b in parsed)
        if len(set(canon)) != len(canon):
            raise ValueError(f"modes={self.modes!r} lists a mode twice: each mode may appear once")
        object.__setattr__(self, "modes", canon)
        _int_field("stages", self.stages, 0, 4)
        _int_field("max_count", self.max_count, 1, 1 << 20)
        if self.acc_bits is not None:
            _int_field("acc_bits", self.acc_bits, self.step_bits, 64)

    # --- mode geometry ----------------------------------------------------------------------
    @property
    def mode_widths(self) -> tuple[tuple[int, int], ...]:
        """(a_bits, b_bits) of every mode, in ``mode`` input order."""
        return tuple((int(a), int(b)) for a, b in (m.split("x") for m in self.modes))  # type: ignore[union-attr]

    @property
    def mode_lanes(self) -> tuple[int, ...]:
        """Products per cycle (lanes) of every mode: base**2 / (a_bits * b_bits)."""
        return tuple(self.base * self.base // (a * b) for a, b in self.mode_widths)

    @property
    def mode_bits(self) -> int:
        """Width of the ``mode`` input (at least 1)."""
        return max(1, (len(self.modes) - 1).bit_length())  # type: ignore[arg-type]

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
        return max(signed_width(*self.step_range(i)) for i in range(len(self.modes)))  # type: ignore[arg-type]

    @property
    def width(self) -> int:
        """Accumulator width in bits (given or derived)."""
        if self.acc_bits is not None:
            return self.acc_bits
        return max(signed_width(lo * self.max_count, hi * self.max_count)
                   for lo, hi in map(self.step_range, range(len(self.modes))))  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        modes = "_".join(self.modes)  # type: ignore[arg-type]
        tail = f"w{self.acc_bits}" if self.acc_bits is not None else f"n{self.max_count}"
        return f"simd{self.base}_{self.arch}_{modes}_s{self.stages}_{tail}"

    @property
    def latency(self) -> int:
        return self.stages + 1
