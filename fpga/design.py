"""What the FPGA flow synthesises: a PE spec, or a Verilog file with its manifest.

:func:`as_design` turns either into a :class:`Design` with a module name, a content key for
the result cache, and Verilog text that is produced only when a tool actually runs (a cache
hit on a spec never elaborates the RTL).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Union

from peforge import spec as spec_mod

__all__ = ["Design", "DesignLike", "as_design", "rtl_source_hash"]


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()


def rtl_source_hash() -> str:
    """Hash of every source the RTL of a spec depends on (rtl package, formats, spec).

    Part of the cache key of a spec design, so editing a generator invalidates its results.
    """
    root = Path(spec_mod.__file__).resolve().parent
    files = [root / "formats.py", root / "spec.py"]
    try:
        from peforge import rtl

        rtl_dir = Path(rtl.__file__).resolve().parent
        files += sorted(rtl_dir.rglob("*.py"))
    except ImportError:  # pragma: no cover - rtl absent: spec designs will fail later anyway
        pass
    return _sha(*(f.read_bytes() for f in files if f.exists()))


def _manifest_module(manifest: Mapping[str, Any]) -> str:
    for key in ("module", "name", "top"):
        value = manifest.get(key)
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"manifest has no module name: expected a 'module' (or 'name') key, "
                     f"got keys {sorted(manifest)}")


class Design:
    """One design for synthesis.

    Members
    -------
    module : str
        Top Verilog module name.
    key : str
        SHA-256 identifying the design's content (spec JSON + RTL sources, or Verilog text).
    source : dict
        ``{"spec": spec.to_dict()}`` or ``{"verilog": absolute path}``; JSON-able, enough to
        rebuild the design later (:func:`as_design` accepts it).
    """

    def __init__(self, module: str, key: str, source: dict[str, Any], *,
                 spec: spec_mod.Spec | None = None, verilog_text: str | None = None) -> None:
        self.module = module
        self.key = key
        self.source = source
        self.spec = spec
        self._verilog = verilog_text

    @property
    def verilog(self) -> str:
        """The Verilog text (generated from the spec on first use)."""
        if self._verilog is None:
            assert self.spec is not None
            from peforge import rtl

            self._verilog = rtl.verilog(self.spec)
        return self._verilog

    def write(self, workdir: Path) -> Path:
        """Write the Verilog into ``workdir`` as ``<module>.v`` and return its path."""
        path = workdir / f"{self.module}.v"
        path.write_text(self.verilog)
        return path

    def __repr__(self) -> str:
        return f"Design({self.module!r}, key={self.key[:12]})"


DesignLike = Union[spec_mod.Spec, Design, tuple, Mapping[str, Any]]


def as_design(design: DesignLike) -> Design:
    """Accept a spec, a ``(verilog_path, manifest)`` pair (manifest: dict or JSON path), a
    :class:`Design`, or a ``source`` dict from a report."""
    if isinstance(design, Design):
        return design
    if isinstance(design, spec_mod.Spec):
        return Design(design.name, _sha("spec", design.to_json(), rtl_source_hash()),
                      {"spec": design.to_dict()}, spec=design)
    if isinstance(design, Mapping) and "spec" in design:
        return as_design(spec_mod.from_dict(dict(design["spec"])))
    if isinstance(design, Mapping) and "verilog" in design:
        return as_design((design["verilog"], {"module": design["module"]}))
    if isinstance(design, tuple) and len(design) == 2:
        vpath, manifest = Path(design[0]), design[1]
        if not vpath.is_file():
            raise ValueError(f"Verilog file {str(vpath)!r} does not exist")
        if isinstance(manifest, (str, Path)):
            mpath = Path(manifest)
            if not mpath.is_file():
                raise ValueError(f"manifest file {str(mpath)!r} does not exist")
            manifest = json.loads(mpath.read_text())
        if not isinstance(manifest, Mapping):
            raise ValueError(f"manifest must be a dict or a JSON file path, got {type(manifest).__name__}")
        module = _manifest_module(manifest)
        text = vpath.read_text()
        return Design(module, _sha("verilog", module, text),
                      {"verilog": str(vpath.resolve()), "module": module}, verilog_text=text)
    raise ValueError(f"cannot synthesise {design!r}: pass a peforge spec or a "
                     f"(verilog_path, manifest_dict_or_path) pair")
