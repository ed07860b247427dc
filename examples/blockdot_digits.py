"""Block-scaled formats on a real network: error of MXFP8/6/4, MXINT8 and NVFP4 dot products
next to the cost of the PE that computes them.

The digits MLP (scikit-learn's bundled digits set, trained once with NumPy and cached; see
:mod:`peforge.workloads.digits`) supplies real weight matrices and the activations that feed
them.  For every scheme, each layer's ``x @ w`` runs through the block-dot PE's bit-exact golden
model (:func:`peforge.models.golden.matmul`: rows of ``x`` and columns of ``w`` quantised into
blocks with the scheme's scales, every block summed exactly, scaled and added to an FP32
accumulator with one rounding).  Printed per scheme: SQNR in dB of each layer's product
against float64, the test accuracy of the whole network run that way, and the PE's Yosys
``generic`` cell count (gates, NAND2 equivalents) for ``--lanes`` products per cycle (default
4; the same numbers ``bench/blockdot.py`` caches).

Run: ``.venv/bin/python examples/blockdot_digits.py [--net mlp|cnn] [--no-synth] [--lanes 4] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys

from peforge.models import golden
from peforge.models.golden.blockdot import operand_scheme
from peforge.spec import BlockDotSpec
from peforge.workloads import digits
from peforge.workloads.tensors import sqnr_db

SCHEMES: dict[str, BlockDotSpec] = {
    "MXFP8 E4M3": BlockDotSpec("e4m3fn", "e4m3fn"),
    "MXFP8 E5M2": BlockDotSpec("e5m2", "e5m2"),
    "MXFP6 E3M2": BlockDotSpec("e3m2fn", "e3m2fn"),
    "MXFP6 E2M3": BlockDotSpec("e2m3fn", "e2m3fn"),
    "MXFP4": BlockDotSpec("e2m1fn", "e2m1fn"),
    "MXINT8": BlockDotSpec("int8", "int8"),
    "NVFP4": BlockDotSpec("e2m1fn", "e2m1fn", "e4m3fn", "e4m3fn", block=16),
}


def measure(net_kind: str) -> dict[str, dict[str, float]]:
    """SQNR per layer and accuracy per scheme, plus the float32 reference accuracy."""
    net = digits.mlp() if net_kind == "mlp" else digits.cnn()
    x_test = digits.dataset().x_test
    inputs = net.layer_inputs(x_test)
    out: dict[str, dict[str, float]] = {}
    for name, spec in SCHEMES.items():
        row: dict[str, float] = {}
        for i, (x, layer) in enumerate(zip(inputs, net.layers)):
            row[f"sqnr_l{i + 1}"] = sqnr_db(x @ layer.w, golden.matmul(spec, x, layer.w))
        row["accuracy"] = net.accuracy(functools.partial(golden.matmul, spec))
        row["bits"] = operand_scheme(spec.element_a, spec.scale_a, spec.block).bits_per_element  # type: ignore[arg-type]
        out[name] = row
    out["float32"] = {"accuracy": net.accuracy()}
    return out


def cost(jobs: int, lanes: int) -> dict[str, tuple[int, float]]:
    """(gates, NAND2-eq) of each scheme's PE with ``lanes`` products per cycle, from Yosys
    (cached in build/fpga-cache)."""
    from peforge import fpga

    specs = [dataclasses.replace(s, lanes=lanes) for s in SCHEMES.values()]
    reps = fpga.synthesize_many(specs, "generic", jobs=jobs, progress=sys.stderr.isatty())
    return {name: (rep.gates, rep.nand2_eq) for name, rep in zip(SCHEMES, reps)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys cell counts")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs")
    ap.add_argument("--lanes", type=int, default=4, help="products per cycle of the priced PEs")
    args = ap.parse_args(argv)
    res = measure(args.net)
    cells = {} if args.no_synth else cost(args.jobs, args.lanes)
    layers = sorted(k for k in next(iter(res.values())) if k.startswith("sqnr_"))
    print(
        f"digits {args.net}: {len(digits.dataset().x_test)} test images; float32 accuracy "
        f"{res['float32']['accuracy']:.4f}"
    )
    head = f"{'scheme':12s} {'bits/elem':>9s} " + " ".join(f"{'SQNR ' + k[5:] + ' dB':>12s}" for k in layers)
    head += f" {'accuracy':>9s}" + (f" {'gates':>7s} {'NAND2-eq':>9s} {'NAND2/prod':>10s}" if cells else "")
    print(head)
    for name, row in res.items():
        if name == "float32":
            continue
        line = f"{name:12s} {row['bits']:9.3f} " + " ".join(f"{row[k]:12.2f}" for k in layers)
        line += f" {row['accuracy']:9.4f}"
        if cells:
            gates, nand2 = cells[name]
            line += f" {gates:7d} {nand2:9.0f} {nand2 / args.lanes:10.1f}"
        print(line)
    print("SQNR: each layer's x @ w through the golden PE against float64 on the same inputs.")


if __name__ == "__main__":
    main()
