"""Synthesis side of the cost-model calibration: measure spec sets with Yosys / nextpnr.

:func:`measure` synthesises every (spec, target) pair through :func:`peforge.fpga.synthesize`
(its result cache makes repeats free) and appends one JSON line per result to a measurement
store (``build/cost/measurements.jsonl``), so a fit can be redone from it without Yosys
(and without the FPGA cache, which re-synthesises a design whose Verilog changed).
:func:`measure_fmax` does the same for nextpnr Fmax (iCE40 hx8k and ECP5-25k, registered wrapper).
:func:`calibrate` runs both on :mod:`peforge.models.cost.specsets` and then the pure-NumPy fit
(:func:`peforge.models.cost.fit.fit`), writing the versioned calibration file.
"""

from __future__ import annotations

import functools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from peforge.spec import Spec

from .cache import default_cache_dir

__all__ = [
    "FPGA_TARGETS",
    "ANCHORS",
    "default_store",
    "measure",
    "measure_fmax",
    "measure_anchors",
    "load_measurements",
    "calibrate",
    "refit",
]

#: Synthesis targets the cost model is calibrated on ("generic" gives the NAND2 gate count).
FPGA_TARGETS = ("generic", "ice40", "ecp5", "xilinx")


def default_store() -> Path:
    """``<project>/build/cost/measurements.jsonl`` next to the FPGA cache's build directory."""
    return default_cache_dir().parent / "cost" / "measurements.jsonl"


def _error_row(spec: Spec, target: str, err: Exception) -> dict[str, Any]:
    """The row of a spec the flow failed on: kept (with the error) so the table shows it."""
    return {"name": spec.name, "target": target, "spec": spec.to_dict(), "error": f"{type(err).__name__}: {err}"[:400]}


def _row(spec: Spec, target: str) -> dict[str, Any]:
    from .synth import synthesize

    t0 = time.perf_counter()
    try:
        rep = synthesize(spec, target)
    except Exception as err:  # a spec the RTL cannot build yet (e.g. a family still being written)
        return _error_row(spec, target, err)
    return {
        "name": spec.name,
        "target": target,
        "spec": spec.to_dict(),
        "luts": rep.luts,
        "carry": rep.carry,
        "ffs": rep.ffs,
        "dsps": rep.dsps,
        "muxes": rep.muxes,
        "lutrams": rep.lutrams,
        "gates": rep.gates,
        "nand2_eq": rep.nand2_eq,
        "transistors": rep.transistors,
        "cells_by_type": rep.cells_by_type,
        "yosys_version": rep.yosys_version,
        "design_key": rep.design_key,
        "options": rep.options,
        "seconds": rep.seconds if not rep.cached else round(time.perf_counter() - t0, 3),
        "cached": rep.cached,
    }


def _fmax_row(spec: Spec, device: str, dsp: bool = False) -> dict[str, Any]:
    from .pnr import place_and_route
    from .synth import synthesize

    target = "ice40" if device in ("hx8k", "up5k") else "ecp5"
    name = f"pnr-{device}-dsp" if dsp else f"pnr-{device}"
    try:
        rep = synthesize(spec, target, dsp=dsp)
        pnr = place_and_route(rep, device, wrapper="registered")
    except Exception as err:
        return _error_row(spec, name, err)
    return {
        "name": spec.name,
        "target": name,
        **({"dsp_kind": target} if dsp else {}),
        "spec": spec.to_dict(),
        "fmax_mhz": pnr.fmax_mhz,
        "critical_path_ns": pnr.critical_path_ns,
        "nextpnr_version": pnr.nextpnr_version,
        "yosys_version": pnr.yosys_version,
        "design_key": pnr.design_key,
        "seconds": pnr.seconds,
    }


#: Gate-count anchors: the integer operations of the 45 nm figures, as plain Verilog
#: (N-bit add with an N-bit sum; N x N multiply with the full 2N-bit product).
ANCHORS = {
    "add8": "module add8(input [7:0] a, input [7:0] b, output [7:0] y); assign y = a + b; endmodule\n",
    "add32": "module add32(input [31:0] a, input [31:0] b, output [31:0] y); assign y = a + b; endmodule\n",
    "mul8": "module mul8(input [7:0] a, input [7:0] b, output [15:0] y); assign y = a * b; endmodule\n",
    "mul32": "module mul32(input [31:0] a, input [31:0] b, output [63:0] y); assign y = a * b; endmodule\n",
}


