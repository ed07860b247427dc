"""The golden-model entry points and the helpers every family shares.

:func:`run`, :func:`port_widths`, :func:`value` and :func:`matmul` look the spec's family up
in :data:`peforge.families.FAMILIES` and call its ``golden_*`` part (each family's model lives
in its own module of this package); nothing registers itself on import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge.families import family_of

__all__ = [
    "first_flags",
    "run",
    "port_widths",
    "value",
    "matmul",
    "matmul_operands",
    "lane_operand",
    "twos_complement_values",
    "int_accumulate",
    "chain_operands",
    "row_chunks",
    "CHUNK_ELEMS",
]

#: Operand elements per golden-model call of a chunked matmul (bounds memory at a few 10 MB).
CHUNK_ELEMS = 1 << 21


def run(spec: Any, *args: Any, **inputs: Any) -> dict[str, np.ndarray]:
    """Bit-exact outputs of the PE described by ``spec`` for a batch of input sequences.

    Returns one array per output port (the raw unsigned port bits), keyed by port name.
    A PE array also takes its tiles positionally, ``run(array_spec, x_tiles, w_tiles)``, for its
    cycle-level outputs (:func:`peforge.models.golden.array.run_array`).
    """
    return family_of(spec).part("golden_run")(spec, *args, **inputs)


def port_widths(spec: Any) -> dict[str, int]:
    """Widths in bits of the output ports :func:`run` returns."""
    return family_of(spec).part("golden_port_widths")(spec)


def value(spec: Any, acc_bits: Any) -> np.ndarray:
    """Decode raw accumulator port bits to float64 values (for users; not bit-exact data)."""
    return family_of(spec).part("golden_value")(spec, acc_bits)


def matmul(
    spec: Any,
    x: Any,
    w: Any,
    *,
    rotation: str = "none",
    rotation_block: int | None = None,
    rotation_seed: Any = 0,
    **options: Any,
) -> np.ndarray:
    """``x @ w`` computed the way the PE described by ``spec`` computes it.

    ``x`` is ``[n, k]`` real activations (operand ``a``), ``w`` is ``[k, m]`` real weights
    (operand ``b``).  Each family quantises both to its operand formats with power-of-two
    scales (per tensor for ``x``, per output column for ``w``, so scaling adds no rounding;
    block-scaled families use their own block scales), runs every length-``k`` dot product
    through its bit-exact golden model (one accumulation chain per output, including the
    accumulator's rounding), and returns the ``[n, m]`` float64 result with the scales undone.
    ``options`` go to the family's matmul (e.g. the SIMD PE's ``mode``, the block-dot PE's
    ``clip`` / ``rounding`` / ``seed``).

    ``rotation`` (``"none"``, ``"hadamard"`` or ``"random-hadamard"``, block
    ``rotation_block``, signs seeded by ``rotation_seed``) rotates ``x``'s rows and ``w``'s
    columns before quantisation (:func:`peforge.rotation.rotate_matmul`): the product is
    unchanged before quantisation, the operands' outliers are spread over each block.
    Used by the design-space sweeps and the examples to measure numerical quality.
    """
    if rotation != "none":
        from peforge.rotation import rotate_matmul

        xa, wa = matmul_operands(x, w)
        x, w = rotate_matmul(xa, wa, rotation, rotation_block, rotation_seed)
    else:
        from peforge.rotation import check_rotation

        check_rotation(rotation, rotation_block)
    return family_of(spec).part("golden_matmul")(spec, x, w, **options)


def lane_operand(arr: Any, lanes: int, name: str) -> np.ndarray:
    """Operand codes as ``[batch, steps, lanes]`` (``[batch, steps]`` accepted for one lane)."""
    x = np.asarray(arr)
    if x.ndim == 2 and lanes == 1:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] != lanes:
        raise ValueError(f"{name} must have shape [batch, steps, {lanes}], got {x.shape}")
    return x


def matmul_operands(x: Any, w: Any) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``w`` as float64 ``[n, k]`` and ``[k, m]``; ValueError on bad shapes or NaN/inf."""
    xa = np.asarray(x, dtype=np.float64)
    wa = np.asarray(w, dtype=np.float64)
    if xa.ndim != 2 or wa.ndim != 2 or xa.shape[1] != wa.shape[0]:
        raise ValueError(f"x must be [n, k] and w [k, m] with the same k, got x {xa.shape}, w {wa.shape}")
    if not (np.isfinite(xa).all() and np.isfinite(wa).all()):
        raise ValueError("x and w must be finite (no NaN or inf)")
    return xa, wa


