"""Design spaces: PE families with parameter grids, targets and workloads, in Python or TOML.

A space expands to :class:`Point` objects (one spec, one target, optional golden-matmul
options).  A grid combination that the spec rejects becomes an :class:`Invalid` entry naming
the parameter and the reason; it never stops the sweep.

TOML form (see ``default_space.toml``)::

    name = "mine"
    targets = ["ecp5"]
    workloads = ["gaussian", "student_t", "mlp"]
    [tensor]                      # optional: GEMM shape and seed of the tensor workloads
    shape = [64, 256, 64]
    [[pe]]
    family = "mac"
    a = ["e4m3fn", "e5m2"]        # a list is a sweep axis (cartesian product) ...
    b = ["e4m3fn", "e5m2"]
    zip = [["a", "b"]]            # ... unless zipped: a and b vary together
    acc = "fp32"
    [[pe]]
    family = "simd"
    matmul = { mode = ["8x8", "4x4"] }   # keyword options of golden.matmul (lists are axes too)
    [[pe]]
    family = "intmac"
    scaling = ["pe", "channel", "block32"]   # how tensors map onto the formats (a sweep axis)
    [[pe]]
    family = "array"                         # a PE array: its PE as a table (a list is an axis)
    pe = { family = "intmac", a = "int8", b = "int4" }
    rows = [4, 8]
    cols = 8

User workloads (see :mod:`peforge.workloads.registry`) are listed by path or
``"package.module:function"`` in ``workloads``, or defined as tables (appended to the list
unless named in it); relative paths are taken from the space file's directory::

    workloads = ["gaussian", "layers.npz", "mymodels.nets:score", "mycnn"]
    [workload.mycnn]
    onnx = "cnn.onnx"
    inputs = "cnn_inputs.npz"
    limit = 256
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from .. import spec as spec_mod
from ..errors import InputFileError
from ..params import check_names, check_value
from ..workloads.registry import BUILTIN, WorkloadDef, define
from ..workloads.scaling import check_scaling

__all__ = [
    "Point",
    "Invalid",
    "Space",
    "TensorSettings",
    "WORKLOADS",
    "TENSOR_WORKLOADS",
    "NETWORK_WORKLOADS",
    "DEFAULT_WORKLOADS",
    "load_space",
    "default_space",
    "DEFAULT_SPACE_PATH",
]

TENSOR_WORKLOADS = ("gaussian", "laplacian", "student_t")
NETWORK_WORKLOADS = ("mlp", "cnn")
#: What a space measures when it names no workloads (unchanged since the first sweeps).
DEFAULT_WORKLOADS = TENSOR_WORKLOADS + NETWORK_WORKLOADS
#: Every built-in workload name (user workloads: files, ONNX models, callables; see the module docstring).
WORKLOADS = BUILTIN
_RESERVED = ("family", "zip", "matmul", "scaling")
DEFAULT_SPACE_PATH = "default_space.toml"
#: Largest tensor GEMM (n * k * m multiply-adds per workload and point): 64x the default, so a
#: point takes seconds, not hours, through the golden model.
MAX_TENSOR_MACS = 1 << 26


@dataclass(frozen=True)
class TensorSettings:
    """GEMM ``[n, k] @ [k, m]`` of the tensor workloads and the seed of its data."""

    shape: tuple[int, int, int] = (64, 256, 64)
    seed: int = 0

    def __post_init__(self) -> None:
        shape = tuple(self.shape) if isinstance(self.shape, (list, tuple)) else (self.shape,)
        if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in shape):
            shown = list(shape) if isinstance(self.shape, (list, tuple)) else self.shape
            raise ValueError(f"tensor.shape={shown!r}: allowed three integers [n, k, m], each 1..4096")
        if shape[0] * shape[1] * shape[2] > MAX_TENSOR_MACS:
            raise ValueError(
                f"tensor.shape={list(shape)!r}: n*k*m = {shape[0] * shape[1] * shape[2]:,} multiply-adds "
                f"per GEMM; allowed at most {MAX_TENSOR_MACS:,} (every product runs through the golden "
                f"model, at every point)"
            )
        object.__setattr__(self, "shape", shape)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"tensor.seed={self.seed!r}: allowed a non-negative integer")


@dataclass(frozen=True)
class Point:
    """One design point: a spec, a cost target and the keyword options of ``golden.matmul``."""

    spec: spec_mod.Spec
    target: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """Stable identity of the point (result key; ``--resume`` skips finished keys)."""
        opts = "".join(f"|{k}={v}" for k, v in self.options)
        return f"{self.spec.name}|{self.target}{opts}"

    @property
    def label(self) -> str:
        """Short name for tables and plot labels."""
        opts = "".join(f" {v}" for _, v in self.options)
        return f"{self.spec.name}{opts}"

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "target": self.target, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Point":
        return cls(spec_mod.from_dict(data["spec"]), data["target"], tuple(sorted(data["options"].items())))


@dataclass(frozen=True)
class Invalid:
    """A grid combination that could not become a spec: its parameters and the reason."""

    family: str
    params: dict[str, Any]
    reason: str


@dataclass
class Space:
    """A design space: PE entries (family + parameter grid), targets, workloads.

    Parameters
    ----------
    pes : list of dict
        Each ``{"family": name, param: value or list of values, "zip": [[p, q], ...],
        "matmul": {option: value or list}}``; lists are sweep axes.
    targets : list of str
        Cost-model targets, every point is evaluated on each.
    workloads : list of str or WorkloadDef
        Built-in names (:data:`WORKLOADS`), tensor-file or ONNX paths, ``"module:function"``
        callables (relative paths from ``base_dir``, default the working directory).
    tensor : TensorSettings
        GEMM shape and seed of the tensor workloads.
    name : str
        Name shown in the report.
    """

    pes: list[dict[str, Any]]
    targets: list[str] = field(default_factory=lambda: ["ecp5"])
    workloads: list[Any] = field(default_factory=lambda: list(DEFAULT_WORKLOADS))
    tensor: TensorSettings = field(default_factory=TensorSettings)
    name: str = "sweep"
    base_dir: Optional[Path] = None

    def __post_init__(self) -> None:
        if not isinstance(self.pes, list) or not self.pes:
            raise ValueError(f"pe={self.pes!r}: a space needs at least one [[pe]] entry")
        if not self.targets or not all(isinstance(t, str) for t in self.targets):
            raise ValueError(f"targets={self.targets!r}: allowed a non-empty list of target names")
        from peforge.models.cost import parse_target  # cost-model target names are the contract

        for t in self.targets:
            try:
                parse_target(t)
            except ValueError as err:
                raise ValueError(f"targets={self.targets!r}: {err}") from None
        if not isinstance(self.workloads, (list, tuple)):
            raise ValueError(f"workloads={self.workloads!r}: expected a list of workloads")
        self.workloads = [_workload_entry(w, self.base_dir, self.workloads) for w in self.workloads]
        names = [w if isinstance(w, str) else w.name for w in self.workloads]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workloads: the name {dup[0]!r} is used twice (its result columns would clash)")
        if isinstance(self.tensor, Mapping):
            self.tensor = TensorSettings(**self.tensor)
        for i, entry in enumerate(self.pes):
            if not isinstance(entry, Mapping) or "family" not in entry:
                raise ValueError(f"pe[{i}]={entry!r}: each entry needs a 'family' key")
            _check_entry(i, entry)

    # ---- expansion ---------------------------------------------------------------------------
    def expand(self) -> tuple[list[Point], list[Invalid]]:
        """Every valid point (deduplicated, in declaration order) and every invalid combination."""
        points: dict[str, Point] = {}
        invalid: list[Invalid] = []
        for entry in self.pes:
            for family, params, options, error in _expand_entry(entry):
                if error is None:
                    try:
                        spec = spec_mod.families()[family](**params)
                    except (ValueError, TypeError) as err:
                        error = str(err)
                if error is not None:
                    invalid.append(Invalid(family, params, error))
                    continue
                if "scaling" in options:
                    try:
                        check_scaling(spec, options["scaling"], options)
                    except ValueError as err:
                        invalid.append(Invalid(family, {**params, "scaling": options["scaling"]}, str(err)))
                        continue
                for target in self.targets:
                    p = Point(spec, target, tuple(sorted(options.items())))
                    points.setdefault(p.key, p)
        return list(points.values()), invalid

    def points(self) -> list[Point]:
        return self.expand()[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "targets": list(self.targets),
            "workloads": [w if isinstance(w, str) else w.to_dict() for w in self.workloads],
            "tensor": {"shape": list(self.tensor.shape), "seed": self.tensor.seed},
            "pe": [dict(e) for e in self.pes],
        }

    @property
    def digest(self) -> str:
        """Hash of the space (provenance column of every result row)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Optional[Path] = None) -> "Space":
        """A space from TOML data (``[workload.NAME]`` tables are defined relative to ``base_dir``)."""
        allowed = {"name", "targets", "workloads", "tensor", "pe", "workload"}
        extra = sorted(set(data) - allowed)
        if extra:
            raise ValueError(f"space key {extra[0]!r} is unknown: allowed {sorted(allowed)}")
        if not isinstance(data.get("tensor", {}), Mapping):
            raise ValueError(f"tensor={data['tensor']!r}: expected a table ([tensor] with shape and seed)")
        tensor = dict(data.get("tensor", {}))
        bad = sorted(set(tensor) - {"shape", "seed"})
        if bad:
            raise ValueError(f"tensor key {bad[0]!r} is unknown: allowed ['seed', 'shape']")
        pes = data.get("pe", [])
        if isinstance(pes, Mapping):
            raise ValueError(
                "pe is a single table ([pe] in TOML): expected an array of tables, one [[pe]] header per PE entry"
            )
        if not isinstance(pes, list):
            raise ValueError(f"pe={pes!r}: expected an array of tables, one [[pe]] header per PE entry")
        tables = data.get("workload", {})
        if not isinstance(tables, Mapping):
            raise ValueError(f"workload={tables!r}: expected tables [workload.NAME]")
        defs = {name: define(entry, base_dir, name) for name, entry in tables.items()}
        listed = data.get("workloads", list(DEFAULT_WORKLOADS) if not defs else [])
        listed = [listed] if isinstance(listed, str) else listed
        if not isinstance(listed, list) or not all(
            isinstance(w, str) or (isinstance(w, Mapping) and "kind" in w) for w in listed
        ):
            raise ValueError(
                f'workloads={listed!r}: expected a name or a list of names, e.g. workloads = ["gaussian", "model.onnx"]'
            )
        workloads: list[Any] = [defs.pop(w) if isinstance(w, str) and w in defs else w for w in listed]
        workloads += list(defs.values())
        tensor_kw: dict[str, Any] = {
            k: (tuple(v) if k == "shape" and isinstance(v, list) else v) for k, v in tensor.items()
        }
        return cls(
            pes=list(pes),
            targets=_names("targets", data.get("targets", ["ecp5"])),
            workloads=workloads,
            tensor=TensorSettings(**tensor_kw),
            name=str(data.get("name", "sweep")),
            base_dir=base_dir,
        )


def _workload_entry(entry: Any, base_dir: Optional[Path], listed: Any) -> Any:
    """A built-in name as is, anything else as a :class:`WorkloadDef` (ValueError if unknown)."""
    if isinstance(entry, Mapping) and "kind" in entry:
        return WorkloadDef.from_dict(entry)
    if isinstance(entry, str) and entry in BUILTIN:
        return entry
    try:
        return define(entry, base_dir)
    except ValueError as err:
        shown = [w if isinstance(w, str) else w.name if isinstance(w, WorkloadDef) else w for w in listed]
        raise ValueError(f"workloads={shown!r}: {err}") from None


def _names(key: str, value: Any) -> list[str]:
    """A list of names; a single string is a list of one (``targets = "ice40"``)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{key}={value!r}: expected a name or a list of names, e.g. {key} = ["a", "b"]')
    return list(value)


def _has_table(value: Any) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, (list, tuple)) and any(_has_table(v) for v in value)


def _freeze(value: Any) -> Any:
    """An axis value as a hashable spec argument: an inner list (``modes = [["8x8", "4x4"]]``)
    becomes a tuple, and the spec says whether the field takes one."""
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _check_entry(i: int, entry: Mapping[str, Any]) -> None:
    """Structure of one [[pe]] entry: what TOML allows but a space cannot mean."""
    if not isinstance(entry["family"], str):
        raise ValueError(f"pe[{i}].family={entry['family']!r}: expected one family name (a string)")
    zipped = entry.get("zip", [])
    if not isinstance(zipped, list) or not all(
        isinstance(g, list) and g and all(isinstance(n, str) for n in g) for g in zipped
    ):
        raise ValueError(
            f'pe[{i}].zip={zipped!r}: expected a list of lists of parameter names, e.g. zip = [["a", "b"]]'
        )
    matmul = entry.get("matmul", {})
    if not isinstance(matmul, Mapping):
        raise ValueError(
            f"pe[{i}].matmul={matmul!r}: expected a table of golden-matmul options, "
            f'e.g. matmul = {{ mode = ["8x8", "4x4"] }}'
        )
    values = [(k, v) for k, v in entry.items() if k not in _RESERVED] + [(f"matmul.{k}", v) for k, v in matmul.items()]
    nests = getattr(spec_mod.families().get(entry["family"]), "nests_pe", False)
    for name, value in values:
        if nests and name == "pe":  # a PE array: pe = {family = "intmac", a = "int8"} or a list of them
            if not (
                isinstance(value, Mapping)
                or (isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value))
            ):
                raise ValueError(
                    f"pe[{i}].pe={value!r}: expected the PE as a table with its family, e.g. "
                    f'pe = {{ family = "intmac", a = "int8" }}, or a list of such tables'
                )
            continue
        if _has_table(value):
            raise ValueError(
                f"pe[{i}].{name}={value!r}: expected a value or a list of values (one sweep axis), not a table"
            )
        if isinstance(value, list) and not value:
            raise ValueError(f"pe[{i}].{name}=[]: an empty axis gives no design point; expected at least one value")


def _axis(value: Any) -> list[Any]:
    return [_freeze(v) for v in value] if isinstance(value, list) else [value]


def _expand_entry(entry: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], str | None]]:
    """(family, spec params, matmul options, error or None) of every combination of one entry."""
    family = entry["family"]
    fams = spec_mod.families()
    if family not in fams:
        yield (
            family,
            {k: v for k, v in entry.items() if k not in _RESERVED},
            {},
            f"family={family!r} is not registered: allowed {sorted(fams)}",
        )
        return
    params = {k: v for k, v in entry.items() if k not in _RESERVED}
    try:
        check_names(fams[family], sorted(params))
    except ValueError as err:
        yield family, params, {}, str(err)
        return
    options = dict(entry.get("matmul", {}))
    if "scaling" in entry:
        options["scaling"] = entry["scaling"]
    axes: dict[str, list[Any]] = {k: _axis(v) for k, v in params.items()}
    # each axis value checked once against the field's declared limits (peforge.params); the
    # checks that need other fields run when a combination becomes a spec
    bad = {(k, _key(v)): _value_error(fams[family], k, v) for k, vs in axes.items() for v in vs}
    axes.update({f"matmul.{k}": _axis(v) for k, v in options.items()})
    groups: list[tuple[str, ...]] = []
    zipped: set[str] = set()
    for group in entry.get("zip", []):
        names = tuple(n if n in axes else f"matmul.{n}" for n in group)
        missing = [n for n in names if n not in axes]
        lengths = {len(axes[n]) for n in names if n in axes}
        if missing or len(lengths) > 1:
            why = f"{missing[0]} is not a parameter of this entry" if missing else "its lists differ in length"
            yield family, params, options, f"zip={list(group)!r}: {why}"
            return
        groups.append(names)
        zipped.update(names)
    groups += [(n,) for n in axes if n not in zipped]
    choices = [list(zip(*(axes[n] for n in g))) for g in groups]
    for combo in itertools.product(*choices):
        values: dict[str, Any] = {}
        for names, vals in zip(groups, combo):
            values.update(zip(names, vals))
        sp = {k: v for k, v in values.items() if not k.startswith("matmul.")}
        op = {k[7:]: v for k, v in values.items() if k.startswith("matmul.")}
        yield family, sp, op, next((bad[k, _key(v)] for k, v in sp.items() if bad.get((k, _key(v)))), None)


def _key(value: Any) -> str:
    return repr(value)


def _value_error(cls: type, name: str, value: Any) -> str | None:
    try:
        check_value(cls, name, value)
    except ValueError as err:
        return str(err)
    return None


def load_space(path: str | Path) -> Space:
    """Read a space from a TOML file (ValueError naming the file and the bad key on error)."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as err:
        raise InputFileError(f"space file {str(p)!r}: {err.strerror or err} (expected a TOML file)") from None
    except UnicodeDecodeError as err:
        raise ValueError(
            f"space file {str(p)!r}: not UTF-8 text ({err.reason} at byte {err.start}): expected a TOML file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"space file {str(p)!r}: {err}") from None
    try:
        return Space.from_dict(data, base_dir=p.resolve().parent)
    except (ValueError, TypeError) as err:
        raise ValueError(f"space file {str(p)!r}: {err}") from None


def default_space() -> Space:
    """The packaged default space (``peforge/dse/default_space.toml``), minus entries of
    families that are not registered in this build."""
    text = resources.files(__package__).joinpath(DEFAULT_SPACE_PATH).read_text()
    data = tomllib.loads(text)
    fams = spec_mod.families()
    data["pe"] = [e for e in data["pe"] if e["family"] in fams]
    return Space.from_dict(data)
