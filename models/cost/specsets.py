"""The calibration and held-out spec sets of the cost model (deterministic, seeded).

Both sets are drawn from one seeded pool per family, so they span the same space without
sharing a spec: ``training`` fits the per-target coefficients, ``heldout`` only measures the
error bars.  Each family's draw rules are one :class:`DrawRules` record (its ``calibration``
part in :data:`peforge.families.FAMILIES`); drawn specs the constructor rejects are skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from peforge import families as fam_mod
from peforge import spec as spec_mod
from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec, Spec

__all__ = [
    "training",
    "extra_training",
    "heldout",
    "large",
    "fmax_set",
    "fmax_dsp_set",
    "pool",
    "accumulator_pool",
    "SEED",
    "DrawRules",
    "MAC_DRAWS",
    "INTMAC_DRAWS",
    "SIMD_DRAWS",
    "SHIFTADD_DRAWS",
    "BLOCKDOT_DRAWS",
    "LUT_DRAWS",
]

Draw = Callable[[random.Random], dict[str, Any]]


def _always(spec: Spec) -> bool:
    return True


@dataclass(frozen=True)
class DrawRules:
    """How the calibration sets draw one family's specs.

    Members
    -------
    draw : callable
        ``draw(random.Random) -> spec dict`` (``from_dict`` input, ``family`` included).
    pool : int
        Specs in the family's pool (two of five train, three are held out).
    extra : int
        Training-only specs drawn from another seed.
    focus : tuple of (draw, count)
        Training-only draws of structures the pool rarely reaches.
    fits : callable
        The synthesis budget of a pool spec (on top of at most 8 lanes).
    focus_fits : callable or None
        The focus draws' budget (None: at most 16 lanes).
    accumulators : tuple of (draw, count)
        Pools of specs with an accumulator that pipelines (segmented exact, deferred
        rounding), drawn apart so the family's own pool stays the one the shipped calibration
        measured; split into training and held-out like the pool (:func:`accumulator_pool`).
    """

    draw: Draw
    pool: int
    extra: int
    focus: tuple[tuple[Draw, int], ...] = ()
    fits: Callable[[Spec], bool] = _always
    focus_fits: Callable[[Spec], bool] | None = None
    accumulators: tuple[tuple[Draw, int], ...] = ()


SEED = 9

_FP_OPS = ("e4m3fn", "e5m2", "e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn", "e4m3fnuz", "e5m2fnuz", "e3m4")
_ACCS = ("fp32", "fp32", "bf16", "fp16", "exact")
_LANES = (1, 1, 1, 2, 2, 4, 4, 8, 16)
_INTS = ("int8", "int8", "int4", "uint8", "int2", "int16", "int6", "uint4")


def _mac(r: random.Random) -> dict[str, Any]:
    a = r.choice(_FP_OPS)
    b = a if r.random() < 0.6 else r.choice(_FP_OPS)
    acc = r.choice(_ACCS)
    lanes = r.choice(_LANES)
    if acc == "fp32" and lanes == 16 and r.random() < 0.5:
        lanes = 8  # keep synthesis time in budget
    return {
        "family": "mac",
        "a": a,
        "b": b,
        "acc": acc,
        "lanes": lanes,
        "stages": r.randrange(4),
        "subnormals": r.random() < 0.85,
        "max_count": r.choice((256, 4096, 65536)),
        "mult": "lmul" if r.random() < 0.2 else "exact",
    }


def _intmac(r: random.Random) -> dict[str, Any]:
    a = r.choice(_INTS)
    b = a if r.random() < 0.6 else r.choice(_INTS)
    d: dict[str, Any] = {
        "family": "intmac",
        "a": a,
        "b": b,
        "lanes": r.choice(_LANES),
        "stages": r.randrange(4),
        "max_count": r.choice((256, 4096, 65536)),
    }
    if r.random() < 0.3:
        d["acc_bits"] = r.choice((24, 32))
        d["overflow"] = r.choice(("wrap", "saturate"))
    return d


def _simd(r: random.Random) -> dict[str, Any]:
    base = r.choice((8, 8, 16))
    arch = r.choice(("bricks", "sub4"))
    full = {
        8: ["8x8", "8x4", "4x4", "4x2", "2x2", "2x4", "4x8", "8x2"],
        16: ["16x16", "16x8", "8x8", "8x4", "4x4", "4x2", "2x2"],
    }[base]
    ok = [m for m in full if arch == "bricks" or all(int(w) % 4 == 0 for w in m.split("x"))]
    k = r.randint(1, min(5, len(ok)))
    modes = tuple(sorted(r.sample(ok, k), key=ok.index))
    d: dict[str, Any] = {
        "family": "simd",
        "base": base,
        "arch": arch,
        "modes": modes,
        "stages": r.randrange(4),
        "max_count": r.choice((256, 4096)),
    }
    if base == 16 and arch == "bricks":
        d["stages"] = min(d["stages"], 2)
    return d


_SA_WEIGHTS = {
    "pot": ("pot3", "pot4", "pot5"),
    "apot": ("apot5", "apot6"),
    "shiftadd-int": ("int4", "int8", "int2", "uint4"),
    "bitserial": ("int4", "int8", "uint4"),
}


def _shiftadd(r: random.Random) -> dict[str, Any]:
    mode = r.choice(tuple(_SA_WEIGHTS))
    d: dict[str, Any] = {
        "family": "shiftadd",
        "act": r.choice(("int8", "int8", "int4", "uint8", "e4m3fn", "e2m1fn")),
        "weight": r.choice(_SA_WEIGHTS[mode]),
        "mode": mode,
        "lanes": r.choice(_LANES),
        "stages": r.randrange(4),
        "max_count": r.choice((256, 4096)),
    }
    if r.random() < 0.25:
        d["group"] = r.choice((16, 32))
        d["scale"] = r.choice(("bf16", "e8m0fnu", "fp16", "int8"))
    return d


def _blockdot(r: random.Random) -> dict[str, Any]:
    u = r.random()
    if u < 0.3:  # two-level: NVFP4, NVINT4, with E4M3 or unsigned UE4M3 / UE5M3 scales
        ea = r.choice(("e2m1fn", "e2m1fn", "int4", "int4"))
        eb = ea if r.random() < 0.8 else r.choice(("e2m1fn", "int4"))
        sa = r.choice(("e4m3fn", "e4m3fn", "ue4m3", "ue5m3"))
        sb = sa if r.random() < 0.7 else r.choice(("e4m3fn", "ue4m3", "ue5m3"))
        block = 16
    else:  # MX: float elements and MXINT8 / 6 / 4 / 2 with E8M0 scales (sometimes UE5M3)
        ea = r.choice(("e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn", "int8", "int8", "int6", "int4", "int2"))
        eb = ea if r.random() < 0.7 else r.choice(("e4m3fn", "e5m2", "e2m1fn", "int8", "int4"))
        sa = sb = "e8m0fnu" if r.random() < 0.85 else "ue5m3"
        block = r.choice((16, 32, 32, 64))
    return {
        "family": "blockdot",
        "element_a": ea,
        "element_b": eb,
        "scale_a": sa,
        "scale_b": sb,
        "block": block,
        "lanes": r.choice((1, 2, 4, 4, 8)),
        "acc": r.choice(("fp32", "fp32", "bf16", "fp16")),
        "stages": r.randrange(4),
    }


def _lut(r: random.Random) -> dict[str, Any]:
    return {
        "family": "lut",
        "act": r.choice(("int8", "int8", "int4", "uint8", "e4m3fn", "int16")),
        "weight_bits": r.choice((1, 2, 2, 3, 4, 4, "ternary")),
        "group": r.choice((2, 3, 4, 4, 5, 6)),
        "symmetric": r.random() < 0.7,
        "lanes": r.choice((1, 2, 4, 8, 16)),
        "stages": r.randrange(3),
        "max_count": r.choice((256, 4096)),
    }


def _mac_fits(spec: Spec) -> bool:
    """A minifloat MAC with a float accumulator: at most 4 FP8 lanes (8 exact)."""
    return isinstance(spec, MinifloatMacSpec) and _mac_operand_bits(spec) <= 128


def _mac_operand_bits(spec: MinifloatMacSpec) -> int:
    """Operand bits per cycle, doubled for a float accumulator (its datapath is about twice as wide)."""
    return spec.lanes * (spec.a.bits + spec.b.bits) * (1 if spec.is_exact else 2)


def _simd_fits(spec: Spec) -> bool:
    return isinstance(spec, SimdMacSpec) and not (spec.base == 16 and spec.arch == "bricks")


def _rules(family: str) -> DrawRules:
    return fam_mod.get(family).part("calibration")


def _small_enough(spec: Spec) -> bool:
    """Synthesis budget (minutes of Yosys per big PE on a shared 2-core machine): at most 8
    lanes, and the family's own limit (:attr:`DrawRules.fits`)."""
    lanes = getattr(spec, "lanes", 1) or 1
    return lanes <= 8 and _rules(spec.family).fits(spec)


def _mac_accum(r: random.Random) -> dict[str, Any]:
    """A MAC with an accumulator that pipelines: the carry-segmented Kulisch register or
    deferred rounding (``peforge.accumulator``), segment widths 8..24 or one chain."""
    d = {**_mac(r), "mult": "exact", "lanes": r.choice((1, 1, 2, 4))}
    if r.random() < 0.4:
        d.update(acc="exact", segment=r.choice((8, 12, 16, 24)))
    else:
        d.update(
            acc=r.choice(("fp32", "fp32", "bf16", "fp16")),
            rounding="deferred",
            segment=r.choice((0, 8, 12, 16, 16, 24)),
        )
    if r.random() < 0.3:
        d["readout_stages"] = r.randint(1, 4)
    return d


def _blockdot_accum(r: random.Random) -> dict[str, Any]:
    """A block-dot PE with deferred rounding (default window, segment widths 8..24)."""
    d = {
        **_blockdot(r),
        "rounding": "deferred",
        "segment": r.choice((8, 12, 16, 16, 24)),
        "lanes": r.choice((2, 4, 4, 8)),
    }
    if r.random() < 0.3:
        d["readout_stages"] = r.randint(2, 5)
    return d


def accumulator_pool(family: str) -> list[Spec]:
    """Distinct specs of ``family`` with a segmented / deferred accumulator
    (:attr:`DrawRules.accumulators`; empty if the family has none)."""
    out: list[Spec] = []
    for draw, n in _rules(family).accumulators:
        out += _draw(draw, n, f"{SEED}-accum-{family}-{draw.__name__}", frozenset(s.name for s in out), _small_enough)
    return out


