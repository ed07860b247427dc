"""The PE families, declared once: one :class:`Family` record each in the :data:`FAMILIES` table.

A family is a spec class and its datapath geometry (:mod:`peforge.geometry`) plus the parts every layer needs: its generator, port signature and
manifest fields (``rtl``), golden run / port widths / value decode / matmul
(``models.golden``), cost assembly, energy (toggle) model and calibration draw rules
(``models.cost``), testbench vector sets (``sim``) and, when it can be board-built, its
self-test adapter (``fpga``).  Every layer loops over this table; no layer registers a family
by importing a module, and no family stands in for another.

**How the table respects the layering.**  ``models`` must import neither Amaranth nor ``rtl``
/ ``sim`` / ``fpga``, and ``rtl`` never imports ``models``, so one module cannot import every
part.  This module therefore imports only the pure core (:mod:`peforge.spec`) and names every
layer's part by its import path (``"peforge.rtl.mac:MinifloatMac"``).  A layer resolves only
its own column, at its own import: importing :mod:`peforge.rtl` resolves every family's
generator, signature and manifest parts, importing :mod:`peforge.models.golden` the golden
parts, and so on (:func:`load_layer`).  So a family that lacks a part fails when it is
declared (:class:`FamilyError` naming the family and the part, raised while this module is
imported), and a part path that does not resolve fails when its layer is imported, with the
same message; nothing is found by side effect.

**The tests layer.**  Two parts only the test suite resolves: the family's independent
``reference`` (what the contract test checks the golden model against) and its ``widths``
check (the geometry read back from the Verilog).  They may live under ``tests/``, on pytest's
path and not installed: no package module resolves them.

**A family outside the table.**  :func:`extended` adds families to the table inside a ``with``
block (a test-only family, a user's own PE): every lookup here (:func:`get`,
:func:`family_of`, :func:`names`, :func:`table`, ...), and so every layer, the CLI's per-PE
commands and ``spec.from_dict``, sees them there and nowhere else.  It is called, never
triggered by an import.

Adding a family (five files, docs/architecture.md): its spec, geometry and independent
reference in one core module, its generator (``rtl/``), its golden model and vector sets
(``models/golden/``), its cost assembly, toggle model and draw rules (``models/cost/``), and
one :class:`Family` entry below; then refit the calibration (``peforge calibrate``).
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Optional

from .arrays import ArraySpec, array_geometry
from .geometry import blockdot_geometry, intmac_geometry, lut_geometry, mac_geometry, shiftadd_geometry, simd_geometry
from .spec import BlockDotSpec, IntMacSpec, LutSpec, MinifloatMacSpec, ShiftAddSpec, SimdMacSpec, Spec

__all__ = [
    "Family",
    "FamilyError",
    "FAMILIES",
    "LAYERS",
    "get",
    "family_of",
    "names",
    "table",
    "extended",
    "load_layer",
    "parts",
]


class FamilyError(ImportError):
    """A family lacks a part, or a part's import path does not resolve."""


#: Parts every layer resolves at its import, with what they are (for error messages).
LAYERS: dict[str, dict[str, str]] = {
    "rtl": {
        "generator": "Amaranth component class taking the spec",
        "signature": "function spec -> wiring.Signature (the module's ports)",
        "manifest": "function spec -> manifest fields (result, lane_packing, datapath, ...)",
    },
    "golden": {
        "golden_run": "function (spec, **inputs) -> output port bits",
        "golden_port_widths": "function spec -> {port: width}",
        "golden_value": "function (spec, acc bits) -> float64 values",
        "golden_matmul": "function (spec, x, w) -> x @ w through the PE",
    },
    "cost": {
        "cost_assembly": "function spec -> cost Netlist",
        "energy": "toggle model (peforge.models.cost.toggles.ToggleModel)",
        "calibration": "calibration draw rules (peforge.models.cost.specsets.DrawRules)",
    },
    "sim": {
        "vector_sets": "function (spec, vectors, exhaustive, seed, rows) -> list of VectorSet "
        "(the golden model's inputs; the shared testbench does the rest)",
        "regression": "function (spec, vectors, exhaustive, seed, progress) -> VerifyResult: the family's "
        "own cycle-level testbench instead of vector sets (PE arrays), or None",
    },
    "fpga": {"board": "board self-test adapter (peforge.fpga.selftest.BoardAdapter), or None"},
    "workloads": {
        "operand_ranges": "function (spec, matmul options) -> (a, b) OperandRange for scalings other "
        "than 'pe' (peforge.workloads.scaling), or None: the family scales natively"
    },
    # resolved only by the test suite (the parts may live under tests/, which is not installed)
    "tests": {
        "reference": "function (spec, golden-model inputs) -> the acc port's words per batch row, "
        "computed without the golden model (Python ints, fractions.Fraction): the contract test's reference",
        "widths": "function (spec, geometry) -> ({Verilog signal: width}, {cost netlist note: value}): "
        "the geometry read back from the Verilog and from the cost model (tests/test_geometry.py)",
    },
}
#: vector_sets and regression: a family has one of the two (checked by Family).
_OPTIONAL = frozenset({"board", "operand_ranges", "vector_sets", "regression"})
_PART_LAYER = {part: layer for layer, parts in LAYERS.items() for part in parts}


