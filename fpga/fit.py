"""Device fit: does a synthesised design fit a nextpnr device?  Checked before place and route.

nextpnr finds out late (after packing, or when placement fails) and in its own words that a
design needs more of something than the device has.  :func:`check_fit` compares Yosys's cell
counts with the device's resources (:class:`~peforge.fpga.pnr.Device`) first and, when they do
not fit, raises :class:`~peforge.errors.DeviceFitError` naming what is short, the devices of
the family that fit by the same numbers and, when DSP blocks are short, ``--no-dsp``.

What is compared is a lower bound of what nextpnr needs, so a refusal is certain:

* ECP5: LUT4s + 2 per CCU2C carry cell <= LUT4 sites (``TRELLIS_COMB``); FFs; MULT18X18D;
  DP16KD.  (PFU muxes of the wide-LUT mapping use no LUT4 site.)
* iCE40: LUT4s, SB_CARRYs and FFs each <= logic cells (one of each per cell: nextpnr packs a
  LUT, carry and FF into one cell only when their nets allow, so a design whose counts pass
  can still fail to pack when they are close); SB_MAC16; SB_RAM40_4K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from peforge.errors import DeviceFitError

__all__ = ["Shortfall", "needs", "capacity", "shortfalls", "check_fit", "no_dsp_luts"]

#: What each resource is called in messages, per family: (the design's cells, the device's sites).
_NAMES: dict[str, dict[str, tuple[str, str]]] = {
    "ecp5": {
        "LUT4": ("LUT4s (LUT4 cells + 2 per CCU2C carry)", "LUT4s"),
        "FF": ("flip-flops", "FFs"),
        "DSP": ("MULT18X18D DSP blocks", "MULT18X18D"),
        "BRAM": ("DP16KD block RAMs", "DP16KD"),
    },
    "ice40": {
        "LUT4": ("LUT4s", "logic cells"),
        "carry": ("SB_CARRY cells", "logic cells"),
        "FF": ("flip-flops", "logic cells"),
        "DSP": ("SB_MAC16 DSP blocks", "SB_MAC16"),
        "BRAM": ("SB_RAM40_4K block RAMs", "SB_RAM40_4K"),
    },
}


class _Device(Protocol):
    name: str
    family: str
    part: str
    luts: int
    ffs: int
    dsps: int
    brams: int


@dataclass(frozen=True)
class Shortfall:
    """One resource a design needs more of than a device has."""

    resource: str
    need: int
    have: int


def needs(family: str, counts: Mapping[str, Any]) -> dict[str, int]:
    """What a design with Yosys category ``counts`` (``luts``, ``carry``, ``ffs``, ``dsps``,
    ``brams``: a :class:`~peforge.fpga.synth.SynthReport`'s or :func:`~peforge.fpga.synth.parse_stat`'s)
    needs of a ``family`` device, per resource (see the module docstring)."""
    c = {k: int(counts.get(k) or 0) for k in ("luts", "carry", "ffs", "dsps", "brams")}
    if family == "ecp5":
        return {"LUT4": c["luts"] + 2 * c["carry"], "FF": c["ffs"], "DSP": c["dsps"], "BRAM": c["brams"]}
    if family == "ice40":
        return {"LUT4": c["luts"], "carry": c["carry"], "FF": c["ffs"], "DSP": c["dsps"], "BRAM": c["brams"]}
    raise ValueError(f"no device resources for family {family!r}: allowed ecp5 or ice40")


def capacity(dev: _Device) -> dict[str, int]:
    """The resources of ``dev`` under the names :func:`needs` uses."""
    out = {"LUT4": dev.luts, "FF": dev.ffs, "DSP": dev.dsps, "BRAM": dev.brams}
    if dev.family == "ice40":
        out["carry"] = dev.luts  # one carry per logic cell
    return out


def shortfalls(dev: _Device, counts: Mapping[str, Any]) -> list[Shortfall]:
    """The resources ``counts`` needs more of than ``dev`` has (empty: it fits)."""
    have = capacity(dev)
    return [Shortfall(r, n, have[r]) for r, n in needs(dev.family, counts).items() if n > have[r]]


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _short_text(dev: _Device, short: list[Shortfall]) -> str:
    names = _NAMES[dev.family]
    return "; ".join(
        f"needs {_n(s.need)} {names[s.resource][0]}, the {dev.name} has {_n(s.have)}"
        + ("" if names[s.resource][1] in names[s.resource][0] else f" {names[s.resource][1]}")
        for s in short
    )


def no_dsp_luts(spec: Any, family: str) -> float | None:
    """The cost model's estimate of the LUT4 sites (:func:`needs`) ``spec`` takes on ``family``
    with its multipliers built from LUTs instead of DSP blocks; None when it cannot price it.

    ECP5's fit has no LUT multipliers to learn from (Yosys put each one in a MULT18X18D), so the
    multipliers are priced by the iCE40 fit (its LUT4s + carries with the multipliers in the
    fabric less the same without them; one LUT4 site per carry bit on both) and added to ECP5's
    estimate with DSPs.  Checked once: MXFP8 block-dot, 32 lanes, 2 stages: 8,922 estimated,
    9,032 by Yosys (8,176 LUT4 + 428 CCU2C).
    """
    try:
        from peforge.models.cost import calibration, estimate
        from peforge.models.cost.assembly import netlist
        from peforge.models.cost.model import group_scale, scale_group, scaled_features

        if family == "ice40":  # the iCE40 fit maps no SB_MAC16: already multipliers in LUTs
            ice = estimate(spec, "ice40")
            return float(ice.luts or 0.0)
        net, fit = netlist(spec), calibration.load()["targets"]["ice40"]

        def priced(metric: str, dsp_rules: str) -> float:
            scale = group_scale(fit.get("family_scale", {}).get(metric, {}), scale_group(spec))
            return sum(c * f for c, f in zip(fit[metric], scaled_features(net, dsp_rules, scale)))

        moved = sum(priced(m, "ice40") - priced(m, family) for m in ("luts", "carry"))
        with_dsp = estimate(spec, family)
        return float((with_dsp.luts or 0.0) + 2 * (with_dsp.carry or 0.0) + max(moved, 0.0))
    except (ImportError, ValueError, RuntimeError, KeyError):
        return None  # a spec or calibration the model cannot price: the message goes without it


def _room(luts: float, dev: Any, same: list[Any]) -> str:
    """Where ``luts`` LUT4 sites fit: ``dev``, else the smallest device of ``same`` that has them."""
    if luts <= dev.luts:
        return f"within the {dev.name}'s {_n(dev.luts)}"
    roomy = [d for d in same if d.luts >= luts]
    where = f"within the {roomy[0].name}'s {_n(roomy[0].luts)}" if roomy else f"more than any {dev.family} device has"
    return f"more than the {dev.name}'s {_n(dev.luts)}, {where}"


def check_fit(
    dev: Any,
    counts: Mapping[str, Any],
    module: str,
    *,
    devices: Mapping[str, Any],
    dsp: bool,
    spec: Any = None,
    what: str = "",
) -> None:
    """Raise :class:`~peforge.errors.DeviceFitError` when ``counts`` does not fit ``dev``.

    The one-line message names each resource short (need and capacity), the ``devices`` of the
    same family that fit by the same numbers, and, when DSP blocks are short and ``dsp`` was on,
    ``--no-dsp`` with the cost model's LUT4 estimate for ``spec`` (when given).  ``what`` says
    what was counted (e.g. "with its I/O wrapper").
    """
    short = shortfalls(dev, counts)
    if not short:
        return
    family, names = dev.family, _NAMES[dev.family]

    def caps(d: Any) -> str:
        return ", ".join(f"{_n(capacity(d)[s.resource])} {names[s.resource][1]}" for s in short)

    head = (
        f"{module}{' ' + what if what else ''} does not fit {family} device {dev.name} ({dev.part}): "
        f"{_short_text(dev, short)}"
    )
    same = sorted((d for d in devices.values() if d.family == family), key=lambda d: (d.luts, d.dsps))
    bigger = [d for d in same if d.name != dev.name and not shortfalls(d, counts)]
    if bigger:
        tail = (
            "it fits "
            + ", ".join(f"{d.name} ({d.part}: {caps(d)})" for d in bigger)
            + f": use --device {bigger[0].name}"
        )
    else:
        largest = same[-1]
        tail = (
            f"no {family} device peforge places on fits it (the largest, {largest.name} ({largest.part}), "
            f"has {caps(largest)})"
        )
    if dsp and any(s.resource == "DSP" for s in short):
        tail += ("; or" if bigger else "; try") + " --no-dsp (dsp=False) to build the multipliers from LUT4s"
        est = no_dsp_luts(spec, family) if spec is not None else None
        if est is not None:
            tail += f" (about {_n(est)} LUT4s by the cost model, {_room(est, dev, same)})"
    elif not bigger:
        tail += "; use fewer lanes or a smaller design"
    raise DeviceFitError(f"{head}; {tail}")
