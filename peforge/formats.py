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

Unsigned float formats (``signed=False``, no sign bit) are block-scale formats: ``e8m0fnu``
(alias ``ue8m0``), and ``ueXmY`` with the ``fn`` convention (default) or ``fin``:
``ue4m3`` is NVFP4's E4M3 scale without its (always 0) sign bit, 7 bits, max 448, NaN 0x7F;
``ue5m3`` is the UE5M3 scale of "Elucidating the Design Space of FP4 training", 8 bits,
bias 15, max 114688 (1.75 * 2^16), min subnormal 2^-17, NaN 0xFF.  Their value of a code is
that of the signed format's code with sign 0; ml_dtypes has none of them (``ue4m3`` codes
equal ``float8_e4m3fn`` codes of non-negative values).  Encoding a negative number (not -0)
gives NaN with ``nonsaturating`` (as ml_dtypes does for E8M0) and 0 with ``saturate`` (the
range is clamped to [0, max]; a ``fin`` format, without NaN, gives 0 in both modes); -0 and
numbers that round to zero give code 0.

Encoding (``fmt.encode(values, rounding, overflow, seed)``) rounds float64 values directly
(never through float32) with one of :data:`ROUNDINGS` and handles overflow with one of
:data:`OVERFLOWS`:

``saturate``       finite results clamp to +-max (infinities too); NaN stays NaN where the
                   format has a NaN.  What hardware quantisers (OCP "satfinite") do.
``nonsaturating``  ml_dtypes 0.6 cast semantics, reproduced bit for bit for float32 inputs:
                   overflow gives inf (``ieee``), NaN (``fn``, ``fnu``), 0x80.. (``fnuz``) and
                   +-max for ``finite`` formats.  Formats without a NaN code (``finite``, and
                   ``ieee`` with M = 0) encode NaN as a zero of the opposite sign, as ml_dtypes.

Ties of ``nearest_even`` go to the even significand on the grid of the smaller neighbour; for
M = 0 formats (E8M0, PoT) that means ties between 2^k and 2^(k+1) round up, as ml_dtypes does.
``fnu`` (E8M0) values below the minimum give the minimum; 0, negatives and NaN give NaN.
``toward_zero`` never overflows a finite input (IEEE 754).  ``stochastic`` rounds up with
probability equal to the discarded fraction (53-bit uniform draws; seeded and reproducible).

Weights that are not minifloats: :class:`IntFormat` (two's complement / unsigned, optional
fraction bits, e.g. ``int8f6`` for MXINT8), :class:`PotFormat` (sign + power of two, ``pot4``)
and :class:`ApotFormat` (sum of two powers of two, ``apot5``).  :func:`format_table` lists the
built-in float formats' facts.

Only the standard library, NumPy and ml_dtypes are imported here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from .params import Converted

__all__ = [
    "FloatFormat",
    "IntFormat",
    "PotFormat",
    "ApotFormat",
    "Format",
    "ROUNDINGS",
    "OVERFLOWS",
    "format_table",
    "SPECIALS",
    "KIND_FINITE",
    "KIND_INF",
    "KIND_NAN",
    "get",
    "known_names",
    "block_element",
]

SPECIALS = ("ieee", "fn", "fnuz", "finite", "fnu")
#: Rounding modes accepted by every ``encode``.
ROUNDINGS = ("nearest_even", "toward_zero", "stochastic")
#: Overflow behaviours accepted by every ``encode``.
OVERFLOWS = ("saturate", "nonsaturating")

#: Classification returned by :meth:`FloatFormat.to_exact`.
KIND_FINITE, KIND_INF, KIND_NAN = 0, 1, 2

_SUFFIX = {"ieee": "", "fn": "fn", "fnuz": "fnuz", "finite": "fin", "fnu": "fnu"}


# ---- encode helpers (shared by every format) ------------------------------------------------
_CHUNK = 1 << 14  # elements per encode step: keeps the temporaries in L2 cache