@dataclass(frozen=True)
class Family:
    """One PE family: its spec class, example specs and every layer's part.

    Parameters
    ----------
    name : str
        The family name (``spec.family``, the CLI's first word, the manifest's ``family``).
    spec : type
        The frozen spec class.
    geometry : callable
        ``geometry(spec)``: the datapath widths (:mod:`peforge.geometry`, pure Python), read by
        the generator, the cost model, the golden model and the manifest.
    examples : tuple of Spec
        Small representative specs (contract tests, CLI help, demos); the first is the default.
    generator, signature, manifest, golden_run, golden_port_widths, golden_value,
    golden_matmul, cost_assembly, energy, calibration, vector_sets : str
        ``"module:attribute"`` import paths of the parts (see :data:`LAYERS`).
    regression : str or None
        The family's own testbench, for a family whose stimulus is not PE vector sets (arrays:
        cycle-level tile streams); a family has ``vector_sets`` or ``regression``.
    board : str or None
        Board self-test adapter, None when the family cannot be board-built.
    operand_ranges : str or None
        Operand ranges for the sweep's scaling axis, None when the family scales its
        blocks / groups natively (only ``scaling = "pe"``).
    reference, widths : str
        The tests layer (see :data:`LAYERS`): the independent reference of the golden model
        and the geometry check; resolved by the test suite only.
    """

    name: str
    spec: type[Spec]
    geometry: Optional[Callable[[Any], Any]] = None
    examples: tuple[Spec, ...] = ()
    generator: Optional[str] = None
    signature: Optional[str] = None
    manifest: Optional[str] = None
    golden_run: Optional[str] = None
    golden_port_widths: Optional[str] = None
    golden_value: Optional[str] = None
    golden_matmul: Optional[str] = None
    cost_assembly: Optional[str] = None
    energy: Optional[str] = None
    calibration: Optional[str] = None
    vector_sets: Optional[str] = None
    regression: Optional[str] = None
    board: Optional[str] = None
    operand_ranges: Optional[str] = None
    reference: Optional[str] = None
    widths: Optional[str] = None
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if getattr(self.spec, "family", None) != self.name:
            raise FamilyError(
                f"family {self.name!r}: spec class {self.spec.__name__} has family "
                f"{getattr(self.spec, 'family', None)!r}"
            )
        if not callable(self.geometry):
            raise FamilyError(f"family {self.name!r} lacks its geometry (function spec -> datapath widths)")
        if not self.examples or not all(type(e) is self.spec for e in self.examples):
            raise FamilyError(f"family {self.name!r} lacks its examples (one or more {self.spec.__name__})")
        if (self.vector_sets is None) == (self.regression is None):
            raise FamilyError(
                f"family {self.name!r} needs exactly one sim part: vector_sets "
                f"({LAYERS['sim']['vector_sets']}) or regression ({LAYERS['sim']['regression']})"
            )
        for part, layer in _PART_LAYER.items():
            path = getattr(self, part)
            if path is None and part in _OPTIONAL:
                continue
            if not isinstance(path, str) or path.count(":") != 1:
                raise FamilyError(
                    f"family {self.name!r} lacks its {layer} part {part!r} "
                    f"({LAYERS[layer][part]}): got {path!r}, want 'module:attribute'"
                )

    def part(self, name: str) -> Any:
        """The resolved part ``name`` (imported on first use; None for an absent optional part)."""
        if name not in _PART_LAYER:
            raise ValueError(f"part={name!r}: allowed {sorted(_PART_LAYER)}")
        if name not in self._cache:
            path = getattr(self, name)
            if path is None:
                self._cache[name] = None
            else:
                module, attr = path.split(":")
                try:
                    self._cache[name] = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as err:
                    raise FamilyError(
                        f"family {self.name!r}: its {_PART_LAYER[name]} part {name!r} ({path}) does not resolve: {err}"
                    ) from err
        return self._cache[name]


