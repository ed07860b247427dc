"""The testbench's view of a PE, read from its manifest: per-copy ports, lane packing, timing.

Every PE family drives the same shared testbench (:mod:`peforge.sim.wrapper`,
:mod:`peforge.sim.batch`), which knows nothing about families: it reads the module's manifest
(:func:`peforge.rtl.manifest`) into a :class:`PortMap`:

* ``clk``, ``rst`` (the manifest's ``clock`` / ``reset`` ports) and ``in_valid`` are shared by
  all PE copies; every other input (``in_first``, ``a``, ``b``, ``mode``, ``scale``, ...) and every
  output is per copy;
* ``lane_packing[port]`` (``lanes`` codes of ``width`` bits, least significant lane first) tells
  how an input's values are packed; a port without lanes takes one word;
* ``latency`` (cycles from an input to the output that includes it), ``initiation_interval``
  (cycles between inputs, default 1), ``block.beats`` (input cycles per step, default 1) and
  ``block.sampled_on_last_beat`` (ports read only on a step's last beat) fix the cycle layout;
* ``reset`` gives the outputs' reset values (default 0); an output named by ``ready_port`` is a
  handshake the golden model does not predict, every other output is compared with it.

So a new port, a longer latency or a beat rule in a manifest needs no testbench change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["Field", "PortMap", "VALID", "FIRST", "OUT_VALID"]

VALID, FIRST, OUT_VALID = "in_valid", "in_first", "out_valid"


@dataclass(frozen=True)
class Field:
    """One port of one PE copy inside the wrapper's wide words.

    Members
    -------
    name : str
        Port name.
    lanes, lane_bits : int
        Codes packed least-significant lane first (``lanes == 1``: the whole word).
    offset : int
        Bit offset of the port inside one copy's slice of the wide word.
    """

    name: str
    lanes: int
    lane_bits: int
    offset: int

    @property
    def width(self) -> int:
        return self.lanes * self.lane_bits


def _fields(ports: list[tuple[str, int]], packing: Mapping[str, Any], module: str) -> tuple[Field, ...]:
    out, offset = [], 0
    for name, width in ports:
        lanes, lane_bits = 1, width
        info = packing.get(name)
        if isinstance(info, Mapping) and isinstance(info.get("lanes"), int):
            lanes, bits = info["lanes"], info.get("width")
            if not isinstance(bits, int) or lanes < 1 or lanes * bits != width:
                raise ValueError(
                    f"{module}: manifest lane_packing[{name!r}] = {dict(info)!r} does not fill "
                    f"the {width}-bit port (want lanes * width == {width})"
                )
            lane_bits = bits
        out.append(Field(name, lanes, lane_bits, offset))
        offset += width
    return tuple(out)


@dataclass(frozen=True)
class PortMap:
    """What the shared testbench needs to drive and check one PE (see module docstring).

    Members
    -------
    module : str
        Verilog module name.
    inputs : tuple of Field
        Per-copy inputs in manifest order (``in_first`` and every data / control port).
    outputs : tuple of Field
        Per-copy outputs in manifest order (``out_valid`` included).
    latency, interval, beats : int
        Cycles from an input to its output; cycles between inputs; input cycles per step.
    last_beat_only : frozenset of str
        Inputs sampled only on a step's last beat (others carry random values).
    unchecked : frozenset of str
        Handshake outputs the golden model does not predict.
    reset : dict
        Output reset values (0 unless the manifest says otherwise).
    clock, reset_port : str
        Names of the clock and the synchronous reset input.
    """

    module: str
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]
    latency: int
    interval: int = 1
    beats: int = 1
    last_beat_only: frozenset[str] = frozenset()
    unchecked: frozenset[str] = frozenset()
    reset: Mapping[str, int] | None = None
    clock: str = "clk"
    reset_port: str = "rst"

    def __post_init__(self) -> None:
        for name in ("latency", "interval", "beats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.module}: {name}={value!r} must be an int >= 1")
        names = {f.name for f in self.inputs}
        if FIRST not in names:
            raise ValueError(
                f"{self.module}: no {FIRST!r} input: the testbench needs the port contract's "
                f"{VALID!r}, {FIRST!r} and {OUT_VALID!r}"
            )
        if OUT_VALID not in {f.name for f in self.outputs}:
            raise ValueError(f"{self.module}: no {OUT_VALID!r} output")
        if not self.last_beat_only <= names:
            raise ValueError(f"{self.module}: last-beat ports {sorted(self.last_beat_only - names)} are not inputs")

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "PortMap":
        """The port map of a manifest as :func:`peforge.rtl.manifest` writes it."""
        module = manifest.get("module")
        if not isinstance(module, str) or not module:
            raise ValueError(f"manifest module={module!r}: want the Verilog module name")
        clk = (manifest.get("clock") or {}).get("port", "clk")
        rst = (manifest.get("reset") or {}).get("port", "rst")
        ins: list[tuple[str, int]] = []
        outs: list[tuple[str, int]] = []
        for port in manifest.get("ports") or ():
            name, direction, width = port.get("name"), port.get("direction"), port.get("width")
            if not isinstance(width, int) or width < 1:
                raise ValueError(f"{module}: manifest port {name!r} has width {width!r}")
            if direction == "input":
                if name in (clk, rst, VALID):
                    if width != 1:
                        raise ValueError(f"{module}: port {name!r} is {width} bits, want 1")
                    continue
                ins.append((name, width))
            elif direction == "output":
                outs.append((name, width))
            else:
                raise ValueError(
                    f"{module}: manifest port {name!r} has direction {direction!r}: allowed 'input', 'output'"
                )
        if VALID not in {p.get("name") for p in manifest.get("ports") or ()}:
            raise ValueError(f"{module}: no {VALID!r} input in the manifest")
        packing = manifest.get("lane_packing") or {}
        block = manifest.get("block") or {}
        reset = {
            k: v for k, v in (manifest.get("reset") or {}).items() if isinstance(v, int) and not isinstance(v, bool)
        }
        ready = manifest.get("ready_port")
        return cls(
            module=module,
            inputs=_fields(ins, packing, module),
            outputs=_fields(outs, {}, module),
            latency=manifest.get("latency", 0),
            interval=manifest.get("initiation_interval", 1),
            beats=block.get("beats", 1),
            last_beat_only=frozenset(block.get("sampled_on_last_beat", ())),
            unchecked=frozenset([ready] if isinstance(ready, str) else ()),
            reset=reset,
            clock=clk,
            reset_port=rst,
        )

    @property
    def in_bits(self) -> int:
        """Input bits per copy."""
        return sum(f.width for f in self.inputs)

    @property
    def out_bits(self) -> int:
        """Output bits per copy."""
        return sum(f.width for f in self.outputs)

    def input(self, name: str) -> Field:
        return self._find(self.inputs, name)

    def output(self, name: str) -> Field:
        return self._find(self.outputs, name)

    def _find(self, fields: tuple[Field, ...], name: str) -> Field:
        for f in fields:
            if f.name == name:
                return f
        raise ValueError(f"{self.module} has no port {name!r}: allowed {[f.name for f in fields]}")

    def reset_value(self, name: str) -> int:
        return int((self.reset or {}).get(name, 0))
