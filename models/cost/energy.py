"""Dynamic energy from switching activity: a toggle-count model driven by the golden model.

A workload's operand stream is run through the PE's golden model; for every activity class
(:data:`.components.CLASSES`) the model counts bit toggles between successive cycles on the
signals that class computes:

* ``operand``: the operand port words (decoders, operand muxes);
* ``product``: each lane's exact product (multipliers, alignment shifters), as the RTL holds
  it (minifloat: one's complement magnitude in units of ``2**product_lsb_exp``);
* ``sum``: the lane sum (adder tree);
* ``acc``: the accumulator register (the golden model's output);
* ``ctl``: valid/first and flags, taken as 1 (no data dependence modelled).

:func:`digits_stream` gives real operands: the project's digits MLP
(:mod:`peforge.workloads.digits`), its activations and trained weights quantised per chain.

The ratio of a workload's toggle rate to that of uniformly random finite operands scales each
class's gate energy (:func:`peforge.models.cost.estimate` ``activity=``), so random operands
reproduce the anchored per-operation energy and real data shows how much less it switches.
Glitches, clock and leakage power are not modelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge.spec import IntMacSpec, MinifloatMacSpec, SimdMacSpec, Spec

from .components import CLASSES
from .model import CostEstimate, estimate

__all__ = ["toggle_rates", "activity", "random_stream", "digits_stream", "energy"]


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x) if hasattr(np, "bitwise_count") else np.unpackbits(
        x.view(np.uint8)).reshape(*x.shape, -1).sum(-1)


def _toggles(words: list[np.ndarray], bits: int) -> float:
    """Mean toggled fraction per bit between successive steps of ``[batch, steps, ...]`` uint64 words."""
    total = 0.0
    for w in words:
        w = np.asarray(w, dtype=np.uint64)
        total += float(_popcount(w[:, 1:] ^ w[:, :-1]).sum())
    steps = words[0].shape[0] * (words[0].shape[1] - 1)
    lanes = int(np.prod(words[0].shape[2:])) if words[0].ndim > 2 else 1
    return total / max(steps * lanes * bits, 1)


def _fixed(values: np.ndarray, lsb_exp: int, width: int) -> list[np.ndarray]:
    """One's complement words (``width`` magnitude bits + sign, as the RTL's lane terms) of exact
    values in units of ``2**lsb_exp``, split into 52-bit uint64 words (exact in float64)."""
    v = np.nan_to_num(np.asarray(values, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.ldexp(np.abs(v), -lsb_exp)
    neg = np.signbit(v) & (v != 0)
    words = []
    for lo in range(0, width + 1, 52):
        bits = min(52, width + 1 - lo)
        w = np.floor(mag / 2.0 ** lo) % 2.0 ** bits
        w = w.astype(np.uint64)  # negative: every bit flips, the sign bit (position width) included
        words.append(np.where(neg, w ^ np.uint64((1 << bits) - 1), w))
    return words


def _acc_words(acc: np.ndarray) -> list[np.ndarray]:
    if acc.dtype != object:
        return [acc.astype(np.uint64)]
    mask = (1 << 64) - 1
    return [np.vectorize(lambda v: int(v) & mask, otypes=[np.uint64])(acc),
            np.vectorize(lambda v: (int(v) >> 64) & mask, otypes=[np.uint64])(acc)]


def toggle_rates(spec: Spec, a: Any, b: Any, first: Any, **controls: Any) -> list[float]:
    """Toggle rate (toggled fraction of bits per step) per activity class for one stream.

    ``a``, ``b``, ``first`` (and a SIMD PE's ``mode``, ``a_signed``, ``b_signed``) are what
    :func:`peforge.models.golden.run` takes for ``spec``.
    """
    from peforge.models import golden

    out = golden.run(spec, a=a, b=b, first=first, **controls)
    acc_bits = golden.port_widths(spec)["acc"]
    first = np.asarray(first, bool)
    if isinstance(spec, MinifloatMacSpec):
        a3 = np.asarray(a).reshape(*first.shape, spec.lanes)
        b3 = np.asarray(b).reshape(*first.shape, spec.lanes)
        va, vb = spec.a.decode(a3).astype(np.float64), spec.b.decode(b3).astype(np.float64)  # type: ignore[union-attr]
        prod = va * vb
        lsb = spec.product_lsb_exp
        span = spec.product_max_exp - lsb + 1
        lsum = np.where(np.isfinite(prod), prod, 0.0).sum(axis=-1)
        rates = [_toggles([a3.astype(np.uint64), b3.astype(np.uint64)], spec.a.bits + spec.b.bits),  # type: ignore[union-attr]
                 _toggles(_fixed(prod, lsb, span), span + 1),
                 _toggles(_fixed(lsum, lsb, span + spec.lanes.bit_length()), span + 1 + spec.lanes.bit_length())]
    elif isinstance(spec, IntMacSpec):
        a3 = np.asarray(a).reshape(*first.shape, spec.lanes)
        b3 = np.asarray(b).reshape(*first.shape, spec.lanes)
        prod = spec.a.to_int(a3) * spec.b.to_int(b3)  # type: ignore[union-attr]
        pmask = np.uint64((1 << spec.product_bits) - 1)
        smask = np.uint64((1 << (spec.product_bits + spec.lanes.bit_length())) - 1)
        rates = [_toggles([a3.astype(np.uint64), b3.astype(np.uint64)], spec.a.bits + spec.b.bits),  # type: ignore[union-attr]
                 _toggles([prod.astype(np.int64).view(np.uint64) & pmask], spec.product_bits),
                 _toggles([prod.sum(-1).astype(np.int64).view(np.uint64) & smask],
                          spec.product_bits + spec.lanes.bit_length())]
    elif isinstance(spec, SimdMacSpec):
        aw, bw = np.asarray(a, np.uint64), np.asarray(b, np.uint64)
        rates = [_toggles([aw, bw], spec.a_width + spec.b_width)]
        acc_t = _toggles(_acc_words(out["acc"]), acc_bits)
        rates += [rates[0], acc_t]  # products / sums: no per-lane model, operand and acc rates as proxies
    else:
        raise ValueError(f"no toggle model for {type(spec).__name__}: supported MinifloatMacSpec, IntMacSpec, SimdMacSpec")
    rates.append(_toggles(_acc_words(out["acc"]), acc_bits))
    rates.append(1.0)
    return rates


def random_stream(spec: Spec, steps: int = 1024, batch: int = 4, chain: int = 64, seed: int = 0) -> dict[str, Any]:
    """Uniformly random finite operand codes, a new accumulation every ``chain`` steps."""
    rng = np.random.default_rng(seed)
    first = np.zeros((batch, steps), bool)
    first[:, ::chain] = True
    if isinstance(spec, SimdMacSpec):
        return {"a": rng.integers(0, 1 << spec.a_width, (batch, steps), dtype=np.uint64),
                "b": rng.integers(0, 1 << spec.b_width, (batch, steps), dtype=np.uint64), "first": first,
                "mode": np.zeros((batch, steps), np.int64), "a_signed": np.ones((batch, steps), bool),
                "b_signed": np.ones((batch, steps), bool)}
    lanes = spec.lanes  # type: ignore[attr-defined]
    out: dict[str, Any] = {"first": first}
    for k, fmt in (("a", spec.a), ("b", spec.b)):  # type: ignore[attr-defined]
        codes = rng.integers(0, 1 << fmt.bits, (batch, steps, lanes), dtype=np.uint64)
        if isinstance(spec, MinifloatMacSpec):
            ok = np.isfinite(fmt.decode(codes))
            codes = np.where(ok, codes, 0).astype(np.uint64)
        out[k] = codes
    return out


def digits_stream(spec: Spec, samples: int = 8, seed: int = 0) -> dict[str, Any]:
    """Real operands: the project's digits MLP (:func:`peforge.workloads.digits.mlp`, 64-64-10)
    on ``samples`` test images: every layer's input activations (a) against its trained weight
    columns (b), each quantised to the operand format with a power-of-two scale per chain (per
    image for a, per output neuron for b); one accumulation chain per (image, neuron), as long
    as the layer's fan-in."""
    from peforge.workloads import digits

    if isinstance(spec, SimdMacSpec):
        raise ValueError("digits_stream supports mac and intmac specs (per-lane formats)")
    net = digits.mlp()
    rng = np.random.default_rng(seed)
    x_test = digits.dataset().x_test
    xs = x_test[rng.choice(len(x_test), samples, replace=False)]
    lanes = spec.lanes  # type: ignore[attr-defined]
    a_chunks, b_chunks = [], []
    for h, layer in zip(net.layer_inputs(xs), net.layers):
        k, m = layer.w.shape
        av = np.repeat(h[:, None, :], m, axis=1).reshape(-1, k)          # [samples*m, k]
        bv = np.repeat(layer.w.T[None], len(h), axis=0).reshape(-1, k)
        codes = []
        for fmt, v in ((spec.a, av), (spec.b, bv)):  # type: ignore[attr-defined]
            amax = np.abs(v).max(axis=1, keepdims=True) + 1e-30
            if isinstance(spec, MinifloatMacSpec):
                scale = 2.0 ** (np.floor(np.log2(fmt.max)) - np.ceil(np.log2(amax)))
            else:
                scale = 2.0 ** np.floor(np.log2(max(fmt.max_int, 1) / amax))
            codes.append(np.asarray(fmt.encode(v * scale, overflow="saturate")).astype(np.uint64))
        pad = (-k) % lanes  # zero operands fill the last step of a chain
        a_chunks.append(np.pad(codes[0], ((0, 0), (0, pad))).reshape(len(av), -1, lanes))
        b_chunks.append(np.pad(codes[1], ((0, 0), (0, pad))).reshape(len(bv), -1, lanes))
    first = []
    a_all, b_all = [], []
    for a_c, b_c in zip(a_chunks, b_chunks):
        f = np.zeros(a_c.shape[:2], bool)
        f[:, 0] = True
        a_all.append(a_c.reshape(-1, lanes))
        b_all.append(b_c.reshape(-1, lanes))
        first.append(f.reshape(-1))
    batch = 8
    n = sum(len(f) for f in first) // batch * batch
    a = np.concatenate(a_all)[:n].reshape(batch, -1, lanes)
    b = np.concatenate(b_all)[:n].reshape(batch, -1, lanes)
    fst = np.concatenate(first)[:n].reshape(batch, -1)
    fst[:, 0] = True
    return {"a": a, "b": b, "first": fst}


def activity(spec: Spec, stream: dict[str, Any], seed: int = 0) -> list[float]:
    """Per-class toggle rate of ``stream`` relative to random finite operands (same spec)."""
    ref = toggle_rates(spec, **random_stream(spec, seed=seed))
    got = toggle_rates(spec, **stream)
    return [g / r if r > 0 else 1.0 for g, r in zip(got, ref)]


def energy(spec: Spec, workload: str | dict[str, Any] = "random", target: str = "asic45",
           seed: int = 0) -> CostEstimate:
    """:func:`estimate` on an ASIC target with the activity of ``workload``
    (``"random"``, ``"digits"`` or a stream dict); the activity is stored in ``notes``."""
    if isinstance(workload, str):
        if workload == "random":
            act = [1.0] * len(CLASSES)
        elif workload == "digits":
            act = activity(spec, digits_stream(spec, seed=seed), seed)
        else:
            raise ValueError(f"workload={workload!r}: allowed 'random', 'digits' or a stream dict")
    else:
        act = activity(spec, workload, seed)
    est = estimate(spec, target, activity=act)
    est.notes["activity"] = dict(zip(CLASSES, (round(x, 3) for x in act)))
    est.notes["workload"] = workload if isinstance(workload, str) else "custom"
    return est