FAMILIES: tuple[Family, ...] = (
    Family(
        "mac",
        MinifloatMacSpec,
        geometry=mac_geometry,
        examples=(
            MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32"),
            MinifloatMacSpec("e5m2", "e2m1fn", "exact", lanes=2, stages=1),
            MinifloatMacSpec("e4m3fn", "e5m2", "bf16", lanes=2, mult="lmul", subnormals=False),
        ),
        generator="peforge.rtl.mac:MinifloatMac",
        signature="peforge.rtl.mac:mac_signature",
        manifest="peforge.rtl.mac:mac_manifest",
        golden_run="peforge.models.golden.mac:run_mac",
        golden_port_widths="peforge.models.golden.mac:mac_port_widths",
        golden_value="peforge.models.golden.mac:mac_value",
        golden_matmul="peforge.models.golden.matmul:matmul_mac",
        cost_assembly="peforge.models.cost.assembly:assemble_mac",
        energy="peforge.models.cost.toggles:MAC",
        calibration="peforge.models.cost.specsets:MAC_DRAWS",
        vector_sets="peforge.sim.regression:mac_sets",
        board="peforge.fpga.selftest:LANE_OPERANDS",
        operand_ranges="peforge.workloads.scaling:format_ranges",
        reference="family_references:mac",
        widths="test_geometry:_mac",
    ),
    Family(
        "intmac",
        IntMacSpec,
        geometry=intmac_geometry,
        examples=(IntMacSpec("int8", "int8"), IntMacSpec("int4", "uint8", acc_bits=16, lanes=2, overflow="saturate")),
        generator="peforge.rtl.intmac:IntMac",
        signature="peforge.rtl.intmac:intmac_signature",
        manifest="peforge.rtl.intmac:intmac_manifest",
        golden_run="peforge.models.golden.intmac:run_intmac",
        golden_port_widths="peforge.models.golden.intmac:intmac_port_widths",
        golden_value="peforge.models.golden.intmac:intmac_value",
        golden_matmul="peforge.models.golden.matmul:matmul_intmac",
        cost_assembly="peforge.models.cost.assembly:assemble_intmac",
        energy="peforge.models.cost.toggles:INTMAC",
        calibration="peforge.models.cost.specsets:INTMAC_DRAWS",
        vector_sets="peforge.sim.families:intmac_sets",
        board="peforge.fpga.selftest:LANE_OPERANDS",
        operand_ranges="peforge.workloads.scaling:format_ranges",
        reference="family_references:intmac",
        widths="test_geometry:_intmac",
    ),
    Family(
        "simd",
        SimdMacSpec,
        geometry=simd_geometry,
        examples=(SimdMacSpec(8, modes=("8x8", "4x4", "2x2")), SimdMacSpec(8, arch="sub4", stages=1)),
        generator="peforge.rtl.simd:SimdMac",
        signature="peforge.rtl.simd:simd_signature",
        manifest="peforge.rtl.simd:simd_manifest",
        golden_run="peforge.models.golden.simd:run_simd",
        golden_port_widths="peforge.models.golden.simd:simd_port_widths",
        golden_value="peforge.models.golden.simd:simd_value",
        golden_matmul="peforge.models.golden.matmul:matmul_simd",
        cost_assembly="peforge.models.cost.assembly:assemble_simd",
        energy="peforge.models.cost.toggles:SIMD",
        calibration="peforge.models.cost.specsets:SIMD_DRAWS",
        vector_sets="peforge.sim.families:simd_sets",
        board=None,
        operand_ranges="peforge.workloads.scaling:simd_ranges",
        reference="family_references:simd",
        widths="test_geometry:_simd",
    ),
    Family(
        "shiftadd",
        ShiftAddSpec,
        geometry=shiftadd_geometry,
        examples=(
            ShiftAddSpec("int8", "pot4", "pot", lanes=2),
            ShiftAddSpec("int4", "int4", "bitserial", group=4, scale="bf16"),
        ),
        generator="peforge.rtl.shiftadd:ShiftAddPE",
        signature="peforge.rtl.shiftadd:shiftadd_signature",
        manifest="peforge.rtl.shiftadd:shiftadd_manifest",
        golden_run="peforge.models.golden.shiftadd:run_shiftadd",
        golden_port_widths="peforge.models.golden.shiftadd:shiftadd_port_widths",
        golden_value="peforge.models.golden.shiftadd:shiftadd_value",
        golden_matmul="peforge.models.golden.shiftadd:matmul_shiftadd",
        cost_assembly="peforge.models.cost.families:assemble_shiftadd",
        energy="peforge.models.cost.toggles:SHIFTADD",
        calibration="peforge.models.cost.specsets:SHIFTADD_DRAWS",
        vector_sets="peforge.sim.shiftadd:shiftadd_sets",
        board="peforge.fpga.selftest:SHIFTADD_OPERANDS",
        operand_ranges="peforge.workloads.scaling:shiftadd_ranges",
        reference="family_references:shiftadd",
        widths="test_geometry:_shiftadd",
    ),
    Family(
        "blockdot",
        BlockDotSpec,
        geometry=blockdot_geometry,
        examples=(
            BlockDotSpec("e2m1fn", "e2m1fn", "e8m0fnu", "e8m0fnu", block=8, lanes=4),
            BlockDotSpec("int8", "int8", block=4, stages=1),
        ),
        generator="peforge.rtl.blockdot:BlockDot",
        signature="peforge.rtl.blockdot:blockdot_signature",
        manifest="peforge.rtl.blockdot:blockdot_manifest",
        golden_run="peforge.models.golden.blockdot:run_blockdot",
        golden_port_widths="peforge.models.golden.blockdot:blockdot_port_widths",
        golden_value="peforge.models.golden.blockdot:blockdot_value",
        golden_matmul="peforge.models.golden.blockdot:matmul_blockdot",
        cost_assembly="peforge.models.cost.families:assemble_blockdot",
        energy="peforge.models.cost.toggles:BLOCKDOT",
        calibration="peforge.models.cost.specsets:BLOCKDOT_DRAWS",
        vector_sets="peforge.sim.blockdot:blockdot_sets",
        board=None,
        reference="family_references:blockdot",
        widths="test_geometry:_blockdot",
    ),
    Family(
        "lut",
        LutSpec,
        geometry=lut_geometry,
        examples=(LutSpec("int8", 2, 4, lanes=2), LutSpec("e2m1fn", "ternary", 3, symmetric=False, stages=1)),
        generator="peforge.rtl.lut:LutPe",
        signature="peforge.rtl.lut:lut_signature",
        manifest="peforge.rtl.lut:lut_manifest",
        golden_run="peforge.models.golden.lut:run_lut",
        golden_port_widths="peforge.models.golden.lut:lut_port_widths",
        golden_value="peforge.models.golden.lut:lut_value",
        golden_matmul="peforge.models.golden.lut:matmul_lut",
        cost_assembly="peforge.models.cost.families:assemble_lut",
        energy="peforge.models.cost.toggles:LUT",
        calibration="peforge.models.cost.specsets:LUT_DRAWS",
        vector_sets="peforge.sim.lut:lut_sets",
        board="peforge.fpga.selftest:LUT_OPERANDS",
        operand_ranges="peforge.workloads.scaling:lut_ranges",
        reference="family_references:lut",
        widths="test_geometry:_lut",
    ),
    # arrays of any PE above (peforge.arrays): every part reads the PE's own family parts
    Family(
        "array",
        ArraySpec,
        geometry=array_geometry,
        examples=(
            ArraySpec(IntMacSpec("int4", "int4", lanes=2), rows=2, cols=3),
            ArraySpec(MinifloatMacSpec("e2m1fn", "e2m1fn", "fp16"), rows=2, cols=2),
            ArraySpec(LutSpec("int4", 2, 2), rows=2, cols=2),
            ArraySpec(IntMacSpec("int4", "int4"), rows=2, cols=2, dataflow="weight-stationary"),
        ),
        generator="peforge.rtl.array:PeArray",
        signature="peforge.rtl.array:array_signature",
        manifest="peforge.rtl.array:array_manifest",
        golden_run="peforge.models.golden.array:run_array",
        golden_port_widths="peforge.models.golden.array:array_port_widths",
        golden_value="peforge.models.golden.array:array_value",
        golden_matmul="peforge.models.golden.array:matmul_array",
        cost_assembly="peforge.models.cost.array:assemble_array",
        energy="peforge.models.cost.array:ARRAY_TOGGLES",
        calibration="peforge.models.cost.array:ARRAY_DRAWS",
        regression="peforge.sim.array:verify_array",
        board=None,
        operand_ranges="peforge.workloads.scaling:array_ranges",
        reference="family_references:array",
        widths="test_geometry:_array",
    ),
)


