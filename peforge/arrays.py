"""PE arrays (family ``array``): tiles and systolic arrays of any PE spec, described once.

An :class:`ArraySpec` names a PE spec, the grid (``rows`` x ``cols``), the dataflow and how
operands move; :func:`array_geometry` derives everything the other parts read from it (pure
Python, no Amaranth): the unit each grid position instantiates, the shared per-row /
per-column units, the PE's ports and their roles, every timing offset, the array's latency
and its throughput.  The RTL generator (``rtl/array.py``), the golden model
(``models/golden/array.py``), the cost model (``models/cost/array.py``) and the testbench
(``sim/array.py``) all read this geometry, never each other.

Dataflows
---------
``output-stationary`` (OS)
    PE ``(i, j)`` keeps output ``(i, j)`` of an ``R x C`` output tile in its own accumulator:
    row ``i`` of ``x`` enters the left edge, column ``j`` of ``w`` the top edge, one PE step
    (``k`` chunk) per input; a tile is the steps from ``in_first`` to ``in_last``.  Every output
    is one accumulation chain of the PE, steps in ``k`` order, so the array computes exactly the
    PE's chain (same rounding order, float accumulators included).
``weight-stationary`` (WS)
    PE ``(i, j)`` holds weight word ``w[i, j]`` (the ``k`` chunk ``i`` of output column ``j``);
    activation rows stream through, each PE forms its step sum (``in_first`` tied high) and the
    partial sums add down each column in two's complement.  Exact only for integer (or Kulisch)
    accumulators that wrap; float and saturating accumulators are refused.

Operand movement
----------------
``b`` (weights) always moves down the columns one PE per cycle (a register per hop).  ``a``
(activations) moves along the rows either the same way (``a_path="systolic"``: row ``i`` is
skewed by ``i`` cycles at the left edge, column ``j`` by ``j`` at the top) or is broadcast to a
whole row in one cycle (``a_path="broadcast"``: no column skew).  A PE sees its operands
``offset(i, j) = i + j`` (systolic) or ``i`` (broadcast) cycles after the array's input register.

Shared units (``share=True``, where the family has them)
--------------------------------------------------------
``lut``
    One table unit per row: a row is one LUT PE with ``cols * lanes`` lanes (LUT Tensor Core's
    table precompute shared by every column), so ``a`` is broadcast along the row.
``shiftadd`` with ``group`` (OS)
    The PEs are the integer shift-add PEs (no dequantiser); one group dequantiser per column
    serves the column's rows one per cycle (MixPE: dequantise after the group sum) and holds
    their FP32 accumulators.
``blockdot``
    Scales ride with their blocks (``scale_a`` along the rows, ``scale_b`` down the columns),
    one scale word per hop, consumed once per block by each PE.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, ClassVar, Optional, Union

from .formats import FloatFormat, IntFormat
from .geometry import mac_geometry
from .params import Converted, param
from .spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec, Spec, from_dict

__all__ = [
    "ArraySpec",
    "DequantShare",
    "ArrayGeometry",
    "PeView",
    "DATAFLOWS",
    "A_PATHS",
    "ROW",
    "COL",
    "CTL",
    "pe_view",
    "array_geometry",
    "MAX_DIM",
    "CLEAR_GROUP",
    "drain_levels",
]

DATAFLOWS = ("output-stationary", "weight-stationary")
A_PATHS = ("systolic", "broadcast")
_DF_TAG = {"output-stationary": "os", "weight-stationary": "ws"}
#: Largest rows / cols.
MAX_DIM = 64
#: Roles of a PE input port in an array: it moves along the rows with ``a`` (ROW), down the
#: columns with ``b`` (COL), or is one control word for the whole array that travels with
#: ``in_valid`` (CTL).
ROW, COL, CTL = "row", "col", "ctl"
#: Accumulator bits per copy of a PE's clear register in an output-stationary grid (PeView):
#: four bits are two carry cells and their gates, a slice pair on ECP5.
CLEAR_GROUP = 4


@dataclass(frozen=True)
class PeView:
    """What an array needs to know about one PE spec (widths in bits).

    Members
    -------
    spec : Spec
        The PE.
    inputs : dict
        Input port -> ``(role, width)`` for every input but ``in_valid`` / ``in_first``.
    acc_width : int
        Width of the ``acc`` port.
    acc_lanes : int
        Independent results packed in ``acc`` (LUT lanes; 1 otherwise).
    flags_width : int
        Width of ``acc_flags`` (0: no such port).
    integer : bool
        ``acc`` is two's complement and wraps (or never overflows): partial sums may be added
        in any order (weight-stationary allowed).
    latency : int
        Cycles from an input (a step's last beat) to the output that includes it.
    interval : int
        Cycles between two valid inputs (LUT planes, bit-serial weight bits; else 1).
    beats : int
        Valid inputs per step (block-dot ``block // lanes``; else 1).
    macs_per_cycle : float
        Multiply-accumulates per cycle at full rate (mode 0 of a SIMD PE).
    ignored_outputs : tuple of str
        Outputs an array leaves unconnected (handshakes it does not need: bit-serial ``in_ready``).
    k_per_step : int
        Elements of the reduction (``k``) one step consumes per output (lanes, a LUT group, a
        block; mode 0 of a SIMD PE).
    ctl_delays : (int, int)
        Registers inside the PE that are plain delays (reset to 0, no enable) of ``in_valid`` and
        of ``in_first``: where every PE sees the same signal (a weight-stationary PE's ``first``,
        tied high) synthesis keeps one of each for the whole grid.
    clear_group : int
        Output-stationary grid: the PE's accumulator clear (its ``first`` delay line) is built
        as one kept copy per ``clear_group`` accumulator bits (``rtl/array.py``; a flip-flop
        feeding the whole accumulator's clear sits tiles away from most of it among many PEs);
        0: the PE as built alone.
    """

    spec: Spec
    inputs: dict[str, tuple[str, int]]
    acc_width: int
    acc_lanes: int
    flags_width: int
    integer: bool
    latency: int
    interval: int = 1
    beats: int = 1
    macs_per_cycle: float = 1.0
    ignored_outputs: tuple[str, ...] = ()
    k_per_step: int = 1
    ctl_delays: tuple[int, int] = (0, 0)
    clear_group: int = 0

    def width(self, role: str) -> int:
        """Total input bits of one role."""
        return sum(w for r, w in self.inputs.values() if r == role)

    def ports(self, role: str) -> list[tuple[str, int]]:
        """``(name, width)`` of the inputs of one role, in declaration order."""
        return [(n, w) for n, (r, w) in self.inputs.items() if r == role]

    @property
    def lane_width(self) -> int:
        return self.acc_width // self.acc_lanes

    @property
    def clear_copies(self) -> int:
        """``first`` delay lines of one PE in an output-stationary grid (see ``clear_group``)."""
        return -(-self.acc_width // self.clear_group) if self.clear_group else 1


def _mac_view(s: MinifloatMacSpec) -> PeView:
    flags = s.is_exact and any(f.has_nan or f.has_inf for f in (s.a, s.b))  # rtl.mac.has_flags
    return PeView(
        s,
        {"a": (ROW, s.lanes * s.a.bits), "b": (COL, s.lanes * s.b.bits)},
        mac_geometry(s).acc_width,
        1,
        3 if flags else 0,
        s.is_exact,
        s.latency,
        macs_per_cycle=s.lanes,
        k_per_step=s.lanes,
        ctl_delays=(s.latency, 0),  # a valid per cut and the accumulator's; first is clock-enabled
    )


def _intmac_view(s: IntMacSpec) -> PeView:
    return PeView(
        s,
        {"a": (ROW, s.lanes * s.a.bits), "b": (COL, s.lanes * s.b.bits)},
        s.width,
        1,
        0,
        s.overflow != "saturate" or s.acc_bits is None,
        s.latency,
        macs_per_cycle=s.lanes,
        k_per_step=s.lanes,
        ctl_delays=(s.latency, s.stages),
        clear_group=CLEAR_GROUP if s.stages >= 1 else 0,
    )


def _simd_view(s: SimdMacSpec) -> PeView:
    return PeView(
        s,
        {
            "mode": (CTL, s.mode_bits),
            "a_signed": (CTL, 1),
            "b_signed": (CTL, 1),
            "a": (ROW, s.a_width),
            "b": (COL, s.b_width),
        },
        s.width,
        1,
        0,
        True,
        s.latency,
        macs_per_cycle=s.mode_lanes[0],
        k_per_step=s.mode_lanes[0],
        ctl_delays=(s.latency, s.stages),
    )


def _lut_view(s: LutSpec) -> PeView:
    return PeView(
        s,
        {"a": (ROW, s.group * s.act.bits), "b": (COL, s.lanes * s.group * s.weight_code_bits)},
        s.lanes * s.width,
        s.lanes,
        0,
        True,
        s.latency,
        interval=s.initiation_interval,
        macs_per_cycle=s.macs_per_cycle,
        k_per_step=s.group,
        ctl_delays=(s.latency, s.latency - 1),  # the plane sequencer and first's delay line
    )


def _shiftadd_view(s: ShiftAddSpec) -> PeView:
    ins = {"a": (ROW, s.lanes * s.act.bits), "b": (COL, s.lanes * s.weight.bits)}
    if s.group is not None and s.scale is not None:
        ins["scale"] = (COL, s.scale.bits)
    exact = s.group is None and (s.overflow != "saturate" or s.acc_bits is None)
    return PeView(
        s,
        ins,
        s.out_bits,
        1,
        0,
        exact,
        s.latency,
        interval=s.cycles_per_input,
        macs_per_cycle=s.lanes / s.cycles_per_input,
        ignored_outputs=("in_ready",) if s.mode == "bitserial" else (),
        k_per_step=s.lanes,
        ctl_delays=(0, 0) if s.mode == "bitserial" else (s.latency, s.stages),
    )


def _blockdot_view(s: BlockDotSpec) -> PeView:
    lanes = s.lanes or s.block
    return PeView(
        s,
        {
            "a": (ROW, lanes * s.element_a.bits),
            "b": (COL, lanes * s.element_b.bits),
            "scale_a": (ROW, s.scale_a.bits),
            "scale_b": (COL, s.scale_b.bits),
        },
        s.acc.bits,
        1,
        0,
        False,
        s.latency,
        beats=s.beats,
        macs_per_cycle=lanes,
        k_per_step=s.block,
        # a valid per cut; the accumulator's registers delay valid & last (a plain delay of valid
        # only with one beat per block); first is clock-enabled
        ctl_delays=(s.latency if s.beats == 1 else s.stages, 0),
    )


#: How each PE family's ports sit in an array (checked against every family's RTL signature by
#: ``tests/test_array.py``).
_VIEWS: dict[str, Callable[[Any], PeView]] = {
    "mac": _mac_view,
    "intmac": _intmac_view,
    "simd": _simd_view,
    "lut": _lut_view,
    "shiftadd": _shiftadd_view,
    "blockdot": _blockdot_view,
}


def pe_view(pe: Spec) -> PeView:
    """The :class:`PeView` of a PE spec (ValueError for a family arrays do not know)."""
    view = _VIEWS.get(getattr(pe, "family", ""))
    if view is None:
        raise ValueError(f"pe={pe!r}: arrays are built from PE specs of the families {sorted(_VIEWS)}")
    return view(pe)


def _as_pe(value: Any) -> Spec:
    if isinstance(value, ArraySpec):
        raise ValueError("pe= is an array spec: an array is built from a PE spec, not from another array")
    if isinstance(value, Spec):
        spec = value
    elif isinstance(value, dict):
        try:
            spec = from_dict(value)
        except TypeError as err:
            raise ValueError(f"pe={value!r}: {err}") from None
    elif isinstance(value, str):
        try:
            return _as_pe(json.loads(value))
        except json.JSONDecodeError:
            raise ValueError(f"pe={value!r}: expected a PE spec, its to_dict() or its JSON") from None
    else:
        raise ValueError(
            f"pe={value!r}: expected a PE spec (e.g. IntMacSpec('int8', 'int8')), its to_dict() or its JSON"
        )
    if isinstance(spec, ArraySpec):
        raise ValueError("pe= is an array spec: an array is built from a PE spec, not from another array")
    pe_view(spec)
    return spec


@dataclass(frozen=True)
class DequantShare:
    """A grouped shift-add PE whose group dequantiser a column of an array shares: the PE, its
    group size and its group scale format."""

    pe: ShiftAddSpec
    group: int
    scale: FloatFormat | IntFormat


def _default_a_path(spec: Any) -> str:
    """``broadcast`` where a row shares one unit (LUT table), else ``systolic``."""
    return "broadcast" if spec.share and spec.pe.family == "lut" else "systolic"


@dataclass(frozen=True)
class ArraySpec(Spec):
    """A rows x cols array of one PE spec (family ``array``); see the module docstring.

    Parameters
    ----------
    pe : Spec, dict or JSON str
        The PE (any family but ``array``).
    rows, cols : int
        Grid size, 1..64 each.
    dataflow : str
        ``output-stationary`` or ``weight-stationary``.
    a_path : str or None
        ``systolic`` (``a`` hops one PE per cycle along the row) or ``broadcast`` (a whole row
        sees ``a`` in the same cycle); None: ``broadcast`` where the PE family shares a row unit
        (LUT table), else ``systolic``.
    share : bool
        Build the family's shared units (LUT table per row, shift-add group dequantiser per
        column) instead of one per PE.
    pipeline : int
        Extra register stages (0..4) on the array's own drain path (each adds one cycle of
        latency): the hook for Fmax-driven pipelining of the array around its PEs.
    """

    pe: Converted[Spec, Union[Spec, dict[str, Any], str]] = param(
        help="The PE: a family name followed by its options (--pe mac --a e4m3fn ...) or its spec as JSON.",
        convert=lambda _spec, _name, value: _as_pe(value),
        cli=str,
        allowed=f"a PE of the families {', '.join(sorted(_VIEWS))}",
    )
    rows: int = param(4, "Rows of PEs.", lo=1, hi=MAX_DIM)
    cols: int = param(4, "Columns of PEs.", lo=1, hi=MAX_DIM)
    dataflow: str = param(
        "output-stationary", "Dataflow (weight-stationary needs an exact, wrapping accumulator).", choices=DATAFLOWS
    )
    a_path: Optional[str] = param(
        None,
        "How a moves along a row: systolic (one PE per cycle) or broadcast "
        "(default: broadcast for a shared LUT table, else systolic).",
        choices=A_PATHS,
        needs=("pe", "share"),
        derive=_default_a_path,
    )
    share: bool = param(
        True, "Shared units: one LUT table per row, one group dequantiser per column (--no-share: one per PE)."
    )
    pipeline: int = param(0, "Extra register stages on the array's drain path.", lo=0, hi=4)

    family: ClassVar[str] = "array"
    #: The spec holds a PE spec (``pe``): the CLI takes its options after ``--pe FAMILY``.
    nests_pe: ClassVar[bool] = True

    def _check(self) -> None:
        if self.row_unit and self.a_path != "broadcast":
            raise ValueError(
                "a_path='systolic' with a shared LUT table: the row's one table unit needs its "
                "activations broadcast along the row (a_path='broadcast'), or use share=False"
            )
        view = pe_view(self.pe)
        if self.dataflow == "weight-stationary":
            if not view.integer:
                raise ValueError(
                    f"dataflow='weight-stationary' with pe={self.pe.name}: its accumulator rounds or "
                    "saturates, so partial sums added down a column would not reproduce the PE's "
                    "chain: use dataflow='output-stationary' (or an exact / wrapping accumulator)"
                )
            if view.beats > 1:
                raise ValueError(
                    f"dataflow='weight-stationary' with pe={self.pe.name}: a step of several beats "
                    "cannot be held stationary"
                )
        dq = self.dequant_share
        if dq is not None:
            g = dq.group * dq.pe.cycles_per_input
            if g < self.rows:
                raise ValueError(
                    f"rows={self.rows} with a shared group dequantiser: it serves one row per cycle "
                    f"and a group takes group * cycles_per_input = {g} cycles: allowed rows <= {g} "
                    "(or share=False)"
                )

    # --- derived ---------------------------------------------------------------------------
    @property
    def dequant_share(self) -> Optional[DequantShare]:
        """The grouped shift-add PE whose group dequantiser each column shares (output-stationary,
        ``share=True``), else None."""
        pe = self.pe
        if (
            self.share
            and self.dataflow == "output-stationary"
            and isinstance(pe, ShiftAddSpec)
            and pe.group is not None
            and pe.scale is not None
        ):
            return DequantShare(pe, pe.group, pe.scale)
        return None

    @property
    def shared_dequant(self) -> bool:
        """One group dequantiser per column (grouped shift-add PE, output-stationary, shared)."""
        return self.dequant_share is not None

    @property
    def row_lut(self) -> Optional[LutSpec]:
        """The LUT PE whose table unit a row shares (``share=True``), else None."""
        return self.pe if self.share and isinstance(self.pe, LutSpec) else None

    @property
    def row_unit(self) -> bool:
        """One unit per row (a LUT PE of ``cols * lanes`` lanes) instead of one per PE."""
        return self.row_lut is not None

    @property
    def name(self) -> str:
        parts = [f"array_{_DF_TAG[self.dataflow]}{self.rows}x{self.cols}"]
        if self.a_path != ("broadcast" if self.row_unit else "systolic"):
            parts.append("bc" if self.a_path == "broadcast" else "sy")
        if not self.share and self.pe.family in ("lut", "shiftadd"):
            parts.append("ns")
        if self.pipeline:
            parts.append(f"p{self.pipeline}")
        return "_".join(parts + [self.pe.name])

    @property
    def latency(self) -> int:
        """Cycles from a tile's last input (output-stationary) or an activation row
        (weight-stationary) to its first output row."""
        return array_geometry(self).latency

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": self.family}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, Spec) else v
        return out


# --- geometry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayGeometry:
    """Everything derived from an :class:`ArraySpec` (see the module docstring).

    Members
    -------
    rows, cols : int
    dataflow, a_path : str
    unit : PeView
        The spec each grid unit instantiates: the PE, a row's LUT PE of ``cols * lanes`` lanes
        (shared table), or the integer shift-add PE (shared dequantiser).
    units_per_row, cols_per_unit : int
        ``cols`` and 1, or 1 and ``cols`` for a row unit.
    pe : PeView
        The PE as specified (ports of one grid position; result of one output).
    col_skew, row_skew : int
        1 when column ``j`` (row ``i``) enters ``j`` (``i``) cycles late, else 0.
    latency : int
        OS: cycles from a tile's last input to its row 0 output (row ``i`` follows ``i`` cycles
        later).  WS: cycles from an activation input to its output row.
    min_last_gap : int
        OS: fewest cycles between two ``in_last`` inputs (the drain serves a column's rows one per
        cycle).
    ws_swap_window : int
        WS: cycles after an ``in_first`` activation before the next weight load may start (the
        swap must have reached every PE).
    out_width, flags_width : int
        Per-column widths of the ``out`` and ``out_flags`` ports.
    macs_per_cycle : float
        Array throughput at full rate.
    """

    rows: int
    cols: int
    dataflow: str
    a_path: str
    unit: PeView
    units_per_row: int
    cols_per_unit: int
    pe: PeView
    col_skew: int
    row_skew: int
    latency: int
    min_last_gap: int
    ws_swap_window: int
    out_width: int
    flags_width: int
    macs_per_cycle: float
    pipeline: int
    shared_dequant: bool

    def offset(self, i: int, j: int) -> int:
        """Cycles after the input register at which PE ``(i, j)`` sees an input."""
        return i * self.row_skew + j * self.col_skew

    @property
    def max_offset(self) -> int:
        return self.offset(self.rows - 1, self.cols - 1)

    @property
    def drain_delay(self) -> int:
        """OS: cycles from a PE's output event to the array output port (the PE's result
        register, the column's OR tree with its ``pipeline`` cuts, the column register, the
        pipeline registers the tree has no level for, the column deskew)."""
        return 2 + self.pipeline + (self.cols - 1) * self.col_skew

    @property
    def drain_levels(self) -> int:
        """OS: levels of the drain's OR tree over a column's rows (fan-in 4: one LUT4 each)."""
        return drain_levels(self.rows)

    @property
    def drain_cuts(self) -> int:
        """OS: ``pipeline`` registers that cut the drain's OR tree (after its levels 1, 2, ...);
        the rest follow the column register."""
        return min(self.pipeline, max(self.drain_levels - 1, 0))


def drain_levels(rows: int) -> int:
    """Levels of an OR tree of fan-in 4 over ``rows`` inputs (0 for one row)."""
    levels, n = 0, rows
    while n > 1:
        n, levels = -(-n // 4), levels + 1
    return levels


def array_geometry(spec: ArraySpec) -> ArrayGeometry:
    """The :class:`ArrayGeometry` of ``spec``."""
    pe = pe_view(spec.pe)
    R, C = spec.rows, spec.cols
    unit = pe
    units_per_row, cols_per_unit = C, 1
    lut, dq = spec.row_lut, spec.dequant_share
    if lut is not None:
        unit = pe_view(replace(lut, lanes=C * lut.lanes))
        units_per_row, cols_per_unit = 1, C
    elif dq is not None:
        unit = pe_view(replace(dq.pe, group=None, scale=None, acc_bits=dq.pe.width, overflow="wrap"))
    col_skew = 1 if spec.a_path == "systolic" else 0
    row_skew = 1
    deskew = (C - 1) * col_skew
    if spec.dataflow == "output-stationary":
        # input register (1) + PE latency + drain (result register, column register, pipeline,
        # deskew); measured from the last input's cycle to row 0's output cycle
        latency = 1 + unit.latency + 2 + spec.pipeline + deskew
        out_width = pe.acc_width
        swap = 0
    else:
        # input register, PE row i at offset i (+ j), PE latency, psum register per row,
        # pipeline, deskew
        latency = 1 + unit.latency + (R - 1) + 1 + spec.pipeline + deskew
        out_width = pe.acc_width  # column sums wrap at the PE's accumulator width
        swap = (R - 1) * row_skew + (C - 1) * col_skew
    return ArrayGeometry(
        rows=R,
        cols=C,
        dataflow=spec.dataflow,
        a_path=spec.a_path or "systolic",
        unit=unit,
        units_per_row=units_per_row,
        cols_per_unit=cols_per_unit,
        pe=pe,
        col_skew=col_skew,
        row_skew=row_skew,
        latency=latency,
        min_last_gap=R,
        ws_swap_window=swap,
        out_width=out_width,
        flags_width=pe.flags_width,
        macs_per_cycle=R * C * pe.macs_per_cycle,
        pipeline=spec.pipeline,
        shared_dequant=spec.shared_dequant,
    )


def cycles_per_step(geo: ArrayGeometry) -> int:
    """Input cycles one PE step takes at full rate (beats x interval)."""
    return geo.unit.beats * geo.unit.interval


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def clog2(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0
