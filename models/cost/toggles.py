"""Per-family toggle models of the energy estimate (:mod:`.energy`): one :class:`ToggleModel`
per PE family, named as the family's ``energy`` part in :data:`peforge.families.FAMILIES`.

A toggle model knows three things about its family's golden-model inputs: how to draw random
finite operands (the reference activity), how to lay real-valued dot products out as one
accumulation chain each (the ``digits`` workload), and which signals its activity classes
toggle (operand words, per-lane products, the lane / step sum) in the RTL's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from peforge.formats import FloatFormat, IntFormat
from peforge.geometry import blockdot_geometry, lut_geometry, shiftadd_geometry
from peforge.quantize import pow2_scale, quantize_weights

__all__ = ["ToggleModel", "toggles", "fixed_words", "MAC", "INTMAC", "SIMD", "SHIFTADD", "LUT", "BLOCKDOT"]

Inputs = dict[str, Any]


@dataclass(frozen=True)
class ToggleModel:
    """How one family's datapath switches.

    Members
    -------
    rates : callable
        ``rates(spec, inputs) -> [operand, product, sum]`` toggle rates (toggled fraction of
        bits per step) of golden-model ``inputs``.
    random : callable
        ``random(spec, rng, first) -> inputs``: uniformly random finite operands for the steps
        of ``first`` ``[batch, steps]``.
    chains : callable
        ``chains(spec, x, w) -> inputs`` with arrays ``[C, T, ...]``: row ``c`` of the real
        ``x`` and ``w`` ``[C, k]`` as one accumulation chain of ``T`` steps (operands quantised
        per chain with power-of-two scales); ``first`` is added by the caller.
    """

    rates: Callable[[Any, Inputs], list[float]]
    random: Callable[[Any, np.random.Generator, np.ndarray], Inputs]
    chains: Callable[[Any, np.ndarray, np.ndarray], Inputs]


def _popcount(x: np.ndarray) -> np.ndarray:
    return (
        np.bitwise_count(x)
        if hasattr(np, "bitwise_count")
        else np.unpackbits(x.view(np.uint8)).reshape(*x.shape, -1).sum(-1)
    )


def toggles(words: list[np.ndarray], bits: int) -> float:
    """Mean toggled fraction per bit between successive steps of ``[batch, steps, ...]`` uint64 words."""
    total = 0.0
    for w in words:
        w = np.asarray(w, dtype=np.uint64)
        total += float(_popcount(w[:, 1:] ^ w[:, :-1]).sum())
    steps = words[0].shape[0] * (words[0].shape[1] - 1)
    lanes = int(np.prod(words[0].shape[2:])) if words[0].ndim > 2 else 1
    return total / max(steps * lanes * bits, 1)


def fixed_words(values: np.ndarray, lsb_exp: int, width: int) -> list[np.ndarray]:
    """One's complement words (``width`` magnitude bits + sign, as the RTL's lane terms) of exact
    values in units of ``2**lsb_exp``, split into 52-bit uint64 words (exact in float64)."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.ldexp(np.abs(v), -lsb_exp)
    neg = np.signbit(v) & (v != 0)
    words = []
    for lo in range(0, width + 1, 52):
        bits = min(52, width + 1 - lo)
        w = (np.floor(mag / 2.0**lo) % 2.0**bits).astype(np.uint64)
        # negative: every bit flips, the sign bit (position width) included
        words.append(np.where(neg, w ^ np.uint64((1 << bits) - 1), w))
    return words


def _twos(values: np.ndarray, bits: int) -> np.ndarray:
    return np.asarray(values).astype(np.int64).view(np.uint64) & np.uint64((1 << min(bits, 64)) - 1)