def _build(d: dict[str, Any]) -> Spec | None:
    try:
        return spec_mod.from_dict(dict(d))
    except (ValueError, TypeError):
        return None


def pool(
    family: str, seed: int | str = SEED, n: int | None = None, exclude: frozenset[str] = frozenset()
) -> list[Spec]:
    """Distinct valid specs drawn for ``family`` (empty if the family is not registered);
    ``n`` overrides the family's pool size, names in ``exclude`` are never drawn."""
    rules = _rules(family)
    return _draw(rules.draw, rules.pool if n is None else n, f"{seed}-{family}", exclude, _small_enough)


def _draw(
    draw: Callable[[random.Random], dict[str, Any]],
    n: int,
    seed: str,
    exclude: frozenset[str],
    fits: Callable[[Spec], bool],
) -> list[Spec]:
    r = random.Random(seed)
    out: dict[str, Spec] = {}
    for _ in range(n * 4):
        s = _build(draw(r))
        if s is not None and fits(s) and s.name not in exclude:
            out.setdefault(s.name, s)
        if len(out) >= n:
            break
    return list(out.values())


def _split(index: int) -> str:
    """Two of every five pool specs train, three are held out (>= 60 held-out specs)."""
    return "training" if index % 5 in (0, 3) else "heldout"


