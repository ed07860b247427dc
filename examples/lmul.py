"""L-Mul (multiplier-free) minifloat MAC against exact FP8 products, on real data.

Run: ``.venv/bin/python examples/lmul.py [--quick] [--json out.json]`` (about two minutes;
``--quick`` uses fewer samples).

Everything runs through the bit-exact golden model of the ``mac`` PE
(:func:`peforge.models.golden.run` / :func:`peforge.models.golden.matmul`), the same model
the RTL is verified against, with ``mult="exact"`` and ``mult="lmul"`` side by side:

1. **Products.**  Operand pairs that a matmul really multiplies: (activation, weight) pairs of
   the digits MLP (test-set activations feeding each layer), and pairs of Gaussian and
   Student-t (df=3, outlier-heavy) samples.  Both operands are quantised to the format with a
   power-of-two per-tensor scale; the table gives the mean and max relative error of the
   L-Mul product against the exact product of the *same* quantised operands (nonzero
   products only), and the mean signed error (L-Mul's bias).
2. **The paper's precision claim** ("L-Mul with a 4-bit mantissa is as precise as E4M3
   multiplication, with 3 bits better than E5M2"): relative error against the float64
   product of the unquantised values, for exact E4M3/E5M2 products (as the MAC forms them,
   and rounded back to the operand's mantissa width as an FP8-output multiplier would) and
   L-Mul on 3- and 4-bit-mantissa operands (e4m3fn, and e5m3 / e5m4 whose 5-bit exponent
   keeps range out of the comparison).
3. **Dot products** of length 32 and 256 (``x [128, k] @ w [k, 64]``, fp32 accumulator):
   SQNR of the L-Mul MAC against the exact FP8 MAC on the same quantised inputs, and of both
   against float64.
4. **Networks**: test accuracy of the digits MLP and CNN with every matmul on the MAC.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from typing import Any

import numpy as np

from peforge.models import golden
from peforge.models.golden.matmul import pow2_scale
from peforge.spec import MinifloatMacSpec
from peforge.workloads import digits, tensors

FORMATS = ["e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn"]
#: (operand format, multiplier, round the product to the operands' mantissa width)
CLAIM = [
    ("e4m3fn", "exact", False),
    ("e4m3fn", "exact", True),
    ("e5m2", "exact", False),
    ("e5m2", "exact", True),
    ("e4m3fn", "lmul", False),
    ("e5m3", "lmul", False),
    ("e5m4", "lmul", False),
]


def mac(fmt: str, mult: str) -> MinifloatMacSpec:
    return MinifloatMacSpec(fmt, fmt, "fp32", mult=mult)


def products(spec: MinifloatMacSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise products of x and y as the PE forms them (one-step chains, fp32 holds
    every product of these formats exactly), scales undone."""
    sx = float(pow2_scale(np.abs(x).max(), spec.a.max))
    sy = float(pow2_scale(np.abs(y).max(), spec.b.max))
    ca = spec.a.encode(x / sx, overflow="saturate")
    cb = spec.b.encode(y / sy, overflow="saturate")
    first = np.ones((x.size, 1), bool)
    acc = golden.run(spec, a=ca.reshape(-1, 1), b=cb.reshape(-1, 1), first=first)["acc"]
    return golden.value(spec, acc)[:, 0] * (sx * sy)


def round_mantissa(v: np.ndarray, man_bits: int) -> np.ndarray:
    """Round to ``man_bits`` fraction bits, nearest even, exponent unbounded (float64 exact):
    an FP8 multiplier that returns its product in the operand format, range aside."""
    m, e = np.frexp(v)
    return np.ldexp(np.round(np.ldexp(m, man_bits + 1)), e - man_bits - 1)


