"""Helpers shared by the block and generator constructors."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, Mapping, TypeVar

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...geometry import range_bits

__all__ = ["invalid", "range_shape", "SpecComponent", "pe_signature"]

S = TypeVar("S")


def range_shape(lo: int, hi: int) -> Shape:
    """Shape of a signal holding ``lo..hi``: unsigned when ``lo >= 0``, else two's complement,
    as narrow as the range allows (:func:`peforge.geometry.range_bits`)."""
    bits = range_bits(lo, hi)
    return unsigned(bits) if lo >= 0 else signed(bits)


def invalid(component: object, message: str, kind: type[Exception] = ValueError) -> Exception:
    """A ValueError (or ``kind``) for a rejected constructor argument.

    Also marks the half-built component as used, so Amaranth does not add an
    "UnusedElaboratable" warning to the error.
    """
    component._MustUse__silence = True  # type: ignore[attr-defined]
    return kind(message)


class SpecComponent(wiring.Component, Generic[S]):
    """A generator: the component one spec of :attr:`spec_class` describes, with the interface
    ``signature(spec)`` gives.  A spec of another class is a TypeError naming the class the
    generator takes; :meth:`check` rejects specs of the class that the generator cannot build."""

    spec_class: ClassVar[type[Any]]

    def __init__(self, spec: S, signature: Callable[[S], wiring.Signature]) -> None:
        if not isinstance(spec, self.spec_class):
            raise invalid(self, f"{type(self).__name__} needs a {self.spec_class.__name__}, got {spec!r}", TypeError)
        self.check(spec)
        self._spec = spec
        super().__init__(signature(spec))

    def check(self, spec: S) -> None:
        """Raise :func:`invalid` for a spec this generator cannot build (default: none)."""

    @property
    def spec(self) -> S:
        return self._spec


def pe_signature(
    inputs: Mapping[str, int], outputs: Mapping[str, int], before_valid: Mapping[str, int] | None = None
) -> wiring.Signature:
    """Ports of a PE (clk / rst come from the sync domain), in the order every family emits
    them: the input strobes ``in_valid`` and ``in_first``, the ``inputs`` (name -> width),
    ``before_valid`` outputs (a handshake such as ``in_ready``), the output strobe
    ``out_valid``, the ``outputs``."""
    members: dict[str, Any] = {"in_valid": In(1), "in_first": In(1)}
    members.update((name, In(width)) for name, width in inputs.items())
    members.update((name, Out(width)) for name, width in (before_valid or {}).items())
    members["out_valid"] = Out(1)
    members.update((name, Out(width)) for name, width in outputs.items())
    return wiring.Signature(members)
