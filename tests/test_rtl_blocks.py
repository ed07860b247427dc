"""Unit tests of the shared RTL building blocks in Amaranth's simulator, each against a
Python reference (exhaustive for small widths)."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator
from test_formats_reference import ML
from test_rtl_reference import round_fraction

from peforge.formats import KIND_INF, KIND_NAN, FloatFormat, get
from peforge.rtl.blocks import LeadingZeroCounter, MinifloatDecoder, RoundPack, ShiftRightSticky


def _comb(dut, vectors, drive, read):
    """Apply each vector (``drive(ctx, v)``) and collect ``read(ctx)`` after settling."""
    out = []

    async def bench(ctx):
        for v in vectors:
            drive(ctx, v)
            out.append(read(ctx))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


# ---- leading-zero counter ---------------------------------------------------------------
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 8, 9])
def test_lzc_exhaustive(width):
    dut = LeadingZeroCounter(width)
    vecs = list(range(1 << width))
    got = _comb(dut, vecs, lambda ctx, v: ctx.set(dut.data, v), lambda ctx: (ctx.get(dut.count), ctx.get(dut.zero)))
    assert got == [(width - v.bit_length(), int(v == 0)) for v in vecs]


@pytest.mark.parametrize("width", [16, 37, 64, 89])
def test_lzc_random_wide(width):
    rng = random.Random(width)
    dut = LeadingZeroCounter(width)
    vecs = [0, (1 << width) - 1] + [rng.getrandbits(width) >> rng.randrange(width) for _ in range(300)]
    got = _comb(dut, vecs, lambda ctx, v: ctx.set(dut.data, v), lambda ctx: ctx.get(dut.count))
    assert got == [width - v.bit_length() for v in vecs]


# ---- shifter with sticky ----------------------------------------------------------------
@pytest.mark.parametrize("width, amount_bits", [(1, 1), (5, 2), (6, 3), (6, 4), (8, 3)])
def test_shift_right_sticky_exhaustive(width, amount_bits):
    dut = ShiftRightSticky(width, amount_bits)
    vecs = [(d, s) for d in range(1 << width) for s in range(1 << amount_bits)]

    def drive(ctx, v):
        ctx.set(dut.data, v[0])
        ctx.set(dut.amount, v[1])

    got = _comb(dut, vecs, drive, lambda ctx: (ctx.get(dut.out), ctx.get(dut.sticky)))
    assert got == [(d >> s, int(d & ((1 << s) - 1) != 0)) for d, s in vecs]


# ---- decoder ----------------------------------------------------------------------------
# the 8-bit ml_dtypes formats, then custom ones
_DECODE_FORMATS = [n for n in ML if get(n).bits <= 8] + [
    "e1m1fn",
    "e2m0fin",
    "e3m0",
    "e1m2fin",
    "e2m2b5fin",
    "e5m3",
]


@pytest.mark.parametrize("subnormals", [True, False])
@pytest.mark.parametrize("name", _DECODE_FORMATS)
def test_decoder_exhaustive(name, subnormals):
    fmt = get(name)
    dut = MinifloatDecoder(fmt, subnormals)
    codes = np.arange(fmt.num_codes)
    sign, sig, exp, kind = fmt.to_exact(codes)
    got = _comb(
        dut,
        codes.tolist(),
        lambda ctx, v: ctx.set(dut.code, v),
        lambda ctx: tuple(ctx.get(getattr(dut, p)) for p in ("sign", "sig", "exp", "is_zero", "is_inf", "is_nan")),
    )
    for c, (gs, gsig, gexp, gz, ginf, gnan) in zip(codes.tolist(), got):
        k = int(kind[c])
        want_sig = int(sig[c])
        if not subnormals and fmt.has_subnormals and want_sig < (1 << fmt.man_bits):
            want_sig = 0  # flushed, sign kept
        assert (gnan, ginf) == (int(k == KIND_NAN), int(k == KIND_INF)), hex(c)
        assert gs == int(sign[c]), hex(c)
        assert gsig == want_sig, hex(c)
        assert gz == int(k == 0 and want_sig == 0), hex(c)
        if want_sig:  # value = sig * 2**(exp - bias - man_bits)
            assert gexp - fmt.bias - fmt.man_bits == int(exp[c]), hex(c)


# ---- rounder / packer -------------------------------------------------------------------
def _round_ref(fmt: FloatFormat, sign: int, mag: int, lsb_exp: int, subnormals: bool) -> int:
    if mag == 0:
        return sign << (fmt.bits - 1)
    return round_fraction(fmt, Fraction(mag) * Fraction(2) ** lsb_exp * (-1 if sign else 1), subnormals)


@pytest.mark.parametrize("subnormals", [True, False])
@pytest.mark.parametrize(
    "name, width, lsb_exps",
    [
        ("e3m2", 8, range(-9, 4)),  # tiny format: every region, incl. below min subnormal
        ("e4m3", 7, range(-14, 6, 3)),
        ("e2m5", 5, range(-9, 3, 2)),  # word narrower than significand + guard
        ("e5m2", 10, range(-30, 14, 5)),
        ("e3m0", 6, range(-6, 4)),  # no mantissa bits (and no NaN code)
    ],
)
def test_roundpack_exhaustive(name, width, lsb_exps, subnormals):
    fmt = get(name)
    for lsb_exp in lsb_exps:
        dut = RoundPack(fmt, width, lsb_exp, subnormals=subnormals)
        vecs = [(s, v) for s in (0, 1) for v in range(1 << width)]

        def drive(ctx, v, dut=dut):
            ctx.set(dut.sign, v[0])
            ctx.set(dut.mag, v[1])

        got = _comb(dut, vecs, drive, lambda ctx, dut=dut: ctx.get(dut.code))
        want = [_round_ref(fmt, s, v, lsb_exp, subnormals) for s, v in vecs]
        bad = [(s, v, hex(g), hex(w)) for (s, v), g, w in zip(vecs, got, want) if g != w]
        assert not bad, f"lsb_exp={lsb_exp}: {bad[:5]}"


@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_roundpack_wide_random_with_exp_input(name):
    fmt = get(name)
    width, lsb_exp = 40, -60
    exp_range = range(-200, 150)
    dut = RoundPack(fmt, width, lsb_exp, exp_range=exp_range)
    rng = random.Random(name)
    vecs = [
        (rng.getrandbits(1), rng.getrandbits(width) >> rng.randrange(width), rng.choice(exp_range)) for _ in range(400)
    ]
    vecs += [(0, 1, exp_range.start), (1, (1 << width) - 1, exp_range.stop - 1), (0, 0, 5)]

    def drive(ctx, v):
        ctx.set(dut.sign, v[0])
        ctx.set(dut.mag, v[1])
        ctx.set(dut.exp, v[2])

    got = _comb(dut, vecs, drive, lambda ctx: ctx.get(dut.code))
    want = [_round_ref(fmt, s, v, lsb_exp + e, True) for s, v, e in vecs]
    assert got == want


def test_roundpack_specials():
    fmt = get("fp16")
    dut = RoundPack(fmt, 12, -3)
    vecs = [(0, 1, 0), (1, 1, 0), (0, 0, 1), (1, 1, 1)]  # (sign, inf, nan)

    def drive(ctx, v):
        ctx.set(dut.sign, v[0])
        ctx.set(dut.mag, 5)
        ctx.set(dut.inf, v[1])
        ctx.set(dut.nan, v[2])

    got = _comb(dut, vecs, drive, lambda ctx: ctx.get(dut.code))
    assert got == [0x7C00, 0xFC00, fmt.nan_code, fmt.nan_code]


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_blocks_reject_bad_arguments():
    with pytest.raises(ValueError, match="special='ieee'"):
        RoundPack(get("e4m3fn"), 8, 0)
    with pytest.raises(ValueError, match="width=0"):
        RoundPack(get("fp16"), 0, 0)
    with pytest.raises(ValueError, match="amount_bits=0"):
        ShiftRightSticky(4, 0)
    with pytest.raises(ValueError, match="fmt="):
        MinifloatDecoder("e4m3fn")