def _mac_exact(r: random.Random) -> dict[str, Any]:
    return {**_mac(r), "acc": "exact"}


def _mac_wide(r: random.Random) -> dict[str, Any]:
    return {**_mac(r), "acc": r.choice(("fp32", "bf16", "fp16")), "lanes": r.choice((8, 16)), "mult": "exact"}


def _intmac_cascade(r: random.Random) -> dict[str, Any]:
    d = {**_intmac(r), "stages": 0, "lanes": r.choice((2, 4, 8, 16))}
    if d.get("overflow") == "saturate":
        d["overflow"] = "wrap"
    return d


def _focus_small(spec: Spec) -> bool:
    """The focus draws' budget: the family's :attr:`DrawRules.focus_fits`, else up to 16 lanes."""
    fits = _rules(spec.family).focus_fits
    return fits(spec) if fits is not None else (getattr(spec, "lanes", 1) or 1) <= 16


def _mac_focus_fits(spec: Spec) -> bool:
    """A float-accumulator MAC up to 8 FP8 lanes (16 exact)."""
    return isinstance(spec, MinifloatMacSpec) and _mac_operand_bits(spec) <= 256


def extra_training(family: str) -> list[Spec]:
    """Training-only specs of ``family`` from other seeds (none of them in :func:`pool` or in
    :func:`large`): more points for the fit without shrinking the held-out set.  Besides a
    second draw from the family's pool, the :attr:`DrawRules.focus` drawers add structures the
    pool rarely reaches."""
    rules = _rules(family)
    if not rules.extra and not rules.focus:
        return []
    taken = frozenset(s.name for s in (*pool(family), *large()))
    out = pool(family, seed=f"{SEED}-extra", n=rules.extra, exclude=taken)
    for draw, n in rules.focus:
        taken = taken | {s.name for s in out}
        out += _draw(draw, n, f"{SEED}-focus-{family}-{draw.__name__}", taken, _focus_small)
    return out


def _sets(which: str, families: tuple[str, ...] | None) -> Iterator[Spec]:
    for fam in families or fam_mod.names():
        for i, s in enumerate(pool(fam)):
            if _split(i) == which:
                yield s
        for i, s in enumerate(accumulator_pool(fam)):
            if _split(i) == which:
                yield s
        if which == "training":
            yield from extra_training(fam)


def training(families: tuple[str, ...] | None = None) -> list[Spec]:
    """Specs that fit the coefficients: pool positions 0 and 3 mod 5 of every family, plus
    :func:`extra_training`."""
    return list(_sets("training", families))


def large() -> list[Spec]:
    """16-lane PEs beyond the pool's synthesis budget, held out to check extrapolation."""
    return [
        MinifloatMacSpec("e5m2", "e5m2", "bf16", lanes=16),
        MinifloatMacSpec("e3m2fn", "e4m3fnuz", "fp32", lanes=16, stages=1),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", lanes=16, stages=3, max_count=65536),
        IntMacSpec("int8", "int8", lanes=16, stages=1),
        spec_mod.ShiftAddSpec("int8", "pot4", "pot", lanes=16, stages=2),
        spec_mod.LutSpec("int8", 2, 4, lanes=16, stages=1),
    ]


def heldout(families: tuple[str, ...] | None = None) -> list[Spec]:
    """Specs never used in the fit (the other pool positions, plus :func:`large`): the error
    bars come from these."""
    extra = [s for s in large() if families is None or s.family in families]
    return list(_sets("heldout", families)) + extra


