"""The built-in families' independent references, as the family table's ``reference`` parts.

Each function takes a spec and golden-model inputs (``a``, ``b``, ``first`` and the family's
further ports, ``[batch, steps, ...]``) and returns, per batch row, the ``acc`` port's words
after every step, computed without the golden model: by the reference each family's own
test module checks (Python ints, ``fractions.Fraction``).  ``tests/test_family_contract.py``
compares the golden model with them for every family.  Not installed (tests layer of
:data:`peforge.families.LAYERS`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import test_blockdot_golden
import test_golden_mac
import test_intmac_golden
import test_lmul_reference
import test_lut_golden
import test_shiftadd
import test_simd

from peforge.arrays import array_geometry
from peforge.families import family_of

__all__ = ["mac", "intmac", "simd", "shiftadd", "blockdot", "lut", "array", "array_steps"]

Rows = list[list[int]]


def mac(spec: Any, inp: dict[str, Any]) -> Rows:
    if spec.mult == "lmul":  # the L-Mul product formula's own Fraction reference
        return [
            [
                acc
                for acc, _ in test_lmul_reference.ref_run(
                    spec, zip(inp["a"][r].tolist(), inp["b"][r].tolist(), inp["first"][r].tolist())
                )
            ]
            for r in range(len(inp["first"]))
        ]
    acc, _ = test_golden_mac.ref_run(spec, inp["a"], inp["b"], inp["first"])
    return [list(row) for row in acc]


def intmac(spec: Any, inp: dict[str, Any]) -> Rows:
    acc = test_intmac_golden._reference(spec, inp["a"].astype(np.int64), inp["b"].astype(np.int64), inp["first"])
    return [list(row) for row in acc]


def simd(spec: Any, inp: dict[str, Any]) -> Rows:
    keys = ("a", "b", "first", "mode", "a_signed", "b_signed")
    return [
        list(test_simd.ref_run(spec, list(zip(*(np.asarray(inp[k][r]).tolist() for k in keys)))))
        for r in range(len(inp["first"]))
    ]


def shiftadd(spec: Any, inp: dict[str, Any]) -> Rows:
    return [
        list(
            test_shiftadd.ref_run(
                spec,
                inp["a"][r].astype(np.int64),
                inp["b"][r].astype(np.int64),
                inp["first"][r],
                inp["scale"][r].astype(np.int64) if "scale" in inp else None,
            )
        )
        for r in range(len(inp["first"]))
    ]


def blockdot(spec: Any, inp: dict[str, Any]) -> Rows:
    return [
        list(
            test_blockdot_golden.ref_run(
                spec, *(inp[k][r].astype(np.int64) for k in ("a", "b", "scale_a", "scale_b")), inp["first"][r]
            )
        )
        for r in range(len(inp["first"]))
    ]


def lut(spec: Any, inp: dict[str, Any]) -> Rows:
    """The per-lane accumulators, packed into the ``acc`` word (lane 0 lowest, two's complement)."""
    lanes = test_lut_golden.ref_run(spec, inp["a"].astype(np.int64), inp["b"].astype(np.int64), inp["first"])
    mask = (1 << spec.width) - 1
    return [[sum((v & mask) << (ln * spec.width) for ln, v in enumerate(step)) for step in row] for row in lanes]


def array(spec: Any, inp: dict[str, Any]) -> Rows:
    """The array's step view from every PE's own reference (:func:`array_steps`)."""
    ref = family_of(spec.pe).part("reference")
    return array_steps(spec, inp, lambda pe, chain: [int(v) for v in ref(pe, chain)[0]])


def array_steps(spec: Any, inp: dict[str, Any], pe_words: Callable[[Any, dict[str, Any]], list[int]]) -> Rows:
    """An array's step view composed one PE at a time: every PE's own chain (output-stationary),
    or each column's sum of its PEs' one-step results modulo the accumulator's lane width
    (weight-stationary), packed as the step view packs them.  ``pe_words(pe, inputs)`` gives one
    chain's ``acc`` words (inputs ``[1, steps, ...]``): the PE's reference, or its golden model."""
    geo = array_geometry(spec)
    R, C, pe, w = geo.rows, geo.cols, spec.pe, geo.pe.acc_width
    roles = {n: r for n, (r, _) in geo.pe.inputs.items() if n not in ("a", "b")}
    B, S = inp["first"].shape
    out = []
    for bt in range(B):
        if geo.dataflow == "output-stationary":
            words = {}
            for i in range(R):
                for j in range(C):
                    chain = {
                        "a": inp["a"][bt : bt + 1, :, i],
                        "b": inp["b"][bt : bt + 1, :, j],
                        "first": inp["first"][bt : bt + 1],
                    }
                    for n, role in roles.items():
                        v = inp[n][bt : bt + 1]
                        chain[n] = v[:, :, i] if role == "row" else v[:, :, j] if role == "col" else v
                    words[i, j] = pe_words(pe, chain)
            out.append([sum(words[i, j][s] << ((i * C + j) * w) for i in range(R) for j in range(C)) for s in range(S)])
            continue
        lanes, lw = geo.pe.acc_lanes, geo.pe.lane_width
        steps = []
        for s in range(S):
            total = 0
            for j in range(C):
                col = [0] * lanes
                for i in range(R):
                    one = {
                        "a": inp["a"][bt : bt + 1, s : s + 1, i],
                        "b": inp["b"][bt : bt + 1, s : s + 1, i, j],
                        "first": np.ones((1, 1), bool),
                        **{n: inp[n][bt : bt + 1, s : s + 1] for n in roles},
                    }
                    v = pe_words(pe, one)[0]
                    col = [(c + (v >> (ln * lw))) % (1 << lw) for ln, c in enumerate(col)]
                total |= sum(c << (ln * lw) for ln, c in enumerate(col)) << (j * w)
            steps.append(total)
        out.append(steps)
    return out
