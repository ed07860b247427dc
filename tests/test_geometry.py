"""Geometry once: the widths the generated Verilog has are the widths the cost model prices.

For the seeded spec set of every family (:mod:`verilog_hashes`), every datapath width the
family's geometry function (:mod:`peforge.geometry`) states is read back from the generated
Verilog (signal declarations) and compared with it, and the cost model's netlist notes (what
its assembly priced) are compared with the same geometry.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

import pytest
import verilog_hashes as vh

from peforge import geometry, rtl
from peforge import spec as spec_mod
from peforge.families import family_of
from peforge.models import cost
from peforge.spec import MinifloatMacSpec

_DECL = re.compile(
    r"^\s*(?:wire|reg|input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?([A-Za-z]\w*)\s*(?:=[^;]*)?;", re.M
)


@lru_cache(maxsize=None)
def verilog_widths(spec: Any) -> dict[str, int]:
    """Signal name -> width over every module, the top module's own declarations winning."""
    text = rtl.verilog(spec)
    out: dict[str, int] = {}
    for mod, body in re.findall(r"^module\s+\\?(\S+)\s*\((.*?)^endmodule", text, re.S | re.M):
        for w, name in _DECL.findall(body):
            width = int(w) + 1 if w else 1
            if mod == spec.name or name not in out:
                out[name] = width
    return out


def _mac(spec, g):
    want = {"acc": g.acc_width}
    priced = {"span": g.span, "lane_sum_width": g.lane_sum_width, "shift_max": g.shift_max, "acc_width": g.acc_width}
    if spec.is_exact or spec.lanes > 1:  # a fixed-point product word and lane sum
        want.update(pmag0=g.span, lane_sum=g.lane_sum_width)
    if not spec.is_exact and spec.lanes == 1:  # the accumulate loop: its addend and its registered sum
        want.update(v_sig=g.loop.v_width, sum_mag=g.loop.sum_width)
        priced.update(loop_v_width=g.loop.v_width, loop_sum_width=g.loop.sum_width)
    elif not spec.is_exact:  # several lanes: the lane sum's frame
        want["z"] = g.frame_width
        priced["frame_width"] = g.frame_width
    return want, priced


def _intmac(spec, g):
    want = {"prod0": g.product_bits, "acc": g.acc_width, "acc_next": g.acc_next_width}
    if g.tree_bits:
        want[f"sum{len(g.tree_bits) - 1}_0"] = g.tree_bits[-1]
    return want, {"product_bits": g.product_bits, "acc_width": g.acc_width, "total_bits": g.total_bits}


def _simd(spec, g):
    want = {f"cell_{r}_{c}": w for (r, c), w in g.cell_bits.items()}
    for lv, level in enumerate(g.levels):
        want.update({f"fuse{lv}_{r}_{c}": w for (r, c), (_, w, _) in level.items()})
    want.update(acc=g.acc_width, acc_next=g.acc_next_width)
    return want, {"acc_width": g.acc_width, "cell_bits": sum(g.cell_bits.values())}


def _shiftadd(spec, g):
    want = {"act0": g.act_bits, "acc": g.out_bits, "acc_int": g.acc_width}
    if spec.mode != "bitserial":
        want["prod0"] = g.product_bits
    if spec.lanes > 1:
        want[f"sum{(spec.lanes - 1).bit_length() - 1}_0"] = g.tree_bits
    return want, {"product_bits": g.product_bits, "acc_width": g.acc_width, "tree_bits": g.tree_bits}


def _lut(spec, g):
    want = {
        "tab0": g["entry_bits"],
        "ser_base": g["serial_bits"],
        "step": g["step_bits"],
        "acc": spec.lanes * spec.width,
    }
    return want, {
        "entry_bits": g["entry_bits"],
        "serial_bits": g["serial_bits"],
        "acc_width": spec.width,
        "table_entries": g["table_entries"],
    }


def _blockdot(spec, g):
    want = {
        "pmag0": g.span,
        "lane_sum": g.lane_sum_width,
        "mag_v": g.v_width,
        "sum_mag": g.loop.sum_width,
        "acc": g.acc_width,
    }
    if spec.beats > 1:
        want["bsum"] = g.block_sum_width
    return want, {
        "block_sum_width": g.block_sum_width,
        "v_width": g.v_width,
        "loop_sum_width": g.loop.sum_width,
        "acc_width": g.acc_width,
        "span": g.span,
    }


def _array(spec, g):
    """The array's own ports (the PE modules inside are checked through their own families) and
    what the cost model composed: the grid, the units it instantiated, latency and throughput."""
    want = {"a": g.rows * g.pe.inputs["a"][1], "b": g.cols * g.pe.inputs["b"][1], "out": g.cols * g.out_width}
    return want, {
        "rows": g.rows,
        "cols": g.cols,
        "units": g.rows * g.units_per_row,
        "unit": g.unit.spec.name,
        "latency": g.latency,
        "macs_per_cycle": g.macs_per_cycle,
    }


SPECS = vh.specs()


def test_every_family_checked():
    """Each family's ``widths`` part (tests layer of the family table) checks its specs."""
    assert all(callable(family_of(s).part("widths")) for s in SPECS)
    assert {s.family for s in SPECS} == set(spec_mod.families())


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_verilog_widths_are_the_priced_widths(spec):
    check_widths(spec)


def check_widths(spec: Any) -> None:
    """The widths ``spec``'s family's ``widths`` part names, read back from the Verilog and from
    the cost model's netlist notes, equal its geometry's."""
    fam = family_of(spec)
    want, priced = fam.part("widths")(spec, fam.geometry(spec))
    have = verilog_widths(spec)
    missing = sorted(k for k in want if k not in have)
    assert not missing, f"{spec.name}: signals {missing} not in the Verilog"
    assert {k: have[k] for k in want} == want
    notes = cost.netlist(spec).notes
    assert {k: notes.get(k) for k in priced} == priced


def test_lmul_ftz_geometry():
    """The drift the issue names: L-Mul with flush-to-zero normalises no subnormal, so its
    products start at the operands' smallest normal exponents (no Ma + Mb extension)."""
    spec = MinifloatMacSpec("e4m3fn", "e5m2", mult="lmul", subnormals=False)
    g = geometry.mac_geometry(spec)
    assert (g.lsb_exp, g.shift_max, g.span) == (-23, 43, 48)
    # independent: normal products (1 + f) 2**e with e >= emin_a + emin_b = -6 - 14, on the grid 2**-3;
    # largest: 448 * 57344 = 2**8 * 1.75 * 2**15 * 1.75 -> L-Mul (1 + .75 + .75 + 2**-3) * 2**23
    assert g.lsb_exp == (-6) + (-14) - 3 == spec.product_lsb_exp
    assert g.span == (Fraction(21, 8) * 2**23 / Fraction(2) ** g.lsb_exp).numerator.bit_length()
    assert g.shift_max == (15 - 1) + (30 - 1)  # largest exponent fields of e4m3fn and e5m2, minus 1 each
    assert cost.netlist(spec).notes["span"] == g.span
