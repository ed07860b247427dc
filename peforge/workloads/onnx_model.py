"""ONNX models as workloads: every MatMul / Gemm / Conv runs through the PE's ``matmul``.

The model runs on ``onnx.reference.ReferenceEvaluator`` (NumPy, no ONNX Runtime) with three
operator implementations replaced: ``MatMul`` (batched, broadcasting), ``Gemm`` (``alpha``,
``beta``, ``transA`` / ``transB``, bias ``C``) and ``Conv`` (any spatial rank, ``group``,
``strides``, ``pads``, ``dilations``, ``auto_pad``) as one im2col matrix product per group.
Everything else (ReLU, pooling, softmax, reshapes, ...) runs as the reference implements it,
in the model's own dtype; the PE's products return to that dtype.  Bias and ``alpha`` /
``beta`` are applied after the PE (an output stage), not in its accumulator.

Inputs are a ``.npz`` with one array per graph input (named as the graph input, batch first)
and optionally ``labels`` (integer class per sample).  The samples run in batches of
``batch`` (activation scales are dynamic per call, i.e. per batch).  Metrics: ``acc``, top-1
accuracy of the first output against ``labels`` (without labels: against the float run's
prediction), ``agree`` (top-1 agreement with the float run), ``out_sqnr_db`` (SQNR of the
first output against the float run) and, with ``metric = "package.module:function"``, what
``function(outputs, reference, labels)`` returns.  The float run (float32 products) is
computed once per process.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import InputFileError
from .base import MatMul, Metrics, Workload, check_metrics, top1_accuracy
from .pycall import float32_matmul, load_callable
from .tensors import sqnr_db

__all__ = ["OnnxWorkload", "run_model", "load_model", "pe_ops", "conv_im2col"]


# ---- operator implementations ---------------------------------------------------------------


def _matmul_nd(mm: MatMul, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy.matmul semantics with every 2-D product through ``mm``."""
    a1, b1 = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if a1 else a
    b2 = b[:, None] if b1 else b
    if b2.ndim == 2:
        out = np.asarray(mm(a2.reshape(-1, a2.shape[-1]), b2)).reshape(a2.shape[:-1] + (b2.shape[1],))
    else:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        ab = np.broadcast_to(a2, batch + a2.shape[-2:])
        bb = np.broadcast_to(b2, batch + b2.shape[-2:])
        out = np.empty(batch + (a2.shape[-2], b2.shape[-1]))
        for idx in np.ndindex(*batch):
            out[idx] = mm(ab[idx], bb[idx])
    if a1:
        out = out[..., 0, :]
    if b1:
        out = out[..., 0]
    return out


