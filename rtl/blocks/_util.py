"""Helpers shared by the block and generator constructors."""

from __future__ import annotations

from amaranth.hdl import Shape, signed, unsigned

from ...geometry import range_bits

__all__ = ["invalid", "range_shape"]


def range_shape(lo: int, hi: int) -> Shape:
    """Shape of a signal holding ``lo..hi``: unsigned when ``lo >= 0``, else two's complement,
    as narrow as the range allows (:func:`peforge.geometry.range_bits`)."""
    bits = range_bits(lo, hi)
    return unsigned(bits) if lo >= 0 else signed(bits)


def invalid(component: object, message: str) -> ValueError:
    """A ValueError for a rejected constructor argument.

    Also marks the half-built component as used, so Amaranth does not add an
    "UnusedElaboratable" warning to the error.
    """
    component._MustUse__silence = True  # type: ignore[attr-defined]
    return ValueError(message)
