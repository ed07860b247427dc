"""Number formats: minifloats (any ExMy), integers, power-of-two weights, as data.

A format carries its semantics (bias, special-value convention, rounding, overflow) as
data; no other part of peforge hard-codes "E4M3 max is 448".  Codes are unsigned integer
bit patterns (sign in the top bit for signed float formats); values are float64.

Special-value conventions (``special``):

``ieee``    all-ones exponent is inf (mantissa 0) or NaN (mantissa != 0).
``fn``      finite + NaN: only S.1..1.1..1 is NaN; no inf (OCP E4M3).
``fnuz``    finite, unsigned zero: 0x80.. (negative zero pattern) is the only NaN, no -0.
``finite``  every code is a number: no NaN, no inf (OCP FP6 / FP4).
``fnu``     unsigned, no zero, all-ones is NaN (E8M0 scales; requires ``signed=False``).

Only the standard library, NumPy and ml_dtypes are imported here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Union

import numpy as np

__all__ = [
    "FloatFormat",
    "IntFormat",
    "Format",
    "SPECIALS",
    "KIND_FINITE",
    "KIND_INF",
    "KIND_NAN",
    "get",
    "known_names",
]

SPECIALS = ("ieee", "fn", "fnuz", "finite", "fnu")

#: Classification returned by :meth:`FloatFormat.to_exact`.
KIND_FINITE, KIND_INF, KIND_NAN = 0, 1, 2

_SUFFIX = {"ieee": "", "fn": "fn", "fnuz": "fnuz", "finite": "fin", "fnu": "fnu"}


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format with ``exp_bits`` exponent and ``man_bits`` mantissa bits.

    Parameters
    ----------
    exp_bits : int
        Exponent field width E, 1..8.
    man_bits : int
        Stored mantissa (fraction) width M, 0..23.
    bias : int or None
        Exponent bias; ``None`` means the IEEE default ``2**(E-1) - 1``.
    special : str
        Special-value convention, one of :data:`SPECIALS`.
    signed : bool
        Whether a sign bit is present (only ``fnu`` scales are unsigned).

    value = (-1)^s * 2^(e - bias) * 1.m for e > 0, (-1)^s * 2^(1 - bias) * 0.m for e == 0
    (except ``fnu``, where e == 0 is the normal value 2^-bias and there are no subnormals).
    """

    exp_bits: int
    man_bits: int
    bias: int = None  # type: ignore[assignment]  # resolved in __post_init__
    special: str = "ieee"
    signed: bool = True
    _name: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        E, M = self.exp_bits, self.man_bits
        for label, value in (("exp_bits", E), ("man_bits", M)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"{label}={value!r} must be an int")
        if not 1 <= E <= 8:
            raise ValueError(f"exp_bits={E!r} is out of range: allowed 1..8")
        if not 0 <= M <= 23:
            raise ValueError(f"man_bits={M!r} is out of range: allowed 0..23")
        if self.special not in SPECIALS:
            raise ValueError(f"special={self.special!r} is not allowed: use one of {SPECIALS}")
        if self.special == "fnu" and self.signed:
            raise ValueError("special='fnu' (E8M0-style scale) requires signed=False")
        if not self.signed and self.special != "fnu":
            raise ValueError(f"signed=False is only allowed with special='fnu', not {self.special!r}")
        if self.special == "ieee" and E < 2:
            raise ValueError(f"special='ieee' needs exp_bits >= 2 (all-ones exponent is reserved), got {E}")
        if self.special == "fn" and E + M < 2:
            raise ValueError(f"special='fn' needs exp_bits + man_bits >= 2, got E{E}M{M}")
        bias = (1 << (E - 1)) - 1 if self.bias is None else self.bias
        if not isinstance(bias, (int, np.integer)) or not -(1 << E) <= bias <= (1 << (E + 1)):
            raise ValueError(f"bias={self.bias!r} is out of range for exp_bits={E}: allowed {-(1 << E)}..{1 << (E + 1)}")
        object.__setattr__(self, "bias", int(bias))
        object.__setattr__(self, "exp_bits", int(E))
        object.__setattr__(self, "man_bits", int(M))

    # ---- identity -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Stable short name (ml_dtypes style without ``floatN_``), e.g. ``e4m3fn``, ``fp32``."""
        if self._name is not None:
            return self._name
        for alias, fmt in _REGISTRY.items():
            if fmt == self:
                return alias
        default_bias = (1 << (self.exp_bits - 1)) - 1
        b = "" if self.bias == default_bias else f"b{self.bias}"
        return f"e{self.exp_bits}m{self.man_bits}{b}{_SUFFIX[self.special]}"

    def __str__(self) -> str:
        return self.name

    @property
    def bits(self) -> int:
        """Total code width in bits."""
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def num_codes(self) -> int:
        return 1 << self.bits

    @property
    def sign_mask(self) -> int:
        return (1 << (self.bits - 1)) if self.signed else 0

    # ---- range facts ----------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        return self.special == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.special in ("ieee", "fn", "fnuz", "fnu")

    @property
    def has_negative_zero(self) -> bool:
        return self.signed and self.special != "fnuz"

    @property
    def has_subnormals(self) -> bool:
        return self.man_bits > 0 and self.special != "fnu"

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number."""
        return -self.bias if self.special == "fnu" else 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite number."""
        top = (1 << self.exp_bits) - 1
        if self.special == "ieee" or (self.special in ("fn", "fnu") and self.man_bits == 0):
            top -= 1
        return top - self.bias

    @property
    def max(self) -> float:
        """Largest finite value."""
        M = self.man_bits
        top_man = (1 << M) - 1
        if self.special == "fn" and M > 0:
            top_man -= 1  # S.1..1.1..1 is NaN
        return float(np.ldexp(float((1 << M) + top_man), self.emax - M))

    @property
    def min_normal(self) -> float:
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (the smallest normal when there are no subnormals)."""
        if not self.has_subnormals:
            return self.min_normal
        return float(np.ldexp(1.0, self.emin - self.man_bits))

    @property
    def min_exp(self) -> int:
        """Exponent of the least significant bit of the smallest positive value."""
        return self.emin - (self.man_bits if self.has_subnormals else 0)

    @property
    def nan_code(self) -> int | None:
        """Canonical NaN code (the one ml_dtypes and IEEE hardware produce), or None."""
        E, M = self.exp_bits, self.man_bits
        if self.special == "ieee":
            return (((1 << E) - 1) << M) | (1 << (M - 1)) if M else None
        if self.special == "fn":
            return (1 << (E + M)) - 1
        if self.special == "fnuz":
            return self.sign_mask
        if self.special == "fnu":
            return (1 << (E + M)) - 1
        return None

    def inf_code(self, negative: bool = False) -> int | None:
        if not self.has_inf:
            return None
        return (((1 << self.exp_bits) - 1) << self.man_bits) | (self.sign_mask if negative else 0)

    # ---- field access --------------------------------------------------------------------
    def _check_codes(self, codes) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype.kind not in "ui":
            raise ValueError(
                f"{self.name}: codes must be an integer array, got dtype {arr.dtype} "
                "(view ml_dtypes arrays as unsigned integers first)")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_codes):
            bad = arr[(arr < 0) | (arr >= self.num_codes)].flat[0]
            raise ValueError(f"{self.name}: code {int(bad)!r} does not exist: allowed 0..{self.num_codes - 1}")
        return arr.astype(np.int64)

    def fields(self, codes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split codes into (sign, biased exponent, mantissa) integer arrays."""
        c = self._check_codes(codes)
        M = self.man_bits
        sign = (c >> (self.exp_bits + M)) & 1 if self.signed else np.zeros_like(c)
        return sign, (c >> M) & ((1 << self.exp_bits) - 1), c & ((1 << M) - 1)

    def classify(self, codes) -> np.ndarray:
        """KIND_FINITE / KIND_INF / KIND_NAN per code."""
        c = self._check_codes(codes)
        _, e, m = self.fields(c)
        kind = np.zeros(c.shape, dtype=np.uint8)
        top = (1 << self.exp_bits) - 1
        if self.special == "ieee":
            kind[(e == top) & (m == 0)] = KIND_INF
            kind[(e == top) & (m != 0)] = KIND_NAN
        elif self.special == "fn":
            kind[(c & ~self.sign_mask) == self.nan_code] = KIND_NAN
        elif self.special in ("fnuz", "fnu"):
            kind[c == self.nan_code] = KIND_NAN
        return kind

    def to_exact(self, codes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact decomposition: value = (-1)**sign * sig * 2**exp, with a kind per code.

        ``sig`` holds the full significand (hidden bit included, < 2**(M+1)); ``exp`` the
        exponent of its least significant bit.  Zeros have sig 0.  For inf/NaN codes sig and
        exp are 0 and ``kind`` says what they are.
        """
        c = self._check_codes(codes)
        sign, e, m = self.fields(c)
        M = self.man_bits
        kind = self.classify(c)
        if self.special == "fnu":
            sig = np.ones_like(c)
            exp = e - self.bias
        else:
            normal = e > 0
            sig = np.where(normal, m | (1 << M), m)
            exp = np.where(normal, e, 1) - self.bias - M
        special = kind != KIND_FINITE
        sig = np.where(special, 0, sig)
        exp = np.where(special, 0, exp)
        return sign.astype(np.int64), sig.astype(np.int64), exp.astype(np.int64), kind

    # ---- decode --------------------------------------------------------------------------
    @functools.cached_property
    def _table(self) -> np.ndarray | None:
        if self.bits > 16:
            return None
        return self._decode_arith(np.arange(self.num_codes, dtype=np.int64))

    def _decode_arith(self, c: np.ndarray) -> np.ndarray:
        sign, sig, exp, kind = self.to_exact(c)
        val = np.ldexp(sig.astype(np.float64), exp.astype(np.int32))
        val = np.where(sign == 1, -val, val)
        val = np.where(kind == KIND_NAN, np.nan, val)
        val = np.where(kind == KIND_INF, np.where(sign == 1, -np.inf, np.inf), val)
        return val

    def decode(self, codes) -> np.ndarray:
        """Values (float64) of an integer array of codes, any shape."""
        c = self._check_codes(codes)
        table = self._table
        if table is not None:
            return table[c]
        return self._decode_arith(c)

    def all_codes(self) -> np.ndarray:
        """Every code of the format, ascending (uint32)."""
        return np.arange(self.num_codes, dtype=np.uint32 if self.bits > 16 else np.uint16)

    def values(self) -> np.ndarray:
        """Decoded value of every code (float64), in code order."""
        return self.decode(self.all_codes())

    # ---- interop -------------------------------------------------------------------------
    def to_ml_dtype(self):
        """The matching ml_dtypes / numpy dtype, or None when ml_dtypes has no such format."""
        import ml_dtypes

        for alias, attr in _ML_DTYPES.items():
            if _REGISTRY[alias] == self:
                return np.dtype(getattr(ml_dtypes, attr, attr))
        return None


@dataclass(frozen=True)
class IntFormat:
    """Two's complement (``signed``) or unsigned integer of ``bits`` bits, 2..32.

    value = code * 2**-frac_bits (code read as two's complement when signed).
    """

    bits: int
    signed: bool = True
    frac_bits: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or not 2 <= self.bits <= 32:
            raise ValueError(f"bits={self.bits!r} is out of range: allowed 2..32")
        if not isinstance(self.frac_bits, (int, np.integer)) or not -32 <= self.frac_bits <= 64:
            raise ValueError(f"frac_bits={self.frac_bits!r} is out of range: allowed -32..64")

    @property
    def name(self) -> str:
        base = f"{'int' if self.signed else 'uint'}{self.bits}"
        return base if self.frac_bits == 0 else f"{base}f{self.frac_bits}"

    def __str__(self) -> str:
        return self.name

    @property
    def num_codes(self) -> int:
        return 1 << self.bits

    @property
    def min_int(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max(self) -> float:
        return float(np.ldexp(float(self.max_int), -self.frac_bits))

    @property
    def min(self) -> float:
        return float(np.ldexp(float(self.min_int), -self.frac_bits))

    def _check_codes(self, codes) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype.kind not in "ui":
            raise ValueError(f"{self.name}: codes must be an integer array, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_codes):
            bad = arr[(arr < 0) | (arr >= self.num_codes)].flat[0]
            raise ValueError(f"{self.name}: code {int(bad)!r} does not exist: allowed 0..{self.num_codes - 1}")
        return arr.astype(np.int64)

    def to_int(self, codes) -> np.ndarray:
        """Integer value of each code (two's complement when signed), int64."""
        c = self._check_codes(codes)
        if self.signed:
            c = np.where(c >= (1 << (self.bits - 1)), c - (1 << self.bits), c)
        return c

    def from_int(self, ints) -> np.ndarray:
        """Codes (uint64) of in-range integers; raises ValueError when one is out of range."""
        v = np.asarray(ints, dtype=np.int64)
        if v.size and (v.min() < self.min_int or v.max() > self.max_int):
            bad = v[(v < self.min_int) | (v > self.max_int)].flat[0]
            raise ValueError(f"{self.name}: integer {int(bad)} is out of range {self.min_int}..{self.max_int}")
        return (v & ((1 << self.bits) - 1)).astype(np.uint64)

    def decode(self, codes) -> np.ndarray:
        return np.ldexp(self.to_int(codes).astype(np.float64), -self.frac_bits)

    def all_codes(self) -> np.ndarray:
        return np.arange(self.num_codes, dtype=np.uint64)

    def values(self) -> np.ndarray:
        return self.decode(self.all_codes())

    def to_ml_dtype(self):
        if self.frac_bits or self.bits not in (2, 4, 8, 16, 32):
            return None
        import ml_dtypes

        name = f"{'int' if self.signed else 'uint'}{self.bits}"
        return np.dtype(getattr(ml_dtypes, name, name))


Format = Union[FloatFormat, IntFormat]


def _named(fmt: FloatFormat, name: str) -> FloatFormat:
    object.__setattr__(fmt, "_name", name)
    return fmt


# Known formats by short name.  ml_dtypes' full names resolve through _ML_DTYPES.
_REGISTRY: dict[str, FloatFormat] = {
    "e4m3fn": _named(FloatFormat(4, 3, 7, "fn"), "e4m3fn"),
    "e5m2": _named(FloatFormat(5, 2, 15, "ieee"), "e5m2"),
    "e4m3fnuz": _named(FloatFormat(4, 3, 8, "fnuz"), "e4m3fnuz"),
    "e5m2fnuz": _named(FloatFormat(5, 2, 16, "fnuz"), "e5m2fnuz"),
    "e4m3b11fnuz": _named(FloatFormat(4, 3, 11, "fnuz"), "e4m3b11fnuz"),
    "e4m3": _named(FloatFormat(4, 3, 7, "ieee"), "e4m3"),
    "e3m4": _named(FloatFormat(3, 4, 3, "ieee"), "e3m4"),
    "e2m3fn": _named(FloatFormat(2, 3, 1, "finite"), "e2m3fn"),
    "e3m2fn": _named(FloatFormat(3, 2, 3, "finite"), "e3m2fn"),
    "e2m1fn": _named(FloatFormat(2, 1, 1, "finite"), "e2m1fn"),
    "e8m0fnu": _named(FloatFormat(8, 0, 127, "fnu", signed=False), "e8m0fnu"),
    "fp32": _named(FloatFormat(8, 23, 127, "ieee"), "fp32"),
    "bf16": _named(FloatFormat(8, 7, 127, "ieee"), "bf16"),
    "fp16": _named(FloatFormat(5, 10, 15, "ieee"), "fp16"),
}

_ML_DTYPES: dict[str, str] = {
    "e4m3fn": "float8_e4m3fn",
    "e5m2": "float8_e5m2",
    "e4m3fnuz": "float8_e4m3fnuz",
    "e5m2fnuz": "float8_e5m2fnuz",
    "e4m3b11fnuz": "float8_e4m3b11fnuz",
    "e4m3": "float8_e4m3",
    "e3m4": "float8_e3m4",
    "e2m3fn": "float6_e2m3fn",
    "e3m2fn": "float6_e3m2fn",
    "e2m1fn": "float4_e2m1fn",
    "e8m0fnu": "float8_e8m0fnu",
    "fp32": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
}

_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float": "fp32"}

_CUSTOM = re.compile(r"^e(\d+)m(\d+)(?:b(-?\d+))?(fn|fnuz|fin|fnu)?$")
_INT = re.compile(r"^(u?)int(\d+)(?:f(-?\d+))?$")
_SUFFIX_TO_SPECIAL = {None: "ieee", "fn": "fn", "fnuz": "fnuz", "fin": "finite", "fnu": "fnu"}


def known_names() -> list[str]:
    """Short names of the built-in formats (ml_dtypes' full names are accepted too)."""
    return list(_REGISTRY)


@functools.lru_cache(maxsize=None)
def get(name: str) -> Format:
    """Resolve a format name.

    Accepts ml_dtypes names (``float8_e4m3fn``), the same without the ``floatN_`` prefix
    (``e4m3fn``), ``fp32``/``bf16``/``fp16``, ``intN``/``uintN`` (``int8f6`` adds 6 fraction
    bits) and ``eXmY[bB][fn|fnuz|fin]`` for custom formats (IEEE convention when no suffix).
    """
    if isinstance(name, (FloatFormat, IntFormat)):
        return name
    if not isinstance(name, str):
        raise ValueError(f"format name must be a string, got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    full = {v: k for k, v in _ML_DTYPES.items()}
    key = full.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    m = _INT.match(key)
    if m:
        try:
            return IntFormat(int(m.group(2)), signed=not m.group(1), frac_bits=int(m.group(3) or 0))
        except ValueError as err:
            raise ValueError(f"format {name!r}: {err}") from None
    m = _CUSTOM.match(key)
    if m:
        E, M = int(m.group(1)), int(m.group(2))
        special = _SUFFIX_TO_SPECIAL[m.group(4)]
        bias = int(m.group(3)) if m.group(3) is not None else None
        try:
            return FloatFormat(E, M, bias, special, signed=special != "fnu")
        except ValueError as err:
            raise ValueError(f"format {name!r}: {err}") from None
    allowed = ", ".join(known_names())
    raise ValueError(
        f"unknown format {name!r}: allowed are {allowed}, their ml_dtypes names "
        "(float8_e4m3fn, ...), intN/uintN, and eXmY[bB][fn|fnuz|fin] with E 1..8, M 0..23")
