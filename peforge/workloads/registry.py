"""Workload definitions: built-in names, user files, ONNX models and Python callables.

A definition comes from a space TOML or the CLI as a string or a table:

* a built-in name (:data:`BUILTIN`: the tensor pairs, ``mlp``, ``cnn``, ``tiny_lm``);
* a tensor file path (``.npz``, ``.npy``, ``.safetensors`` or a directory of ``.npy``; see
  :mod:`.files`), named after the file;
* an ONNX model path (``.onnx``), its inputs in the ``.npz`` of the same name;
* ``"package.module:function"`` (see :mod:`.pycall`), named after the function;
* a table ``{name = {tensors = PATH, rows = N}}``, ``{name = {onnx = PATH, inputs = PATH,
  limit = N, batch = N, labels = KEY, metric = "module:function"}}`` or
  ``{name = {callable = "module:function", options = {...}}}``.

Relative paths are taken from ``base_dir`` (the space file's directory) and stored absolute;
a :class:`WorkloadDef` is plain data (hashable, JSON round trip), sent to sweep workers, which
build the :class:`~.base.Workload` once per process with :func:`resolve`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .base import Workload, check_name
from .files import TENSOR_SUFFIXES

__all__ = ["WorkloadDef", "define", "default_name", "resolve", "BUILTIN", "BUILTIN_CALLABLES", "TENSOR_BUILTINS"]

#: Built-in network workloads and the callables that compute them.
BUILTIN_CALLABLES = {
    "mlp": "peforge.workloads.digits:mlp_accuracy",
    "cnn": "peforge.workloads.digits:cnn_accuracy",
    "tiny_lm": "peforge.workloads.llm:tiny_lm",
}
TENSOR_BUILTINS = ("gaussian", "laplacian", "student_t", "outliers", "llm")
BUILTIN = TENSOR_BUILTINS + tuple(BUILTIN_CALLABLES)
_KEYS = {"tensors": {"rows"}, "onnx": {"inputs", "limit", "batch", "labels", "metric"}, "callable": {"options"}}
_ALLOWED = (
    f"a built-in ({', '.join(BUILTIN)}), a tensor file ({', '.join(TENSOR_SUFFIXES)} or a directory of "
    ".npy), an ONNX model (.onnx) or 'package.module:function'"
)


@dataclass(frozen=True)
class WorkloadDef:
    """One workload as data: ``kind`` is ``builtin``, ``tensors``, ``onnx`` or ``callable``."""

    name: str
    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WorkloadDef":
        return cls(d["name"], d["kind"], _freeze(d.get("params", {})))


def _freeze(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        sorted((k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in params.items())
    )


def _path(value: Any, base_dir: Optional[Path], what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}={value!r}: expected a file path")
    p = Path(value).expanduser()
    return str((base_dir / p) if base_dir is not None and not p.is_absolute() else p.absolute())


def _stem(path: str) -> str:
    p = Path(path)
    stem = p.name if p.is_dir() else p.name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "workload"
    return ("w_" + name) if name[0].isdigit() else name


def default_name(entry: Any) -> str:
    """Column prefix a workload gets when it is not named: the built-in name, the file's stem
    or the function's name."""
    if isinstance(entry, Mapping):
        for key in ("onnx", "tensors"):
            if isinstance(entry.get(key), str):
                return _stem(entry[key])
        ref = entry.get("callable")
        return ref.split(":")[-1] if isinstance(ref, str) and ":" in ref else "workload"
    if isinstance(entry, str):
        return (
            entry.split(":")[1]
            if ":" in entry and not entry.endswith(TENSOR_SUFFIXES + (".onnx",))
            else (entry if entry in BUILTIN else _stem(entry))
        )
    return "workload"


