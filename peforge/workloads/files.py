"""Layer operands from the user's files (npz, npy, safetensors), scored per layer.

A file holds named activation / weight pairs, one pair per layer ``L``:

* ``L.x``: activations ``[..., k]`` (leading dimensions are flattened into rows);
* ``L.w``: weights ``[k, m]`` (``y = x @ w``), or ``L.weight``: weights ``[m, k]`` in PyTorch's
  ``nn.Linear`` layout (transposed on loading).

Containers: a ``.npz`` archive, a ``.safetensors`` file (any dtype NumPy or ml_dtypes knows,
bf16 and FP8 included), or a directory of ``.npy`` files named ``L.x.npy`` / ``L.w.npy`` (a single
``L.x.npy`` path means its directory).  Every layer is scored by SQNR and relative error of
the PE's product against the float64 product, as ``<workload>_<L>_sqnr_db`` / ``_rel_err``;
``sqnr_db`` and ``rel_err`` are their means over the layers.  Errors name the file, the tensor
and what was expected.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputFileError
from .base import MatMul, Metrics, Workload
from .tensors import relative_error, sqnr_db

__all__ = ["load_layers", "TensorFileWorkload", "TENSOR_SUFFIXES"]

TENSOR_SUFFIXES = (".npz", ".npy", ".safetensors")
_X, _W, _WT = ".x", ".w", ".weight"
_LAYER = re.compile(r"[^A-Za-z0-9_]")
_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
}


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file (header parsed here so bf16 / FP8 load via ml_dtypes)."""
    import ml_dtypes

    raw = path.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (hlen,) = struct.unpack("<Q", raw[:8])
    try:
        header = json.loads(raw[8 : 8 + hlen])
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: not a safetensors file (its header is not JSON)") from None
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _ST_DTYPES.get(info.get("dtype"))
        if dt is None:
            raise ValueError(
                f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}: expected one of {sorted(_ST_DTYPES)}"
            )
        dtype = np.dtype(getattr(ml_dtypes, dt)) if dt in ("bfloat16", "float8_e4m3fn", "float8_e5m2") else np.dtype(dt)
        begin, end = info["data_offsets"]
        buf = raw[8 + hlen + begin : 8 + hlen + end]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if len(buf) != count * dtype.itemsize:
            raise ValueError(
                f"{path}: tensor {name!r} holds {len(buf)} bytes: expected {count * dtype.itemsize} "
                f"for shape {info['shape']} of {info['dtype']}"
            )
        out[name] = np.frombuffer(buf, dtype=dtype).reshape(info["shape"])
    return out


def _read(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise ValueError(f"{path}: directory holds no .npy files: expected L.x.npy / L.w.npy pairs")
        return {f.name[:-4]: _load_npy(f) for f in files}
    if not path.is_file():
        raise InputFileError(
            f"{path}: no such file: expected a .npz, .safetensors or .npy file or a directory of .npy files"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read(path.parent)
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (ValueError, OSError) as err:
            raise ValueError(f"{path}: not a readable .npz archive ({err})") from None
    if suffix == ".safetensors":
        return _read_safetensors(path)
    raise ValueError(f"{path}: suffix {path.suffix!r} is not a tensor file: expected one of {TENSOR_SUFFIXES}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from None


def _as_float(path: Path, name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "fiu" and "float" not in str(arr.dtype):
        raise ValueError(f"{path}: tensor {name!r} has dtype {arr.dtype}: expected a number array")
    out = np.asarray(arr, np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{path}: tensor {name!r} holds NaN or inf: expected finite operands")
    return out


def load_layers(path: str | Path, rows: Optional[int] = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(layer, x [n, k], w [k, m])`` of every pair in ``path``, in file order (module docstring).

    ``rows`` keeps the first rows of every ``x`` (to bound the work on large activations).
    """
    p = Path(path)
    tensors = _read(p)
    layers: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
    for key, arr in tensors.items():
        for suffix in (_X, _W, _WT):
            if key.endswith(suffix) and len(key) > len(suffix):
                layers.setdefault(key[: -len(suffix)], {})[suffix] = (key, arr)
                break
        else:
            raise ValueError(
                f"{p}: tensor {key!r} is not part of a pair: expected names L.x (activations) and "
                "L.w ([k, m]) or L.weight ([m, k])"
            )
    out = []
    for layer, parts in layers.items():
        if _X not in parts:
            raise ValueError(f"{p}: layer {layer!r} has weights but no activations: expected a tensor {layer + _X!r}")
        if (_W in parts) == (_WT in parts):
            raise ValueError(
                f"{p}: layer {layer!r} needs exactly one of {layer + _W!r} ([k, m]) or {layer + _WT!r} ([m, k])"
            )
        xname, xr = parts[_X]
        wname, wr = parts[_W] if _W in parts else parts[_WT]
        x = _as_float(p, xname, xr)
        w = _as_float(p, wname, wr)
        if x.ndim < 1:
            raise ValueError(f"{p}: tensor {xname!r} is a scalar: expected activations [..., k]")
        if w.ndim != 2:
            raise ValueError(
                f"{p}: tensor {wname!r} has shape {tuple(w.shape)}: expected a matrix "
                f"{'[k, m]' if _W in parts else '[m, k]'}"
            )
        w = w if _W in parts else w.T
        x = x.reshape(-1, x.shape[-1]) if x.ndim != 1 else x[None, :]
        if x.shape[1] != w.shape[0]:
            raise ValueError(
                f"{p}: tensor {wname!r} has shape {tuple(wr.shape)}: expected "
                f"{'[k, m]' if _W in parts else '[m, k]'} with k = {x.shape[1]} (the last "
                f"dimension of {xname!r}, shape {tuple(xr.shape)})"
            )
        if rows is not None:
            x = x[:rows]
        out.append((_LAYER.sub("_", layer), x, w))
    return out


class TensorFileWorkload(Workload):
    """The layers of one tensor file (see the module docstring)."""

    kind = "tensor"

    def __init__(self, name: str, path: str | Path, rows: Optional[int] = None) -> None:
        self.name, self.path, self.rows = name, Path(path), rows
        self._layers: Optional[list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = None

    def layers(self) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
        """``(layer, x, w, float64 x @ w)`` of every pair."""
        if self._layers is None:
            self._layers = [
                (name, x, w, np.einsum("nk,km->nm", x, w, optimize=False))
                for name, x, w in load_layers(self.path, self.rows)
            ]
        return self._layers

    def baseline(self) -> Metrics:
        out: Metrics = {}
        for name, x, w, ref in self.layers():
            out[f"{name}_sqnr_db"] = sqnr_db(ref, (x.astype(np.float32) @ w.astype(np.float32)).astype(np.float64))
        out["sqnr_db"] = float(np.mean([v for v in out.values()]))
        return out

    def score(self, matmul: MatMul) -> Metrics:
        out: Metrics = {}
        sq, rel = [], []
        for name, x, w, ref in self.layers():
            approx = matmul(x, w)
            out[f"{name}_sqnr_db"] = s = sqnr_db(ref, approx)
            out[f"{name}_rel_err"] = r = relative_error(ref, approx)
            sq.append(s)
            rel.append(r)
        out["sqnr_db"] = float(np.mean(sq))
        out["rel_err"] = float(np.mean(rel))
        return out
