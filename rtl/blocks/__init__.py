"""Reusable arithmetic building blocks (Amaranth components) shared by the PE generators."""

from .decode import MinifloatDecoder
from .lzc import LeadingZeroCounter
from .round import RoundPack
from .shift import ShiftRightSticky

__all__ = ["LeadingZeroCounter", "MinifloatDecoder", "RoundPack", "ShiftRightSticky"]
