"""Score one PE on one workload (what ``peforge evaluate`` runs)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Optional

from .pe import PEMatmul
from .registry import default_name, define, resolve

__all__ = ["evaluate"]


def evaluate(
    spec: Any,
    workload: Any,
    *,
    scaling: str = "pe",
    options: Optional[Mapping[str, Any]] = None,
    base_dir: Optional[Path] = None,
    shape: tuple[int, int, int] = (64, 256, 64),
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``spec`` on ``workload`` (a built-in name, a path, ``"module:function"``, or a
    table such as ``{"onnx": "m.onnx", "inputs": "x.npz"}``), with the float baseline as
    ``baseline_<metric>``, ``acc_drop`` for networks with an ``acc``, ``overflow_frac`` /
    ``nan_frac`` of the PE's outputs and ``seconds``.

    ``shape`` and ``seed`` set the built-in tensor workloads' GEMM.
    """
    defn = define(workload, base_dir, name=default_name(workload) if isinstance(workload, Mapping) else None)
    wl = resolve(defn, tuple(shape), seed)
    matmul = PEMatmul(spec, {**dict(options or {}), "scaling": scaling})
    base = wl.baseline()
    t0 = time.perf_counter()
    metrics = wl.score(matmul)
    seconds = time.perf_counter() - t0
    out: dict[str, Any] = {
        "workload": wl.name,
        "kind": wl.kind,
        "spec": spec.name,
        "scaling": matmul.scaling.text,
        **metrics,
    }
    if wl.kind == "network" and "acc" in metrics and "acc" in base:
        out["acc_drop"] = base["acc"] - metrics["acc"]
    out.update({f"baseline_{k}": v for k, v in base.items()})
    out["overflow_frac"] = matmul.counts.overflow_frac
    out["nan_frac"] = matmul.counts.nan_frac
    out["outputs"] = matmul.counts.outputs
    out["seconds"] = round(seconds, 3)
    return out
