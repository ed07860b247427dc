"""Rich table of a :class:`~peforge.models.cost.CostEstimate` with its error bars (for the CLI)."""

from __future__ import annotations

from typing import Any

from .model import CostEstimate

__all__ = ["table", "error_text"]

_LABELS = {
    "luts": "LUTs",
    "carry": "carry cells",
    "ffs": "flip-flops",
    "dsps": "DSP blocks",
    "delay_ns": "critical path (ns)",
    "fmax_mhz": "Fmax (MHz)",
    "gates_nand2": "gates (NAND2 eq.)",
    "area_um2": "area (um^2)",
    "energy_pj_per_op": "energy / cycle (pJ)",
    "energy_pj_per_mac": "energy / MAC (pJ)",
}
#: Which error entry bounds each output (area and energy inherit the gate-count error).
_ERROR_OF = {
    "fmax_mhz": "delay_ns",
    "area_um2": "gates_nand2",
    "energy_pj_per_op": "gates_nand2",
    "energy_pj_per_mac": "gates_nand2",
}


def error_text(err: dict[str, Any] | None) -> str:
    """``±6% median, ±18% worst (n=35)`` from an error entry (``exact on k/n`` for a count), or ``-``."""
    if not err:
        return "-"
    if "median" not in err:
        return f"exact on {err.get('exact', '?')}/{err.get('n', '?')}" if "exact" in err else "-"
    return f"±{100 * err['median']:.0f}% median, ±{100 * err['max']:.0f}% worst (n={err.get('n', '?')})"


def table(est: CostEstimate) -> Any:
    """A ``rich.table.Table``: each output with its held-out error bar."""
    from rich.table import Table

    kind = "ASIC" if est.node_nm is not None else "FPGA"
    t = Table(title=f"{est.spec} on {est.target} ({kind}, analytic estimate, {est.macs_per_cycle} MAC/cycle)")
    t.add_column("quantity")
    t.add_column("estimate", justify="right")
    t.add_column("expected error (held-out)")
    for key, value in est.headline().items():
        err = est.error.get(_ERROR_OF.get(key, key))
        text = error_text(err) + (" (iCE40's; uncalibrated here)" if err and "note" in err else "")
        t.add_row(_LABELS.get(key, key), f"{value:,.4g}" if isinstance(value, float) else str(value), text)
    if est.node_nm is not None:
        t.caption = (
            f"anchor: {est.notes.get('anchor')}; scaling: {est.notes.get('scaling')}; "
            "area and energy inherit the gate-count error plus the anchor's"
        )
    elif "note" in est.error.get("delay_ns", {}):
        t.caption = "delay: iCE40 nextpnr fit scaled by a fixed speed ratio (uncalibrated for this target)"
    return t
