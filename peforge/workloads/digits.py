"""Network-level workloads on scikit-learn's bundled digits set (8x8 images, no downloads).

Two small networks, trained once with NumPy (Adam, cross-entropy, fixed seed) and cached:

* :func:`mlp`: 64 -> 64 -> 10 fully connected, ReLU.
* :func:`cnn`: 3x3 conv (8 channels, same padding) -> ReLU -> 2x2 max pool -> 128 -> 10 dense.
  The convolution runs as an im2col matrix product, so *every* multiply-accumulate of both
  networks goes through one ``matmul(x, w)`` call that a caller may replace, e.g. by
  ``functools.partial(peforge.models.golden.matmul, spec)`` to execute the network with a PE's
  bit-exact numerics.

Weights are cached as ``.npz`` under ``$PEFORGE_CACHE/workloads`` (else ``build/workloads`` of
the project checkout, else ``~/.cache/peforge/workloads``), keyed by a hash of the training
hyper-parameters, so a sweep trains each network at most once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import numpy as np

from .base import top1_accuracy

__all__ = [
    "Dataset",
    "Dense",
    "Network",
    "MatMul",
    "dataset",
    "mlp",
    "cnn",
    "float32_matmul",
    "cache_dir",
    "mlp_accuracy",
    "cnn_accuracy",
]

MatMul = Callable[[np.ndarray, np.ndarray], np.ndarray]
_TRAIN_VERSION = 1  # bump when the training code changes, to invalidate cached weights


def float32_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The float32 baseline every PE is compared with (NumPy ``float32`` matmul)."""
    return (np.asarray(x, np.float32) @ np.asarray(w, np.float32)).astype(np.float64)


@dataclass(frozen=True)
class Dataset:
    """Train/test split of the digits set; pixels scaled to [0, 1], labels 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@lru_cache(maxsize=1)
def dataset() -> Dataset:
    """The fixed 70/30 stratified split (seed 0) of ``sklearn.datasets.load_digits``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.3, random_state=0, stratify=digits.target)
    for arr in (x_tr, x_te, y_tr, y_te):
        arr.setflags(write=False)
    return Dataset(x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64))


@dataclass(frozen=True)
class Dense:
    """One matrix product ``x @ w + b`` (a conv layer stores its im2col kernel matrix here)."""

    w: np.ndarray  # [k, m]
    b: np.ndarray  # [m]


def _im2col(x: np.ndarray) -> np.ndarray:
    """``[n, 8, 8, c]`` -> ``[n*64, 9*c]`` patches of a 3x3 same-padded convolution."""
    n, h, w, c = x.shape
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [pad[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)]
    return np.concatenate(cols, axis=3).reshape(n * h * w, 9 * c)