def twos_complement_values(acc_bits: Any, width: int) -> np.ndarray:
    """float64 values of raw ``width``-bit two's complement port bits (any width)."""
    bits = np.asarray(acc_bits).astype(object)
    ints = [int(v) - (1 << width) if int(v) >> (width - 1) else int(v) for v in bits.ravel()]
    return np.array(ints, dtype=np.float64).reshape(bits.shape)


def int_accumulate(sums: Any, start: Any, width: int, *, saturate: bool = False) -> np.ndarray:
    """The integer accumulator of every integer PE: ``acc := (start ? 0 : acc) + sums[t]`` per
    step, wrapped to ``width``-bit two's complement (or clamped to its range with ``saturate``)
    after each step.

    ``sums`` ``[batch, steps, ...]`` exact step sums (trailing axes: independent lanes),
    ``start`` ``[batch, steps]``.  Returns the signed accumulator after every step, int64 when
    ``width <= 62`` and ``sums`` is int64, else Python ints (``dtype=object``).
    """
    sums = np.asarray(sums)
    start = np.asarray(start, dtype=bool)
    wide = width > 62 or sums.dtype == object
    dt = object if wide else np.int64
    sums = sums.astype(dt)
    lo, hi, mod = -(1 << (width - 1)), (1 << (width - 1)) - 1, 1 << width
    lanes = (1,) * (sums.ndim - 2)
    acc = np.zeros(sums.shape[:1] + sums.shape[2:], dtype=dt)
    out = np.empty(sums.shape, dtype=dt)
    for t in range(sums.shape[1]):
        acc = np.where(start[:, t].reshape(-1, *lanes), 0, acc) + sums[:, t]
        acc = np.minimum(np.maximum(acc, lo), hi) if saturate else (acc - lo) % mod + lo
        out[:, t] = acc
    return out


def chain_operands(
    xq: np.ndarray, wq: np.ndarray, lanes: int, steps: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Operands ``[n*m, steps, lanes]`` of every output's chain of a matmul (row-major over
    ``(i, j)``): ``xq`` ``[n, k]`` and ``wq`` ``[k, m]`` lane values (codes or integers), the
    ``k`` axis zero-padded to ``steps * lanes`` (default: the fewest steps that hold ``k``)."""
    n, k = xq.shape
    m = wq.shape[1]
    steps = max(1, -(-k // lanes)) if steps is None else steps
    pad = steps * lanes - k
    xp = np.pad(xq, ((0, 0), (0, pad))).reshape(n, 1, steps, lanes)
    wp = np.pad(wq, ((0, pad), (0, 0))).T.reshape(1, m, steps, lanes)
    return (
        np.broadcast_to(xp, (n, m, steps, lanes)).reshape(n * m, steps, lanes),
        np.broadcast_to(wp, (n, m, steps, lanes)).reshape(n * m, steps, lanes),
    )


def row_chunks(n: int, elems_per_row: int) -> list[tuple[int, int]]:
    """``(r0, r1)`` row ranges of a matmul's ``n`` output rows, each chunk at most about
    :data:`CHUNK_ELEMS` operand elements (``elems_per_row`` per output row)."""
    rows = max(1, CHUNK_ELEMS // max(1, elems_per_row))
    return [(r0, min(n, r0 + rows)) for r0 in range(0, n, rows)]


def first_flags(first: Any, dims: str) -> np.ndarray:
    """``first`` as a 2-D bool array (0/1 integers accepted), else a ValueError naming the
    expected ``[batch, <dims>]`` shape or the bad dtype."""
    arr = np.asarray(first)
    if arr.ndim != 2:
        raise ValueError(f"first must have shape [batch, {dims}], got shape {arr.shape}")
    if arr.dtype != bool:
        if arr.dtype.kind not in "ui" or (arr.size and arr.max() > 1):
            raise ValueError(f"first must be bool (or 0/1 integers), got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr
