"""Test-only batch wrapper: R copies of a PE behind one wide port.

A cocotb write costs the same for 8 bits as for 8,000, so the wrapper lets one write drive R
independent PEs per clock cycle.  Each copy runs its own chain (= one batch row of the golden
model); ``in_valid`` and reset are shared, so all rows advance in lock step.

The PE is instantiated by module name (:class:`amaranth.hdl.Instance`), so the simulation
compiles exactly the Verilog text that ``peforge.rtl.verilog(spec)`` emits, not a re-conversion.

Wrapper ports (``R`` rows, lane packing as in the PE, row ``r`` at bits ``[r*w +: w]``):
``clk``, ``rst``, ``in_valid``, ``first_all[R]``, ``a_all[R*lanes*a_bits]``,
``b_all[R*lanes*b_bits]``, ``out_valid_all[R]``, ``acc_all[R*acc_bits]`` and, when the PE has
them, ``flags_all[R*flag_bits]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PeInterface", "BatchWrapper", "wrapper_verilog"]


@dataclass(frozen=True)
class PeInterface:
    """Port geometry and timing of one PE, as the testbench needs it.

    Parameters
    ----------
    module : str
        Verilog module name of the PE.
    lanes, a_bits, b_bits : int
        Products per cycle and operand code widths.
    acc_bits : int
        Width of the ``acc`` output.
    flag_bits : int
        Width of ``acc_flags`` (0 when the PE has no such port).
    latency : int
        Cycles from an input to the ``acc`` value that includes it (>= 1).
    """

    module: str
    lanes: int
    a_bits: int
    b_bits: int
    acc_bits: int
    flag_bits: int
    latency: int

    def __post_init__(self) -> None:
        for name in ("lanes", "a_bits", "b_bits", "acc_bits", "latency"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PeInterface.{name}={value!r} must be a positive int")
        if not isinstance(self.flag_bits, int) or self.flag_bits < 0:
            raise ValueError(f"PeInterface.flag_bits={self.flag_bits!r} must be an int >= 0")

    @classmethod
    def from_spec(cls, spec: Any, manifest: Mapping[str, Any] | None = None) -> "PeInterface":
        """Geometry of a ``MinifloatMacSpec`` PE from the port contract, cross-checked with the
        RTL manifest (latency and port widths) when one is given."""
        exact = spec.is_exact
        acc_bits = spec.exact_width if exact else spec.acc.bits
        has_flags = exact and (spec.a.has_nan or spec.a.has_inf or spec.b.has_nan or spec.b.has_inf)
        iface = cls(module=spec.name, lanes=spec.lanes, a_bits=spec.a.bits, b_bits=spec.b.bits,
                    acc_bits=acc_bits, flag_bits=3 if has_flags else 0, latency=spec.latency)
        if manifest is not None:
            iface.check_manifest(manifest)
        return iface

    def check_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` when the RTL manifest disagrees with this interface."""
        latency = manifest.get("latency")
        if latency is not None and int(latency) != self.latency:
            raise ValueError(f"{self.module}: manifest latency {latency!r} != spec latency {self.latency}")
        module = manifest.get("module") or manifest.get("name")
        if isinstance(module, str) and module != self.module:
            raise ValueError(f"manifest module {module!r} != spec name {self.module!r}")
        widths = _manifest_port_widths(manifest.get("ports"))
        expected = {"a": self.lanes * self.a_bits, "b": self.lanes * self.b_bits, "acc": self.acc_bits,
                    "in_valid": 1, "in_first": 1, "out_valid": 1}
        if self.flag_bits:
            expected["acc_flags"] = self.flag_bits
        for port, width in expected.items():
            if port in widths and widths[port] != width:
                raise ValueError(f"{self.module}: manifest port {port!r} is {widths[port]} bits, "
                                 f"the port contract says {width}")
        if widths and not self.flag_bits and "acc_flags" in widths:
            raise ValueError(f"{self.module}: manifest has an acc_flags port the contract does not expect")


def _manifest_port_widths(ports: Any) -> dict[str, int]:
    """Port name -> width from the manifest's ``ports`` (a dict or a list of dicts)."""
    out: dict[str, int] = {}
    if isinstance(ports, Mapping):
        for name, info in ports.items():
            width = info.get("width") if isinstance(info, Mapping) else info
            if isinstance(width, int):
                out[name] = width
    elif isinstance(ports, (list, tuple)):
        for info in ports:
            if isinstance(info, Mapping) and isinstance(info.get("name"), str):
                width = info.get("width")
                if isinstance(width, int):
                    out[info["name"]] = width
    return out


class BatchWrapper(wiring.Component):
    """``rows`` copies of the PE ``iface.module`` behind one wide port (see module docstring).

    Parameters
    ----------
    iface : PeInterface
        The PE to instantiate.
    rows : int
        Number of copies (1..4096).
    """

    def __init__(self, iface: PeInterface, rows: int) -> None:
        if not isinstance(rows, int) or not 1 <= rows <= 4096:
            raise ValueError(f"rows={rows!r} must be an int in 1..4096")
        self._iface = iface
        self._rows = rows
        members: dict[str, Any] = {
            "in_valid": In(1),
            "first_all": In(rows),
            "a_all": In(rows * iface.lanes * iface.a_bits),
            "b_all": In(rows * iface.lanes * iface.b_bits),
            "out_valid_all": Out(rows),
            "acc_all": Out(rows * iface.acc_bits),
        }
        if iface.flag_bits:
            members["flags_all"] = Out(rows * iface.flag_bits)
        super().__init__(members)

    @property
    def iface(self) -> PeInterface:
        return self._iface

    @property
    def rows(self) -> int:
        return self._rows

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        f = self._iface
        wa, wb = f.lanes * f.a_bits, f.lanes * f.b_bits
        valids, accs, flags = [], [], []
        for r in range(self._rows):
            out_valid = Signal(name=f"out_valid_{r}")
            acc = Signal(f.acc_bits, name=f"acc_{r}")
            ports: dict[str, Any] = dict(
                i_clk=ClockSignal(), i_rst=ResetSignal(), i_in_valid=self.in_valid,
                i_in_first=self.first_all[r], i_a=self.a_all[r * wa:(r + 1) * wa],
                i_b=self.b_all[r * wb:(r + 1) * wb], o_out_valid=out_valid, o_acc=acc)
            if f.flag_bits:
                flag = Signal(f.flag_bits, name=f"flags_{r}")
                ports["o_acc_flags"] = flag
                flags.append(flag)
            m.submodules[f"pe{r}"] = Instance(f.module, **ports)
            valids.append(out_valid)
            accs.append(acc)
        m.d.comb += [self.out_valid_all.eq(Cat(*valids)), self.acc_all.eq(Cat(*accs))]
        if f.flag_bits:
            m.d.comb += self.flags_all.eq(Cat(*flags))
        return m


def wrapper_verilog(iface: PeInterface, rows: int, name: str) -> str:
    """Verilog text of :class:`BatchWrapper` as module ``name`` (deterministic)."""
    from amaranth.back import verilog

    return verilog.convert(BatchWrapper(iface, rows), name=name, emit_src=False)