def _maxpool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pool of ``[n, 8, 8, c]``; also the argmax mask for backprop."""
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // 2, 2, w // 2, 2, c)
    out = blocks.max(axis=(2, 4))
    mask = blocks == out[:, :, None, :, None, :]
    return out, mask


@dataclass(frozen=True)
class Network:
    """A trained digits classifier whose every matrix product can be replaced.

    Members
    -------
    kind : ``"mlp"`` or ``"cnn"``
    layers : the :class:`Dense` matrix products in execution order
    """

    kind: Literal["mlp", "cnn"]
    layers: tuple[Dense, ...]

    def _products(self, x: np.ndarray, matmul: MatMul) -> tuple[np.ndarray, list[np.ndarray]]:
        x = np.asarray(x, np.float64)
        inputs: list[np.ndarray] = []

        def product(h: np.ndarray, layer: Dense) -> np.ndarray:
            inputs.append(h)
            return np.asarray(matmul(h, layer.w), np.float64) + layer.b

        if self.kind == "mlp":
            h = x
            for i, layer in enumerate(self.layers):
                h = product(h, layer)
                if i < len(self.layers) - 1:
                    h = np.maximum(h, 0.0)
            return h, inputs
        n = x.shape[0]
        conv, dense = self.layers
        h = product(_im2col(x.reshape(n, 8, 8, 1)), conv).reshape(n, 8, 8, -1)
        h, _ = _maxpool(np.maximum(h, 0.0))
        return product(h.reshape(n, -1), dense), inputs

    def forward(self, x: np.ndarray, matmul: Optional[MatMul] = None) -> np.ndarray:
        """Logits of ``x`` ``[n, 64]``; ``matmul(x, w)`` replaces every ``x @ w`` (default float32)."""
        return self._products(x, matmul or float32_matmul)[0]

    def accuracy(self, matmul: Optional[MatMul] = None, n: Optional[int] = None) -> float:
        """Test-set accuracy (first ``n`` test images if given) with ``matmul`` for every product;
        an image whose logits hold a NaN counts as wrong."""
        ds = dataset()
        x, y = (ds.x_test, ds.y_test) if n is None else (ds.x_test[:n], ds.y_test[:n])
        return top1_accuracy(self.forward(x, matmul), y)

    def layer_inputs(self, x: np.ndarray) -> list[np.ndarray]:
        """The activation matrices that feed each matrix product (float32 run), in order."""
        return self._products(x, float32_matmul)[1]


# ---- training --------------------------------------------------------------------------------

_HYPER = {
    "mlp": {"hidden": 64, "epochs": 60, "batch": 64, "lr": 3e-3, "seed": 0},
    "cnn": {"channels": 8, "epochs": 40, "batch": 64, "lr": 3e-3, "seed": 0},
}


def cache_dir() -> Path:
    """Where trained weights live (see the module docstring)."""
    env = os.environ.get("PEFORGE_CACHE")
    if env:
        return Path(env).expanduser() / "workloads"
    project = Path(__file__).resolve().parent.parent.parent
    if (project / "pyproject.toml").is_file():
        return project / "build" / "workloads"
    return Path.home() / ".cache" / "peforge" / "workloads"


class _Adam:
    def __init__(self, params: list[np.ndarray], lr: float) -> None:
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.lr * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def _softmax_grad(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p / len(y)


def _he(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / k), size=(k, m))


def _train_mlp(h: dict) -> list[np.ndarray]:
    ds, rng = dataset(), np.random.default_rng(h["seed"])
    w1, b1 = _he(rng, 64, h["hidden"]), np.zeros(h["hidden"])
    w2, b2 = _he(rng, h["hidden"], 10), np.zeros(10)
    params = [w1, b1, w2, b2]
    opt = _Adam(params, h["lr"])
    for _ in range(h["epochs"]):
        order = rng.permutation(len(ds.y_train))
        for s in range(0, len(order), h["batch"]):
            idx = order[s : s + h["batch"]]
            x, y = ds.x_train[idx], ds.y_train[idx]
            z1 = x @ w1 + b1
            a1 = np.maximum(z1, 0.0)
            g2 = _softmax_grad(a1 @ w2 + b2, y)
            g1 = (g2 @ w2.T) * (z1 > 0)
            opt.step([x.T @ g1, g1.sum(0), a1.T @ g2, g2.sum(0)])
    return params


def _train_cnn(h: dict) -> list[np.ndarray]:
    ds, rng, c = dataset(), np.random.default_rng(h["seed"]), h["channels"]
    wc, bc = _he(rng, 9, c), np.zeros(c)
    wd, bd = _he(rng, 16 * c, 10), np.zeros(10)
    params = [wc, bc, wd, bd]
    opt = _Adam(params, h["lr"])
    for _ in range(h["epochs"]):
        order = rng.permutation(len(ds.y_train))
        for s in range(0, len(order), h["batch"]):
            idx = order[s : s + h["batch"]]
            n, y = len(idx), ds.y_train[idx]
            cols = _im2col(ds.x_train[idx].reshape(n, 8, 8, 1))
            z = (cols @ wc + bc).reshape(n, 8, 8, c)
            a = np.maximum(z, 0.0)
            pooled, mask = _maxpool(a)
            flat = pooled.reshape(n, -1)
            gd = _softmax_grad(flat @ wd + bd, y)
            gp = (gd @ wd.T).reshape(n, 4, 1, 4, 1, c) * mask
            gz = gp.reshape(n, 8, 8, c) * (z > 0)
            gz2 = gz.reshape(n * 64, c)
            opt.step([cols.T @ gz2, gz2.sum(0), flat.T @ gd, gd.sum(0)])
    return params


def _load_or_train(kind: Literal["mlp", "cnn"]) -> Network:
    hyper = {"kind": kind, "version": _TRAIN_VERSION, **_HYPER[kind]}
    key = hashlib.sha256(json.dumps(hyper, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"digits-{kind}-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            params = [data[f"p{i}"] for i in range(4)]
    else:
        params = (_train_mlp if kind == "mlp" else _train_cnn)(_HYPER[kind])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")  # atomic: no half-written cache
        with os.fdopen(fd, "wb") as fh:
            arrays: dict[str, Any] = {f"p{i}": p for i, p in enumerate(params)}
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    for p in params:
        p.setflags(write=False)
    return Network(kind, (Dense(params[0], params[1]), Dense(params[2], params[3])))


@lru_cache(maxsize=None)
def mlp() -> Network:
    """The trained 64-64-10 MLP (trained on first use, then loaded from the cache)."""
    return _load_or_train("mlp")


@lru_cache(maxsize=None)
def cnn() -> Network:
    """The trained conv(3x3x8)-pool-dense CNN (trained on first use, then cached)."""
    return _load_or_train("cnn")


def mlp_accuracy(matmul: MatMul) -> dict[str, float]:
    """The ``mlp`` workload as a Python callable (``peforge.workloads.digits:mlp_accuracy``)."""
    return {"acc": mlp().accuracy(matmul)}


def cnn_accuracy(matmul: MatMul) -> dict[str, float]:
    """The ``cnn`` workload as a Python callable (``peforge.workloads.digits:cnn_accuracy``)."""
    return {"acc": cnn().accuracy(matmul)}
