"""ECP5: place a PE array's multipliers as a grid on the DSP rows before nextpnr.

nextpnr-ecp5's analytic placer packs an array's fabric logic into a compact 2-D block, then
legalises the ``MULT18X18D`` cells onto the die's DSP rows wherever sites are left: with most
sites in use (an 8 x 8 INT8 array takes 64 of the 45k's 72) a PE's multiplier lands tens of
tiles from its accumulator, and that route, not the PE, sets the clock (measured: 89.8 MHz
against the PE's 143 MHz, critical path a DSP at x 78 feeding a carry chain at x 15).  An
engineer floorplans such an array; :func:`floorplan_dsps` does it on the netlist Yosys writes
(as :mod:`.dsp_regs` does its register packing): every PE's multipliers get a ``BEL`` on the
DSP rows, and the placer pulls each PE's fabric logic next to them.

The grid, per PE row band (as many DSP rows as the array needs, centred on the die):

* the PE rows of a band sit side by side within each column group, column after column, so a
  ``b`` hop (down a column) moves one site and an ``a`` hop (along a row) one column group;
* bands alternate their row order, so the last row of one band sits above the first row of
  the next (the hop between them is the vertical distance between DSP rows);
* a PE with several multipliers keeps them on adjacent sites.

Only cells of the array's grid units are placed (names ``pe_<row>_<col>``, as
``rtl/array.py`` names its PEs); an array whose multipliers outnumber the sites, or a design
that is no array, is left to the placer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from peforge.spec import Spec

__all__ = ["FLOORPLAN_VERSION", "DSP_SITES", "applies", "dsp_sites", "plan", "floorplan_dsps", "Floorplan"]

#: Version of the placement rule (part of the place-and-route cache key of the arrays it places).
FLOORPLAN_VERSION = 1

#: ECP5 ``MULT18X18D`` sites per device: the DSP rows (tile y) and the x of each group of four
#: sites (``MULT18_0/1/4/5`` at x, x + 1, x + 4, x + 5).  Read from nextpnr 0.11 placements of
#: designs that fill every site (28 / 72 / 156 multipliers).
DSP_SITES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "25k": ((13,), (4, 13, 22, 33, 42, 51, 60)),
    "45k": ((22, 46), (4, 13, 22, 31, 42, 51, 60, 69, 78)),
    "85k": ((10, 34, 58), (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)),
}
_GROUP = ((0, 0), (1, 1), (4, 4), (5, 5))  # (x offset, MULT18 index) of a group's four sites
_DSP = "MULT18X18D"
_PE = re.compile(r"(?<![A-Za-z0-9])pe_(\d+)_(\d+)(?=[._])")


@dataclass
class Floorplan:
    """What :func:`floorplan_dsps` did: multipliers placed, PE rows per DSP row band, bands."""

    placed: int = 0
    rows_per_band: int = 0
    bands: int = 0
    note: str = ""

    def summary(self) -> str:
        if not self.placed:
            return f"DSP floorplan: none ({self.note})"
        return f"DSP floorplan: {self.placed} MULT18X18D on {self.bands} DSP row(s), {self.rows_per_band} PE rows each"


def applies(spec: Spec | None) -> bool:
    """Whether ``spec`` is a PE array (the designs :func:`floorplan_dsps` places)."""
    return spec is not None and spec.family == "array"


def dsp_sites(device: str) -> list[list[str]]:
    """The ``MULT18X18D`` BEL names of ``device``, one list per DSP row (top first), left to right."""
    if device not in DSP_SITES:
        raise ValueError(f"no DSP site table for ECP5 device {device!r}: known {sorted(DSP_SITES)}")
    ys, groups = DSP_SITES[device]
    return [[f"X{g + dx}/Y{y}/MULT18_{z}" for g in groups for dx, z in _GROUP] for y in ys]


def plan(rows: int, cols: int, per_pe: int, sites: list[list[str]]) -> tuple[dict[tuple[int, int, int], str], int, int]:
    """BEL of multiplier ``k`` of PE ``(i, j)`` (see the module docstring), PE rows per band and
    bands used; an empty plan when the multipliers do not fit the sites as a grid."""
    width = min(len(r) for r in sites)
    per_row = cols * per_pe  # sites one PE row takes
    bands = next((b for b in range(1, len(sites) + 1) if -(-rows // b) * per_row <= width), 0)
    if not bands:
        return {}, 0, 0
    depth = -(-rows // bands)  # PE rows per band
    first = (len(sites) - bands) // 2
    out: dict[tuple[int, int, int], str] = {}
    for i in range(rows):
        band, r = divmod(i, depth)
        height = min(depth, rows - band * depth)
        if band % 2:  # serpentine: a band's first row under the previous band's last
            r = height - 1 - r
        lo = (width - per_row * height) // 2
        for j in range(cols):
            for k in range(per_pe):
                out[(i, j, k)] = sites[first + band][lo + (j * height + r) * per_pe + k]
    return out, depth, bands


def floorplan_dsps(netlist: dict[str, Any], top: str, spec: Spec | None, device: str) -> Floorplan:
    """Give every multiplier of PE array ``spec``'s grid a ``BEL`` (module ``top`` of a Yosys
    JSON ``netlist``, edited in place; see the module docstring).  Anything else: unchanged."""
    if not applies(spec):
        return Floorplan(note="not a PE array")
    if device not in DSP_SITES:
        return Floorplan(note=f"no DSP site table for {device}")
    cells: dict[str, dict[str, Any]] = netlist["modules"][top]["cells"]
    per: dict[tuple[int, int], list[str]] = defaultdict(list)
    for name, cell in cells.items():
        if cell["type"] == _DSP:
            m = _PE.search(name)
            if m is not None:
                per[(int(m.group(1)), int(m.group(2)))].append(name)
    if not per:
        return Floorplan(note="no multiplier in the grid")
    rows = 1 + max(i for i, _ in per)
    cols = 1 + max(j for _, j in per)
    k = max(len(v) for v in per.values())
    bels, depth, bands = plan(rows, cols, k, dsp_sites(device))
    if not bels:
        return Floorplan(note=f"{rows * cols * k} multipliers do not fit {device}'s DSP rows as a grid")
    placed = 0
    for (i, j), names in per.items():
        for lane, name in enumerate(sorted(names)):
            cells[name].setdefault("attributes", {})["BEL"] = bels[(i, j, lane)]
            placed += 1
    return Floorplan(placed, depth, bands)
