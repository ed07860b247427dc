"""Small labelled ONNX CNNs built with ``onnx.helper`` (no downloads), for tests, benches and
the README example.

:func:`digits_cnn` makes a plain CNN on scikit-learn's digits scaled up to ``size x size``
pixels in 3 channels: ``Conv 3x3 (same) -> Relu`` per entry of ``channels``, a 2x2 ``MaxPool``
after the layers in ``pool_after``, ``Flatten`` and a ``Gemm`` classifier.  The convolutions
keep fixed seeded He-initialised weights (random features); only the classifier is fitted, by
ridge regression (strength ``ridge`` relative to the mean feature energy) on the float32
features of the training images, so building takes seconds
and the model still has a real test accuracy.  The default (32x32, channels 16-32-64-64, pools
after the 2nd and 4th conv) costs about 19.4 M multiply-accumulates per image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import digits
from .onnx_model import conv_im2col

__all__ = ["digits_images", "digits_cnn", "save_cnn", "macs_per_image"]


def digits_images(x: np.ndarray, size: int) -> np.ndarray:
    """Digits rows ``[n, 64]`` in [0, 1] as ``[n, 3, size, size]`` float32 images (nearest-neighbour
    upscaling; the channels are the image times 1.0, 0.5 and -0.5, centred)."""
    if size % 8:
        raise ValueError(f"size={size!r}: expected a multiple of 8")
    img = np.kron(x.reshape(-1, 8, 8), np.ones((size // 8, size // 8))) - 0.25
    return np.stack([img, 0.5 * img, -0.5 * img], axis=1).astype(np.float32)


def _maxpool2(h: np.ndarray) -> np.ndarray:
    n, c, hh, ww = h.shape
    return h.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))


def _features(x: np.ndarray, convs: list[tuple[np.ndarray, np.ndarray]], pool_after: Sequence[int]) -> np.ndarray:
    def mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float64)

    h = x
    for i, (w, b) in enumerate(convs):
        h = np.maximum(conv_im2col(mm, h, w, b, pads=[1, 1, 1, 1]), 0.0).astype(np.float32)
        if i in pool_after:
            h = _maxpool2(h)
    return h.reshape(h.shape[0], -1)


def macs_per_image(
    size: int = 32, channels: Sequence[int] = (16, 32, 64, 64), pool_after: Sequence[int] = (1, 3), classes: int = 10
) -> int:
    """Multiply-accumulates of one image through :func:`digits_cnn`'s model."""
    total, c, s = 0, 3, size
    for i, ch in enumerate(channels):
        total += s * s * 9 * c * ch
        c = ch
        if i in pool_after:
            s //= 2
    return total + s * s * c * classes


def digits_cnn(
    size: int = 32,
    channels: Sequence[int] = (16, 32, 64, 64),
    pool_after: Sequence[int] = (1, 3),
    seed: int = 0,
    ridge: float = 0.1,
) -> tuple[Any, dict[str, np.ndarray]]:
    """The model (``ModelProto``, input ``input`` ``[N, 3, size, size]``, output ``logits``) and its
    labelled test inputs (``{"input": ..., "labels": ...}``)."""
    from onnx import TensorProto, helper, numpy_helper

    ds = digits.dataset()
    rng = np.random.default_rng(seed)
    convs, c = [], 3
    for ch in channels:
        w = (rng.standard_normal((ch, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
        convs.append((w, np.zeros(ch, np.float32)))
        c = ch
    x_tr = digits_images(ds.x_train, size)
    feats = np.concatenate([_features(x_tr[s : s + 128], convs, pool_after) for s in range(0, len(x_tr), 128)])
    mean, scale = feats.mean(axis=0), feats.std()  # one global scale: no per-feature blow-up
    f = (feats - mean) / scale
    targets = np.eye(10)[ds.y_train] - 0.1
    gram = f @ f.T  # dual ridge: more features than samples
    coef = np.linalg.solve(gram + ridge * np.trace(gram) / len(gram) * np.eye(len(gram)), targets)
    w_fc = (f.T @ coef) / scale
    b_fc = -mean @ w_fc
    nodes, inits, prev = [], [], "input"
    for i, (w, b) in enumerate(convs):
        inits += [numpy_helper.from_array(w, f"conv{i}.w"), numpy_helper.from_array(b, f"conv{i}.b")]
        nodes.append(
            helper.make_node(
                "Conv", [prev, f"conv{i}.w", f"conv{i}.b"], [f"c{i}"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
        if i in pool_after:
            nodes.append(helper.make_node("MaxPool", [prev], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            prev = f"p{i}"
    nodes.append(helper.make_node("Flatten", [prev], ["flat"], axis=1))
    inits += [
        numpy_helper.from_array(w_fc.astype(np.float32), "fc.w"),
        numpy_helper.from_array(b_fc.astype(np.float32), "fc.b"),
    ]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="peforge")
    model.ir_version = 8
    return model, {"input": digits_images(ds.x_test, size), "labels": ds.y_test.astype(np.int64)}


def save_cnn(directory: str | Path, **kwargs: Any) -> tuple[Path, Path]:
    """Write ``digits_cnn(**kwargs)`` as ``DIR/digits_cnn_<hash>.onnx`` and ``.npz`` (reused when
    present); returns both paths."""
    import onnx

    key = hashlib.sha256(
        json.dumps({k: list(v) if isinstance(v, (tuple, list)) else v for k, v in sorted(kwargs.items())}).encode()
    ).hexdigest()[:10]
    d = Path(directory)
    model_path, inputs_path = d / f"digits_cnn_{key}.onnx", d / f"digits_cnn_{key}.npz"
    if model_path.is_file() and inputs_path.is_file():
        return model_path, inputs_path
    model, inputs = digits_cnn(**kwargs)
    arrays: dict[str, Any] = inputs  # keys input, labels: never one of savez's own keywords
    d.mkdir(parents=True, exist_ok=True)
    for path, write in (
        (inputs_path, lambda fh: np.savez(fh, **arrays)),
        (model_path, lambda fh: fh.write(model.SerializeToString())),
    ):
        fd, tmp = tempfile.mkstemp(dir=d, suffix=path.suffix)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    onnx.checker.check_model(str(model_path))
    return model_path, inputs_path
