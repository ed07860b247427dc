"""Helpers shared by the block and generator constructors."""

from __future__ import annotations

__all__ = ["invalid"]


def invalid(component: object, message: str) -> ValueError:
    """A ValueError for a rejected constructor argument.

    Also marks the half-built component as used, so Amaranth does not add an
    "UnusedElaboratable" warning to the error.
    """
    component._MustUse__silence = True  # type: ignore[attr-defined]
    return ValueError(message)