def pair_sources(n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(a, b) operand pairs: digits MLP (activation, weight), Gaussian, Student-t."""
    rng = np.random.default_rng(0)
    net = digits.mlp()
    acts = net.layer_inputs(digits.dataset().x_test)
    xs, ws = [], []
    for h, layer in zip(acts, net.layers):
        per = n // len(net.layers)
        r = rng.integers(0, h.shape[0], per)
        k = rng.integers(0, h.shape[1], per)
        c = rng.integers(0, layer.w.shape[1], per)
        xs.append(h[r, k])
        ws.append(layer.w[k, c])
    return {
        "digits mlp": (np.concatenate(xs), np.concatenate(ws)),
        "gaussian": (tensors.gaussian((n,), 1), tensors.gaussian((n,), 2)),
        "student_t": (tensors.student_t((n,), 3), tensors.student_t((n,), 4)),
    }


def rel_errors(ref: np.ndarray, approx: np.ndarray) -> dict[str, float]:
    nz = ref != 0
    rel = (np.abs(approx[nz]) - np.abs(ref[nz])) / np.abs(ref[nz])  # signs always agree
    return {
        "mean": float(np.mean(np.abs(rel))),
        "max": float(np.max(np.abs(rel))),
        "bias": float(np.mean(rel)),
        "nonzero": int(nz.sum()),
    }


def product_table(sources: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    rows = []
    for fmt in FORMATS:
        for src, (x, y) in sources.items():
            exact = products(mac(fmt, "exact"), x, y)
            lmul = products(mac(fmt, "lmul"), x, y)
            m = mac(fmt, "lmul")
            rows.append(
                {"format": fmt, "source": src, "m": m.lmul_frac_bits, "l": m.lmul_offset_exp, **rel_errors(exact, lmul)}
            )
    return rows


def claim_table(sources: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    rows = []
    for src, (x, y) in sources.items():
        truth = x * y
        for fmt, mult, rounded in CLAIM:
            spec = mac(fmt, mult)
            got = products(spec, x, y)
            if rounded:
                got = round_mantissa(got, spec.a.man_bits)
            e = rel_errors(truth, got)
            rows.append(
                {
                    "source": src,
                    "format": fmt,
                    "mult": mult + (" (FP8 result)" if rounded else ""),
                    "mean": e["mean"],
                    "sqnr_db": tensors.sqnr_db(truth, got),
                }
            )
    return rows


def dot_table(n_rows: int) -> list[dict[str, Any]]:
    rows = []
    for k in (32, 256):
        for src, gen in (("gaussian", tensors.gaussian), ("student_t", tensors.student_t)):
            x, w = gen((n_rows, k), 10 + k), gen((k, 64), 20 + k)
            truth = x @ w
            for fmt in FORMATS:
                exact = golden.matmul(mac(fmt, "exact"), x, w)
                lmul = golden.matmul(mac(fmt, "lmul"), x, w)
                rows.append(
                    {
                        "k": k,
                        "source": src,
                        "format": fmt,
                        "lmul_vs_exact_db": tensors.sqnr_db(exact, lmul),
                        "exact_vs_f64_db": tensors.sqnr_db(truth, exact),
                        "lmul_vs_f64_db": tensors.sqnr_db(truth, lmul),
                    }
                )
    return rows


def network_table(n: int | None) -> list[dict[str, Any]]:
    rows = []
    for name, net in (("mlp", digits.mlp()), ("cnn", digits.cnn())):
        rows.append({"net": name, "format": "float32", "mult": "-", "accuracy": net.accuracy(n=n)})
        for fmt in FORMATS:
            for mult in ("exact", "lmul"):
                mm = functools.partial(golden.matmul, mac(fmt, mult))
                rows.append({"net": name, "format": fmt, "mult": mult, "accuracy": net.accuracy(mm, n=n)})
    return rows


def _print(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    ap.add_argument("--json", help="also write every table as JSON to this file")
    args = ap.parse_args(argv)
    n_pairs, n_rows, n_test = (20_000, 16, 100) if args.quick else (200_000, 128, None)
    t0 = time.perf_counter()

    sources = pair_sources(n_pairs)
    prod = product_table(sources)
    _print(
        "1. L-Mul product vs exact product of the same quantised operands (relative error; "
        "m = mantissa bits, offset 2^-l)",
        ["format", "m", "l", "source", "mean", "max", "bias"],
        [
            [
                r["format"],
                str(r["m"]),
                str(r["l"]),
                r["source"],
                f"{r['mean']:.2%}",
                f"{r['max']:.2%}",
                f"{r['bias']:+.2%}",
            ]
            for r in prod
        ],
    )

    claim = claim_table(sources)
    _print(
        "2. Precision claim: products against the float64 product of the unquantised values",
        ["source", "operands", "multiplier", "mean rel err", "SQNR dB"],
        [[r["source"], r["format"], r["mult"], f"{r['mean']:.2%}", f"{r['sqnr_db']:.1f}"] for r in claim],
    )

    dots = dot_table(n_rows)
    _print(
        f"3. Dot products x[{n_rows}, k] @ w[k, 64], fp32 accumulator: SQNR in dB",
        ["k", "source", "format", "lmul vs exact FP8", "exact FP8 vs f64", "lmul vs f64"],
        [
            [
                str(r["k"]),
                r["source"],
                r["format"],
                f"{r['lmul_vs_exact_db']:.1f}",
                f"{r['exact_vs_f64_db']:.1f}",
                f"{r['lmul_vs_f64_db']:.1f}",
            ]
            for r in dots
        ],
    )

    nets = network_table(n_test)
    _print(
        "4. Digits test accuracy with every matmul on the MAC (fp32 accumulator)",
        ["net", "format", "multiplier", "accuracy"],
        [[r["net"], r["format"], r["mult"], f"{r['accuracy']:.2%}"] for r in nets],
    )
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"products": prod, "claim": claim, "dots": dots, "networks": nets}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
