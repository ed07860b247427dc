"""Unsigned float (block-scale) formats: UE4M3 against ml_dtypes' float8_e4m3fn (same codes for
non-negative values), UE5M3 and custom ``ueXmY`` against exact ``Fraction`` arithmetic (ml_dtypes
has no unsigned float besides E8M0)."""

from __future__ import annotations

import bisect
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge import formats


def ref_values(E: int, M: int, bias: int, finite: bool) -> list[Fraction | None]:
    """Value of every code of an unsigned ExMy (None = NaN), written from the definition."""
    out: list[Fraction | None] = []
    for code in range(1 << (E + M)):
        e, m = code >> M, code & ((1 << M) - 1)
        if not finite and code == (1 << (E + M)) - 1:
            out.append(None)
        elif e == 0:
            out.append(Fraction(m, 1 << M) * Fraction(2) ** (1 - bias))
        else:
            out.append((1 + Fraction(m, 1 << M)) * Fraction(2) ** (e - bias))
    return out


def ref_encode(x: float, vals: list[Fraction | None], saturate: bool) -> int:
    """Round-to-nearest-even code of ``x`` >= 0 over the sorted finite values (ties: even code)."""
    fin = [(v, c) for c, v in enumerate(vals) if v is not None]
    top = fin[-1][0]
    X = Fraction(x)
    nan = next((c for c, v in enumerate(vals) if v is None), None)
    # overflow threshold: max + half an ulp of the binade of max
    ulp = top - fin[-2][0]
    if X >= top + ulp / 2:
        return fin[-1][1] if saturate or nan is None else nan
    i = bisect.bisect_left([v for v, _ in fin], X)
    near = fin[max(0, i - 1) : i + 1]  # the neighbours below and above X
    return min(near, key=lambda vc: (abs(vc[0] - X), vc[1] & 1))[1]


@pytest.mark.parametrize(
    "name, E, M, bias, finite",
    [("ue5m3", 5, 3, 15, False), ("ue4m3", 4, 3, 7, False), ("ue3m2fin", 3, 2, 3, True), ("ue4m2b5", 4, 2, 5, False)],
)
def test_decode_every_code_against_the_definition(name: str, E: int, M: int, bias: int, finite: bool) -> None:
    fmt = formats.get(name)
    assert (fmt.bits, fmt.signed, fmt.has_negative_zero, fmt.name) == (E + M, False, False, name)
    got = fmt.values()
    for code, want in enumerate(ref_values(E, M, bias, finite)):
        if want is None:
            assert np.isnan(got[code]) and code == fmt.nan_code
        else:
            assert Fraction(float(got[code])) == want, code
    assert fmt.max == float(max(v for v in ref_values(E, M, bias, finite) if v is not None))


def test_ue5m3_facts() -> None:
    f = formats.get("ue5m3")
    assert (f.max, f.min_normal, f.min_subnormal, f.nan_code, f.max_code) == (114688.0, 2.0**-14, 2.0**-17, 0xFF, 0xFE)
    assert formats.get("ue8m0") is formats.get("e8m0fnu")


@pytest.mark.parametrize("name, E, M, bias, finite", [("ue5m3", 5, 3, 15, False), ("ue3m2fin", 3, 2, 3, True)])
def test_encode_against_exact_rounding(name: str, E: int, M: int, bias: int, finite: bool) -> None:
    fmt = formats.get(name)
    vals = ref_values(E, M, bias, finite)
    fin = sorted(float(v) for v in vals if v is not None)
    mids = [(a + b) / 2 for a, b in zip(fin, fin[1:])]  # every tie, exact in float64
    rng = np.random.default_rng(1)
    xs = np.array(
        fin
        + mids
        + [np.nextafter(m, 0) for m in mids]
        + [np.nextafter(m, 1e9) for m in mids]
        + list(np.exp(rng.uniform(np.log(fin[1] / 4), np.log(fin[-1] * 2), 3000)))
        + [0.0, fin[-1] * 1.2]
    )
    for overflow in ("saturate", "nonsaturating"):
        got = fmt.encode(xs, overflow=overflow)
        want = [ref_encode(float(x), vals, overflow == "saturate") for x in xs]
        np.testing.assert_array_equal(got, want)


def test_ue4m3_matches_ml_dtypes_e4m3fn_on_non_negative_float32() -> None:
    fmt = formats.get("ue4m3")
    codes = np.arange(128, dtype=np.uint8)
    np.testing.assert_array_equal(fmt.decode(codes), codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64))
    rng = np.random.default_rng(2)
    x = np.concatenate([np.exp(rng.uniform(-12, 7, 20000)), fmt.values()[:-1], [0.0, 450.0, 464.0, 1e6]])
    x = x.astype(np.float32)
    want = x.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    np.testing.assert_array_equal(fmt.encode(x, overflow="nonsaturating"), want)
    sat = fmt.encode(x, overflow="saturate")
    np.testing.assert_array_equal(sat, np.where(want == 0x7F, 0x7E, want))


def test_negative_nan_and_inf_inputs() -> None:
    f = formats.get("ue5m3")
    x = np.array([-1.0, -0.0, -1e-30, np.nan, np.inf, -np.inf, 0.0])
    assert f.encode(x, overflow="nonsaturating").tolist() == [0xFF, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0]
    assert f.encode(x, overflow="saturate").tolist() == [0, 0, 0, 0xFF, 0xFE, 0, 0]
    g = formats.get("ue3m2fin")  # no NaN code: NaN and negatives give 0
    assert g.encode(x, overflow="nonsaturating").tolist() == [0, 0, 0, 0, g.max_code, 0, 0]


def test_stochastic_rounding_picks_a_neighbour_with_the_right_odds() -> None:
    f = formats.get("ue5m3")
    x = np.full(40000, 1.0 + 0.125 * 0.25)  # a quarter of the way from 1.0 to 1.125
    codes = f.encode(x, rounding="stochastic", seed=7)
    vals = f.decode(codes)
    assert set(vals.tolist()) == {1.0, 1.125}
    assert abs((vals == 1.125).mean() - 0.25) < 0.01
    np.testing.assert_array_equal(codes, f.encode(x, rounding="stochastic", seed=7))


def test_bad_unsigned_names() -> None:
    with pytest.raises(ValueError, match="ue9m3"):
        formats.get("ue9m3")
    with pytest.raises(ValueError, match="signed=False"):
        formats.FloatFormat(5, 3, special="ieee", signed=False)
