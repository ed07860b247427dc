"""Block-dot PE: golden-model speed and Yosys cell counts per element format, in one run.

Run: ``.venv/bin/python bench/blockdot.py [--blocks 65536] [--repeat 5] [--jobs 2] [--no-synth] [--json]``.

Golden model: ``--blocks`` block dot products of MX/NVFP4-quantised Gaussian data (via
:mod:`peforge.blockscale`), as chains of 16 blocks, through :func:`peforge.models.golden.run`;
median of ``--repeat`` runs.  Baseline, same run, same element codes: the minifloat MAC's
golden model (:class:`~peforge.spec.MinifloatMacSpec`, ``lanes = block``, FP32 accumulator;
:class:`~peforge.spec.IntMacSpec` for MXINT8) doing the same products without the scales.

Synthesis (:func:`peforge.fpga.synthesize`, cached under ``build/fpga-cache``): Yosys
``generic`` target (gates after ``abc``, FFs, NAND2 equivalents) of every PE with ``--lanes``
products per cycle (default 4, so a block takes ``block / 4`` cycles; full-width 32-lane PEs
take tens of CPU minutes each in Yosys' ABC), and, as the baseline, the minifloat MAC with the
same number of E4M3 lanes and an FP32 accumulator: what block scaling adds on top of a fused
dot product.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

from peforge import blockscale
from peforge.models import golden
from peforge.models.golden.blockdot import operand_scheme
from peforge.spec import BlockDotSpec, IntMacSpec, MinifloatMacSpec

SCHEMES: dict[str, BlockDotSpec] = {
    "mxfp8_e4m3": BlockDotSpec("e4m3fn", "e4m3fn"),
    "mxfp8_e5m2": BlockDotSpec("e5m2", "e5m2"),
    "mxfp6_e3m2": BlockDotSpec("e3m2fn", "e3m2fn"),
    "mxfp6_e2m3": BlockDotSpec("e2m3fn", "e2m3fn"),
    "mxfp4": BlockDotSpec("e2m1fn", "e2m1fn"),
    "mxint8": BlockDotSpec("int8", "int8"),
    "nvfp4": BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),
}


def _baseline_spec(spec: BlockDotSpec) -> Any:
    if spec.element_a.name == "int8f6":
        return IntMacSpec("int8", "int8", lanes=spec.block)
    return MinifloatMacSpec(spec.element_a, spec.element_b, "fp32", lanes=spec.block)


def _operands(spec: BlockDotSpec, blocks: int, chain: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = max(1, blocks // chain)
    out: dict[str, np.ndarray] = {}
    for side, elem, scale in (("a", spec.element_a, spec.scale_a), ("b", spec.element_b, spec.scale_b)):
        scheme = operand_scheme(elem, scale, spec.block)  # type: ignore[arg-type]
        x = rng.standard_normal((rows, chain * spec.block))
        ts = blockscale.tensor_scale(x, scheme)
        codes, scales = blockscale.quantize(x, scheme, tensor_scale=ts)
        out[side] = codes.reshape(rows, chain, spec.block)
        out[f"scale_{side}"] = scales
    first = np.zeros((rows, chain), bool)
    first[:, 0] = True
    out["first"] = first
    return out


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def golden_speed(blocks: int, repeat: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, spec in SCHEMES.items():
        ops = _operands(spec, blocks, 16, seed=1)
        n = ops["first"].size
        t_bd = _median_time(lambda: golden.run(spec, **ops), repeat)
        base = _baseline_spec(spec)
        t_base = _median_time(lambda: golden.run(base, a=ops["a"], b=ops["b"], first=ops["first"]), repeat)
        out[name] = {
            "blocks": n,
            "block": spec.block,
            "blockdot_s": t_bd,
            "baseline_s": t_base,
            "blocks_per_s": n / t_bd,
            "baseline_steps_per_s": n / t_base,
        }
    return out


def synth_counts(jobs: int, lanes: int) -> dict[str, dict[str, Any]]:
    from peforge import fpga

    specs = [dataclasses.replace(s, lanes=lanes) for s in SCHEMES.values()]
    specs.append(MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=lanes))
    reps = fpga.synthesize_many(specs, "generic", jobs=jobs, progress=sys.stderr.isatty())
    out = {}
    for key, rep in zip([*SCHEMES, "baseline_mac_e4m3"], reps):
        out[key] = {
            "module": rep.module,
            "gates": rep.gates,
            "ffs": rep.ffs,
            "nand2": rep.nand2_eq,
            "cells": rep.cells,
            "seconds": rep.seconds,
            "lanes": lanes,
        }
    return out


def report(data: dict[str, Any]) -> str:
    lines = [
        "Golden model: block dot products per second (median), blockdot vs the MAC golden model on "
        "the same element codes (no scales)",
        f"{'scheme':12s} {'block':>5s} {'blocks':>7s} {'blockdot blk/s':>15s} {'products/s':>12s} "
        f"{'baseline step/s':>16s} {'ratio':>6s}",
    ]
    for name, g in data["golden"].items():
        lines.append(
            f"{name:12s} {g['block']:5d} {g['blocks']:7d} {g['blocks_per_s']:15,.0f} "
            f"{g['blocks_per_s'] * g['block']:12,.0f} {g['baseline_steps_per_s']:16,.0f} "
            f"{g['blocks_per_s'] / g['baseline_steps_per_s']:6.2f}"
        )
    syn = data.get("synth")
    if syn:
        base = syn["baseline_mac_e4m3"]
        ref = syn["mxfp8_e4m3"]
        lanes = ref["lanes"]
        lines += [
            "",
            f"Yosys generic cells ({lanes} lanes, FP32 accumulator, 0 stages): gates after abc, FFs, "
            "NAND2-eq (FFs included)",
            f"{'design':24s} {'gates':>7s} {'FFs':>5s} {'NAND2':>9s} {'NAND2/product':>14s} {'vs mxfp8_e4m3':>14s}",
        ]
        for name, s in syn.items():
            lines.append(
                f"{name:24s} {s['gates']:7d} {s['ffs']:5d} {s['nand2']:9.0f} {s['nand2'] / lanes:14.1f} "
                f"{s['nand2'] / ref['nand2']:14.2f}"
            )
        lines.append(
            f"block scaling on top of a {lanes}-lane E4M3 fused dot product (mxfp8_e4m3 / baseline MAC): "
            f"x{ref['nand2'] / base['nand2']:.2f} NAND2-eq, x{ref['gates'] / base['gates']:.2f} gates"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=65536, help="block dot products per golden run")
    ap.add_argument("--repeat", type=int, default=5, help="golden runs per scheme (median)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs")
    ap.add_argument("--lanes", type=int, default=4, help="products per cycle of the synthesised PEs")
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys cell counts")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = ap.parse_args(argv)
    data: dict[str, Any] = {"golden": golden_speed(args.blocks, args.repeat)}
    if not args.no_synth:
        try:
            data["synth"] = synth_counts(args.jobs, args.lanes)
        except Exception as err:  # the Yosys flow missing or failing: report it, keep the rest
            print(f"bench/blockdot.py: Yosys synthesis failed: {err}", file=sys.stderr)
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else report(data))
    return data


if __name__ == "__main__":
    main()
