"""Cost parts of the zero-point INT MAC (:class:`family7.spec.ZeroPointMacSpec`): its assembly
(the blocks the generator builds, at the geometry's widths, priced by the shared component
coefficients), its toggle model (energy) and its calibration draw rules.

No refit includes the family yet, so the estimate uses the shared coefficients with a family
scale of 1 and the calibration's held-out error bars; ``peforge calibrate`` run inside
``families.extended(FAMILY)`` would synthesise :data:`ZPMAC_DRAWS` and fit its own scale.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from peforge.models.cost.components import Netlist
from peforge.models.cost.specsets import DrawRules
from peforge.models.cost.toggles import ToggleModel, toggles

from .golden import quantize
from .spec import ZeroPointMacSpec, zpmac_geometry

__all__ = ["assemble_zpmac", "ZPMAC_TOGGLES", "ZPMAC_DRAWS"]


def assemble_zpmac(spec: ZeroPointMacSpec) -> Netlist:
    """The generator's datapath: zero-point subtractions, signed multipliers, the lane tree
    (one multi-operand sum with the accumulator when no register splits them), the loop."""
    geo = zpmac_geometry(spec)
    n = Netlist(macs_per_cycle=spec.lanes)
    n.parallel(
        lambda: n.adder(geo.a_bits, spec.lanes, cls="operand") if spec.a_zero else None,
        lambda: n.adder(geo.b_bits, spec.lanes, cls="operand") if spec.b_zero else None,
    )
    n.mult(geo.a_bits, geo.b_bits, spec.lanes, y_bits=geo.product_bits, unsigned=geo.product_range[0] >= 0)
    ops = [geo.product_bits] * spec.lanes
    if spec.stages >= 1:
        n.register(spec.lanes * geo.product_bits + 2, cls="product")
        n.cut()
    if spec.stages >= 2:
        n.multi_add(ops, geo.total_bits, signed=True)
        n.register(geo.total_bits + 2, cls="sum")
        n.cut()
        ops = [geo.total_bits]
    n.accumulate(ops, geo.acc_width, geo.acc_next_width, signed=True)
    n.register(geo.acc_width, cls="acc", enable=True)
    n.feedback()
    n.register(1)  # out_valid
    n.notes.update(product_bits=geo.product_bits, total_bits=geo.total_bits, acc_width=geo.acc_width)
    return n


def _twos(v: np.ndarray, bits: int) -> np.ndarray:
    return v.astype(np.int64).view(np.uint64) & np.uint64((1 << bits) - 1)


def _rates(spec: ZeroPointMacSpec, inputs: dict[str, Any]) -> list[float]:
    first = np.asarray(inputs["first"], bool)
    a = np.asarray(inputs["a"], np.int64).reshape(*first.shape, spec.lanes)
    b = np.asarray(inputs["b"], np.int64).reshape(*first.shape, spec.lanes)
    prod = (a - int(spec.a_zero or 0)) * (b - int(spec.b_zero or 0))
    geo = zpmac_geometry(spec)
    return [
        toggles([a.astype(np.uint64), b.astype(np.uint64)], spec.a.bits + spec.b.bits),
        toggles([_twos(prod, geo.product_bits)], geo.product_bits),
        toggles([_twos(prod.sum(-1), geo.total_bits)], geo.total_bits),
    ]


def _random(spec: ZeroPointMacSpec, rng: np.random.Generator, first: np.ndarray) -> dict[str, Any]:
    shape = (*first.shape, spec.lanes)
    return {
        "first": first,
        "a": rng.integers(0, spec.a_code_max + 1, shape).astype(np.uint64),
        "b": rng.integers(0, spec.b_code_max + 1, shape).astype(np.uint64),
    }


def _chains(spec: ZeroPointMacSpec, x: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """Row ``c`` of ``x`` and ``w`` as one chain, each row quantised with its own scale; the
    tail lanes hold the zero points (value 0)."""
    out = {}
    for key, v, code_max, zero in (
        ("a", x, spec.a_code_max, int(spec.a_zero or 0)),
        ("b", w, spec.b_code_max, int(spec.b_zero or 0)),
    ):
        codes, _ = quantize(np.asarray(v, np.float64), code_max, zero, 1)
        pad = (-codes.shape[1]) % spec.lanes
        codes = np.pad(codes, ((0, 0), (0, pad)), constant_values=zero)
        out[key] = codes.reshape(len(codes), -1, spec.lanes).astype(np.uint64)
    return out


ZPMAC_TOGGLES = ToggleModel(_rates, _random, _chains)


def _draw(r: random.Random) -> dict[str, Any]:
    a, b = r.choice(("uint8", "uint4", "uint6")), r.choice(("uint8", "uint4", "uint2"))
    return {
        "family": "zpmac",
        "a": a,
        "b": b,
        "a_zero": r.choice((0, None, 1)),
        "b_zero": r.choice((0, None, 3)),
        "lanes": r.choice((1, 2, 4, 8)),
        "stages": r.randrange(3),
        "acc_bits": r.choice((None, None, 24)),
    }


ZPMAC_DRAWS = DrawRules(_draw, pool=10, extra=4)
