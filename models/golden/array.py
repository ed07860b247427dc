"""Golden model of PE arrays (:class:`peforge.arrays.ArraySpec`), built on the PE's own model.

Three views, all computed with the PE family's golden ``run`` (never the array's RTL):

* :func:`run_array` ``(spec, x_tiles, w_tiles, **ports)`` -- the array's cycle-level outputs
  for a stream of tiles fed at full rate (:func:`schedule`): ``out_valid`` and ``out`` of every
  cycle, as the RTL must produce them.
* :func:`run_array` ``(spec, a=..., b=..., first=..., **ports)`` -- the step-level state: after
  every step, every PE's accumulator (output-stationary) or every column's partial sum
  (weight-stationary), packed into one word (the family contract's view).
* :func:`matmul_array` ``(spec, x, w)`` -- a real GEMM tiled over the array: the PE family
  quantises ``x`` and ``w`` exactly as its own ``golden.matmul`` does (its code path runs
  unchanged up to its compiled-kernel hook, :func:`peforge.models.golden.kernels.routed`), then
  every tile runs through :func:`run_array`, and the family undoes its scales.  Output-
  stationary tiles give each output one PE chain in ``k`` order (the PE's rounding order);
  weight-stationary tiles add integer partial sums down the columns and across ``k`` tiles
  modulo ``2**width``.  Either way the result equals the PE's ``golden.matmul``, which
  ``tests/test_array.py`` checks for every family.

Operand shapes (``*a`` / ``*b``: the PE model's per-step shape of ``a`` / ``b``, e.g. ``(lanes,)``,
``(group,)`` or ``(block,)``): output-stationary ``x_tiles [T, R, S, *a]``, ``w_tiles
[T, S, C, *b]``, row ports (``scale_a``) ``[T, R, S]``, column ports (``scale_b``, ``scale``)
``[T, S, C]``, array-wide ports (``mode``, ``a_signed``, ``b_signed``) ``[T, S]``;
weight-stationary ``x_tiles [T, M, R, *a]`` (M activation rows per weight tile), ``w_tiles
[T, R, C, *b]``, array-wide ports ``[T, M]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from peforge.arrays import COL, CTL, ROW, ArrayGeometry, ArraySpec, array_geometry, cycles_per_step

from . import kernels
from .base import run as _pe_run
from .base import value as _pe_value

__all__ = [
    "run_array",
    "array_port_widths",
    "array_value",
    "matmul_array",
    "schedule",
    "Schedule",
    "tile_results",
    "TILERS",
]


# --- stimulus layout --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """When every input of a tile stream is presented (full rate) and every output leaves.

    Members
    -------
    cycles : int
        Cycles of the whole stream, the last output included.
    step_cycle : ndarray [T, S]
        OS: input cycle of each step's first beat.  WS: cycle of each activation ``[T, M]``.
    beat_cycles : ndarray [T, S, beats]
        OS: cycle of every beat (valid input) of every step.
    last_cycle : ndarray [T]
        OS: cycle of each tile's ``in_last`` input (its last beat).
    load_cycle : ndarray [T, R]
        WS: cycle of each ``w_load`` (row ``R - 1 - r`` of the tile at ``load_cycle[t, r]``).
    out_cycle : ndarray
        OS ``[T, R]``: cycle of each result row.  WS ``[T, M]``: of each activation's row.
    """

    cycles: int
    step_cycle: np.ndarray
    beat_cycles: np.ndarray
    last_cycle: np.ndarray
    load_cycle: np.ndarray
    out_cycle: np.ndarray


def schedule(spec: ArraySpec, tiles: int, steps: int, gap: int = 0) -> Schedule:
    """The full-rate input layout of ``tiles`` tiles of ``steps`` steps (OS) or activation rows
    (WS), plus ``gap`` idle cycles between tiles (and whatever the protocol needs)."""
    geo = array_geometry(spec)
    if tiles < 1 or steps < 1 or gap < 0:
        raise ValueError(f"tiles={tiles}, steps={steps}, gap={gap}: allowed tiles >= 1, steps >= 1, gap >= 0")
    per = cycles_per_step(geo)
    beats, interval = geo.unit.beats, geo.unit.interval
    if geo.dataflow == "output-stationary":
        step_cycle = np.zeros((tiles, steps), np.int64)
        start = 0
        last = np.zeros(tiles, np.int64)
        for t in range(tiles):
            if t:
                start = max(start, last[t - 1] + geo.min_last_gap - (steps - 1) * per - (beats - 1))
            step_cycle[t] = start + per * np.arange(steps)
            last[t] = step_cycle[t, -1] + beats - 1
            start = step_cycle[t, -1] + per + gap
        beat_cycles = step_cycle[..., None] + np.arange(beats) * interval
        out = last[:, None] + geo.latency + np.arange(geo.rows)
        return Schedule(int(out.max()) + 1, step_cycle, beat_cycles, last, np.zeros((tiles, 0), np.int64), out)
    loads = np.zeros((tiles, geo.rows), np.int64)
    acts = np.zeros((tiles, steps), np.int64)
    for t in range(tiles):
        # a tile's loads follow the previous tile's loads and wait until its first activation has
        # swapped the shadow weights into every PE; its activations follow its loads
        first_load = 0 if t == 0 else max(int(loads[t - 1, -1]) + 1, int(acts[t - 1, 0]) + geo.ws_swap_window)
        loads[t] = first_load + np.arange(geo.rows)
        begin = int(loads[t, -1]) + 1
        if t:
            begin = max(begin, int(acts[t - 1, -1]) + interval + gap)
        acts[t] = begin + interval * np.arange(steps)
    out = acts + geo.latency
    return Schedule(int(out.max()) + 1, acts, acts[..., None], acts[:, -1], loads, out)


# --- inputs -----------------------------------------------------------------------------------------
def _role_inputs(
    geo: ArrayGeometry,
    ports: dict[str, Any],
    shape_row: tuple[int, ...],
    shape_col: tuple[int, ...],
    shape_ctl: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Every PE port other than ``a`` / ``b`` as an array of its role's shape (ValueError for a
    missing or unknown port)."""
    want = {n: r for n, (r, _) in geo.pe.inputs.items() if n not in ("a", "b")}
    extra = sorted(set(ports) - set(want))
    if extra:
        raise ValueError(
            f"{extra[0]}=... is not a port of {geo.pe.spec.name}: its ports beyond a and b are {sorted(want) or 'none'}"
        )
    out = {}
    for name, role in want.items():
        if name not in ports:
            raise ValueError(f"{name} is required: {geo.pe.spec.name} has a {role} port {name!r}")
        shape = {ROW: shape_row, COL: shape_col, CTL: shape_ctl}[role]
        arr = np.asarray(ports[name])
        if arr.ndim == 0 and role == CTL:
            arr = np.broadcast_to(arr, shape)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {list(shape)} ({role} port), got {list(arr.shape)}")
        out[name] = arr
    return out


