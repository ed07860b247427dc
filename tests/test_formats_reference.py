"""Brute-force exact reference for format encode/decode (fractions.Fraction), plus its own checks.

Values come from the bit-field definition of a format (E, M, bias, special) written out here
again, never from peforge's decode.  Imported by test_formats.py and test_blockscale.py.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge.formats import FloatFormat, get

#: The minifloat formats ml_dtypes has (checked against it here and in test_formats.py).
ML = [
    "e4m3fn",
    "e5m2",
    "e4m3fnuz",
    "e5m2fnuz",
    "e4m3b11fnuz",
    "e4m3",
    "e3m4",
    "e2m3fn",
    "e3m2fn",
    "e2m1fn",
    "e8m0fnu",
    "bf16",
    "fp16",
]


def field_values(fmt: FloatFormat) -> dict[int, object]:
    """code -> Fraction, or "nan", "+inf", "-inf", from the format definition."""
    E, M, bias, special = fmt.exp_bits, fmt.man_bits, fmt.bias, fmt.special
    top = (1 << E) - 1
    out: dict[int, object] = {}
    for code in range(1 << fmt.bits):
        s = (code >> (E + M)) & 1 if fmt.signed else 0
        e, m = (code >> M) & top, code & ((1 << M) - 1)
        if special == "ieee" and e == top:
            out[code] = ("-inf" if s else "+inf") if m == 0 else "nan"
            continue
        if (
            (special == "fn" and e == top and m == (1 << M) - 1)
            or (special == "fnuz" and code == 1 << (E + M))
            or (special == "fnu" and code == (1 << fmt.bits) - 1)
        ):
            out[code] = "nan"
            continue
        if special == "fnu":
            v = Fraction(2) ** (e - bias) * (1 + Fraction(m, 1 << M))
        elif e == 0:
            v = Fraction(2) ** (1 - bias) * Fraction(m, 1 << M)
        else:
            v = Fraction(2) ** (e - bias) * (1 + Fraction(m, 1 << M))
        out[code] = -v if s else v
    return out


class Ref:
    """Exact encoder of one FloatFormat following the rules of peforge.formats' docstring."""

    def __init__(self, fmt: FloatFormat):
        self.fmt = fmt
        self.vals = field_values(fmt)
        sm = 1 << (fmt.bits - 1) if fmt.signed else 0
        pos = sorted(
            (v, c) for c, v in self.vals.items() if isinstance(v, Fraction) and not c & sm and (v > 0 or c == 0)
        )
        if fmt.special == "fnu":
            pos = [(v, c) for v, c in pos if v > 0]
        self.mags = [v for v, _ in pos]
        self.codes = [c for _, c in pos]
        self.max = self.mags[-1]
        self.max_code = self.codes[-1]
        self.sm = sm
        # the grid continued one step above max (where inf / NaN sit in ieee / fn formats)
        emax = math.floor(math.log2(self.max))
        self.beyond = self.max + Fraction(2) ** (emax - fmt.man_bits)
        nan = [c for c, v in self.vals.items() if v == "nan"]
        if fmt.special == "ieee" and nan:
            self.nan = ((1 << fmt.exp_bits) - 1) << fmt.man_bits | 1 << (fmt.man_bits - 1)
        elif fmt.special == "fn":
            self.nan = (1 << (fmt.exp_bits + fmt.man_bits)) - 1
        else:
            self.nan = min(nan) if nan else None

    def _overflow(self, neg: bool, overflow: str) -> int:
        f, sign = self.fmt, self.sm if neg else 0
        if overflow == "saturate" or f.special == "finite":
            return self.max_code | sign
        if f.special == "fnuz":
            return self.sm
        if f.special == "fnu":
            return self.nan
        if f.special == "fn":
            return self.nan | sign
        return (((1 << f.exp_bits) - 1) << f.man_bits) | sign  # ieee: inf

    def encode(self, x: float, rounding: str = "nearest_even", overflow: str = "saturate") -> int:
        f = self.fmt
        neg = bool(np.signbit(x))
        if math.isnan(x):
            if self.nan is None:
                return 0 if neg else self.sm
            return self.nan | (self.sm if f.special in ("ieee", "fn") and neg else 0)
        if f.special == "fnu" and (neg or x == 0):
            return self.nan
        if math.isinf(x):
            return self._overflow(neg, overflow)
        a = abs(Fraction(x))
        if (
            f.special == "fnu"
            and f.exp_bits == 8
            and f.man_bits == 0
            and f.bias == 127
            and overflow == "nonsaturating"
            and rounding == "nearest_even"
            and Fraction(2) ** -127 < a < Fraction(2) ** -126
        ):
            return 1  # ml_dtypes 0.6 quirk reproduced by the nonsaturating mode
        i = bisect.bisect_right(self.mags, a) - 1  # mags[i] <= a
        if i < 0:  # fnu: below the smallest value
            return self.codes[0]
        lo, lo_code = self.mags[i], self.codes[i]
        if a == lo:
            mag = lo_code
        else:
            hi, hi_code = (self.mags[i + 1], self.codes[i + 1]) if i + 1 < len(self.mags) else (self.beyond, None)
            if rounding == "toward_zero":
                mag = lo_code
            elif a > hi:
                mag = None
            else:
                d_lo, d_hi = a - lo, hi - a
                if d_lo != d_hi:
                    mag = lo_code if d_lo < d_hi else hi_code
                elif f.man_bits == 0:
                    mag = lo_code if lo == 0 else hi_code
                else:  # tie: even significand, i.e. even magnitude code
                    mag = lo_code if lo_code % 2 == 0 else hi_code
        if mag is None:
            return self._overflow(neg, overflow)
        if f.special == "fnuz" and mag == 0:
            return 0
        return mag | (self.sm if neg else 0)

    def encode_many(self, xs, rounding="nearest_even", overflow="saturate") -> np.ndarray:
        return np.array([self.encode(float(x), rounding, overflow) for x in np.ravel(xs)], dtype=np.int64)


