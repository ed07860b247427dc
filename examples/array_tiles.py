"""The seed papers' claims at tile level: PE arrays at equal throughput, costed and measured.

Run: ``.venv/bin/python examples/array_tiles.py [--synth] [--claim lut|bitfusion|mx|mixpe|all]``.

The papers price tiles, not single PEs: LUT Tensor Core shares one table precompute along a
row of columns, MixPE dequantises once per group after the integer sum, Bit Fusion builds a
systolic array of fusion units, MX units are dot-product tiles.  Each comparison here builds
the tiles as :class:`peforge.arrays.ArraySpec` arrays (output-stationary, 4 x 4 PEs, the PE
lanes chosen so that every tile of a table delivers the same MACs per cycle) and reports area
per MAC/cycle: iCE40 LUT4s (no DSP blocks, so a multiplier costs LUTs), NAND2 equivalents of the
generic gate flow, and ASIC 45 nm energy per MAC including the array's operand movement.
Without ``--synth`` the numbers are the calibrated cost model's (milliseconds); with it, Yosys
synthesises every tile (cached under ``build/fpga-cache``; a few minutes on a cold cache) and the
table shows the measured counts next to the estimates.

* ``lut``: LUT Tensor Core style tile (INT8 activations, 1/2/4-bit weights, one table per row,
  ``lanes = weight bits``; also one table per PE, and the elongated 1 x 16 tile where one table
  serves 16 columns) vs the INT8 x INT4 (INT2 for <= 2-bit weights) dot-product MAC tile and the
  unrolled shift-add tile, all 64 MAC/cycle.
* ``mixpe``: grouped INT8 x INT4 (groups of 32, FP16 scales) shift-add tile with one dequantiser
  per column vs one per PE, and the MAC tile that dequantises per PE.
* ``bitfusion``: the Bit Fusion array (BitBrick fusion units, modes 8x8 .. 2x2) vs a fixed INT8
  array, per mode.
* ``mx``: MXINT8 vs MXFP8 (E4M3) dot-product tiles (2 x 2 PEs, blocks of 32, 8 lanes), with the
  GEMM SQNR of each tile's golden model on Gaussian and outlier data.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from peforge.arrays import ArraySpec, array_geometry
from peforge.models import cost, golden
from peforge.spec import BlockDotSpec, IntMacSpec, LutSpec, ShiftAddSpec, SimdMacSpec

ROWS = COLS = 4


@dataclass
class Tile:
    """One row of a table: a label and its array."""

    label: str
    spec: ArraySpec
    macs: float = 0.0  # MACs per cycle (default: the array's)

    def __post_init__(self) -> None:
        self.macs = self.macs or array_geometry(self.spec).macs_per_cycle


def measure(tile: Tile, synth: bool) -> dict[str, Any]:
    """Area per MAC/cycle and energy per MAC of one tile (estimate, and Yosys with ``synth``)."""
    ice, gen = cost.estimate(tile.spec, "ice40"), cost.estimate(tile.spec, "asic45")
    out: dict[str, Any] = {
        "macs": tile.macs,
        "luts": ice.luts / tile.macs,
        "nand2": gen.gates_nand2 / tile.macs,
        "pj": gen.energy_pj_per_op / tile.macs,
        "fmax": ice.fmax_mhz,
    }
    if synth:
        from peforge import fpga

        out["luts_syn"] = fpga.synthesize(tile.spec, "ice40").luts / tile.macs
        out["nand2_syn"] = fpga.synthesize(tile.spec, "generic").nand2_eq / tile.macs
    return out


def table(
    title: str, tiles: list[Tile], synth: bool, base: int = 0, extra: Callable[[Tile], str] | None = None
) -> list[dict[str, Any]]:
    """Print one table; ratios are against ``tiles[base]``."""
    rows = [measure(t, synth) for t in tiles]
    ref = rows[base]
    print(f"\n{title}")
    head = "| tile | MAC/cycle | iCE40 LUT4 / MAC/cycle | NAND2 / MAC/cycle | pJ/MAC (45 nm) |"
    if synth:
        head += " Yosys LUT4 / MAC/cycle | Yosys NAND2 / MAC/cycle |"
    if extra:
        head += " quality |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for t, r in zip(tiles, rows):
        cells = [
            t.label,
            f"{r['macs']:g}",
            f"{r['luts']:.1f} ({r['luts'] / ref['luts']:.2f}x)",
            f"{r['nand2']:.0f} ({r['nand2'] / ref['nand2']:.2f}x)",
            f"{r['pj']:.3f} ({r['pj'] / ref['pj']:.2f}x)",
        ]
        if synth:
            cells += [
                f"{r['luts_syn']:.1f} ({r['luts_syn'] / ref['luts_syn']:.2f}x)",
                f"{r['nand2_syn']:.0f} ({r['nand2_syn'] / ref['nand2_syn']:.2f}x)",
            ]
        if extra:
            cells.append(extra(t))
        print("| " + " | ".join(cells) + " |")
    return rows


def lut_claim(synth: bool) -> None:
    for bits in (1, 2, 4):
        wint = f"int{max(bits, 2)}"
        tiles = [
            Tile(f"LUT (table per row), W{bits}", ArraySpec(LutSpec("int8", bits, 4, lanes=bits), ROWS, COLS)),
            Tile(
                f"LUT (table per PE), W{bits}", ArraySpec(LutSpec("int8", bits, 4, lanes=bits), ROWS, COLS, share=False)
            ),
            Tile(
                f"LUT elongated 1x16 (one table, 16 columns), W{bits}",
                ArraySpec(LutSpec("int8", bits, 4, lanes=bits), 1, 16),
            ),
            Tile(f"INT8 x {wint.upper()} MAC, 4 lanes", ArraySpec(IntMacSpec("int8", wint, lanes=4), ROWS, COLS)),
            Tile(
                f"shift-add INT8 x {wint.upper()}, 4 lanes",
                ArraySpec(ShiftAddSpec("int8", wint, "shiftadd-int", lanes=4), ROWS, COLS),
            ),
        ]
        table(
            f"LUT Tensor Core tile vs MAC and shift-add tiles, {bits}-bit weights, INT8 activations, "
            f"4x4 PEs, 64 MAC/cycle (ratios vs the LUT tile)",
            tiles,
            synth,
        )


def mixpe_claim(synth: bool) -> None:
    sa = ShiftAddSpec("int8", "int4", "shiftadd-int", lanes=4, group=8, scale="fp16")
    tiles = [
        Tile("shift-add, group dequantiser per column", ArraySpec(sa, ROWS, COLS)),
        Tile("shift-add, group dequantiser per PE", ArraySpec(sa, ROWS, COLS, share=False)),
        Tile("INT8 x INT4 MAC, no dequantiser", ArraySpec(IntMacSpec("int8", "int4", lanes=4), ROWS, COLS)),
    ]
    table(
        "MixPE: dequantise after the group sum, shared per column (INT8 x INT4, groups of 32 = 8 steps of 4 "
        "lanes, FP16 scales, FP32 accumulators; 4x4 PEs, 64 MAC/cycle)",
        tiles,
        synth,
    )


def bitfusion_claim(synth: bool) -> None:
    fusion = SimdMacSpec(8, arch="bricks", modes=("8x8", "8x4", "4x4", "4x2", "2x2"))
    arr = ArraySpec(fusion, ROWS, COLS)
    tiles = [Tile("fixed INT8 MAC array", ArraySpec(IntMacSpec("int8", "int8"), ROWS, COLS))]
    for mode, lanes in zip(fusion.modes or (), fusion.mode_lanes):
        tiles.append(Tile(f"Bit Fusion array, mode {mode}", arr, macs=ROWS * COLS * lanes))
    table(
        "Bit Fusion array (BitBrick fusion units) vs a fixed INT8 array, 4x4 PEs (ratios vs the INT8 array; "
        "the fusion array's area is the same in every mode)",
        tiles,
        synth,
    )


def mx_claim(synth: bool) -> None:
    rng = np.random.default_rng(0)
    x_g, w_g = rng.standard_normal((32, 256)), rng.standard_normal((256, 32))
    x_o = x_g * np.where(rng.random(256) < 0.02, 50.0, 1.0)  # a few outlier channels
    w_t = rng.standard_t(3, (256, 32))

    def sqnr(spec: ArraySpec, x: np.ndarray, w: np.ndarray) -> float:
        ref = x @ w
        err = golden.matmul(spec, x, w) - ref
        return float(10 * np.log10(np.sum(ref**2) / np.sum(err**2)))

    def quality(t: Tile) -> str:
        return f"SQNR {sqnr(t.spec, x_g, w_g):.1f} dB Gaussian, {sqnr(t.spec, x_o, w_t):.1f} dB outliers x Student-t"

    tiles = [
        Tile("MXINT8 (block 32, 8 lanes)", ArraySpec(BlockDotSpec("int8", "int8", block=32, lanes=8), 2, 2)),
        Tile("MXFP8 E4M3 (block 32, 8 lanes)", ArraySpec(BlockDotSpec("e4m3fn", "e4m3fn", block=32, lanes=8), 2, 2)),
    ]
    table(
        "MXINT8 vs MXFP8 dot-product tiles, 2x2 PEs, FP32 accumulators, 32 MAC/cycle (ratios vs MXINT8)",
        tiles,
        synth,
        extra=quality,
    )


CLAIMS = {"lut": lut_claim, "mixpe": mixpe_claim, "bitfusion": bitfusion_claim, "mx": mx_claim}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", action="store_true", help="also synthesise every tile with Yosys (iCE40, generic)")
    ap.add_argument("--claim", choices=[*CLAIMS, "all"], default="all")
    args = ap.parse_args()
    for name, fn in CLAIMS.items():
        if args.claim in (name, "all"):
            fn(args.synth)


if __name__ == "__main__":
    main()