def _finite_codes(fmt: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    codes = rng.integers(0, 1 << fmt.bits, shape, dtype=np.uint64)
    if isinstance(fmt, FloatFormat):
        codes = np.where(np.isfinite(fmt.decode(codes)), codes, 0).astype(np.uint64)
    return codes


def _chain_scale(fmt: Any, v: np.ndarray) -> np.ndarray:
    """Per-row power-of-two scale factors (multiply) that bring ``v`` into ``fmt``'s range."""
    amax = np.abs(v).max(axis=1, keepdims=True) + 1e-30
    if isinstance(fmt, FloatFormat):
        return 2.0 ** (np.floor(np.log2(fmt.max)) - np.ceil(np.log2(amax)))
    return 2.0 ** np.floor(np.log2(max(fmt.max_int, 1) / amax))


def _steps(v: np.ndarray, per: int) -> np.ndarray:
    """``[C, k]`` -> ``[C, T, per]`` with zero padding (zero codes / values fill the tail)."""
    pad = (-v.shape[1]) % per
    return np.pad(v, ((0, 0), (0, pad))).reshape(len(v), -1, per)


# --- minifloat MAC --------------------------------------------------------------------------------
def _mac_rates(spec: Any, inputs: Inputs) -> list[float]:
    first = np.asarray(inputs["first"], bool)
    a3 = np.asarray(inputs["a"]).reshape(*first.shape, spec.lanes)
    b3 = np.asarray(inputs["b"]).reshape(*first.shape, spec.lanes)
    prod = spec.a.decode(a3).astype(np.float64) * spec.b.decode(b3).astype(np.float64)
    lsb = spec.product_lsb_exp
    span = spec.product_max_exp - lsb + 1
    lsum = np.where(np.isfinite(prod), prod, 0.0).sum(axis=-1)
    return [
        toggles([a3.astype(np.uint64), b3.astype(np.uint64)], spec.a.bits + spec.b.bits),
        toggles(fixed_words(prod, lsb, span), span + 1),
        toggles(fixed_words(lsum, lsb, span + spec.lanes.bit_length()), span + 1 + spec.lanes.bit_length()),
    ]


def _lane_random(spec: Any, rng: np.random.Generator, first: np.ndarray) -> Inputs:
    out: Inputs = {"first": first}
    for k, fmt in (("a", spec.a), ("b", spec.b)):
        out[k] = _finite_codes(fmt, (*first.shape, spec.lanes), rng)
    return out


def _lane_chains(spec: Any, x: np.ndarray, w: np.ndarray) -> Inputs:
    out: Inputs = {}
    for key, fmt, v in (("a", spec.a, x), ("b", spec.b, w)):
        codes = np.asarray(fmt.encode(v * _chain_scale(fmt, v), overflow="saturate")).astype(np.uint64)
        out[key] = _steps(codes, spec.lanes)
    return out


MAC = ToggleModel(_mac_rates, _lane_random, _lane_chains)


# --- integer MAC ----------------------------------------------------------------------------------
def _intmac_rates(spec: Any, inputs: Inputs) -> list[float]:
    first = np.asarray(inputs["first"], bool)
    a3 = np.asarray(inputs["a"]).reshape(*first.shape, spec.lanes)
    b3 = np.asarray(inputs["b"]).reshape(*first.shape, spec.lanes)
    prod = spec.a.to_int(a3) * spec.b.to_int(b3)
    pbits, sbits = spec.product_bits, spec.product_bits + spec.lanes.bit_length()
    return [
        toggles([a3.astype(np.uint64), b3.astype(np.uint64)], spec.a.bits + spec.b.bits),
        toggles([_twos(prod, pbits)], pbits),
        toggles([_twos(prod.sum(-1), sbits)], sbits),
    ]


INTMAC = ToggleModel(_intmac_rates, _lane_random, _lane_chains)


# --- SIMD (measured in mode 0) --------------------------------------------------------------------
def _simd_rates(spec: Any, inputs: Inputs) -> list[float]:
    from peforge.models import golden

    aw, bw = np.asarray(inputs["a"], np.uint64), np.asarray(inputs["b"], np.uint64)
    operand = toggles([aw, bw], spec.a_width + spec.b_width)
    acc = golden.run(spec, **inputs)["acc"]
    # products / sums: no per-lane model, the operand and accumulator rates as proxies
    return [operand, operand, toggles([np.asarray(acc, np.uint64)], golden.port_widths(spec)["acc"])]


def _simd_random(spec: Any, rng: np.random.Generator, first: np.ndarray) -> Inputs:
    shape = first.shape
    return {
        "a": rng.integers(0, 1 << spec.a_width, shape, dtype=np.uint64),
        "b": rng.integers(0, 1 << spec.b_width, shape, dtype=np.uint64),
        "first": first,
        "mode": np.zeros(shape, np.int64),
        "a_signed": np.ones(shape, bool),
        "b_signed": np.ones(shape, bool),
    }


def _simd_chains(spec: Any, x: np.ndarray, w: np.ndarray) -> Inputs:
    (abits, bbits), lanes = spec.mode_widths[0], spec.mode_lanes[0]
    words = []
    for v, bits in ((x, abits), (w, bbits)):
        top = (1 << (bits - 1)) - 1
        q = np.clip(np.rint(v / pow2_scale(np.abs(v).max(axis=1, keepdims=True), top)), -top - 1, top)
        lanes_v = _steps(q.astype(np.int64), lanes) & ((1 << bits) - 1)
        shifts = np.arange(lanes, dtype=np.uint64) * np.uint64(bits)
        words.append(np.bitwise_or.reduce(lanes_v.astype(np.uint64) << shifts, axis=-1))
    shape = words[0].shape
    return {
        "a": words[0],
        "b": words[1],
        "mode": np.zeros(shape, np.int64),
        "a_signed": np.ones(shape, bool),
        "b_signed": np.ones(shape, bool),
    }


SIMD = ToggleModel(_simd_rates, _simd_random, _simd_chains)


# --- shift-add ------------------------------------------------------------------------------------
def _shiftadd_rates(spec: Any, inputs: Inputs) -> list[float]:
    from peforge.models.golden import shiftadd as g

    first = np.asarray(inputs["first"], bool)
    a3 = np.asarray(inputs["a"]).reshape(*first.shape, spec.lanes)
    b3 = np.asarray(inputs["b"]).reshape(*first.shape, spec.lanes)
    geo = shiftadd_geometry(spec)
    prod = g.act_ints(spec, a3.astype(np.int64)) * g.weight_ints(spec, b3.astype(np.int64))
    return [
        toggles([a3.astype(np.uint64), b3.astype(np.uint64)], spec.act.bits + spec.weight.bits),
        toggles([_twos(prod, geo.product_bits)], geo.product_bits),
        toggles([_twos(prod.sum(-1), geo.tree_bits)], geo.tree_bits),
    ]


def _shiftadd_random(spec: Any, rng: np.random.Generator, first: np.ndarray) -> Inputs:
    out: Inputs = {
        "first": first,
        "a": _finite_codes(spec.act, (*first.shape, spec.lanes), rng),
        "b": rng.integers(0, 1 << spec.weight.bits, (*first.shape, spec.lanes), dtype=np.uint64),
    }
    if spec.group is not None:
        out["scale"] = _finite_codes(spec.scale, first.shape, rng)
    return out


def _shiftadd_chains(spec: Any, x: np.ndarray, w: np.ndarray) -> Inputs:
    per = spec.lanes * (spec.group or 1)
    k = -(-x.shape[1] // per) * per
    x, w = np.pad(x, ((0, 0), (0, k - x.shape[1]))), np.pad(w, ((0, 0), (0, k - w.shape[1])))
    a = np.asarray(spec.act.encode(x * _chain_scale(spec.act, x), overflow="saturate")).astype(np.uint64)
    if spec.group is None:
        q = quantize_weights(w.T, spec.weight)
    else:
        q = quantize_weights(w.T, spec.weight, group=per, scale_fmt=spec.scale)
    out: Inputs = {"a": _steps(a, spec.lanes), "b": _steps(np.asarray(q.codes).T.astype(np.uint64), spec.lanes)}
    if spec.group is not None:
        out["scale"] = np.repeat(np.asarray(q.group_codes).T, spec.group, axis=1)[:, : out["a"].shape[1]]
    return out


SHIFTADD = ToggleModel(_shiftadd_rates, _shiftadd_random, _shiftadd_chains)


# --- LUT (every lane takes the chain's weights) ---------------------------------------------------
def _lut_rates(spec: Any, inputs: Inputs) -> list[float]:
    from peforge.models.golden import lut as g

    a = np.asarray(inputs["a"]).astype(np.int64)
    b = np.asarray(inputs["b"]).astype(np.int64).reshape(*a.shape[:2], spec.lanes, spec.group)
    geo = lut_geometry(spec)
    x = g.act_ints(spec, a)
    entries = g.table(spec, x)  # [B, T, entries]
    dots = g.group_dot(spec, x, b)  # [B, T, lanes]
    return [
        toggles([a.astype(np.uint64), b.astype(np.uint64)], spec.act.bits + spec.weight_code_bits),
        toggles([_twos(entries, geo["entry_bits"])], geo["entry_bits"]),
        toggles([_twos(dots, geo["step_bits"])], geo["step_bits"]),
    ]


def _lut_random(spec: Any, rng: np.random.Generator, first: np.ndarray) -> Inputs:
    return {
        "first": first,
        "a": _finite_codes(spec.act, (*first.shape, spec.group), rng),
        "b": rng.integers(0, 1 << spec.weight_code_bits, (*first.shape, spec.lanes, spec.group), dtype=np.uint64),
    }


def _lut_chains(spec: Any, x: np.ndarray, w: np.ndarray) -> Inputs:
    from peforge.models.golden import lut as g

    a = np.asarray(spec.act.encode(x * _chain_scale(spec.act, x), overflow="saturate")).astype(np.int64)
    codes, _ = g.quantize_weights(spec, w.T)  # [k, C]
    zero_a = int(np.asarray(spec.act.encode(np.zeros(1))).ravel()[0])
    pad = (-a.shape[1]) % spec.group
    a = np.pad(a, ((0, 0), (0, pad)), constant_values=zero_a).reshape(len(a), -1, spec.group)
    b = _steps(codes.T, spec.group)  # [C, T, group]
    return {"a": a, "b": np.repeat(b[:, :, None, :], spec.lanes, axis=2)}


LUT = ToggleModel(_lut_rates, _lut_random, _lut_chains)


# --- block-scaled dot product (one step = one block) ----------------------------------------------
def _elem_values(fmt: Any, codes: np.ndarray) -> np.ndarray:
    if isinstance(fmt, IntFormat):
        return np.ldexp(fmt.to_int(codes).astype(np.float64), -fmt.frac_bits)
    return fmt.decode(codes).astype(np.float64)


def _blockdot_rates(spec: Any, inputs: Inputs) -> list[float]:
    a, b = np.asarray(inputs["a"]).astype(np.int64), np.asarray(inputs["b"]).astype(np.int64)
    geo = blockdot_geometry(spec)
    prod = _elem_values(spec.element_a, a) * _elem_values(spec.element_b, b)
    bsum = np.where(np.isfinite(prod), prod, 0.0).sum(axis=-1)
    return [
        toggles([a.astype(np.uint64), b.astype(np.uint64)], spec.element_a.bits + spec.element_b.bits),
        toggles(fixed_words(prod, geo.lsb_exp, geo.span), geo.span + 1),
        toggles(fixed_words(bsum, geo.lsb_exp, geo.block_sum_width - 1), geo.block_sum_width),
    ]


def _near_one(fmt: Any, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Scale codes within a factor 16 of 1 (random scales of the whole E8M0 range overflow)."""
    one = int(np.asarray(fmt.encode(np.ones(1))).ravel()[0])
    step = 1 << fmt.man_bits
    return (one + step * rng.integers(-4, 5, shape)).astype(np.uint64)


def _blockdot_random(spec: Any, rng: np.random.Generator, first: np.ndarray) -> Inputs:
    shape = (*first.shape, spec.block)
    return {
        "first": first,
        "a": _finite_codes(spec.element_a, shape, rng),
        "b": _finite_codes(spec.element_b, shape, rng),
        "scale_a": _near_one(spec.scale_a, first.shape, rng),
        "scale_b": _near_one(spec.scale_b, first.shape, rng),
    }


def _blockdot_chains(spec: Any, x: np.ndarray, w: np.ndarray) -> Inputs:
    from peforge.models.golden import blockdot as g

    blk = spec.block
    pad = (-x.shape[1]) % blk
    x, w = np.pad(x, ((0, 0), (0, pad))), np.pad(w, ((0, 0), (0, pad)))
    out: Inputs = {}
    for key, elem, scale, v in (("a", spec.element_a, spec.scale_a, x), ("b", spec.element_b, spec.scale_b, w)):
        codes, scales, _ = g._quantize(v, g.operand_scheme(elem, scale, blk), axis=1)
        out[key] = np.asarray(codes).reshape(len(v), -1, blk)
        out[f"scale_{key}"] = np.asarray(scales).reshape(len(v), -1)
    return out


BLOCKDOT = ToggleModel(_blockdot_rates, _blockdot_random, _blockdot_chains)