def _pe_outputs(geo: ArrayGeometry, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The PE's golden run on a batch of chains (the PE as specified, whatever the grid builds)."""
    return _pe_run(geo.pe.spec, **inputs)


def _as_codes(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "uiob":
        raise ValueError(f"operand codes must be integers, got dtype {arr.dtype}")
    return arr


# --- output-stationary --------------------------------------------------------------------------------
def _os_results(
    geo: ArrayGeometry, x: np.ndarray, w: np.ndarray, ports: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """PE port bits ``[T, R, C]`` (acc, flags) after each tile's last step."""
    T, R, S = x.shape[:3]
    C = w.shape[2]
    a = np.broadcast_to(x[:, :, None], (T, R, C, *x.shape[2:])).reshape(T * R * C, *x.shape[2:])
    wt = np.moveaxis(w, 2, 1)  # [T, C, S, *b]
    b = np.broadcast_to(wt[:, None], (T, R, *wt.shape[1:])).reshape(T * R * C, S, *w.shape[3:])
    first = np.zeros((T * R * C, S), bool)
    first[:, 0] = True
    inputs: dict[str, Any] = {"a": a, "b": b, "first": first}
    for name, arr in ports.items():
        role = geo.pe.inputs[name][0]
        if role == ROW:
            full = np.broadcast_to(arr[:, :, None, :], (T, R, C, S))
        elif role == COL:
            full = np.broadcast_to(np.moveaxis(arr, 2, 1)[:, None], (T, R, C, S))
        else:
            full = np.broadcast_to(arr[:, None, None, :], (T, R, C, S))
        inputs[name] = full.reshape(T * R * C, S)
    out = _pe_outputs(geo, inputs)
    acc = out["acc"][:, -1].reshape(T, R, C)
    flags = out["acc_flags"][:, -1].reshape(T, R, C) if "acc_flags" in out else None
    return acc, flags


def _check_os(spec: ArraySpec, geo: ArrayGeometry, x: np.ndarray, w: np.ndarray) -> None:
    R, C = geo.rows, geo.cols
    if x.ndim < 3 or x.shape[1] != R:
        raise ValueError(f"x_tiles must have shape [tiles, {R}, steps, ...] (rows = {R}), got {list(x.shape)}")
    if w.ndim < 3 or w.shape[2] != C or w.shape[:2] != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"w_tiles must have shape [{x.shape[0]}, {x.shape[2]}, {C}, ...] (tiles, steps, cols = "
            f"{C}), got {list(w.shape)}"
        )
    dq = spec.dequant_share
    if dq is not None and x.shape[2] % dq.group:
        raise ValueError(
            f"steps={x.shape[2]}: a tile of the shared group dequantiser must hold whole groups "
            f"(a multiple of group={dq.group})"
        )


def _tiles_os(spec: ArraySpec, x_tiles: Any, w_tiles: Any, gap: int, ports: dict[str, Any]) -> dict[str, Any]:
    geo = array_geometry(spec)
    x, w = _as_codes(x_tiles), _as_codes(w_tiles)
    _check_os(spec, geo, x, w)
    T, R, S = x.shape[:3]
    C = geo.cols
    extras = _role_inputs(geo, ports, (T, R, S), (T, S, C), (T, S))
    acc, flags = _os_results(geo, x, w, extras)
    sch = schedule(spec, T, S, gap)
    return _out_cycles(geo, sch, acc, flags)


def _empty_out(n: int, cols: int, width: int) -> np.ndarray:
    return np.zeros((n, cols), dtype=object if width > 64 else np.uint64)


def _out_cycles(geo: ArrayGeometry, sch: Schedule, acc: np.ndarray, flags: np.ndarray | None) -> dict[str, Any]:
    """The output ports cycle by cycle: each result row ``acc [T, n, C]`` (and its flags) on its
    scheduled cycle, ``out_valid`` there (either dataflow)."""
    n = sch.cycles
    out = _empty_out(n, geo.cols, geo.out_width)
    valid = np.zeros(n, bool)
    cyc = sch.out_cycle.reshape(-1)
    out[cyc] = acc.reshape(-1, geo.cols)
    valid[cyc] = True
    res: dict[str, Any] = {"out_valid": valid, "out": out, "results": acc, "schedule": sch}
    if flags is not None:
        fl = np.zeros((n, geo.cols), np.uint64)
        fl[cyc] = flags.reshape(-1, geo.cols)
        res["out_flags"] = fl
        res["result_flags"] = flags
    return res


# --- weight-stationary --------------------------------------------------------------------------------
def _lane_sum(geo: ArrayGeometry, parts: np.ndarray, axis: int) -> np.ndarray:
    """Sum of PE accumulator port words along ``axis``, lane-wise modulo ``2**lane_width``."""
    lanes, lw = geo.pe.acc_lanes, geo.pe.lane_width
    wide = geo.pe.acc_width > 63
    words = parts.astype(object) if wide else parts.astype(np.uint64)
    total: Any = None
    for ln in range(lanes):
        part: Any
        if wide:
            big = (words >> (ln * lw)) & ((1 << lw) - 1)
            part = (big.sum(axis=axis) % (1 << lw)) << (ln * lw)
        else:
            small = (words >> np.uint64(ln * lw)) & np.uint64((1 << lw) - 1)
            part = (small.sum(axis=axis, dtype=np.uint64) & np.uint64((1 << lw) - 1)) << np.uint64(ln * lw)
        total = part if total is None else total | part
    return total


def _ws_results(
    geo: ArrayGeometry, x: np.ndarray, w: np.ndarray, ports: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Column sums ``[T, M, C]`` (and ORed flags) of every activation row of every tile."""
    T, M, R = x.shape[:3]
    C = w.shape[2]
    # PE (i, j): steps = the M activations of chunk i, each a chain of its own (first = 1)
    a = np.broadcast_to(np.moveaxis(x, 2, 1)[:, :, None], (T, R, C, M, *x.shape[3:])).reshape(
        T * R * C, M, *x.shape[3:]
    )
    b = np.broadcast_to(w[:, :, :, None], (T, R, C, M, *w.shape[3:])).reshape(T * R * C, M, *w.shape[3:])
    inputs: dict[str, Any] = {"a": a, "b": b, "first": np.ones((T * R * C, M), bool)}
    for name, arr in ports.items():
        role = geo.pe.inputs[name][0]
        if role != CTL:
            raise ValueError(f"{name}: weight-stationary arrays take only array-wide ports besides a and b")
        inputs[name] = np.broadcast_to(arr[:, None, None, :], (T, R, C, M)).reshape(T * R * C, M)
    out = _pe_outputs(geo, inputs)
    acc = np.asarray(out["acc"]).reshape(T, R, C, M)
    sums = _lane_sum(geo, np.moveaxis(acc, 3, 1), axis=2)  # [T, M, C]
    flags = None
    if "acc_flags" in out:
        f = np.asarray(out["acc_flags"], np.uint64).reshape(T, R, C, M)
        flags = np.bitwise_or.reduce(np.moveaxis(f, 3, 1), axis=2)
    return sums, flags


def _tiles_ws(spec: ArraySpec, x_tiles: Any, w_tiles: Any, gap: int, ports: dict[str, Any]) -> dict[str, Any]:
    geo = array_geometry(spec)
    x, w = _as_codes(x_tiles), _as_codes(w_tiles)
    R, C = geo.rows, geo.cols
    if x.ndim < 3 or x.shape[2] != R:
        raise ValueError(f"x_tiles must have shape [tiles, activations, {R}, ...], got {list(x.shape)}")
    if w.ndim < 3 or w.shape[:3] != (x.shape[0], R, C):
        raise ValueError(f"w_tiles must have shape [{x.shape[0]}, {R}, {C}, ...], got {list(w.shape)}")
    T, M = x.shape[:2]
    extras = _role_inputs(geo, ports, (T, M, R), (T, M, C), (T, M))
    sums, flags = _ws_results(geo, x, w, extras)
    return _out_cycles(geo, schedule(spec, T, M, gap), sums, flags)


# --- step view (the family contract) ------------------------------------------------------------------
def _pack_words(words: np.ndarray, width: int) -> np.ndarray:
    """``[..., n]`` port words -> ``[...]`` Python ints, word ``k`` at bits ``[k*width +: width]``."""
    flat = words.reshape(-1, words.shape[-1])
    out = np.empty(flat.shape[0], dtype=object)
    for r, row in enumerate(flat.tolist()):
        v = 0
        for k, x in enumerate(row):
            v |= int(x) << (k * width)
        out[r] = v
    return out.reshape(words.shape[:-1])


def _steps_view(spec: ArraySpec, a: Any, b: Any, first: Any, ports: dict[str, Any]) -> dict[str, np.ndarray]:
    geo = array_geometry(spec)
    R, C = geo.rows, geo.cols
    av, bv = _as_codes(a), _as_codes(b)
    fv = np.asarray(first, bool)
    if fv.ndim != 2:
        raise ValueError(f"first must have shape [batch, steps], got {list(fv.shape)}")
    B, S = fv.shape
    if av.shape[:3] != (B, S, R):
        raise ValueError(f"a must have shape [{B}, {S}, {R}, ...] (batch, steps, rows), got {list(av.shape)}")
    if geo.dataflow == "output-stationary":
        if bv.shape[:3] != (B, S, C):
            raise ValueError(f"b must have shape [{B}, {S}, {C}, ...] (batch, steps, cols), got {list(bv.shape)}")
        extras = _role_inputs(geo, ports, (B, S, R), (B, S, C), (B, S))
        x = np.moveaxis(av, 2, 1)  # [B, R, S, *a]
        inputs: dict[str, Any] = {
            "a": np.broadcast_to(x[:, :, None], (B, R, C, *x.shape[2:])).reshape(B * R * C, *x.shape[2:])
        }
        wt = np.moveaxis(bv, 2, 1)  # [B, C, S, *b]
        inputs["b"] = np.broadcast_to(wt[:, None], (B, R, *wt.shape[1:])).reshape(B * R * C, *wt.shape[2:])
        inputs["first"] = np.broadcast_to(fv[:, None, None], (B, R, C, S)).reshape(B * R * C, S)
        for name, arr in extras.items():
            role = geo.pe.inputs[name][0]
            full = (
                np.moveaxis(arr, 2, 1)[:, :, None]
                if role == ROW
                else np.moveaxis(arr, 2, 1)[:, None]
                if role == COL
                else arr[:, None, None]
            )
            inputs[name] = np.broadcast_to(full, (B, R, C, S)).reshape(B * R * C, S)
        out = _pe_outputs(geo, inputs)
        acc = np.moveaxis(np.asarray(out["acc"]).reshape(B, R * C, S), 1, 2)  # [B, S, R*C]
        res = {"acc": _pack_words(acc, geo.pe.acc_width)}
        if "acc_flags" in out:
            fl = np.moveaxis(np.asarray(out["acc_flags"]).reshape(B, R * C, S), 1, 2)
            res["acc_flags"] = _pack_words(fl, geo.flags_width)
        return res
    if bv.shape[:4] != (B, S, R, C):
        raise ValueError(
            f"b must have shape [{B}, {S}, {R}, {C}, ...] (batch, steps, rows, cols: the weights "
            f"held during each step), got {list(bv.shape)}"
        )
    extras = _role_inputs(geo, ports, (B, S, R), (B, S, C), (B, S))
    # every step is one activation row: the weight tile of that step, M = 1
    x = av.reshape(B * S, 1, *av.shape[2:])
    w = bv.reshape(B * S, *bv.shape[2:])
    sums, flags = _ws_results(geo, x, w, {k: v.reshape(B * S, 1) for k, v in extras.items()})
    res = {"acc": _pack_words(sums.reshape(B, S, C), geo.pe.acc_width)}
    if flags is not None:
        res["acc_flags"] = _pack_words(flags.reshape(B, S, C), geo.flags_width)
    return res


def run_array(
    spec: ArraySpec, x_tiles: Any = None, w_tiles: Any = None, /, *, gap: int = 0, **inputs: Any
) -> dict[str, Any]:
    """The array's outputs (see the module docstring for both views and the shapes).

    With ``x_tiles`` and ``w_tiles``: the cycle-level outputs of the tile stream laid out by
    :func:`schedule` (``gap`` idle cycles between tiles): ``out_valid [cycles]``, ``out [cycles,
    cols]`` (and ``out_flags``) as the ports show them (rows of a tile on consecutive cycles),
    ``results`` (OS ``[T, R, C]`` PE acc bits per tile; WS ``[T, M, C]`` column sums) and the
    ``schedule``.  Without them: the step view, ``a``, ``b``, ``first`` and the PE's other ports
    per step -> ``{"acc": [batch, steps]}`` (packed, PE ``(i, j)`` at word ``i * cols + j``; WS
    column ``j`` at word ``j``).
    """
    if not isinstance(spec, ArraySpec):
        raise ValueError(f"run_array needs an ArraySpec, got {spec!r}")
    if x_tiles is not None or w_tiles is not None:
        if x_tiles is None or w_tiles is None:
            raise ValueError("give both x_tiles and w_tiles (the tile view) or neither (the step view)")
        if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
            raise ValueError(f"gap={gap!r}: allowed a non-negative number of idle cycles")
        fn = _tiles_os if spec.dataflow == "output-stationary" else _tiles_ws
        return fn(spec, x_tiles, w_tiles, gap, inputs)
    missing = [k for k in ("a", "b", "first") if k not in inputs]
    if missing:
        raise ValueError(f"step view of {spec.name}: {missing[0]} is required (or give x_tiles and w_tiles)")
    a, b, first = inputs.pop("a"), inputs.pop("b"), inputs.pop("first")
    return _steps_view(spec, a, b, first, inputs)


def array_port_widths(spec: ArraySpec) -> dict[str, int]:
    """Widths of the step view's words (``acc``, ``acc_flags``)."""
    geo = array_geometry(spec)
    n = geo.rows * geo.cols if geo.dataflow == "output-stationary" else geo.cols
    out = {"acc": n * geo.pe.acc_width}
    if geo.flags_width:
        out["acc_flags"] = n * geo.flags_width
    return out


def array_value(spec: ArraySpec, acc_bits: Any) -> np.ndarray:
    """float64 values of step-view words: ``[..., rows, cols(, lanes)]`` (OS) or ``[..., cols(,
    lanes)]`` (WS), each decoded by the PE's own ``golden.value``."""
    geo = array_geometry(spec)
    bits = np.asarray(acc_bits, dtype=object)
    n = geo.rows * geo.cols if geo.dataflow == "output-stationary" else geo.cols
    w = geo.pe.acc_width
    words = np.empty((*bits.shape, n), dtype=object)
    for idx in np.ndindex(bits.shape):
        v = int(bits[idx])
        for k in range(n):
            words[(*idx, k)] = (v >> (k * w)) & ((1 << w) - 1)
    if w <= 64:
        words = words.astype(np.uint64)
    vals = np.asarray(_pe_value(geo.pe.spec, words), np.float64)
    shape = (*bits.shape, geo.rows, geo.cols) if geo.dataflow == "output-stationary" else (*bits.shape, geo.cols)
    return vals.reshape(*shape, *vals.shape[len(bits.shape) + 1 :])


def tile_results(spec: ArraySpec, x_tiles: Any, w_tiles: Any, **ports: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """PE port bits of every tile's outputs (OS ``[T, R, C]``, WS ``[T, M, C]``) and flags, without
    the cycle layout (what :func:`matmul_array` needs)."""
    geo = array_geometry(spec)
    x, w = _as_codes(x_tiles), _as_codes(w_tiles)
    if geo.dataflow == "output-stationary":
        _check_os(spec, geo, x, w)
        T, R, S = x.shape[:3]
        return _os_results(geo, x, w, _role_inputs(geo, ports, (T, R, S), (T, S, geo.cols), (T, S)))
    T, M = x.shape[:2]
    return _ws_results(geo, x, w, _role_inputs(geo, ports, (T, M, geo.rows), (T, M, geo.cols), (T, M)))


# --- GEMM tiling --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Gemm:
    """A quantised GEMM in the PE's per-step shapes, ready to tile.

    Members
    -------
    x : ndarray [n, S, *a]
        Row ``r`` of ``x`` as ``S`` PE steps of ``a`` values.
    w : ndarray [S, N, *b]
        PE column ``c`` (``acc_lanes`` output columns) as ``S`` steps of ``b`` values.
    row_ports, col_ports, ctl_ports : dict
        ``[n, S]``, ``[S, N]`` and ``[S]`` arrays of the PE's other ports.
    m : int
        Output columns (``N * acc_lanes`` after padding).
    pad_a, pad_b : int
        The zero codes that pad ``x`` rows and ``w`` columns.
    """

    x: np.ndarray
    w: np.ndarray
    row_ports: dict[str, np.ndarray]
    col_ports: dict[str, np.ndarray]
    ctl_ports: dict[str, np.ndarray]
    m: int
    pad_a: int = 0
    pad_b: int = 0


def _steps(v: np.ndarray, per: int, steps: int, fill: int = 0) -> np.ndarray:
    """``[rows, k]`` -> ``[rows, steps, per]`` (zero codes pad the tail)."""
    out = np.full((v.shape[0], steps * per), fill, dtype=v.dtype)
    out[:, : v.shape[1]] = v
    return out.reshape(v.shape[0], steps, per)


def _lane_gemm(pe: Any, xq: np.ndarray, wq: np.ndarray, lanes: int, **ctrl: Any) -> Gemm:
    k = xq.shape[1]
    steps = max(1, -(-k // lanes))
    x = _steps(np.asarray(xq), lanes, steps)
    w = np.moveaxis(_steps(np.asarray(wq).T, lanes, steps), 0, 1)  # [S, m, lanes]
    if ctrl:
        raise ValueError(f"unexpected kernel options {sorted(ctrl)} for {pe.name}")
    return Gemm(x, w, {}, {}, {}, wq.shape[1])


def _simd_gemm(
    pe: Any, xq: np.ndarray, wq: np.ndarray, lanes: int, *, mode: int, a_signed: bool, b_signed: bool
) -> Gemm:
    from .matmul import _pack

    abits, bbits = pe.mode_widths[mode]
    k = xq.shape[1]
    steps = max(1, -(-k // lanes))
    x = _pack(_steps(np.asarray(xq, np.int64), lanes, steps), abits)  # [n, S]
    w = np.moveaxis(_pack(_steps(np.asarray(wq, np.int64).T, lanes, steps), bbits), 0, 1)  # [S, m]
    ctl = {"mode": np.full(steps, mode), "a_signed": np.full(steps, a_signed), "b_signed": np.full(steps, b_signed)}
    return Gemm(x, w, {}, {}, ctl, wq.shape[1])


def _lut_gemm(pe: Any, xc: np.ndarray, wc: np.ndarray, zero_a: int) -> Gemm:
    g, lanes = pe.group, pe.lanes
    n, k = xc.shape
    m = wc.shape[1]
    steps = max(1, -(-k // g))
    x = _steps(np.asarray(xc, np.int64), g, steps, zero_a)  # [n, S, g]
    cols = -(-m // lanes)
    wp = np.zeros((steps * g, cols * lanes), np.int64)
    wp[:k, :m] = wc
    w = wp.reshape(steps, g, cols, lanes).transpose(0, 2, 3, 1)  # [S, N, lanes, g]
    return Gemm(x, w, {}, {}, {}, m, pad_a=zero_a)


def _shiftadd_gemm(pe: Any, xq: np.ndarray, codes: np.ndarray, group_codes: Any) -> Gemm:
    lanes = pe.lanes
    per = lanes * (pe.group or 1)
    k = xq.shape[1]
    steps = max(1, -(-k // per)) * (pe.group or 1)
    x = _steps(np.asarray(xq), lanes, steps)
    w = np.moveaxis(_steps(np.asarray(codes).T, lanes, steps), 0, 1)
    cols: dict[str, np.ndarray] = {}
    if pe.group is not None:
        g = np.asarray(group_codes)  # [groups, m]
        cols["scale"] = np.repeat(g, pe.group, axis=0)[:steps]  # [S, m]
    return Gemm(x, w, {}, cols, {}, codes.shape[1])


def _blockdot_gemm(pe: Any, xc: np.ndarray, wc: np.ndarray, xs: np.ndarray, ws: np.ndarray) -> Gemm:
    blk = pe.block
    n, kp = xc.shape
    steps = kp // blk
    x = np.asarray(xc).reshape(n, steps, blk)
    w = np.asarray(wc).T.reshape(wc.shape[1], steps, blk).transpose(1, 0, 2)  # [S, m, blk]
    return Gemm(x, w, {"scale_a": np.asarray(xs)}, {"scale_b": np.asarray(ws)}, {}, wc.shape[1])


#: How each family's quantised GEMM (the arguments its ``golden.matmul`` hands to its compiled
#: kernel, :data:`peforge.models.golden.kernels.KERNELS`) becomes PE steps.
TILERS: dict[str, Callable[..., Gemm]] = {
    "mac": _lane_gemm,
    "intmac": _lane_gemm,
    "simd": _simd_gemm,
    "lut": _lut_gemm,
    "shiftadd": _shiftadd_gemm,
    "blockdot": _blockdot_gemm,
}


def _pad(arr: np.ndarray, axis: int, size: int, fill: int) -> np.ndarray:
    extra = size - arr.shape[axis]
    if extra <= 0:
        return arr
    widths = [(0, 0)] * arr.ndim
    widths[axis] = (0, extra)
    return np.pad(arr, widths, constant_values=fill)


def _gemm_os(spec: ArraySpec, geo: ArrayGeometry, g: Gemm) -> np.ndarray:
    """PE acc port bits ``[n, N]`` of every output, tile by tile."""
    R, C = geo.rows, geo.cols
    n, S = g.x.shape[:2]
    N = g.w.shape[1]
    nr, nc = -(-n // R), -(-N // C)
    x = _pad(g.x, 0, nr * R, g.pad_a)
    w = _pad(g.w, 1, nc * C, g.pad_b)
    rows = {k: _pad(v, 0, nr * R, 0) for k, v in g.row_ports.items()}
    cols = {k: _pad(v, 1, nc * C, 0) for k, v in g.col_ports.items()}
    out = np.empty((nr * R, nc * C), dtype=object if geo.pe.acc_width > 64 else np.uint64)
    chunk = max(1, (1 << 21) // max(1, R * C * S * int(np.prod(x.shape[2:], dtype=np.int64))))
    pairs = [(r, c) for r in range(nr) for c in range(nc)]
    for p0 in range(0, len(pairs), chunk):
        part = pairs[p0 : p0 + chunk]
        xt = np.stack([x[r * R : (r + 1) * R] for r, _ in part])  # [T, R, S, *a]
        wt = np.stack([w[:, c * C : (c + 1) * C] for _, c in part])  # [T, S, C, *b]
        ports = {k: np.stack([v[r * R : (r + 1) * R] for r, _ in part]) for k, v in rows.items()}
        ports.update({k: np.stack([v[:, c * C : (c + 1) * C] for _, c in part]) for k, v in cols.items()})
        ports.update({k: np.broadcast_to(v, (len(part), S)) for k, v in g.ctl_ports.items()})
        dq = spec.dequant_share
        if dq is not None and S % dq.group:
            raise ValueError(f"{S} steps do not fill whole groups of {dq.group}")
        acc, _ = tile_results(spec, xt, wt, **ports)
        for (r, c), tile in zip(part, acc):
            out[r * R : (r + 1) * R, c * C : (c + 1) * C] = tile
    return out[:n, :N]


def _gemm_ws(spec: ArraySpec, geo: ArrayGeometry, g: Gemm) -> np.ndarray:
    """Column sums ``[n, N]`` over every k tile (partials added modulo ``2**lane_width``)."""
    R, C = geo.rows, geo.cols
    n, S = g.x.shape[:2]
    N = g.w.shape[1]
    nk, nc = -(-S // R), -(-N // C)
    x = _pad(g.x, 1, nk * R, g.pad_a)  # [n, nk*R, *a]
    w = _pad(_pad(g.w, 0, nk * R, g.pad_b), 1, nc * C, g.pad_b)  # [nk*R, nc*C, *b]
    tiles = [(kt, c) for kt in range(nk) for c in range(nc)]
    xt = np.stack([x[:, kt * R : (kt + 1) * R] for kt, _ in tiles])  # [T, n, R, *a]
    wt = np.stack([w[kt * R : (kt + 1) * R, c * C : (c + 1) * C] for kt, c in tiles])  # [T, R, C, *b]
    ports = {k: np.broadcast_to(v[:1], (len(tiles), n)) for k, v in g.ctl_ports.items()}
    sums, _ = tile_results(spec, xt, wt, **ports)  # [T, n, C]
    parts = sums.reshape(nk, nc, n, C).transpose(0, 2, 1, 3).reshape(nk, n, nc * C)
    return _lane_sum(geo, parts, axis=0)[:, :N]


def matmul_array(spec: ArraySpec, x: Any, w: Any, **options: Any) -> np.ndarray:
    """``x @ w`` on the array (see the module docstring): equal to ``golden.matmul(spec.pe, x, w)``."""
    from .base import matmul as pe_matmul

    geo = array_geometry(spec)
    pe = spec.pe
    tiler = TILERS.get(pe.family)
    if tiler is None:
        raise ValueError(f"no GEMM tiling for PE family {pe.family!r}: allowed {sorted(TILERS)}")

    def route(kspec: Any, *args: Any, **kwargs: Any) -> Any:
        if kspec is not pe:
            return NotImplemented
        g = tiler(pe, *args, **kwargs)
        bits = _gemm_os(spec, geo, g) if geo.dataflow == "output-stationary" else _gemm_ws(spec, geo, g)
        vals = np.asarray(_pe_value(pe, bits), np.float64)  # [n, N(, lanes)]
        return vals.reshape(vals.shape[0], -1)[:, : g.m]

    with kernels.routed(route):
        return pe_matmul(pe, x, w, **options)
