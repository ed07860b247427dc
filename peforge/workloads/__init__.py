"""Workloads that measure a PE's numerical quality.

Built in: synthetic tensor pairs (:mod:`.tensors`, including LLM-like outlier channels), the
digits networks (:mod:`.digits`) and a small transformer block (:mod:`.llm`).  From the user:
layer-operand files (:mod:`.files`), ONNX models (:mod:`.onnx_model`) and Python callables
(:mod:`.pycall`), defined through :mod:`.registry`.  :mod:`.scaling` maps real tensors onto a
PE's formats; :mod:`.pe` is the instrumented ``matmul`` every workload receives.
"""

from . import base, digits, registry, scaling, tensors
from .base import Workload, top1_accuracy
from .pe import OutputCounts, PEMatmul
from .registry import BUILTIN, WorkloadDef, define, resolve
from .scaling import Scaling, parse_scaling

__all__ = [
    "base",
    "digits",
    "registry",
    "scaling",
    "tensors",
    "Workload",
    "top1_accuracy",
    "PEMatmul",
    "OutputCounts",
    "WorkloadDef",
    "define",
    "resolve",
    "BUILTIN",
    "Scaling",
    "parse_scaling",
]
