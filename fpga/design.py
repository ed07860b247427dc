"""What the FPGA flow synthesises: a PE spec, or a Verilog file with its manifest.

:func:`as_design` turns either into a :class:`Design` with a module name, a content key for
the result cache, and its Verilog text.  The key of a spec design is the hash of the Verilog it
elaborates to, so an edit anywhere in ``rtl/`` re-synthesises only the designs whose Verilog
actually changed.  Elaboration is skipped when nothing it depends on changed: a small memo
(``<cache>/verilog-keys/``) maps (spec, hash of the RTL sources) to that Verilog hash.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
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
    """Hash of every source the RTL of a spec depends on (the rtl package and the core modules
    beside ``peforge.spec``: formats, params, geometry, ...).

    Part of the cache key of a spec design, so editing a generator invalidates its results.
    """
    root = Path(spec_mod.__file__).resolve().parent
    files = sorted(root.glob("*.py"))
    try:
        from peforge import rtl

        rtl_dir = Path(rtl.__file__).resolve().parent
        files += sorted(rtl_dir.rglob("*.py"))
    except ImportError:  # pragma: no cover - rtl absent: spec designs will fail later anyway
        pass
    return _sha(*(f.read_bytes() for f in files if f.exists()))


def _verilog_key(module: str, text: str) -> str:
    return _sha("verilog", module, text)


def _family_source_hash(spec: spec_mod.Spec) -> str:
    """Hash of the modules of ``spec``'s family entry that make its Verilog (spec class,
    geometry, generator, signature, manifest): they may live outside the package (a family
    added with :func:`peforge.families.extended`)."""
    from peforge.families import family_of

    fam = family_of(spec)
    names = {fam.spec.__module__, getattr(fam.geometry, "__module__", None)}
    names |= {str(getattr(fam, part)).split(":")[0] for part in ("generator", "signature", "manifest")}
    files = []
    for name in sorted(n for n in names if n):
        path = getattr(importlib.import_module(name), "__file__", None)
        if path:
            files.append(Path(path).read_bytes())
    return _sha(*files)


def _memo_path(spec: spec_mod.Spec) -> Path:
    from .cache import default_cache_dir

    key = _sha("spec", spec.to_json(), rtl_source_hash(), _family_source_hash(spec))
    return default_cache_dir() / "verilog-keys" / f"{key}.txt"


def _spec_key(spec: spec_mod.Spec) -> tuple[str, str | None]:
    """``(content key, Verilog text or None)`` of a spec design; elaborates only on a memo miss."""
    memo = _memo_path(spec)
    try:
        key = memo.read_text().strip()
        if len(key) == 64:
            return key, None
    except OSError:
        pass
    from peforge import rtl

    text = rtl.verilog(spec)
    key = _verilog_key(spec.name, text)
    try:  # best effort: an unwritable cache only costs the next elaboration
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        os.replace(tmp, memo)
    except OSError:
        pass
    return key, text


def _manifest_module(manifest: Mapping[str, Any]) -> str:
    for key in ("module", "name", "top"):
        value = manifest.get(key)
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"manifest has no module name: expected a 'module' (or 'name') key, got keys {sorted(manifest)}")


class Design:
    """One design for synthesis.

    Members
    -------
    module : str
        Top Verilog module name.
    key : str
        SHA-256 of the design's Verilog text and module name (the same for a spec and the
        Verilog file generated from it).
    source : dict
        ``{"spec": spec.to_dict()}`` or ``{"verilog": absolute path}``; JSON-able, enough to
        rebuild the design later (:func:`as_design` accepts it).
    """

    def __init__(
        self,
        module: str,
        key: str,
        source: dict[str, Any],
        *,
        spec: spec_mod.Spec | None = None,
        verilog_text: str | None = None,
    ) -> None:
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
        key, text = _spec_key(design)
        return Design(design.name, key, {"spec": design.to_dict()}, spec=design, verilog_text=text)
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
        return Design(
            module, _verilog_key(module, text), {"verilog": str(vpath.resolve()), "module": module}, verilog_text=text
        )
    raise ValueError(
        f"cannot synthesise {design!r}: pass a peforge spec or a (verilog_path, manifest_dict_or_path) pair"
    )