def _code_dtype(bits: int) -> np.dtype:
    """Smallest unsigned dtype that holds a ``bits``-bit code."""
    return np.dtype(np.uint8 if bits <= 8 else np.uint16 if bits <= 16 else np.uint32)


def _float_dtypes() -> tuple[np.dtype, ...]:
    import ml_dtypes

    return tuple(np.dtype(getattr(ml_dtypes, n)) for n in _ML_DTYPES.values() if hasattr(ml_dtypes, n))


def _check_values(name: str, values) -> np.ndarray:
    """Values to encode as an ndarray of a float dtype (not yet float64, to save a copy)."""
    if isinstance(values, np.ndarray) or hasattr(values, "__array__"):
        arr = np.asarray(values)
    else:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name}.encode: values {values!r} are not numbers: pass floats") from None
    dt = arr.dtype
    if dt in (np.float16, np.float32, np.float64):
        return arr
    if dt in _float_dtypes():  # ml_dtypes floats: exact in float64
        return arr.astype(np.float64)
    hint = " (are these codes? use decode)" if dt.kind in "iub" else ""
    raise ValueError(
        f"{name}.encode: values have dtype {dt}{hint}: allowed float16, float32, float64 "
        "and ml_dtypes float arrays, or Python numbers"
    )


def _check_modes(name: str, rounding: str, overflow: str, seed) -> np.random.Generator | None:
    if rounding not in ROUNDINGS:
        raise ValueError(f"{name}.encode: rounding={rounding!r} is not allowed: use one of {ROUNDINGS}")
    if overflow not in OVERFLOWS:
        raise ValueError(f"{name}.encode: overflow={overflow!r} is not allowed: use one of {OVERFLOWS}")
    if rounding != "stochastic":
        return None
    if seed is not None and not isinstance(seed, (int, np.integer, np.random.Generator, np.random.SeedSequence)):
        raise ValueError(f"{name}.encode: seed={seed!r} must be None, an int, a SeedSequence or a Generator")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _encode_chunked(values: np.ndarray, out_dtype: np.dtype, step) -> np.ndarray:
    """Run ``step(float64 1-D chunk) -> int64 codes`` over ``values`` in cache-sized chunks."""
    flat = np.ravel(values)
    out = np.empty(flat.shape, dtype=out_dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        for lo in range(0, flat.size, _CHUNK):
            x = flat[lo : lo + _CHUNK]
            out[lo : lo + _CHUNK] = step(x if x.dtype == np.float64 else x.astype(np.float64))
    return out.reshape(np.shape(values))


def _round_int(y: np.ndarray, rounding: str, rng: np.random.Generator | None) -> np.ndarray:
    """Round float64 ``y`` to integral float64 values with ``rounding``."""
    if rounding == "nearest_even":
        return np.rint(y)
    if rounding == "toward_zero":
        return np.trunc(y)
    if rng is None:
        raise ValueError("stochastic rounding needs a random generator")
    lo = np.floor(y)
    return lo + (rng.random(y.shape) < (y - lo))


def _valid_codes(name: str, codes, num_codes: int) -> np.ndarray:
    """``codes`` as an integer ndarray (dtype kept, so table look-ups copy nothing) in range."""
    arr = np.asarray(codes)
    if arr.dtype.kind not in "ui":
        raise ValueError(
            f"{name}: codes must be an integer array, got dtype {arr.dtype} "
            "(view ml_dtypes arrays as unsigned integers first)"
        )
    if arr.size and not (arr.dtype.kind == "u" and (1 << (8 * arr.dtype.itemsize)) <= num_codes):
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= num_codes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name}: code {int(bad)!r} does not exist: allowed 0..{num_codes - 1}")
    return arr


