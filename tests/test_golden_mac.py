"""Golden MAC model against independent references.

The main reference is written here from the semantics in ``models/golden/mac.py``'s
docstring with ``fractions.Fraction``: its own field decoder, exact sums, and rounding by
comparing the sum with its two neighbouring representable values (it shares no code with
``models/golden/rounding.py``).  NumPy float32/float64 arithmetic and ml_dtypes decoding are
used where they are provably exact.
"""

from __future__ import annotations

import bisect
import functools
import math
import struct
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from peforge import formats
from peforge.models import golden
from peforge.models.golden import mac
from peforge.spec import MinifloatMacSpec as Spec

NAN, INF, NUM = "nan", "inf", "num"

# ---- independent Fraction reference ---------------------------------------------------------


def ref_decode(fmt, code: int, subnormals: bool = True):
    """(kind, sign, Fraction magnitude) straight from the format's fields."""
    E, M = fmt.exp_bits, fmt.man_bits
    s = (code >> (E + M)) & 1
    e = (code >> M) & ((1 << E) - 1)
    m = code & ((1 << M) - 1)
    if fmt.special == "ieee" and e == (1 << E) - 1:
        return (INF if m == 0 else NAN), s, Fraction(0)
    if fmt.special == "fn" and e == (1 << E) - 1 and m == (1 << M) - 1:
        return NAN, s, Fraction(0)
    if fmt.special == "fnuz" and code == 1 << (E + M):
        return NAN, s, Fraction(0)
    if e == 0:
        mag = Fraction(m, 1 << M) * Fraction(2) ** (1 - fmt.bias)
        if not subnormals:
            mag = Fraction(0)
    else:
        mag = (1 + Fraction(m, 1 << M)) * Fraction(2) ** (e - fmt.bias)
    return NUM, s, mag


@functools.lru_cache(maxsize=None)
def finite_table(fmt):
    """Sorted finite nonnegative values of a <= 16-bit format, and value -> code."""
    vals = {}
    for c in range(1 << (fmt.bits - 1)):
        kind, _, mag = ref_decode(fmt, c)
        if kind == NUM:
            vals.setdefault(mag, c)
    return sorted(vals), vals