def measure_anchors(store: Path | str | None = None, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Synthesise :data:`ANCHORS` for the generic target; rows named ``anchor:<name>``."""
    from .synth import synthesize

    path = Path(store) if store is not None else default_store()
    workdir = path.parent / "anchors"
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, text in ANCHORS.items():
        vfile = workdir / f"{name}.v"
        vfile.write_text(text)
        rep = synthesize((vfile, {"module": name}), "generic")
        row = {
            "name": f"anchor:{name}",
            "target": "generic",
            "spec": None,
            "nand2_eq": rep.nand2_eq,
            "gates": rep.gates,
            "ffs": rep.ffs,
            "yosys_version": rep.yosys_version,
        }
        _append(path, row)
        rows.append(row)
        log(f"anchor {name}: {rep.nand2_eq} NAND2 eq.")
    return rows


def _append(store: Path, row: dict[str, Any]) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store, "a") as f:  # one short line per write: appends from two workers do not interleave
        f.write(json.dumps(row, sort_keys=True) + "\n")


def _run(
    work: Sequence[tuple[Spec, str]],
    fn: Callable[[Spec, str], dict[str, Any]],
    store: Path,
    jobs: int,
    skip: set[tuple[str, str]],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    todo = [(s, t) for s, t in work if (s.name, t) not in skip]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        _append(store, row)
        what = row.get("error") or ", ".join(
            f"{k}={row[k]}" for k in ("luts", "ffs", "nand2_eq", "fmax_mhz") if row.get(k) is not None
        )
        log(f"[{len(rows)}/{len(todo)} {time.perf_counter() - t0:6.0f}s] {row['target']:8s} {row['name']}: {what}")

    if jobs <= 1 or len(todo) <= 1:
        for s, t in todo:
            done(fn(s, t))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = [pool.submit(fn, s, t) for s, t in todo]
            for fut in as_completed(futs):
                done(fut.result())
    return rows


def _current_flow(row: dict[str, Any]) -> bool:
    """Whether a synthesis row was made with today's default options for its target (rows from
    before options were stored had the defaults of their time: ``dsp`` only)."""
    from .synth import TARGETS, default_options

    target = row.get("target", "")
    if target not in TARGETS:
        return True  # anchors, place and route
    current = default_options(target)
    return row.get("options", {"dsp": current["dsp"]}) == current


def load_measurements(store: Path | str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest successful row per (spec name, target) of a measurement store, made with the
    current default synthesis options (an ECP5 row of the old wide-LUT flow is left out)."""
    path = Path(store) if store is not None else default_store()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by an interrupted write
        if "error" not in row and _current_flow(row):
            out[(row["name"], row["target"])] = row
    return out


def measure(
    specs: Iterable[Spec],
    targets: Sequence[str] = ("generic", "ice40", "ecp5"),
    *,
    jobs: int = 1,
    store: Path | str | None = None,
    reuse: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Synthesise every spec for every target; append the counts to ``store``.

    ``reuse`` skips pairs the store already holds (their RTL may since have changed: pass
    False to re-synthesise, which is free for pairs still in the FPGA result cache).
    """
    path = Path(store) if store is not None else default_store()
    for t in targets:
        if t not in FPGA_TARGETS:
            raise ValueError(f"target={t!r}: allowed {FPGA_TARGETS}")
    skip = set(load_measurements(path)) if reuse else set()
    work = [(s, t) for s in specs for t in targets]
    return _run(work, _row, path, jobs, skip, log)


def measure_fmax(
    specs: Iterable[Spec],
    device: str = "hx8k",
    *,
    dsp: bool = False,
    jobs: int = 1,
    store: Path | str | None = None,
    reuse: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Place and route every spec on ``device`` (registered wrapper, one seed); append Fmax rows.
    ``dsp``: multipliers in DSP blocks (ECP5: packed with their registers, as ``--pnr`` does),
    stored as target ``pnr-<device>-dsp``."""
    path = Path(store) if store is not None else default_store()
    stored = set(load_measurements(path)) if reuse else set()
    target = f"pnr-{device}-dsp" if dsp else f"pnr-{device}"
    return _run(
        [(s, device) for s in specs],
        functools.partial(_fmax_row, dsp=dsp),
        path,
        jobs,
        {(n, device) for n, t in stored if t == target},
        log,
    )


def calibrate(
    *,
    targets: Sequence[str] = FPGA_TARGETS,
    xilinx_limit: int | None = None,
    fmax: bool = True,
    jobs: int = 1,
    store: Path | str | None = None,
    out: Path | str | None = None,
    reuse: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Measure the training and held-out sets, fit, and write the calibration file.

    ``xilinx_limit`` caps how many specs of each set are synthesised for ``xilinx`` (its
    Yosys flow is the slowest); None (the default) takes them all.  Returns the path written.
    """
    from peforge.models.cost import fit, specsets

    path = Path(store) if store is not None else default_store()
    sets = {"training": specsets.training(), "heldout": specsets.heldout()}
    for name, specs in sets.items():
        fast = [t for t in targets if t != "xilinx"]
        log(f"{name}: {len(specs)} specs x {fast}")
        measure(specs, fast, jobs=jobs, store=path, reuse=reuse, log=log)
        if "xilinx" in targets:
            xs = specs if xilinx_limit is None else specs[:: max(1, len(specs) // xilinx_limit)][:xilinx_limit]
            log(f"{name}: {len(xs)} specs x ['xilinx']")
            measure(xs, ("xilinx",), jobs=jobs, store=path, reuse=reuse, log=log)
    measure_anchors(path, log=log)
    if fmax:
        for device in ("hx8k", "25k"):
            measure_fmax(specsets.fmax_set(), device, jobs=jobs, store=path, reuse=reuse, log=log)
        measure_fmax(specsets.fmax_dsp_set(), "25k", dsp=True, jobs=jobs, store=path, reuse=reuse, log=log)
    rows = load_measurements(path)
    return fit.write_calibration(rows, sets, out=out, log=log)


def refit(
    *, store: Path | str | None = None, out: Path | str | None = None, log: Callable[[str], None] = print
) -> Path:
    """Fit again from the stored measurements only (no synthesis); returns the path written."""
    from peforge.models.cost import fit, specsets

    rows = load_measurements(store)
    if not rows:
        raise RuntimeError(f"no measurements in {store or default_store()}: run `peforge calibrate` first")
    return fit.write_calibration(
        rows, {"training": specsets.training(), "heldout": specsets.heldout()}, out=out, log=log
    )


def _main() -> None:  # pragma: no cover - used as ``python -m peforge.fpga.calibrate`` by hand
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS", "1")))
    p.add_argument("--targets", default=",".join(FPGA_TARGETS))
    p.add_argument("--no-fmax", action="store_true")
    args = p.parse_args()
    calibrate(targets=tuple(args.targets.split(",")), fmax=not args.no_fmax, jobs=args.jobs)


if __name__ == "__main__":  # pragma: no cover
    _main()
