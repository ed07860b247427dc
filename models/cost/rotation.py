"""Cost of an activation rotation: a fast Hadamard (Walsh-Hadamard) unit in front of a PE.

A rotation of ``x``'s rows by ``H_b`` (:mod:`peforge.rotation`) is priced as the unit that
does it in hardware: ``log2(b)`` butterfly stages of ``b`` adders / subtractors each on
fixed-point words that grow one bit per stage (``in_bits`` -> ``in_bits + log2(b)``), one
block of ``b`` activations per cycle, with a register after the last stage.  The
``1/sqrt(b)`` factor is not built (a power of two for ``b = 4^j``, otherwise folded into the
block scales, which are recomputed after the rotation anyway); neither are the random signs
of ``random-hadamard`` (sign flips of the inputs, i.e. XORs, folded into the first stage).

A weight rotation is done once, offline, and costs the PE nothing.  The activation unit is
shared by every output column that reuses the rotated row: per MAC it costs
``energy_pj_per_element / reuse``, ``reuse`` the number of output columns (``m`` of an
``[n, k] @ [k, m]`` GEMM, or the PE array's width).

The adders are priced with the calibrated adder coefficients of each target (the same
features as every PE's adders, family scale 1): an estimate of the same quality as the PE's
own, not a synthesised unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .components import Netlist
from .model import CostEstimate, estimate_netlist

__all__ = ["hadamard_netlist", "hadamard_estimate", "RotationCost", "rotation_cost"]


def hadamard_netlist(block: int, in_bits: int = 16) -> Netlist:
    """The fast Hadamard unit for blocks of ``block`` (a power of two >= 2) ``in_bits``-bit
    fixed-point activations: ``log2(block)`` stages of ``block`` add/subtract."""
    if isinstance(block, bool) or not isinstance(block, int) or block < 2 or block & (block - 1):
        raise ValueError(f"block={block!r} must be a power of two >= 2")
    if isinstance(in_bits, bool) or not isinstance(in_bits, int) or not 2 <= in_bits <= 32:
        raise ValueError(f"in_bits={in_bits!r} must be an int in 2..32")
    stages = block.bit_length() - 1
    n = Netlist(macs_per_cycle=block)
    for s in range(stages):
        n.adder(in_bits + s + 1, block, cls="operand")
    n.register((in_bits + stages) * block, cls="operand")
    n.notes.update(
        unit="fast Hadamard transform",
        block=block,
        stages=stages,
        in_bits=in_bits,
        out_bits=in_bits + stages,
        adders=block * stages,
    )
    return n


def hadamard_estimate(block: int, target: str = "asic45", in_bits: int = 16) -> CostEstimate:
    """:class:`~peforge.models.cost.CostEstimate` of the unit (one op = one block rotated)."""
    return estimate_netlist(hadamard_netlist(block, in_bits), f"fht_b{block}_{in_bits}b", "rotation", target)


@dataclass(frozen=True)
class RotationCost:
    """What an activation rotation adds next to a PE (see the module docstring).

    Members
    -------
    rotation, block : str, int
    luts : float or None
        FPGA LUTs of the unit (``fpga_target``).
    gates_nand2 : float or None
        Gates of the unit (ASIC target).
    energy_pj_per_element : float or None
        Energy per rotated activation.
    energy_pj_per_mac : float or None
        ``energy_pj_per_element / reuse``.
    reuse : int
    """

    rotation: str
    block: int
    luts: float | None
    gates_nand2: float | None
    energy_pj_per_element: float | None
    energy_pj_per_mac: float | None
    reuse: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def rotation_cost(
    rotation: str,
    block: int | None,
    reuse: int = 64,
    in_bits: int = 16,
    fpga_target: str = "ice40",
    asic_target: str = "asic45",
) -> RotationCost:
    """Cost of rotating the activations with ``rotation`` in blocks of ``block`` (None: no
    unit, e.g. ``rotation="none"``), amortised over ``reuse`` output columns."""
    from peforge.rotation import check_rotation

    rotation, block = check_rotation(rotation, block)
    if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
        raise ValueError(f"reuse={reuse!r} must be a positive int (output columns sharing a rotated row)")
    if rotation == "none":
        return RotationCost("none", 0, 0.0, 0.0, 0.0, 0.0, reuse)
    if block is None:
        raise ValueError("rotation_block must be given to price a rotation unit")
    f = hadamard_estimate(block, fpga_target, in_bits)
    a = hadamard_estimate(block, asic_target, in_bits)
    per_elem = (a.energy_pj_per_op or 0.0) / block
    return RotationCost(rotation, block, f.luts, a.gates_nand2, round(per_elem, 5), round(per_elem / reuse, 6), reuse)
