"""Compute density of the LUT PE against the INT MAC and the shift-add bit-serial PE on FPGA.

Run: ``.venv/bin/python bench/lut.py [--jobs 1] [--json]``.

In one run, Yosys (through :func:`peforge.fpga.synthesize`, cached) synthesises, for INT8
activations, weights of 1, 2 and 4 bits and lanes 1, 4 and 16:

* the LUT PE (:class:`~peforge.spec.LutSpec`, group 4, symmetric table; ``lanes`` weight
  columns share one table; ``lanes * 4 / bits`` MACs per cycle);
* the integer MAC (:class:`~peforge.spec.IntMacSpec`, ``lanes`` multipliers, ``lanes`` MACs per
  cycle), the baseline of every ratio;
* the shift-add bit-serial PE (:class:`~peforge.spec.ShiftAddSpec` mode ``bitserial``,
  ``lanes / bits`` MACs per cycle), when ``peforge.rtl`` can build it.

There is no 1-bit integer format for the two baselines, so the 1-bit LUT rows are compared
with 2-bit baselines (marked ``int2*``).  Every design has a 32-bit wrapping accumulator (per
lane for the LUT PE) and no pipeline stages, so only the datapath differs.  Extra rows: ``lut_full`` (the
full 16-entry table instead of the symmetric 8-entry one) and ``lut_g2`` (group 2: a 2-entry
symmetric table, 2 activations per lookup).

Areas: ``generic`` = Yosys gates after ``abc`` (FFs excluded) and NAND2 equivalents (FFs
included); ``ice40`` = SB_LUT4 (no DSPs; SB_CARRY and SB_DFF* listed).  Density is area per
MAC-per-cycle (lower is better); ratios are the INT MAC's density over the design's (higher is
better: "x times denser than the INT MAC").
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from peforge.spec import IntMacSpec, LutSpec, Spec

WEIGHTS = (1, 2, 4)
LANES = (1, 4, 16)
ACC_BITS = 32


def _shiftadd(bits: int, lanes: int) -> Spec | None:
    try:
        from peforge.spec import ShiftAddSpec  # type: ignore[attr-defined]

        return ShiftAddSpec("int8", f"int{max(bits, 2)}", "bitserial", acc_bits=ACC_BITS, lanes=lanes)
    except (ImportError, ValueError, TypeError):
        return None


def designs() -> list[dict[str, Any]]:
    """One row per (weight bits, lanes, design)."""
    rows: list[dict[str, Any]] = []
    for bits in WEIGHTS:
        base_bits = max(bits, 2)
        for lanes in LANES:
            lut = LutSpec("int8", bits, group=4, lanes=lanes, acc_bits=ACC_BITS)
            rows.append({"bits": bits, "lanes": lanes, "design": "lut", "spec": lut, "macs": lut.macs_per_cycle})
            mac = IntMacSpec("int8", f"int{base_bits}", acc_bits=ACC_BITS, lanes=lanes)
            rows.append(
                {
                    "bits": bits,
                    "lanes": lanes,
                    "design": "intmac",
                    "spec": mac,
                    "macs": float(lanes),
                    "weights": f"int{base_bits}{'*' if base_bits != bits else ''}",
                }
            )
            sa = _shiftadd(bits, lanes)
            rows.append(
                {
                    "bits": bits,
                    "lanes": lanes,
                    "design": "shiftadd",
                    "spec": sa,
                    "macs": lanes / base_bits,
                    "weights": f"int{base_bits}{'*' if base_bits != bits else ''}",
                }
            )
    for lanes in LANES:
        full = LutSpec("int8", 4, group=4, symmetric=False, lanes=lanes, acc_bits=ACC_BITS)
        rows.append({"bits": 4, "lanes": lanes, "design": "lut_full", "spec": full, "macs": full.macs_per_cycle})
    for bits in WEIGHTS:  # smaller tables: a 2-entry mux per lane instead of 8
        g2 = LutSpec("int8", bits, group=2, lanes=16, acc_bits=ACC_BITS)
        rows.append({"bits": bits, "lanes": 16, "design": "lut_g2", "spec": g2, "macs": g2.macs_per_cycle})
    return rows


def _synth_all(specs: list[Spec], target: str, jobs: int) -> dict[str, Any]:
    """Reports by spec name; a design the flow cannot build maps to the error text."""
    from peforge import fpga

    out: dict[str, Any] = {}
    try:
        for s, rep in zip(specs, fpga.synthesize_many(specs, target, jobs=jobs, progress=sys.stderr.isatty())):
            out[s.name] = rep
        return out
    except Exception:  # one failed (e.g. no RTL for a family yet): go one by one
        pass
    for s in specs:
        try:
            out[s.name] = fpga.synthesize(s, target)
        except Exception as err:  # noqa: BLE001 - reported in the table
            out[s.name] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
    return out


def measure(jobs: int) -> dict[str, Any]:
    rows = designs()
    specs = [r["spec"] for r in rows if r["spec"] is not None]
    reps = {t: _synth_all(specs, t, jobs) for t in ("generic", "ice40")}
    data = []
    for r in rows:
        s = r["spec"]
        entry = {k: v for k, v in r.items() if k != "spec"}
        entry["name"] = s.name if s is not None else None
        if s is None:
            entry["error"] = "ShiftAddSpec not available in peforge.spec"
        else:
            g, i = reps["generic"].get(s.name), reps["ice40"].get(s.name)
            if isinstance(g, str) or isinstance(i, str):
                entry["error"] = g if isinstance(g, str) else i
            else:
                entry.update(gates=g.gates, nand2=round(g.nand2_eq, 1), luts=i.luts, carry=i.carry, ffs=i.ffs)
        data.append(entry)
    return {"acc_bits": ACC_BITS, "rows": data}


def _density(e: dict[str, Any], key: str) -> float | None:
    return e[key] / e["macs"] if key in e else None


def report(data: dict[str, Any]) -> str:
    rows = data["rows"]
    base = {(e["bits"], e["lanes"]): e for e in rows if e["design"] == "intmac"}
    head = (
        f"{'w':>2s} {'lanes':>5s} {'design':9s} {'weights':7s} {'MAC/cy':>6s} {'gates':>6s} {'NAND2':>8s} "
        f"{'LUT4':>6s} {'carry':>5s} {'FF':>5s} | {'gates/MACcy':>11s} {'LUT4/MACcy':>10s} | "
        f"{'denser than INT MAC: gates':>26s} {'LUT4':>6s}"
    )
    lines = [
        f"INT8 activations, {data['acc_bits']}-bit accumulators, no pipeline stages; "
        "area per MAC-per-cycle (lower is better) and density ratio vs the INT MAC (higher is better)",
        head,
        "-" * len(head),
    ]
    for e in rows:
        b = base[(e["bits"], e["lanes"])]
        label = e.get("weights") or f"int{e['bits']}"
        if "error" in e:
            lines.append(
                f"{e['bits']:2d} {e['lanes']:5d} {e['design']:9s} {label:7s} {e['macs']:6.2f}  n/a ({e['error']})"
            )
            continue
        dg, dl = _density(e, "gates"), _density(e, "luts")
        rg, rl = _density(b, "gates") / dg, _density(b, "luts") / dl  # type: ignore[operator]
        lines.append(
            f"{e['bits']:2d} {e['lanes']:5d} {e['design']:9s} {label:7s} {e['macs']:6.2f} {e['gates']:6d} "
            f"{e['nand2']:8.1f} {e['luts']:6d} {e['carry']:5d} {e['ffs']:5d} | {dg:11.1f} {dl:10.1f} | "
            f"{rg:25.2f}x {rl:5.2f}x"
        )
    lut = [e for e in rows if e["design"] == "lut" and "error" not in e]
    if lut:
        best = max(lut, key=lambda e: _density(base[(e["bits"], e["lanes"])], "luts") / _density(e, "luts"))  # type: ignore[operator]
        worst = min(lut, key=lambda e: _density(base[(e["bits"], e["lanes"])], "luts") / _density(e, "luts"))  # type: ignore[operator]
        ratio = lambda e, k: _density(base[(e["bits"], e["lanes"])], k) / _density(e, k)  # type: ignore[operator]  # noqa: E731
        lines += [
            "",
            f"LUT PE vs INT MAC, LUT4 density: best {ratio(best, 'luts'):.2f}x (w{best['bits']}, lanes "
            f"{best['lanes']}), worst {ratio(worst, 'luts'):.2f}x (w{worst['bits']}, lanes {worst['lanes']}); "
            f"gates: best {max(ratio(e, 'gates') for e in lut):.2f}x, worst {min(ratio(e, 'gates') for e in lut):.2f}x",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1, help="parallel Yosys runs (default 1)")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = ap.parse_args(argv)
    try:
        data = measure(args.jobs)
    except Exception as err:  # the fpga flow itself is missing or broken: say so
        print(f"bench/lut.py: the Yosys flow (peforge.fpga) is not usable here: {err}", file=sys.stderr)
        return None
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else report(data))
    return data


if __name__ == "__main__":
    main()