@dataclass(frozen=True)
class _Table:
    """The families in use, indexed by name and by spec class."""

    families: tuple[Family, ...]
    by_name: dict[str, Family]
    by_spec: dict[type, Family]

    @classmethod
    def of(cls, families: tuple[Family, ...]) -> "_Table":
        by_name = {f.name: f for f in families}
        by_spec: dict[type, Family] = {f.spec: f for f in families}
        if len(by_name) != len(families) or len(by_spec) != len(families):
            raise FamilyError(f"the family table declares a name or spec class twice: {[f.name for f in families]}")
        return cls(families, by_name, by_spec)


_ACTIVE = _Table.of(FAMILIES)


def table() -> tuple[Family, ...]:
    """The families in use: :data:`FAMILIES`, plus any added by an enclosing :func:`extended`."""
    return _ACTIVE.families


@contextlib.contextmanager
def extended(*extra: Family) -> Iterator[tuple[Family, ...]]:
    """Use :data:`FAMILIES` plus ``extra`` inside the ``with`` block; yields the whole table.

    Every lookup of this module, and so every layer, the CLI's per-PE commands and
    ``peforge.spec.from_dict``, sees the added families there; the table is restored on exit.
    The added families' parts (all but the tests layer) are resolved on entry, so a part that
    does not resolve fails there (:class:`FamilyError` naming it).  A name or spec class the
    table already has is refused.  The extension belongs to this process (a sweep's worker
    processes see :data:`FAMILIES` only).

    >>> with extended(my_family):                      # doctest: +SKIP
    ...     rtl.generate(MySpec(), "build")
    """
    global _ACTIVE
    for fam in extra:
        if not isinstance(fam, Family):
            raise TypeError(f"extended() takes Family records, got {fam!r}")
    new = _Table.of((*_ACTIVE.families, *extra))
    for fam in extra:
        for part, layer in _PART_LAYER.items():
            if layer != "tests":
                fam.part(part)
    saved, _ACTIVE = _ACTIVE, new
    try:
        yield new.families
    finally:
        _ACTIVE = saved