def boundary_inputs(fmt: FloatFormat, dtype=np.float64) -> np.ndarray:
    """Every value, every midpoint between neighbours (and around 0 and max), their neighbours
    in ``dtype``, both signs, plus inf, NaN and zeros."""
    v = fmt.values()
    pos = np.unique(v[np.isfinite(v) & (v >= 0)])
    step = np.ldexp(1.0, int(np.floor(np.log2(fmt.max))) - fmt.man_bits)
    ext = np.concatenate([[0.0], pos, [fmt.max + step, 2 * fmt.max + 2 * step]])
    mids = (ext[:-1] + ext[1:]) / 2
    exact = np.concatenate([pos, mids])
    exact = exact[exact <= np.finfo(dtype).max]
    pts = exact.astype(dtype)
    assert np.array_equal(exact, pts.astype(np.float64)), "midpoint not exact"
    pts = np.concatenate([pts, np.nextafter(pts, dtype(np.inf)), np.nextafter(pts, dtype(0))])
    pts = np.concatenate([pts, -pts, np.array([np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0], dtype)])
    return pts


# ---- the reference checked against ml_dtypes on a few formats (keeps it honest) -------------
@pytest.mark.parametrize("name", ["e4m3fn", "e5m2", "e4m3fnuz", "e2m1fn", "e8m0fnu", "e3m4"])
def test_reference_matches_ml_dtypes(name):
    fmt = get(name)
    ref = Ref(fmt)
    x = boundary_inputs(fmt, np.float32)
    with np.errstate(all="ignore"):
        want = x.astype(fmt.to_ml_dtype()).view(np.uint8).astype(np.int64)
    got = ref.encode_many(x, overflow="nonsaturating")
    assert np.array_equal(got, want), x[got != want][:5]


def test_reference_values_match_ml_dtypes():
    fmt = get("e5m2")
    vals = field_values(fmt)
    ml = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    for c, v in vals.items():
        if isinstance(v, Fraction):
            assert Fraction(float(ml[c])) == v