_RESOLVED: Any = None  # a field default that __post_init__ replaces


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
        Whether a sign bit is present: ``fnu`` scales are unsigned, ``fn`` and ``finite``
        formats may be (block scales such as UE4M3, UE5M3).

    value = (-1)^s * 2^(e - bias) * 1.m for e > 0, (-1)^s * 2^(1 - bias) * 0.m for e == 0
    (except ``fnu``, where e == 0 is the normal value 2^-bias and there are no subnormals).
    """

    exp_bits: int
    man_bits: int
    bias: Converted[int, Optional[int]] = _RESOLVED  # None: the IEEE default, resolved in __post_init__
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
        if not self.signed and self.special not in ("fnu", "fn", "finite"):
            raise ValueError(f"signed=False is only allowed with special 'fnu', 'fn' or 'finite', not {self.special!r}")
        if self.special == "ieee" and E < 2:
            raise ValueError(f"special='ieee' needs exp_bits >= 2 (all-ones exponent is reserved), got {E}")
        if self.special == "fn" and E + M < 2:
            raise ValueError(f"special='fn' needs exp_bits + man_bits >= 2, got E{E}M{M}")
        bias = (1 << (E - 1)) - 1 if self.bias is None else self.bias
        if not isinstance(bias, (int, np.integer)) or not -(1 << E) <= bias <= (1 << (E + 1)):
            raise ValueError(
                f"bias={self.bias!r} is out of range for exp_bits={E}: allowed {-(1 << E)}..{1 << (E + 1)}"
            )
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
        if not self.signed and self.special != "fnu":  # ueXmY: fn is the default convention
            return f"ue{self.exp_bits}m{self.man_bits}{b}{'fin' if self.special == 'finite' else ''}"
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
        """Whether a NaN code exists (not for ``finite``, nor for M = 0 ``ieee`` formats)."""
        return self.nan_code is not None

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
        if self.special in ("fn", "fnu") and M > 0:
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

    def required_nan_code(self) -> int:
        """:attr:`nan_code` of a format that has NaN (ValueError naming the format otherwise)."""
        code = self.nan_code
        if code is None:
            raise ValueError(f"{self.name} has no NaN code")
        return code

    def required_inf_code(self, negative: bool = False) -> int:
        """:meth:`inf_code` of a format that has infinities (ValueError naming it otherwise)."""
        code = self.inf_code(negative)
        if code is None:
            raise ValueError(f"{self.name} has no infinity")
        return code

    # ---- field access --------------------------------------------------------------------
    def _check_codes(self, codes) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype.kind not in "ui":
            raise ValueError(
                f"{self.name}: codes must be an integer array, got dtype {arr.dtype} "
                "(view ml_dtypes arrays as unsigned integers first)"
            )
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
        if self.special == "fnu":  # no subnormals: e == 0 is the normal 2^-bias * 1.m
            sig = m | (1 << M)
            exp = e - self.bias - M
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
        table = self._table
        if table is None:
            return self._decode_arith(self._check_codes(codes))
        return table[_valid_codes(self.name, codes, self.num_codes)]

    def all_codes(self) -> np.ndarray:
        """Every code of the format, ascending (uint32)."""
        return np.arange(self.num_codes, dtype=np.uint32 if self.bits > 16 else np.uint16)

    def values(self) -> np.ndarray:
        """Decoded value of every code (float64), in code order."""
        return self.decode(self.all_codes())

    # ---- encode --------------------------------------------------------------------------
    @property
    def code_dtype(self) -> np.dtype:
        """dtype of the codes ``encode`` returns: uint8, uint16 or uint32."""
        return _code_dtype(self.bits)

    @functools.cached_property
    def max_code(self) -> int:
        """Code of the largest finite value (+max)."""
        M = self.man_bits
        top_man = int(np.ldexp(self.max, M - self.emax)) - (1 << M)
        return ((self.emax + self.bias) << M) | top_man

    @functools.cached_property
    def _inf_code_mag(self) -> int:
        """What :meth:`_encode_step` computes for |x| = inf; NaN gives more, finite x less."""
        hi = self.emax + 1024
        lo = self.emin + 1023 + (1 if self.special == "fnu" else 0)
        return (0x7FF << 52) - ((hi + 52 - self.man_bits) << 52) + ((hi - lo) << self.man_bits)

    @property
    def _ml_e8m0(self) -> bool:
        return self.special == "fnu" and self.exp_bits == 8 and self.man_bits == 0 and self.bias == 127

    def encode(self, values, rounding: str = "nearest_even", overflow: str = "saturate", seed=None) -> np.ndarray:
        """Codes (:attr:`code_dtype`, same shape) of float values, correctly rounded from float64.

        Parameters
        ----------
        values : array_like of float
            float16/32/64 or ml_dtypes float arrays, or Python numbers; any shape.
        rounding : str
            One of :data:`ROUNDINGS` (see the module docstring for tie and overflow rules).
        overflow : str
            One of :data:`OVERFLOWS`; ``nonsaturating`` reproduces ml_dtypes casts.
        seed : None, int, SeedSequence or Generator
            Random source of ``stochastic`` rounding (same seed, same codes).

        One deliberate deviation from correct rounding: ``e8m0fnu`` with ``nonsaturating`` and
        ``nearest_even`` maps (2^-127, 2^-126) to 2^-126, because ml_dtypes 0.6 does so for
        float32 subnormal inputs; ``saturate`` rounds that range correctly.
        """
        rng = _check_modes(self.name, rounding, overflow, seed)
        arr = _check_values(self.name, values)
        return _encode_chunked(
            arr, self.code_dtype, functools.partial(self._encode_step, rounding=rounding, overflow=overflow, rng=rng)
        )

    def _encode_step(self, x: np.ndarray, rounding: str, overflow: str, rng) -> np.ndarray:
        """int64 codes of a float64 1-D chunk.

        Rounding uses the float unit itself: for |x| in [2^e, 2^(e+1)) (e clamped to
        [emin, emax + 1]) the power of two m = 2^(e - M + 52) has an ulp equal to the target's
        ulp 2^(e - M), so |x| + m is |x| rounded to nearest-even on the target grid, and
        bits(|x| + m) - bits(m) is the integer significand n.  The magnitude code is then
        n + (e - emin) * 2^M, which is also right for subnormals and for n carrying into the
        next binade; everything above max (inf and NaN included) lands above :attr:`max_code`.
        """
        M = self.man_bits
        u = x.view(np.int64)
        a = np.abs(x)
        lo = self.emin + 1023
        ec = a.view(np.int64) >> 52
        np.maximum(ec, lo, out=ec)
        np.minimum(ec, self.emax + 1024, out=ec)
        mbits = (ec + (52 - M)) << 52
        s = a + mbits.view(np.float64)
        code = s.view(np.int64) - mbits
        code += (ec - (lo + (1 if self.special == "fnu" else 0))) << M
        if rounding != "nearest_even":
            r = s - mbits.view(np.float64)  # the nearest-even result, exact
            up = r > a
            code -= up
            if rounding == "stochastic":
                ulp = ((ec - M) << 52).view(np.float64)
                r -= up * ulp
                code += rng.random(x.shape) < (a - r) / ulp
        if self.special == "fnu":
            np.maximum(code, 0, out=code)  # no zero, no subnormals: underflow gives the minimum
        maxc = self.max_code
        special = None
        cmax = int(code.max()) if code.size else 0
        if cmax > maxc:
            if cmax >= self._inf_code_mag:  # inf or NaN inputs: handled one by one below
                special = np.flatnonzero(code >= self._inf_code_mag)
            sat = overflow == "saturate" or rounding == "toward_zero" or self.special == "finite"
            # right above max_code sits inf (ieee), NaN (fn, fnu) or 0x80.. (fnuz)
            np.minimum(code, maxc if sat else maxc + 1, out=code)
        if self.signed:
            sign = (u >> 63) & self.sign_mask
            if self.special == "fnuz":
                sign[code == 0] = 0  # no -0
            code |= sign
        else:
            if self._ml_e8m0 and overflow == "nonsaturating" and rounding == "nearest_even":
                # ml_dtypes 0.6 rounds every float32 subnormal in (2^-127, 2^-126) up to 2^-126
                code[(x > 2.0**-127) & (x < 2.0**-126)] = 1
            if self.special == "fnu":
                bad = (u < 0) | (x == 0)  # E8M0 has neither sign nor zero
                if bad.any():
                    code[bad] = self.nan_code
            else:  # unsigned with a zero: -0 is +0, negative numbers NaN or 0
                neg = (u < 0) & (x != 0)
                if neg.any():
                    code[neg] = self._negative_code(overflow)
        if special is not None:
            code[special] = self._encode_overflow(x[special], rounding, overflow)
        return code

    def _encode_overflow(self, xi: np.ndarray, rounding: str, overflow: str) -> np.ndarray:
        """Codes of values whose magnitude rounds above max: finite overflow, inf and NaN."""
        sm = self.sign_mask
        neg = np.signbit(xi)
        sign = np.where(neg, sm, 0)
        nan = np.isnan(xi)
        sat = np.full(xi.shape, overflow == "saturate")
        if rounding == "toward_zero":
            sat |= np.isfinite(xi)
        if self.special == "finite":
            ovf = self.max_code | sign
        elif self.special == "fnuz":
            ovf = np.full(xi.shape, sm)
        else:  # ieee: inf; fn, fnu: NaN; both sit right above max_code
            ovf = (self.max_code + 1) | sign
        over = np.where(sat, self.max_code | sign, ovf)
        if self.nan_code is None:  # finite, and ieee with M = 0
            nan_code = np.where(neg, 0, sm)  # ml_dtypes: NaN -> zero of the opposite sign
        elif self.special in ("ieee", "fn"):
            nan_code = self.nan_code | sign
        else:
            nan_code = np.full(xi.shape, self.nan_code)
        res = np.where(nan, nan_code, over)
        if self.special == "fnu":
            res = np.where(neg, nan_code, res)
        elif not self.signed:
            res = np.where(neg & ~nan, self._negative_code(overflow), res)
        return res

    def _negative_code(self, overflow: str) -> int:
        """Code of a negative number in an unsigned format with a zero (see the module docstring)."""
        if overflow == "nonsaturating" and self.nan_code is not None:
            return self.nan_code
        return 0

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

    @property
    def code_dtype(self) -> np.dtype:
        """dtype of the codes ``encode`` returns: uint8, uint16 or uint32."""
        return _code_dtype(self.bits)

    def encode(self, values, rounding: str = "nearest_even", overflow: str = "saturate", seed=None) -> np.ndarray:
        """Two's complement codes (:attr:`code_dtype`) of ``values * 2**frac_bits`` rounded.

        ``saturate`` clamps to min_int..max_int; ``nonsaturating`` wraps finite values modulo
        2**bits like a hardware register (infinities still clamp).  NaN encodes as 0.
        """
        rng = _check_modes(self.name, rounding, overflow, seed)
        arr = _check_values(self.name, values)
        return _encode_chunked(
            arr, self.code_dtype, functools.partial(self._encode_step, rounding=rounding, overflow=overflow, rng=rng)
        )

    def _encode_step(self, x: np.ndarray, rounding: str, overflow: str, rng) -> np.ndarray:
        y = _round_int(np.ldexp(x, self.frac_bits), rounding, rng)
        nan = np.isnan(y)
        clipped = np.clip(y, self.min_int, self.max_int)
        if overflow == "nonsaturating":
            clipped = np.where(np.isinf(y), clipped, np.mod(y, float(self.num_codes)))  # fmod is exact
        clipped[nan] = 0
        return clipped.astype(np.int64) & (self.num_codes - 1)

    def to_ml_dtype(self):
        if self.frac_bits or self.bits not in (2, 4, 8, 16, 32):
            return None
        import ml_dtypes

        name = f"{'int' if self.signed else 'uint'}{self.bits}"
        return np.dtype(getattr(ml_dtypes, name, name))


def _check_small(label: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{label}={value!r} is out of range: allowed integers {lo}..{hi}")
    return int(value)


@dataclass(frozen=True)
class PotFormat:
    """Power-of-two (PoT) weights: a sign bit and a ``bits - 1``-bit exponent code k.

    k = 0 is zero (+0 and -0); k >= 1 is 2**(emax - 2**(bits-1) + 1 + k), so the largest
    magnitude is 2**emax and ``pot2`` is ternary {-1, 0, +1}.  This is exactly the M = 0
    ``finite`` minifloat :attr:`float_format`, whose encoder it shares: rounding is to the
    nearest value (not the nearest exponent); ties between 2^k and 2^(k+1) round up, a tie
    between 0 and the smallest power rounds to 0; NaN encodes as a zero of the opposite sign.

    Parameters
    ----------
    bits : int
        Code width including the sign, 2..9.
    emax : int
        Exponent of the largest magnitude; default 0 (weights in [-1, 1]).
    """

    bits: int
    emax: int = 0

    def __post_init__(self) -> None:
        w = _check_small("bits", self.bits, 2, 9) - 1
        _check_small("emax", self.emax, (1 << w) - 1 - (1 << (w + 1)), (1 << (w + 1)) - 1)

    @property
    def name(self) -> str:
        return f"pot{self.bits}" + (f"e{self.emax}" if self.emax else "")

    def __str__(self) -> str:
        return self.name

    @functools.cached_property
    def float_format(self) -> FloatFormat:
        """The identical minifloat: E = bits - 1, M = 0, special ``finite``."""
        w = self.bits - 1
        return FloatFormat(w, 0, (1 << w) - 1 - self.emax, "finite")

    @property
    def num_codes(self) -> int:
        return 1 << self.bits

    @property
    def code_dtype(self) -> np.dtype:
        return _code_dtype(self.bits)

    @property
    def max(self) -> float:
        return float(np.ldexp(1.0, self.emax))

    @property
    def min_positive(self) -> float:
        return self.float_format.min_normal

    def decode(self, codes) -> np.ndarray:
        """Values (float64) of integer codes, any shape."""
        return self.float_format.decode(_valid_codes(self.name, codes, self.num_codes))

    def encode(self, values, rounding: str = "nearest_even", overflow: str = "saturate", seed=None) -> np.ndarray:
        """Codes of float values (both overflow modes saturate: there is no inf or NaN)."""
        _check_modes(self.name, rounding, overflow, seed)
        return self.float_format.encode(_check_values(self.name, values), rounding, overflow, seed)

    def all_codes(self) -> np.ndarray:
        return np.arange(self.num_codes, dtype=self.code_dtype)

    def values(self) -> np.ndarray:
        return self.decode(self.all_codes())


@dataclass(frozen=True)
class ApotFormat:
    """Additive powers-of-two (APoT, Li et al., ICLR 2020) weights: sign + two PoT terms.

    code = s << (bits-1) | k1 << w2 | k2 with w1 = ceil((bits-1)/2), w2 = floor((bits-1)/2);
    value = (-1)**s * 2**emax * (t1 + t2), t1 = 0 if k1 == 0 else 2**-(2*(k1-1)),
    t2 = 0 if k2 == 0 else 2**-(2*(k2-1) + 1).  Even and odd exponents never collide, so
    each magnitude code has its own value; max = 1.5 * 2**emax.  Encoding picks the nearest
    value, ties toward the larger magnitude (the grid has no even/odd structure);
    ``toward_zero`` and ``stochastic`` use the two neighbouring values.  Both overflow modes
    saturate; NaN encodes as a zero of the opposite sign (as for ``finite`` minifloats).

    Parameters
    ----------
    bits : int
        Code width including the sign, 3..9 (every value stays exact in float64).
    emax : int
        Exponent of the leading term's largest power; default 0.
    """

    bits: int
    emax: int = 0

    def __post_init__(self) -> None:
        _check_small("bits", self.bits, 3, 9)
        _check_small("emax", self.emax, -64, 64)

    @property
    def name(self) -> str:
        return f"apot{self.bits}" + (f"e{self.emax}" if self.emax else "")

    def __str__(self) -> str:
        return self.name

    @property
    def num_codes(self) -> int:
        return 1 << self.bits

    @property
    def code_dtype(self) -> np.dtype:
        return _code_dtype(self.bits)

    @property
    def sign_mask(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def term_bits(self) -> tuple[int, int]:
        """Widths (w1, w2) of the two term fields."""
        return (self.bits - 1 + 1) // 2, (self.bits - 1) // 2

    @property
    def max(self) -> float:
        return 1.5 * float(np.ldexp(1.0, self.emax))

    @functools.cached_property
    def _table(self) -> np.ndarray:
        w1, w2 = self.term_bits
        c = np.arange(self.num_codes)
        k1, k2 = (c >> w2) & ((1 << w1) - 1), c & ((1 << w2) - 1)
        t1 = np.where(k1 == 0, 0.0, np.ldexp(1.0, -2 * (k1 - 1)))
        t2 = np.where(k2 == 0, 0.0, np.ldexp(1.0, -2 * (k2 - 1) - 1))
        mag = np.ldexp(t1 + t2, self.emax)
        return np.where(c & self.sign_mask, -mag, mag)

    @functools.cached_property
    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """Magnitudes ascending and their (positive) codes."""
        codes = np.arange(self.sign_mask)
        order = np.argsort(self._table[codes], kind="stable")
        return self._table[codes][order], codes[order]

    def decode(self, codes) -> np.ndarray:
        """Values (float64) of integer codes, any shape."""
        return self._table[_valid_codes(self.name, codes, self.num_codes)]

    def encode(self, values, rounding: str = "nearest_even", overflow: str = "saturate", seed=None) -> np.ndarray:
        """Codes of float values; see the class docstring for the rounding rules."""
        rng = _check_modes(self.name, rounding, overflow, seed)
        arr = _check_values(self.name, values)
        return _encode_chunked(arr, self.code_dtype, functools.partial(self._encode_step, rounding=rounding, rng=rng))

    def _encode_step(self, x: np.ndarray, rounding: str, rng) -> np.ndarray:
        mags, mcodes = self._sorted
        a = np.abs(x)
        i = np.clip(np.searchsorted(mags, a, side="right") - 1, 0, mags.size - 1)
        j = np.minimum(i + 1, mags.size - 1)
        lo, hi = mags[i], mags[j]
        if rounding == "nearest_even":
            k = np.where(a >= (lo + hi) / 2, j, i)  # (lo + hi) / 2 is exact
        elif rounding == "toward_zero":
            k = i
        else:
            p = np.where(hi > lo, (a - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
            k = np.where(rng.random(x.shape) < p, j, i)
        neg = np.signbit(x)
        code = mcodes[k] | np.where(neg, self.sign_mask, 0)
        nan = np.isnan(x)
        if nan.any():
            code[nan] = np.where(neg[nan], 0, self.sign_mask)
        return code

    def all_codes(self) -> np.ndarray:
        return np.arange(self.num_codes, dtype=self.code_dtype)

    def values(self) -> np.ndarray:
        return self.decode(self.all_codes())


Format = Union[FloatFormat, IntFormat, PotFormat, ApotFormat]


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
    "ue4m3": _named(FloatFormat(4, 3, 7, "fn", signed=False), "ue4m3"),
    "ue5m3": _named(FloatFormat(5, 3, 15, "fn", signed=False), "ue5m3"),
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

_ALIASES = {
    "float32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float": "fp32",
    "ue8m0": "e8m0fnu",
}

_CUSTOM = re.compile(r"^e(\d+)m(\d+)(?:b(-?\d+))?(fn|fnuz|fin|fnu)?$")
_UNSIGNED = re.compile(r"^ue(\d+)m(\d+)(?:b(-?\d+))?(fn|fin)?$")
_INT = re.compile(r"^(u?)int(\d+)(?:f(-?\d+))?$")
_POT = re.compile(r"^(a?)pot(\d+)(?:e(-?\d+))?$")
_SUFFIX_TO_SPECIAL = {None: "ieee", "fn": "fn", "fnuz": "fnuz", "fin": "finite", "fnu": "fnu"}


def known_names() -> list[str]:
    """Short names of the built-in formats (ml_dtypes' full names are accepted too)."""
    return list(_REGISTRY)


@functools.lru_cache(maxsize=None)
def get_float(name: str) -> FloatFormat:
    """:func:`get` for a name that must be a float format (ValueError naming it otherwise)."""
    fmt = get(name)
    if not isinstance(fmt, FloatFormat):
        raise ValueError(f"format {name!r} is not a float format ({type(fmt).__name__})")
    return fmt


def get(name: str | Format) -> Format:
    """Resolve a format name.

    Accepts ml_dtypes names (``float8_e4m3fn``), the same without the ``floatN_`` prefix
    (``e4m3fn``), ``fp32``/``bf16``/``fp16``, ``intN``/``uintN`` (``int8f6`` adds 6 fraction
    bits), ``eXmY[bB][fn|fnuz|fin]`` for custom formats (IEEE convention when no suffix) and
    ``ueXmY[bB][fn|fin]`` for unsigned (scale) formats (``fn`` convention when no suffix).
    """
    if isinstance(name, (FloatFormat, IntFormat, PotFormat, ApotFormat)):
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
    m = _POT.match(key)
    if m:
        cls = ApotFormat if m.group(1) else PotFormat
        try:
            return cls(int(m.group(2)), int(m.group(3) or 0))
        except ValueError as err:
            raise ValueError(f"format {name!r}: {err}") from None
    m = _UNSIGNED.match(key)
    if m:
        bias = int(m.group(3)) if m.group(3) is not None else None
        try:
            return FloatFormat(
                int(m.group(1)), int(m.group(2)), bias, "finite" if m.group(4) == "fin" else "fn", signed=False
            )
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
        "(float8_e4m3fn, ...), intN/uintN, potN[eK], apotN[eK], eXmY[bB][fn|fnuz|fin] "
        "with E 1..8, M 0..23, and unsigned ueXmY[bB][fn|fin]"
    )


