"""Spec fields that declare their limits once: :func:`param` metadata on the dataclass fields.

A spec field says, in one place, what it accepts: a help text, an integer range (fixed, or
bounded by a property of the fields it ``needs``), allowed values, or a converter (a format
name to its format object), and its CLI flag.  From that one declaration come the spec's
validation (:func:`validate`, run by :class:`peforge.spec.Spec` on construction), the CLI
options of every per-PE command (:func:`cli_options`) and the design-space checker
(:func:`check_names`, :func:`check_value`).  So the CLI can no longer drift from the spec.

A converted field is typed as what it is after conversion: ``a: Converted[FloatFormat,
FloatFormat | str]`` reads as a :class:`~peforge.formats.FloatFormat`, and the constructor
takes a format or its name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

__all__ = [
    "Param",
    "Converted",
    "param",
    "params",
    "validate",
    "check_value",
    "check_names",
    "CliOption",
    "cli_options",
]

Out = TypeVar("Out")
In = TypeVar("In")
#: Converter of a field: ``(spec, field name, value) -> converted value``; raises ValueError
#: naming the field, the value and what is allowed.  ``spec`` holds the fields it ``needs``.
Converter = Callable[[Any, str, Any], Any]


class Converted(Generic[Out, In]):
    """Type of a spec field that its :func:`param` converter converts on construction: an
    instance reads ``Out``, the constructor takes ``In`` (a type annotation only: the field is a
    plain attribute at run time)."""

    def __get__(self, obj: object, owner: Any) -> Out:
        raise TypeError("Converted is a type annotation, not a value")

    def __set__(self, obj: object, value: In) -> None:
        raise TypeError("Converted is a type annotation, not a value")


@dataclass(frozen=True)
class Param:
    """What one spec field accepts (the field's ``metadata["param"]``).

    Parameters
    ----------
    help : str
        One-line meaning of the field (CLI help, docs).
    lo, hi : int, str or None
        Integer range, inclusive; a string names a spec attribute computed from the fields in
        ``needs`` (``lo="product_bits"``).
    choices : tuple or None
        Allowed values.
    convert : callable or None
        ``(spec, name, value) -> value``: parses / converts the value (see :data:`Converter`).
    allowed : str or None
        What is allowed, in words, where the range and choices do not say it (CLI help).
    needs : tuple of str
        Fields the converter or a bound reads: they are validated first.
    derive : callable or None
        ``spec -> value`` for a None value (a default that depends on other fields).
    flag : str or None
        CLI flag (default ``--`` + the field name with ``-`` for ``_``).
    cli : type or None
        Value type on the command line (default: bool, int or str from the field).
    """

    help: str
    lo: int | str | None = None
    hi: int | str | None = None
    choices: Optional[tuple[Any, ...]] = None
    convert: Optional[Converter] = None
    allowed: Optional[str] = None
    needs: tuple[str, ...] = ()
    derive: Optional[Callable[[Any], Any]] = None
    flag: Optional[str] = None
    cli: Optional[type] = None

    @property
    def is_int(self) -> bool:
        return self.lo is not None or self.hi is not None

    def describe(self) -> str:
        """What is allowed, in words."""
        if self.allowed:
            return self.allowed
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        if self.is_int:
            return f"{_bound_text(self.lo)}..{_bound_text(self.hi)}"
        return ""


def _bound_text(bound: int | str | None) -> str:
    return bound.replace("_", " ") if isinstance(bound, str) else str(bound)


def param(default: Any = dataclasses.MISSING, help: str = "", **limits: Any) -> Any:
    """A dataclass field whose limits are declared once (see :class:`Param`); no ``default``
    makes the field required."""
    meta = {"param": Param(help, **limits)}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


FieldParams = tuple[tuple[dataclasses.Field[Any], Param], ...]
_PARAMS: dict[type, FieldParams] = {}
_ORDER: dict[type, FieldParams] = {}


def params(cls: type) -> FieldParams:
    """``(field, Param)`` of every field of the spec class ``cls``, in declaration order; a
    field without :func:`param` metadata raises TypeError naming it."""
    if cls in _PARAMS:
        return _PARAMS[cls]
    out = []
    for f in dataclasses.fields(cls):
        p = f.metadata.get("param")
        if not isinstance(p, Param):
            raise TypeError(
                f"{cls.__name__}.{f.name} declares no limits: give it a peforge.params.param(...) "
                "default (help, range or allowed values)"
            )
        out.append((f, p))
    _PARAMS[cls] = tuple(out)
    return _PARAMS[cls]


def _order(cls: type) -> FieldParams:
    """Validation order: the fields that read no other field, then the others in declaration
    order (each after the fields it ``needs``)."""
    if cls in _ORDER:
        return _ORDER[cls]
    static = [(f, p) for f, p in params(cls) if not _dynamic(p)]
    dynamic = [(f, p) for f, p in params(cls) if _dynamic(p)]
    seen = {f.name for f, _ in static}
    for f, p in dynamic:
        missing = [n for n in p.needs if n not in seen]
        if missing:
            raise TypeError(
                f"{cls.__name__}.{f.name} needs {missing}: not fields of the class, or fields declared "
                "after it that need others"
            )
        seen.add(f.name)
    _ORDER[cls] = tuple(static + dynamic)
    return _ORDER[cls]


def _dynamic(p: Param) -> bool:
    return bool(p.needs) or isinstance(p.lo, str) or isinstance(p.hi, str)


def _check(spec: Any, f: dataclasses.Field[Any], p: Param, value: Any) -> Any:
    """The field's value after its conversion and checks (ValueError naming field and value)."""
    name = f.name
    if value is None:
        if p.derive is not None:
            value = p.derive(spec)
        elif p.convert is None:  # a converter decides what None means
            if f.default is None:
                return None
            raise ValueError(f"{name}=None is not allowed: {p.describe() or 'give a value'}")
    if p.convert is not None:
        value = p.convert(spec, name, value)
    if p.choices is not None:
        if isinstance(value, bool) != any(isinstance(c, bool) for c in p.choices) or value not in p.choices:
            raise ValueError(f"{name}={value!r} is not allowed: use one of {p.choices}")
    if p.is_int:
        lo = getattr(spec, p.lo) if isinstance(p.lo, str) else p.lo
        hi = getattr(spec, p.hi) if isinstance(p.hi, str) else p.hi
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise ValueError(f"{name}={value!r} is out of range: allowed integers {lo}..{hi}")
    if isinstance(f.default, bool) and not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be True or False")
    return value


def validate(spec: Any) -> None:
    """Convert and check every field of ``spec`` in place (a frozen dataclass: set through
    ``object.__setattr__``); ValueError naming the first bad field, its value and what is allowed."""
    for f, p in _order(type(spec)):
        value = getattr(spec, f.name)
        new = _check(spec, f, p, value)
        if new is not value:
            object.__setattr__(spec, f.name, new)


def check_names(cls: type, names: Any) -> None:
    """ValueError naming the first of ``names`` that is not a field of ``cls``."""
    allowed = [f.name for f, _ in params(cls)]
    for n in names:
        if n not in allowed:
            raise ValueError(
                f"{n}: not a parameter of family {getattr(cls, 'family', cls.__name__)!r}; allowed {sorted(allowed)}"
            )


def check_value(cls: type, name: str, value: Any) -> None:
    """Check one value of field ``name`` on its own (ValueError naming it and what is allowed);
    values whose checks need other fields pass here and are checked when the spec is built."""
    for f, p in params(cls):
        if f.name == name:
            if _dynamic(p):
                return
            _check(None, f, p, value)
            return
    check_names(cls, [name])


# --- CLI options ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CliOption:
    """One command-line option of a spec field: parameter name, flag, value type, default
    (:data:`dataclasses.MISSING` when required) and help text."""

    name: str
    flag: str
    type: Any
    default: Any
    help: str

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING


def cli_options(cls: type) -> list[CliOption]:
    """The CLI options of every field of the spec class ``cls``, from its :class:`Param` metadata."""
    out = []
    for f, p in params(cls):
        default = f.default
        if p.cli is not None:
            kind: Any = p.cli
        elif isinstance(default, bool):
            kind = bool
        elif p.is_int or (p.choices and all(isinstance(c, int) for c in p.choices)):
            kind = int
        else:
            kind = str
        if default is None:
            kind = Optional[kind]
        if default is not dataclasses.MISSING and kind is str and default is not None:
            default = str(default)
        allowed = p.describe()
        text = p.help + (f" (allowed: {allowed})" if allowed and kind is not bool else "")
        out.append(CliOption(f.name, p.flag or "--" + f.name.replace("_", "-"), kind, default, text))
    return out