def _conv_pads(
    x_shape: tuple[int, ...],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    pads: Optional[list[int]],
    auto_pad: Any,
) -> list[int]:
    auto = auto_pad.decode() if isinstance(auto_pad, bytes) else (auto_pad or "NOTSET")
    nd = len(kernel)
    if auto in ("NOTSET", ""):
        return list(pads) if pads else [0] * (2 * nd)
    if auto == "VALID":
        return [0] * (2 * nd)
    begin, end = [], []
    for size, k, s, d in zip(x_shape, kernel, strides, dilations):
        total = max(0, (math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def conv_im2col(
    mm: MatMul,
    x: np.ndarray,
    w: np.ndarray,
    b: Optional[np.ndarray] = None,
    *,
    auto_pad: Any = "NOTSET",
    dilations: Optional[list[int]] = None,
    group: Optional[int] = None,
    kernel_shape: Optional[list[int]] = None,
    pads: Optional[list[int]] = None,
    strides: Optional[list[int]] = None,
) -> np.ndarray:
    """ONNX ``Conv`` of ``x`` ``[N, C, *spatial]`` and ``w`` ``[M, C/group, *kernel]``: one
    ``mm(patches [N*P, C/group*K], kernel [C/group*K, M/group])`` per group, float64 result."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    nd = len(spatial)
    kernel = list(kernel_shape or w.shape[2:])
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    group = int(group or 1)
    pad = _conv_pads(spatial, kernel, strides, dilations, pads, auto_pad)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pad[i], pad[i + nd]) for i in range(nd)])
    out_shape = [
        (spatial[i] + pad[i] + pad[i + nd] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1 for i in range(nd)
    ]
    slices = []
    for offs in itertools.product(*(range(k) for k in kernel)):
        idx = tuple(
            slice(o * d, o * d + s * (size - 1) + 1, s) for o, d, s, size in zip(offs, dilations, strides, out_shape)
        )
        slices.append(xp[(slice(None), slice(None)) + idx])
    cols = np.stack(slices, axis=2)  # [N, C, K, *out]
    cols = np.moveaxis(cols, (1, 2), (-2, -1))  # [N, *out, C, K]
    m = w.shape[0]
    cg, mg = c // group, m // group
    outs = []
    for g in range(group):
        patches = cols[..., g * cg : (g + 1) * cg, :].reshape(-1, cg * len(slices))
        kmat = w[g * mg : (g + 1) * mg].reshape(mg, -1).T
        y = np.asarray(mm(patches, kmat), np.float64).reshape([n] + out_shape + [mg])
        outs.append(np.moveaxis(y, -1, 1))
    out = np.concatenate(outs, axis=1) if group > 1 else outs[0]
    if b is not None:
        out = out + np.asarray(b, np.float64).reshape([1, m] + [1] * nd)
    return out


def pe_ops(mm: MatMul) -> list[type]:
    """``MatMul``, ``Gemm`` and ``Conv`` implementations (``new_ops``) computing through ``mm``."""
    from onnx.reference.op_run import OpRun

    class MatMul(OpRun):  # noqa: D101 - names must equal the ONNX op types
        op_domain = ""

        def _run(self, a, b):
            return (_matmul_nd(mm, a, b).astype(a.dtype),)

    class Gemm(OpRun):  # noqa: D101
        op_domain = ""

        def _run(self, a, b, c=None, alpha=None, beta=None, transA=None, transB=None):
            y = np.asarray(mm(a.T if transA else a, b.T if transB else b), np.float64)
            alpha = 1.0 if alpha is None else alpha
            beta = 1.0 if beta is None else beta
            y = y * alpha if alpha != 1.0 else y
            if c is not None:
                y = y + beta * np.asarray(c, np.float64)
            return (y.astype(a.dtype),)

    class Conv(OpRun):  # noqa: D101
        op_domain = ""

        def _run(
            self, X, W, B=None, auto_pad=None, dilations=None, group=None, kernel_shape=None, pads=None, strides=None
        ):
            return (
                conv_im2col(
                    mm,
                    X,
                    W,
                    B,
                    auto_pad=auto_pad,
                    dilations=dilations,
                    group=group,
                    kernel_shape=kernel_shape,
                    pads=pads,
                    strides=strides,
                ).astype(X.dtype),
            )

    return [MatMul, Gemm, Conv]


# ---- model and inputs -----------------------------------------------------------------------

_NP_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}


def load_model(path: str | Path) -> Any:
    """The checked ``ModelProto`` of ``path`` (ValueError naming the file)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such ONNX model file")
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as err:  # noqa: BLE001 - protobuf / checker errors have many types
        raise ValueError(f"{p}: not a valid ONNX model ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    return model


def _graph_inputs(model: Any) -> list[Any]:
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _load_inputs(
    model: Any, model_path: Path, inputs_path: Path, labels_key: str, limit: Optional[int]
) -> tuple[dict[str, np.ndarray], Optional[np.ndarray]]:
    if not inputs_path.is_file():
        raise InputFileError(
            f"{inputs_path}: no such input file: expected a .npz with one array per graph input "
            f"of {model_path.name} and optionally {labels_key!r}"
        )
    try:
        with np.load(inputs_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as err:
        raise ValueError(f"{inputs_path}: not a readable .npz archive ({err})") from None
    feeds: dict[str, np.ndarray] = {}
    count: Optional[int] = None
    for gi in _graph_inputs(model):
        ttype = gi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
        if gi.name not in arrays:
            raise ValueError(
                f"{inputs_path}: no tensor {gi.name!r}: expected one array per graph input of "
                f"{model_path.name} ({[i.name for i in _graph_inputs(model)]}), batch first"
            )
        arr = arrays[gi.name]
        want = "[" + ", ".join("N" if i == 0 else (str(d) if d else "?") for i, d in enumerate(dims)) + "]"
        if arr.ndim != len(dims) or any(d and i > 0 and arr.shape[i] != d for i, d in enumerate(dims)):
            raise ValueError(
                f"{inputs_path}: tensor {gi.name!r} has shape {tuple(arr.shape)}: expected {want} "
                f"(graph input {gi.name!r} of {model_path.name})"
            )
        dtype = _NP_TYPES.get(ttype.elem_type)
        if dtype is None:
            raise ValueError(
                f"{model_path}: graph input {gi.name!r} has element type {ttype.elem_type}: "
                "expected float, float16 or double"
            )
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{inputs_path}: tensor {gi.name!r} has dtype {arr.dtype}: expected numbers")
        if count is not None and arr.shape[0] != count:
            raise ValueError(
                f"{inputs_path}: tensor {gi.name!r} has {arr.shape[0]} samples: expected {count} like the other inputs"
            )
        count = arr.shape[0]
        feeds[gi.name] = arr.astype(dtype)
    labels = arrays.get(labels_key)
    if labels is not None:
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or (count is not None and len(labels) != count):
            raise ValueError(
                f"{inputs_path}: tensor {labels_key!r} has shape {tuple(labels.shape)} and dtype "
                f"{labels.dtype}: expected integer class labels [{count}]"
            )
    if limit is not None:
        feeds = {k: v[:limit] for k, v in feeds.items()}
        labels = None if labels is None else labels[:limit]
    return feeds, labels


def run_model(model: Any, feeds: dict[str, np.ndarray], mm: MatMul, batch: int = 64) -> np.ndarray:
    """First output of ``model`` on ``feeds`` (batch first), ``batch`` samples per run."""
    from onnx.reference import ReferenceEvaluator

    sess = ReferenceEvaluator(model, new_ops=pe_ops(mm))
    total = next(iter(feeds.values())).shape[0] if feeds else 1
    outs = []
    for s in range(0, max(total, 1), batch):
        part = {k: v[s : s + batch] for k, v in feeds.items()}
        res = sess.run(None, part)
        assert isinstance(res, list)  # the outputs in order (a dict only with intermediate=True)
        outs.append(np.asarray(res[0]))
    return np.concatenate(outs, axis=0)


class OnnxWorkload(Workload):
    """An ONNX model and its labelled inputs (see the module docstring)."""

    kind = "network"

    def __init__(
        self,
        name: str,
        model: str | Path,
        inputs: str | Path,
        *,
        limit: Optional[int] = None,
        batch: int = 64,
        labels: str = "labels",
        metric: Optional[str] = None,
        search_path: Optional[str] = None,
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"workload {name!r}: batch={batch!r}: expected a positive integer")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"workload {name!r}: limit={limit!r}: expected a positive integer")
        self.name, self.model_path, self.inputs_path = name, Path(model), Path(inputs)
        self.batch, self.limit, self.labels_key = batch, limit, labels
        self.metric_ref = metric
        self._metric: Optional[Callable[..., Any]] = load_callable(metric, search_path) if metric else None
        self._loaded: Optional[tuple[Any, dict[str, np.ndarray], Optional[np.ndarray]]] = None
        self._reference: Optional[np.ndarray] = None

    def load(self) -> tuple[Any, dict[str, np.ndarray], Optional[np.ndarray]]:
        """Model, input feeds and labels (checked once)."""
        if self._loaded is None:
            model = load_model(self.model_path)
            feeds, labels = _load_inputs(model, self.model_path, self.inputs_path, self.labels_key, self.limit)
            self._loaded = (model, feeds, labels)
        return self._loaded

    def run(self, mm: MatMul) -> np.ndarray:
        model, feeds, _ = self.load()
        return run_model(model, feeds, mm, self.batch)

    def reference(self) -> np.ndarray:
        """First output of the float run (float32 products), computed once."""
        if self._reference is None:
            self._reference = self.run(float32_matmul)
        return self._reference

    def _metrics(self, out: np.ndarray) -> Metrics:
        _, _, labels = self.load()
        ref = self.reference()
        n = ref.shape[0]
        ref_top = np.argmax(ref.reshape(n, -1), axis=1)
        metrics: Metrics = {
            "acc": top1_accuracy(out, labels if labels is not None else ref_top),
            "agree": top1_accuracy(out, ref_top),
            "out_sqnr_db": sqnr_db(ref.astype(np.float64), out.astype(np.float64)),
        }
        if self._metric is not None:
            metrics.update(
                check_metrics(self._metric(out, ref, labels), f"metric {self.metric_ref!r} of workload {self.name!r}")
            )
        return metrics

    def baseline(self) -> Metrics:
        return self._metrics(self.reference())

    def score(self, matmul: MatMul) -> Metrics:
        return self._metrics(self.run(matmul))