def neighbours(fmt, x: Fraction):
    """Largest representable <= x and smallest representable > x (x >= 0, x below max)."""
    if fmt.bits <= 16:  # search the table of every value of the format
        keys, _ = finite_table(fmt)
        i = bisect.bisect_right(keys, x)
        return keys[i - 1], (keys[i] if i < len(keys) else None)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    ulp = Fraction(2) ** (max(e, fmt.emin) - fmt.man_bits)
    lo = (x // ulp) * ulp
    return lo, lo + ulp


def encode(fmt, neg: bool, mag: Fraction) -> int:
    """Code of a representable magnitude (fp32 through struct, small formats by table)."""
    if fmt == formats.get("fp32"):
        assert Fraction(float(mag)) == mag
        code = struct.unpack(">I", struct.pack(">f", float(mag)))[0]
        assert Fraction(struct.unpack(">f", struct.pack(">I", code))[0]) == mag
    else:
        code = finite_table(fmt)[1][mag]
    return code | (fmt.sign_mask if neg else 0)


def ref_round(fmt, value: Fraction, subnormals: bool) -> int:
    neg, x = value < 0, abs(value)
    max_v = Fraction(fmt.max)
    ulp_max = Fraction(2) ** (fmt.emax - fmt.man_bits)
    if x >= max_v + ulp_max / 2:
        return fmt.inf_code(neg)
    lo, hi = neighbours(fmt, x)
    if hi is None or x - lo < hi - x:
        r = lo
    elif x - lo > hi - x:
        r = hi
    else:  # exact tie: the neighbour with the even code
        r = lo if encode(fmt, False, lo) % 2 == 0 else hi
    if not subnormals and 0 < r < Fraction(fmt.min_normal):
        r = Fraction(0)
    return encode(fmt, neg, r)


def ref_product(spec, ca: int, cb: int):
    ka, sa, ma = ref_decode(spec.a, ca, spec.subnormals)
    kb, sb, mb = ref_decode(spec.b, cb, spec.subnormals)
    s = sa ^ sb
    if NAN in (ka, kb) or (ka == INF and kb == NUM and mb == 0) or (kb == INF and ka == NUM and ma == 0):
        return NAN, s, Fraction(0)
    if INF in (ka, kb):
        return INF, s, Fraction(0)
    return NUM, s, ma * mb


def ref_run(spec, a, b, first):
    """Per-row, per-step Python reference; returns (acc, flags) as lists of Python ints."""
    a = np.asarray(a).reshape(*np.shape(first), spec.lanes)
    b = np.asarray(b).reshape(*np.shape(first), spec.lanes)
    B, T = np.shape(first)
    acc_out = [[0] * T for _ in range(B)]
    flag_out = [[0] * T for _ in range(B)]
    unit = Fraction(2) ** spec.product_lsb_exp
    for i in range(B):
        if spec.is_exact:
            acc, flags = 0, 0
            for t in range(T):
                if first[i, t]:
                    acc, flags = 0, 0
                for ca, cb in zip(a[i, t].tolist(), b[i, t].tolist()):
                    kind, s, mag = ref_product(spec, ca, cb)
                    if kind == NAN:
                        flags |= 1
                    elif kind == INF:
                        flags |= 4 if s else 2
                    else:
                        units = mag / unit
                        assert units.denominator == 1
                        acc += -int(units) if s else int(units)
                acc %= 1 << spec.exact_width
                acc_out[i][t], flag_out[i][t] = acc, flags
            continue
        fmt = spec.acc
        state = (NUM, 0, Fraction(0))  # reset: +0
        for t in range(T):
            terms = [] if first[i, t] else [state]
            terms += [ref_product(spec, ca, cb) for ca, cb in zip(a[i, t].tolist(), b[i, t].tolist())]
            kinds = [k for k, _, _ in terms]
            pinf = any(k == INF and s == 0 for k, s, _ in terms)
            ninf = any(k == INF and s == 1 for k, s, _ in terms)
            if NAN in kinds or (pinf and ninf):
                state, code = (NAN, 0, Fraction(0)), fmt.nan_code
            elif pinf or ninf:
                state, code = (INF, int(ninf), Fraction(0)), fmt.inf_code(ninf)
            else:
                total = sum((-m if s else m) for _, s, m in terms)
                if total == 0:
                    neg = all(s == 1 and m == 0 for _, s, m in terms)
                    code = fmt.sign_mask if neg else 0
                else:
                    code = ref_round(fmt, total, spec.subnormals)
                state = ref_decode(fmt, code)
            acc_out[i][t] = code
    return acc_out, flag_out


def check(spec, a, b, first):
    """Golden vs reference, with a readable first mismatch."""
    out = golden.run(spec, a=a, b=b, first=first)
    acc_ref, flags_ref = ref_run(spec, a, b, first)
    got = [[int(v) for v in row] for row in out["acc"]]
    if got != acc_ref:
        for i, (g, r) in enumerate(zip(got, acc_ref)):
            for t, (x, y) in enumerate(zip(g, r)):
                if x != y:
                    pytest.fail(
                        f"{spec.name} row {i} step {t}: golden {x:#x} reference {y:#x}; "
                        f"a={np.asarray(a)[i, : t + 1].tolist()} b={np.asarray(b)[i, : t + 1].tolist()} "
                        f"first={np.asarray(first)[i, : t + 1].tolist()}"
                    )
    if "acc_flags" in out:
        assert [[int(v) for v in row] for row in out["acc_flags"]] == flags_ref
    else:
        assert not mac.has_flags(spec)
    return out


# ---- input helpers ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def code_classes(fmt):
    """(finite codes, special codes) of an operand format."""
    fin, spec_ = [], []
    for c in range(fmt.num_codes):
        (fin if ref_decode(fmt, c)[0] == NUM else spec_).append(c)
    return np.array(fin), np.array(spec_, dtype=np.int64)


def random_inputs(spec, rng, batch, steps, p_special=0.02, p_first=0.15):
    out = []
    for fmt in (spec.a, spec.b):
        fin, sp = code_classes(fmt)
        codes = rng.choice(fin, size=(batch, steps, spec.lanes))
        if len(sp) and p_special:
            mask = rng.random(codes.shape) < p_special
            codes[mask] = rng.choice(sp, size=int(mask.sum()))
        out.append(codes)
    first = rng.random((batch, steps)) < p_first
    first[: batch // 2, 0] = True  # the other half starts from the reset state
    return out[0], out[1], first


@functools.lru_cache(maxsize=None)
def value_to_code(fmt):
    table = {}
    for c in range(fmt.num_codes):
        kind, s, mag = ref_decode(fmt, c)
        if kind == NUM:
            table.setdefault((-mag if s else mag) if mag else (s, 0), c)
    return table


def code_of(fmt, v) -> int:
    """Code of an exactly representable value (``-0.0`` gives negative zero)."""
    if v == 0:
        return value_to_code(fmt)[(int(math.copysign(1, float(v)) < 0), 0)]
    return value_to_code(fmt)[Fraction(v)]


def as_product(spec, v: Fraction) -> tuple[int, int]:
    """Codes (ca, cb) of normal (never flushed) operands with ca*cb == v, b a power of two."""
    if v == 0:
        return code_of(spec.a, v), code_of(spec.b, 1.0)
    ta, tb = value_to_code(spec.a), value_to_code(spec.b)
    for k in sorted(range(-300, 300), key=abs):
        x, y = Fraction(v) / P2(k), P2(k)
        if x in ta and y in tb:
            ca, cb = ta[x], tb[y]
            if ref_decode(spec.a, ca, False)[2] and ref_decode(spec.b, cb, False)[2]:
                return ca, cb
    raise AssertionError(f"{v} is not a {spec.a.name} x {spec.b.name} product")


def split(v: Fraction, bits: int, pieces: int) -> list[Fraction]:
    """Greedy split of v into pieces of at most ``bits`` significant bits each."""
    out, rest = [], Fraction(v)
    for _ in range(pieces):
        if rest == 0:
            out.append(Fraction(0))
            continue
        e = rest.numerator.bit_length() - rest.denominator.bit_length()
        if Fraction(2) ** e > abs(rest):
            e -= 1
        q = Fraction(2) ** (e - bits + 1)
        piece = (abs(rest) // q) * q * (1 if rest > 0 else -1)
        out.append(piece)
        rest -= piece
    assert rest == 0, f"{v} needs more than {pieces} pieces of {bits} bits"
    return out


def chain(spec, rows):
    """Build inputs from rows of steps; a step is (first, [lane values]) with exact products."""
    steps = max(len(r) for r in rows)
    a = np.zeros((len(rows), steps, spec.lanes), dtype=np.int64)
    b = np.zeros_like(a)
    first = np.zeros((len(rows), steps), dtype=bool)
    zero_a, one_b = code_of(spec.a, 0.0), code_of(spec.b, 1.0)
    a[...], b[...] = zero_a, one_b
    for i, row in enumerate(rows):
        for t, (f, vals) in enumerate(row):
            first[i, t] = f
            for lane, v in enumerate(vals):
                a[i, t, lane], b[i, t, lane] = as_product(spec, v) if not isinstance(v, tuple) else v
        for t in range(len(row), steps):  # pad by adding +0 (changes nothing but -0)
            first[i, t] = False
    return a, b, first


F = Fraction
P2 = lambda e: Fraction(2) ** e  # noqa: E731


# ---- the reference checks itself ---------------------------------------------------------


def test_reference_neighbours_agree_with_grid():
    fmt = formats.get("fp16")
    rng = np.random.default_rng(1)
    for _ in range(200):
        x = F(int(rng.integers(1, 1 << 40)), 1 << int(rng.integers(0, 60)))
        if x >= F(fmt.max):
            continue
        keys_lo, keys_hi = neighbours(fmt, x)
        e = x.numerator.bit_length() - x.denominator.bit_length()
        e -= Fraction(2) ** e > x
        ulp = P2(max(e, fmt.emin) - fmt.man_bits)
        assert keys_lo == (x // ulp) * ulp and keys_hi == keys_lo + ulp


# ---- random chains against the Fraction reference ----------------------------------------

RANDOM_SPECS = [
    Spec(),
    Spec(acc="bf16"),
    Spec(acc="fp16", lanes=4),
    Spec(a="e5m2", b="e5m2", acc="fp32", lanes=4),
    Spec(a="e4m3", b="e4m3", acc="fp16"),
    Spec(a="e4m3fn", b="e5m2", acc="fp32", lanes=16),
    Spec(a="e2m1fn", b="e3m2fn", acc="bf16", lanes=4),
    Spec(a="e2m3fn", b="e2m1fn", acc="e5m3", lanes=1),
    Spec(a="e4m3fnuz", b="e5m2fnuz", acc="fp16", lanes=4),
    Spec(a="fp16", b="bf16", acc="fp32", lanes=4),
    Spec(a="bf16", b="bf16", acc="bf16", lanes=1),
    Spec(a="e3m4", b="e5m2", acc="fp32", lanes=4, subnormals=False),
    Spec(a="e5m2", b="e5m2", acc="fp16", lanes=1, subnormals=False),
    Spec(a="e1m2fn", b="e2m0fin", acc="e3m4", lanes=4),
    Spec(a="e5m10b5", b="e8m1", acc="e6m9", lanes=4),
    Spec(acc="exact", lanes=4),
    Spec(a="e5m2", b="e5m2", acc="exact", lanes=16, max_count=64),
    Spec(a="e4m3", b="e2m1fn", acc="exact", lanes=1, max_count=1, subnormals=False),
    Spec(a="fp16", b="bf16", acc="exact", lanes=4),
    Spec(a="e4m3fn", b="e4m3fn", acc="exact", lanes=64, max_count=2),
]


@pytest.mark.parametrize("spec", RANDOM_SPECS, ids=lambda s: s.name)
def test_random_chains_match_reference(spec):
    rng = np.random.default_rng(abs(hash(spec.name)) % (1 << 32))
    lanes_budget = 1600 // spec.lanes
    a, b, first = random_inputs(spec, rng, batch=8, steps=max(4, lanes_budget // 8))
    check(spec, a, b, first)


@pytest.mark.parametrize(
    "spec",
    [
        Spec(a="e5m2", b="e5m2", lanes=4),
        Spec(a="e4m3", b="e4m3", acc="exact"),
        Spec(a="e5m2", b="e4m3fn", acc="bf16", lanes=16),
    ],
    ids=lambda s: s.name,
)
def test_random_chains_many_specials(spec):
    rng = np.random.default_rng(7)
    a, b, first = random_inputs(spec, rng, batch=16, steps=40, p_special=0.15, p_first=0.3)
    check(spec, a, b, first)


def test_wide_dynamic_range_uses_all_paths():
    # fp16 x bf16 products span 2^-157..2^144: acc + product often spans > 62 bits (sticky and
    # Python-int paths), lanes sums of 16 products often do not fit int64
    for lanes in (1, 16):
        spec = Spec(a="fp16", b="bf16", acc="fp32", lanes=lanes)
        rng = np.random.default_rng(lanes)
        a, b, first = random_inputs(spec, rng, batch=8, steps=240 // lanes + 4, p_special=0.0, p_first=0.05)
        check(spec, a, b, first)


# ---- adversarial float cases ---------------------------------------------------------------

BF_FP32 = Spec(a="bf16", b="bf16", acc="fp32", lanes=4)


def _set(v):
    return (True, split(v, 8, 4))


def _add(*vals):
    return (False, list(vals))


def expect(spec, rows, want):
    a, b, first = chain(spec, rows)
    out = check(spec, a, b, first)
    got = [int(row[len(r) - 1]) for row, r in zip(out["acc"], rows)]
    assert got == [int(w) for w in want], [hex(g) for g in got]


def f32(x) -> int:
    return struct.unpack(">I", struct.pack(">f", float(x)))[0]


def test_ties_round_to_even_both_directions_fp32():
    rows, want = [], []
    for base in (P2(24), P2(24) + 2, P2(-100) * 3 * P2(23), P2(127) + P2(104)):
        ulp = P2(base.numerator.bit_length() - base.denominator.bit_length() - 23)
        for sign in (1, -1):
            rows.append([_set(sign * base), _add(sign * ulp / 2)])
            even_down = (base / ulp) % 2 == 0
            want.append(f32(sign * (base if even_down else base + ulp)))
            rows.append([_set(sign * (base + ulp)), _add(sign * ulp / 2)])
            want.append(f32(sign * (base + 2 * ulp if even_down else base + ulp)))
            rows.append([_set(sign * base), _add(sign * ulp / 2, sign * P2(-140))])  # just above the tie
            want.append(f32(sign * (base + ulp)))
    expect(BF_FP32, rows, want)


def test_ties_in_subnormal_range_and_rounding_to_zero_keeps_sign():
    rows = [
        [(True, [P2(-150)])],  # tie 0 / 2^-149 -> +0
        [(True, [-P2(-150)])],  # -> -0 (nonzero S rounds to zero, keeps sign)
        [(True, [3 * P2(-150)])],  # tie 2^-149 / 2^-148 -> 2^-148
        [(True, [P2(-149)]), _add(P2(-149))],  # subnormal + subnormal
        [_set(P2(-126) - P2(-149)), _add(P2(-150))],  # tie to even: largest subnormal + half ulp
        [(True, [P2(-200)])],  # far below: +0
        [(True, [-P2(-200), P2(-201)])],  # -> -0
    ]
    want = [0, 0x80000000, 2, 2, f32(P2(-126)), 0, 0x80000000]
    expect(BF_FP32, rows, want)


def test_cancellation_zero_signs():
    spec = BF_FP32
    n0 = (code_of(spec.a, -0.0), code_of(spec.b, 1.0))
    p0 = (code_of(spec.a, 0.0), code_of(spec.b, 1.0))
    rows = [
        [(True, [1, -1])],  # x - x = +0
        [(True, [-1, 1])],
        [(True, [n0, n0, n0, n0])],  # all -0 -> -0
        [(True, [n0, n0, p0, n0])],  # one +0 -> +0
        [(True, [n0, n0, n0, n0]), (False, [n0, n0, n0, n0])],  # -0 + -0 -> -0
        [(True, [n0, n0, n0, n0]), (False, [n0, p0, n0, n0])],  # -0 + +0 -> +0
        [(True, [-2, n0, n0, n0]), (False, [2, n0, n0, n0])],  # cancel across acc -> +0
        [(False, [n0, n0, n0, n0])],  # reset acc is +0: +0 + -0 -> +0
        [(True, [F(3), -F(3), n0, n0]), (False, [n0, n0, n0, n0])],  # +0 acc + -0 -> +0
        [(True, [P2(-149), -P2(-149), P2(-140), -P2(-140)])],  # subnormal cancellation -> +0
    ]
    want = [0, 0, 0x80000000, 0, 0x80000000, 0, 0, 0, 0, 0]
    expect(spec, rows, want)


def test_overflow_thresholds_fp32():
    mx = F(formats.get("fp32").max)
    half = P2(127 - 24)
    rows = [[_set(s * mx), _add(s * half)] for s in (1, -1)]  # tie at threshold -> inf
    rows += [[_set(s * mx), _add(*split(s * (half - P2(80)), 8, 4))] for s in (1, -1)]  # just below
    rows += [[_set(mx), _add(-half)]]  # tie below max: to even, max - ulp
    want = [0x7F800000, 0xFF800000, f32(mx), f32(-mx), f32(mx - 2 * half)]
    expect(BF_FP32, rows, want)


@pytest.mark.parametrize("acc", ["fp16", "bf16"])
def test_overflow_thresholds_half_formats(acc):
    fmt = formats.get(acc)
    spec = Spec(a=acc, b=acc, acc=acc, lanes=2)
    mx, half = F(fmt.max), P2(fmt.emax - fmt.man_bits - 1)
    tiny = P2(fmt.emax - fmt.man_bits - 6)
    rows = []
    for s in (1, -1):
        rows += [
            [(True, [s * mx]), _add(s * half)],  # = threshold -> inf
            [(True, [s * mx]), _add(s * (half - tiny))],  # just below -> max
            [(True, [s * mx, s * half])],  # in one step
            [(True, [s * mx]), _add(s * mx), _add(-s * mx)],
        ]  # inf is sticky
    inf, ninf = fmt.inf_code(), fmt.inf_code(True)
    want = [inf, code_of(fmt, mx), inf, inf, ninf, code_of(fmt, -mx), ninf, ninf]
    expect(spec, rows, want)


def test_flush_to_zero():
    spec = Spec(a="bf16", b="bf16", acc="fp32", lanes=4, subnormals=False)
    sub_bf = P2(-130)  # a bf16 subnormal input: flushed
    rows = [
        [(True, [(code_of(spec.a, sub_bf), code_of(spec.b, 1.0))])],
        [(True, [(code_of(spec.a, -sub_bf), code_of(spec.b, 1.0))] * 4)],  # -sub * 1 -> -0
        [(True, [P2(-127)])],  # fp32 subnormal result -> +0
        [(True, [-P2(-128) * 3])],  # -> -0
        [(True, split(P2(-126) - P2(-150), 8, 4))],  # rounds up to min normal: kept
        [(True, [P2(-126)]), _add(-P2(-127))],  # normal - x = subnormal -> +0
    ]
    want = [0, 0x80000000, 0, 0x80000000, f32(P2(-126)), 0]
    expect(spec, rows, want)


def test_flush_makes_inf_times_subnormal_nan():
    spec = Spec(a="e5m2", b="e5m2", acc="fp32", subnormals=False)
    inf, sub = 0x7C, 0x01
    assert ref_decode(spec.a, inf)[0] == INF
    a = np.array([[inf, sub, inf]])
    b = np.array([[sub, inf, 0x3C]])
    first = np.array([[True, True, True]])
    out = check(spec, a, b, first)
    assert out["acc"].tolist() == [[0x7FC00000, 0x7FC00000, 0x7F800000]]


@pytest.mark.parametrize("a_fmt,b_fmt", [("e5m2", "e5m2"), ("e4m3", "e4m3"), ("e4m3fn", "e5m2")])
def test_nan_inf_rules(a_fmt, b_fmt):
    spec = Spec(a=a_fmt, b=b_fmt, acc="fp32", lanes=4)
    fa, fb = spec.a, spec.b
    one_b = code_of(fb, 1.0)
    nan_a = fa.nan_code
    pinf_a = fa.inf_code() if fa.has_inf else None
    ninf_a = fa.inf_code(True) if fa.has_inf else None
    zero_b = code_of(fb, 0.0)
    z = (code_of(fa, 0.0), one_b)
    rows = [
        [(True, [(nan_a, one_b), z, z, z])],
        [(True, [(nan_a, one_b), z, z, z]), (False, [z, z, z, z])],  # NaN sticks
        [(True, [(nan_a, one_b), z, z, z]), (True, [1, z, z, z])],
    ]  # first clears it
    want = [0x7FC00000, 0x7FC00000, f32(1)]
    if pinf_a is not None:
        rows += [
            [(True, [(pinf_a, one_b), z, z, z])],
            [(True, [(pinf_a, zero_b), z, z, z])],  # inf * 0
            [(True, [(pinf_a, one_b), (ninf_a, one_b), z, z])],  # inf - inf in lanes
            [(True, [(pinf_a, one_b), z, z, z]), (False, [(ninf_a, one_b), z, z, z])],  # across acc
            [(True, [(ninf_a, one_b), z, z, z]), (False, [-2, z, z, z])],  # -inf sticks
            [(True, [(pinf_a, code_of(fb, -1.0)), z, z, z])],
        ]
        want += [0x7F800000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0xFF800000, 0xFF800000]
    if fb.has_inf:
        rows += [[(True, [(code_of(fa, -0.0), fb.inf_code()), z, z, z])]]  # -0 * inf
        want += [0x7FC00000]
    expect(spec, rows, want)


@pytest.mark.parametrize("lanes", [1, 4, 16])
def test_lanes_sum_exactly_then_round_once(lanes):
    spec = Spec(a="bf16", b="bf16", acc="fp32", lanes=lanes)
    # 2^24 + lanes-1 halves of ulp: each lane alone would round away, their sum must not
    vals = [P2(24)] + [F(1, 2)] * (lanes - 1)
    total = P2(24) + F(lanes - 1, 2)
    want = ref_round(spec.acc, total, True)
    expect(spec, [[(True, vals)]], [want])


# ---- exact accumulator --------------------------------------------------------------------


def test_exact_wraps_modulo_width_and_flags():
    spec = Spec(a="e5m2", b="e5m2", acc="exact", lanes=1, max_count=1)
    w = spec.exact_width
    big = code_of(spec.a, 57344.0)
    steps = 12
    a = np.full((2, steps), big)
    b = np.full((2, steps), big)
    b[1] = code_of(spec.b, -57344.0)
    first = np.zeros((2, steps), bool)
    out = check(spec, a, b, first)
    prod = int(F(57344) ** 2 / P2(spec.product_lsb_exp))
    assert [int(v) for v in out["acc"][0]] == [(k * prod) % (1 << w) for k in range(1, steps + 1)]
    assert [int(v) for v in out["acc"][1]] == [(-k * prod) % (1 << w) for k in range(1, steps + 1)]
    assert out["acc"].dtype == (np.uint64 if w <= 64 else object)
    # flags: sticky, cleared by first, inf/NaN add nothing
    pinf, nan = spec.a.inf_code(), spec.a.nan_code
    one = code_of(spec.b, 1.0)
    a = np.array([[pinf, big, spec.a.inf_code(True), big, nan, big, big]])
    b = np.array([[one, one, one, one, one, one, code_of(spec.b, 0.0)]])
    first = np.array([[True, False, False, True, False, True, False]])
    out = check(spec, a, b, first)
    assert out["acc_flags"].tolist() == [[2, 2, 6, 0, 1, 0, 0]]


@pytest.mark.parametrize(
    "spec",
    [
        Spec(acc="exact", lanes=4, max_count=16),
        Spec(a="fp16", b="bf16", acc="exact", lanes=2, max_count=4),
        Spec(a="e2m1fn", b="e3m2fn", acc="exact", lanes=16, max_count=1),
    ],
    ids=lambda s: s.name,
)
def test_exact_wraps_at_the_limit(spec):
    # max_count steps of all-lanes-max products fit; one more wraps
    fa, fb = spec.a, spec.b
    a = np.full((2, spec.max_count + 3, spec.lanes), code_of(fa, F(fa.max)))
    b = np.full_like(a, code_of(fb, F(fb.max)))
    b[1] = code_of(fb, -F(fb.max))
    first = np.zeros(a.shape[:2], bool)
    out = check(spec, a, b, first)
    assert "acc_flags" not in out or not out["acc_flags"].any()
    vals = golden.value(spec, out["acc"])
    n = spec.max_count * spec.lanes
    assert vals[0, spec.max_count - 1] == pytest.approx(n * fa.max * fb.max)
    assert vals[1, spec.max_count - 1] == pytest.approx(-n * fa.max * fb.max)


# ---- NumPy float32 / ml_dtypes where provably exact ---------------------------------------


def _e4m3_f32(codes):
    return np.asarray(codes).astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32)


def _f32_bits(x):
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return np.where(np.isnan(x), np.uint64(0x7FC00000), bits)


def test_exhaustive_e4m3fn_products_first_step():
    spec = Spec()
    a = np.repeat(np.arange(256), 256).reshape(-1, 1)
    b = np.tile(np.arange(256), 256).reshape(-1, 1)
    out = golden.run(spec, a=a, b=b, first=np.ones(a.shape, bool))
    want = _f32_bits(_e4m3_f32(a) * _e4m3_f32(b))  # any E4M3 product is exact in float32
    np.testing.assert_array_equal(out["acc"], want)


@pytest.mark.parametrize("lanes", [1, 4])
def test_two_step_chains_against_float64(lanes):
    spec = Spec(lanes=lanes)
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (20000, 2, lanes))
    b = rng.integers(0, 256, (20000, 2, lanes))
    first = np.array([[True, False]] * 20000)
    out = golden.run(spec, a=a, b=b, first=first)
    prod = _e4m3_f32(a).astype(np.float64) * _e4m3_f32(b)
    # products span 2^-18..2^18: float64 sums of up to 8 of them are exact, then one cast
    s1 = prod[:, 0].sum(axis=-1) if lanes > 1 else prod[:, 0, 0]
    s2 = s1.astype(np.float32).astype(np.float64) + (prod[:, 1].sum(axis=-1) if lanes > 1 else prod[:, 1, 0])
    # float64 sums of signed zeros follow IEEE, which gives the contract's zero-sign rule
    np.testing.assert_array_equal(out["acc"][:, 0], _f32_bits(s1.astype(np.float32)))
    np.testing.assert_array_equal(out["acc"][:, 1], _f32_bits(s2.astype(np.float32)))


@pytest.mark.slow
def test_exhaustive_pairs_two_steps_against_float64():
    spec = Spec()
    rng = np.random.default_rng(11)
    a = np.stack([np.repeat(np.arange(256), 256), rng.integers(0, 256, 65536)], axis=1)
    b = np.stack([np.tile(np.arange(256), 256), rng.integers(0, 256, 65536)], axis=1)
    for acc, cast in (("fp32", np.float32), ("fp16", np.float16)):
        spec = Spec(acc=acc)
        out = golden.run(spec, a=a, b=b, first=np.array([[True, False]] * 65536))
        prod = _e4m3_f32(a).astype(np.float64) * _e4m3_f32(b)
        with np.errstate(over="ignore"):
            r1 = prod[:, 0].astype(cast)
        with np.errstate(over="ignore"):
            r2 = (r1.astype(np.float64) + prod[:, 1]).astype(cast)
        for col, r in ((0, r1), (1, r2)):
            bits = r.view(np.uint32 if cast is np.float32 else np.uint16).astype(np.uint64)
            bits = np.where(np.isnan(r), np.uint64(spec.acc.nan_code), bits)
            np.testing.assert_array_equal(out["acc"][:, col], bits)


@pytest.mark.slow
@pytest.mark.parametrize("spec", RANDOM_SPECS, ids=lambda s: s.name)
def test_long_random_chains_match_reference(spec):
    rng = np.random.default_rng(5)
    a, b, first = random_inputs(spec, rng, batch=16, steps=max(8, 20000 // spec.lanes // 16), p_first=0.02)
    check(spec, a, b, first)


# ---- API -------------------------------------------------------------------------------------


def test_port_widths_and_dtypes():
    assert golden.port_widths(Spec()) == {"acc": 32}
    assert golden.port_widths(Spec(acc="bf16")) == {"acc": 16}
    s = Spec(acc="exact")  # e4m3fn has NaN codes: flags port
    assert golden.port_widths(s) == {"acc": s.exact_width, "acc_flags": 3}
    s = Spec(a="e5m2", acc="exact")
    assert golden.port_widths(s) == {"acc": s.exact_width, "acc_flags": 3}
    assert golden.port_widths(Spec(a="e2m1fn", b="e3m2fn", acc="exact")) == {
        "acc": Spec(a="e2m1fn", b="e3m2fn", acc="exact").exact_width
    }
    wide = Spec(a="fp16", b="bf16", acc="exact")
    out = golden.run(wide, a=np.zeros((2, 3), int), b=np.zeros((2, 3), int), first=np.zeros((2, 3), bool))
    assert wide.exact_width > 64 and out["acc"].dtype == object and out["acc"].shape == (2, 3)


def test_value_decodes_accumulators():
    spec = Spec(acc="exact")
    out = golden.run(spec, a=np.array([[0x38, 0x01]]), b=np.array([[0x38, 0xB8]]), first=np.array([[True, False]]))
    assert golden.value(spec, out["acc"]).tolist() == [[1.0, 1.0 - 2.0**-9]]
    out = golden.run(Spec(), a=np.array([[0x38]]), b=np.array([[0xC0]]), first=np.array([[True]]))
    assert golden.value(Spec(), out["acc"]).tolist() == [[-2.0]]
    wide = Spec(a="fp16", b="bf16", acc="exact")
    one_a, m_b = code_of(wide.a, 1.0), code_of(wide.b, -3.0)
    out = golden.run(wide, a=np.array([[one_a]]), b=np.array([[m_b]]), first=np.array([[True]]))
    assert golden.value(wide, out["acc"]).tolist() == [[-3.0]]


def test_input_validation_messages():
    spec = Spec(lanes=4)
    ok = np.zeros((2, 3, 4), int)
    with pytest.raises(ValueError, match=r"a must have shape \[batch, steps, lanes\]"):
        golden.run(spec, a=np.zeros((2, 3), int), b=ok, first=np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="code 256 does not exist in e4m3fn"):
        golden.run(spec, a=ok + 256, b=ok, first=np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"first must have shape"):
        golden.run(spec, a=ok, b=ok, first=np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"object \(.*\) is not a PE spec: allowed MinifloatMacSpec"):
        golden.run(object(), a=ok)
    # [batch, steps] is accepted when lanes == 1
    out = golden.run(Spec(), a=np.zeros((2, 3), int), b=np.zeros((2, 3), int), first=np.zeros((2, 3), bool))
    assert out["acc"].shape == (2, 3) and out["acc"].dtype == np.uint64