def define(entry: Any, base_dir: Optional[Path] = None, name: Optional[str] = None) -> WorkloadDef:
    """A :class:`WorkloadDef` from a string or (with ``name``) a table (module docstring)."""
    base = None if base_dir is None else Path(base_dir)
    if isinstance(entry, WorkloadDef):
        return entry
    if isinstance(entry, Mapping):
        name = check_name(name, "workload name")
        kinds = [k for k in _KEYS if k in entry]
        if len(kinds) != 1:
            raise ValueError(f"workload {name!r}: {dict(entry)!r} needs exactly one of 'tensors', 'onnx', 'callable'")
        kind = kinds[0]
        extra = sorted(set(entry) - _KEYS[kind] - {kind})
        if extra:
            raise ValueError(
                f"workload {name!r}: key {extra[0]!r} is unknown for {kind}: allowed {sorted(_KEYS[kind] | {kind})}"
            )
        params = dict(entry)
        search = {} if base is None else {"search_path": str(base)}
        if kind == "tensors":
            params["tensors"] = _path(params["tensors"], base, f"workload {name!r}: tensors")
        elif kind == "onnx":
            params["onnx"] = _path(params["onnx"], base, f"workload {name!r}: onnx")
            if "inputs" not in params:
                raise ValueError(f"workload {name!r}: an ONNX workload needs 'inputs' (a .npz of its input samples)")
            params["inputs"] = _path(params["inputs"], base, f"workload {name!r}: inputs")
            params.update(search)
        else:
            if not isinstance(params.get("options", {}), Mapping):
                raise ValueError(f"workload {name!r}: options={params['options']!r}: expected a table")
            params.update(search)
        return WorkloadDef(name, kind, _freeze(params))
    if not isinstance(entry, str) or not entry:
        raise ValueError(f"workload {entry!r}: expected {_ALLOWED}")
    if entry in BUILTIN:
        return WorkloadDef(entry, "builtin")
    from .pycall import is_callable_ref

    search = {} if base is None else {"search_path": str(base)}
    if is_callable_ref(entry) and not entry.endswith(TENSOR_SUFFIXES + (".onnx",)):
        return WorkloadDef(name or entry.split(":")[1], "callable", _freeze({"callable": entry, **search}))
    lower = entry.lower()
    path = _path(entry, base, "workload")
    if lower.endswith(".onnx"):
        inputs = str(Path(path).with_suffix(".npz"))
        return WorkloadDef(name or _stem(path), "onnx", _freeze({"onnx": path, "inputs": inputs, **search}))
    if lower.endswith(TENSOR_SUFFIXES) or Path(path).is_dir():
        return WorkloadDef(name or _stem(path), "tensors", _freeze({"tensors": path}))
    raise ValueError(f"{entry!r} is unknown: expected {_ALLOWED}")


def _params(defn: WorkloadDef) -> dict[str, Any]:
    out = {}
    for k, v in defn.params:
        out[k] = json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v
    return out


@lru_cache(maxsize=None)
def resolve(defn: WorkloadDef, shape: tuple[int, int, int] = (64, 256, 64), seed: int = 0) -> Workload:
    """The :class:`~.base.Workload` of ``defn`` (cached per process); ``shape`` and ``seed`` are
    those of the built-in tensor workloads."""
    p = _params(defn)
    builders: dict[str, Callable[[], Workload]] = {
        "builtin": lambda: _builtin(defn.name, shape, seed),
        "tensors": lambda: _tensors(defn.name, p),
        "onnx": lambda: _onnx(defn.name, p),
        "callable": lambda: _callable(defn.name, p),
    }
    if defn.kind not in builders:
        raise ValueError(f"workload {defn.name!r}: kind {defn.kind!r} is unknown: allowed {sorted(builders)}")
    return builders[defn.kind]()


def _builtin(name: str, shape: tuple[int, int, int], seed: int) -> Workload:
    from .pycall import CallableWorkload
    from .tensors import TensorWorkload

    if name in BUILTIN_CALLABLES:
        return CallableWorkload(name, BUILTIN_CALLABLES[name])
    return TensorWorkload(name, shape, seed)


def _tensors(name: str, p: dict[str, Any]) -> Workload:
    from .files import TensorFileWorkload

    rows = p.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise ValueError(f"workload {name!r}: rows={rows!r}: expected a positive integer")
    return TensorFileWorkload(name, p["tensors"], rows)


def _onnx(name: str, p: dict[str, Any]) -> Workload:
    from .onnx_model import OnnxWorkload

    return OnnxWorkload(
        name,
        p["onnx"],
        p["inputs"],
        limit=p.get("limit"),
        batch=p.get("batch", 64),
        labels=p.get("labels", "labels"),
        metric=p.get("metric"),
        search_path=p.get("search_path"),
    )


def _callable(name: str, p: dict[str, Any]) -> Workload:
    from .pycall import CallableWorkload

    return CallableWorkload(name, p["callable"], p.get("options"), p.get("search_path"))
