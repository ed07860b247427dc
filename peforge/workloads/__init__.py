"""Workloads that measure a PE's numerical quality: the digits networks and synthetic tensors."""

from . import digits, tensors

__all__ = ["digits", "tensors"]