def names() -> tuple[str, ...]:
    """Family names in table order."""
    return tuple(_ACTIVE.by_name)


def get(name: str) -> Family:
    """The family called ``name``; ValueError naming the allowed ones otherwise."""
    try:
        return _ACTIVE.by_name[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown PE family {name!r}: allowed {sorted(_ACTIVE.by_name)}") from None


def family_of(spec: Any) -> Family:
    """The family of a spec object (its class or a base class in the table)."""
    for cls in type(spec).__mro__:
        fam = _ACTIVE.by_spec.get(cls)
        if fam is not None:
            return fam
    raise ValueError(
        f"{type(spec).__name__} ({spec!r}) is not a PE spec: allowed "
        f"{', '.join(f.spec.__name__ for f in _ACTIVE.families)}"
    )


def load_layer(layer: str) -> None:
    """Resolve every family's parts of ``layer`` (a key of :data:`LAYERS`) now, so that a part
    that does not resolve fails at the layer's import (:class:`FamilyError`)."""
    if layer not in LAYERS:
        raise ValueError(f"layer={layer!r}: allowed {sorted(LAYERS)}")
    for fam in _ACTIVE.families:
        for part in LAYERS[layer]:
            fam.part(part)


def parts(name: str) -> Iterator[tuple[Family, Any]]:
    """``(family, resolved part)`` for every family in use, in table order."""
    for fam in _ACTIVE.families:
        yield fam, fam.part(name)


# keep the dataclass field list and LAYERS in step (a part added to one must be in the other)
_DECLARED = {f.name for f in fields(Family)} - {"name", "spec", "geometry", "examples", "_cache"}
if _DECLARED != set(_PART_LAYER):
    raise FamilyError(f"Family fields {sorted(_DECLARED)} and LAYERS parts {sorted(_PART_LAYER)} differ")