def fmax_set() -> list[Spec]:
    """A small set for the place-and-route (Fmax) calibration: varied logic depth."""
    return [
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", stages=2),
        MinifloatMacSpec("e2m1fn", "e2m1fn", "bf16"),
        MinifloatMacSpec("e5m2", "e5m2", "exact", lanes=4),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "bf16", lanes=4, stages=3),
        MinifloatMacSpec("e2m1fn", "e2m1fn", "exact", lanes=2, stages=1),
        MinifloatMacSpec("e5m2", "e4m3fn", "fp16", lanes=2),
        MinifloatMacSpec("e3m2fn", "e3m2fn", "fp32", lanes=8, stages=2),
        IntMacSpec("int8", "int8"),
        IntMacSpec("int8", "int8", lanes=4, stages=2),
        IntMacSpec("int4", "int4", lanes=8, stages=1),
        IntMacSpec("int16", "int16", stages=1),
        IntMacSpec("int2", "int2", lanes=16),
        SimdMacSpec(8, arch="bricks"),
        SimdMacSpec(8, arch="sub4", stages=2),
        SimdMacSpec(16, arch="sub4", stages=1),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "exact", segment=12, stages=3),
        MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", rounding="deferred", segment=16, stages=3),
        spec_mod.BlockDotSpec("e2m1fn", "e2m1fn", block=32, lanes=4, rounding="deferred", segment=16, stages=2),
    ]


def fmax_dsp_set() -> list[Spec]:
    """Pipelined designs placed on ECP5 with their multipliers in DSP blocks (the flow of
    ``peforge synth --pnr`` and ``bench/qor.py``): segments of a few LUT levels, short carry
    chains and DSP blocks, which the LUT-mapped :func:`fmax_set` does not reach."""
    e4 = ("e4m3fn", "e4m3fn")

    def mxfp8(stages: int, readout: int) -> Spec:
        return spec_mod.BlockDotSpec(
            *e4, block=32, lanes=8, acc="fp32", rounding="deferred", segment=16, stages=stages, readout_stages=readout
        )

    return [
        IntMacSpec("int8", "int8"),
        IntMacSpec("int8", "int8", stages=1),
        IntMacSpec("int8", "int8", lanes=4, stages=2),
        MinifloatMacSpec(*e4, "exact", segment=16, stages=2),
        MinifloatMacSpec(*e4, "exact", segment=16, stages=4),
        MinifloatMacSpec(*e4, "exact", segment=16, stages=6),
        MinifloatMacSpec("e5m2", "e5m2", "exact", segment=16, stages=5),
        MinifloatMacSpec(*e4, "fp32", rounding="deferred", segment=16, stages=3, readout_stages=3),
        MinifloatMacSpec(*e4, "fp32", rounding="deferred", segment=16, stages=6, readout_stages=7),
        MinifloatMacSpec(*e4, "fp32", stages=3),
        MinifloatMacSpec(*e4, "bf16", lanes=4, stages=3),
        mxfp8(5, 4),
        mxfp8(9, 10),
        spec_mod.BlockDotSpec(
            "e2m1fn",
            "e2m1fn",
            block=32,
            lanes=8,
            acc="fp32",
            rounding="deferred",
            segment=16,
            stages=7,
            readout_stages=6,
        ),
    ]


MAC_DRAWS = DrawRules(
    _mac,
    pool=40,
    extra=16,
    focus=((_mac_exact, 6), (_mac_wide, 3)),
    fits=_mac_fits,
    focus_fits=_mac_focus_fits,
    accumulators=((_mac_accum, 15),),
)
INTMAC_DRAWS = DrawRules(_intmac, pool=14, extra=10, focus=((_intmac_cascade, 3),))
SIMD_DRAWS = DrawRules(_simd, pool=14, extra=8, fits=_simd_fits)
SHIFTADD_DRAWS = DrawRules(_shiftadd, pool=14, extra=12)
BLOCKDOT_DRAWS = DrawRules(_blockdot, pool=20, extra=8, accumulators=((_blockdot_accum, 8),))
LUT_DRAWS = DrawRules(_lut, pool=12, extra=12)