def block_element(name: str | FloatFormat | IntFormat) -> FloatFormat | IntFormat:
    """A block element format: ``intN`` / ``mxintN`` (N = 2..8) means ``int{N}f{N-2}`` (the MX
    convention of an implied scale 2^-(N-2)); anything else resolves through
    :func:`peforge.formats.get`."""
    key = name.strip().lower() if isinstance(name, str) else name
    if isinstance(key, str) and key.startswith("mxint"):
        key = key[2:]
    fmt = get(key)
    if isinstance(fmt, IntFormat) and fmt.signed and 2 <= fmt.bits <= 8 and fmt.frac_bits in (0, fmt.bits - 2):
        fmt = get(f"int{fmt.bits}f{fmt.bits - 2}")
    if isinstance(fmt, (FloatFormat, IntFormat)):
        return fmt
    raise ValueError(f"block element {name!r} is a {type(fmt).__name__}: expected a float or an integer format")


def format_table() -> list[dict]:
    """Facts of every built-in float format (what ``peforge formats`` prints), one dict each."""
    rows = []
    for alias, fmt in _REGISTRY.items():
        rows.append(
            {
                "name": alias,
                "ml_dtypes": _ML_DTYPES.get(alias),
                "exp_bits": fmt.exp_bits,
                "man_bits": fmt.man_bits,
                "bias": fmt.bias,
                "special": fmt.special,
                "bits": fmt.bits,
                "signed": fmt.signed,
                "max": fmt.max,
                "min_normal": fmt.min_normal,
                "min_subnormal": fmt.min_subnormal,
                "has_inf": fmt.has_inf,
                "has_nan": fmt.has_nan,
            }
        )
    return rows
