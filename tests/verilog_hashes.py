"""The seeded spec set of every family whose generated Verilog is pinned by SHA-256.

``tests/test_verilog_hashes.py`` regenerates the Verilog of :func:`specs` and compares it with
``tests/data/verilog_hashes.json``, so a refactor proves it changed no generated hardware.  A
commit that changes a datapath on purpose regenerates the file in the same commit::

    .venv/bin/python tests/verilog_hashes.py        # rewrites tests/data/verilog_hashes.json

The set is drawn here with its own seed (not from the cost model's spec sets), so changes to
the calibration sets never change it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable

HASH_FILE = Path(__file__).parent / "data" / "verilog_hashes.json"
SEED = 20


def _mac(r: random.Random) -> dict[str, Any]:
    fp = ("e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn", "e4m3fnuz", "e3m4")
    a = r.choice(fp)
    return {
        "a": a,
        "b": a if r.random() < 0.5 else r.choice(fp),
        "acc": r.choice(("fp32", "bf16", "fp16", "exact")),
        "lanes": r.choice((1, 2, 3, 4, 8)),
        "stages": r.randrange(5),
        "subnormals": r.random() < 0.7,
        "max_count": r.choice((16, 4096)),
        "mult": r.choice(("exact", "exact", "lmul")),
    }


def _intmac(r: random.Random) -> dict[str, Any]:
    ints = ("int8", "int4", "uint8", "int2", "int16", "uint4")
    d: dict[str, Any] = {
        "a": r.choice(ints),
        "b": r.choice(ints),
        "lanes": r.choice((1, 2, 3, 4, 8)),
        "stages": r.randrange(4),
    }
    if r.random() < 0.4:
        d.update(acc_bits=r.choice((24, 40)), overflow=r.choice(("wrap", "saturate")))
    return d


def _simd(r: random.Random) -> dict[str, Any]:
    base, arch = r.choice(((8, "bricks"), (8, "sub4"), (16, "sub4"), (8, "bricks")))
    ok = {8: ["8x8", "8x4", "4x4", "4x2", "2x2", "4x8"], 16: ["16x16", "16x8", "8x8", "8x4", "4x4"]}[base]
    ok = [m for m in ok if arch == "bricks" or all(int(w) % 4 == 0 for w in m.split("x"))]
    modes = tuple(sorted(r.sample(ok, r.randint(1, min(4, len(ok)))), key=ok.index))
    return {
        "base": base,
        "arch": arch,
        "modes": modes,
        "stages": r.randrange(3),
        "acc_bits": r.choice((None, None, 32)),
    }


def _lut(r: random.Random) -> dict[str, Any]:
    return {
        "act": r.choice(("int8", "int4", "uint8", "e4m3fn", "e2m1fn")),
        "weight_bits": r.choice((1, 2, 3, 4, "ternary")),
        "group": r.choice((2, 3, 4, 5)),
        "symmetric": r.random() < 0.6,
        "lanes": r.choice((1, 2, 4)),
        "stages": r.randrange(3),
        "acc_bits": r.choice((None, None, 24)),
    }


def _shiftadd(r: random.Random) -> dict[str, Any]:
    mode, weight = r.choice(
        (
            ("pot", "pot4"),
            ("pot", "pot3"),
            ("apot", "apot5"),
            ("apot", "apot6"),
            ("shiftadd-int", "int4"),
            ("shiftadd-int", "uint4"),
            ("bitserial", "int4"),
            ("bitserial", "uint8"),
        )
    )
    d: dict[str, Any] = {
        "act": r.choice(("int8", "uint8", "int4", "e4m3fn", "e2m1fn")),
        "weight": weight,
        "mode": mode,
        "lanes": r.choice((1, 2, 4)),
        "stages": r.randrange(3),
    }
    if r.random() < 0.35:
        d.update(group=r.choice((4, 32)), scale=r.choice(("fp16", "bf16", "e8m0fnu", "int8")))
    elif r.random() < 0.3:
        d.update(acc_bits=32, overflow=r.choice(("wrap", "saturate")))
    return d


def _blockdot(r: random.Random) -> dict[str, Any]:
    if r.random() < 0.3:
        ea = eb = "e2m1fn"
        sa = sb = "e4m3fn"
        block = 16
    else:
        ea = r.choice(("e4m3fn", "e5m2", "e3m2fn", "e2m3fn", "e2m1fn", "int8"))
        eb = ea if r.random() < 0.6 else r.choice(("e4m3fn", "e5m2", "e2m1fn", "int8"))
        sa = sb = "e8m0fnu"
        block = r.choice((8, 16, 32))
    return {
        "element_a": ea,
        "element_b": eb,
        "scale_a": sa,
        "scale_b": sb,
        "block": block,
        "lanes": r.choice((1, 2, 4, 8)),
        "acc": r.choice(("fp32", "bf16", "fp16")),
        "stages": r.randrange(5),
    }


#: family -> (drawer, specs drawn)
DRAWERS: dict[str, tuple[Callable[[random.Random], dict[str, Any]], int]] = {
    "mac": (_mac, 10),
    "intmac": (_intmac, 5),
    "simd": (_simd, 4),
    "lut": (_lut, 5),
    "shiftadd": (_shiftadd, 6),
    "blockdot": (_blockdot, 5),
}


#: Structures a small draw may miss (the README's examples, the L-Mul flush-to-zero case).
FIXED: tuple[dict[str, Any], ...] = (
    {"family": "mac", "a": "e4m3fn", "b": "e4m3fn", "acc": "fp32"},
    {"family": "mac", "a": "e4m3fn", "b": "e5m2", "acc": "fp32", "mult": "lmul", "subnormals": False},
    {"family": "mac", "a": "e4m3fn", "b": "e5m2", "acc": "exact", "mult": "lmul", "subnormals": False, "lanes": 2},
    {"family": "mac", "a": "e5m2", "b": "e5m2", "acc": "bf16", "lanes": 16, "stages": 4},
    {"family": "intmac", "a": "int8", "b": "int8", "lanes": 4, "stages": 1},
    {"family": "simd", "base": 8, "arch": "bricks", "stages": 2},
    {"family": "lut", "act": "int8", "weight_bits": 4, "group": 4, "lanes": 4},
    {"family": "shiftadd", "act": "int8", "weight": "pot4", "mode": "pot", "lanes": 4},
    {"family": "shiftadd", "act": "e4m3fn", "weight": "apot5", "mode": "apot", "lanes": 2, "stages": 1},
    {"family": "shiftadd", "act": "int8", "weight": "int4", "mode": "bitserial", "group": 32, "scale": "fp16"},
    {"family": "blockdot", "element_a": "e4m3fn", "element_b": "e4m3fn", "block": 32, "lanes": 4},
    # PE arrays (their Verilog holds the PE module too, so a PE change changes them as well)
    {"family": "array", "pe": {"family": "intmac", "a": "int8", "b": "int8"}, "rows": 2, "cols": 3},
    {
        "family": "array",
        "pe": {"family": "mac", "a": "e4m3fn", "b": "e4m3fn", "acc": "fp32"},
        "rows": 2,
        "cols": 2,
        "a_path": "broadcast",
        "pipeline": 1,
    },
    {
        "family": "array",
        "pe": {"family": "lut", "act": "int8", "weight_bits": 2, "group": 4},
        "rows": 2,
        "cols": 2,
        "dataflow": "weight-stationary",
    },
    {
        "family": "array",
        "pe": {
            "family": "shiftadd",
            "act": "int8",
            "weight": "int4",
            "mode": "shiftadd-int",
            "group": 4,
            "scale": "bf16",
        },
        "rows": 2,
        "cols": 2,
    },
)


def specs() -> list[Any]:
    """The pinned specs: distinct, valid, the same on every run.  A family of the table that
    :data:`FIXED` and :data:`DRAWERS` leave out is pinned by its examples."""
    from peforge import families
    from peforge import spec as spec_mod

    out: dict[str, Any] = {}
    for d in FIXED:
        s = spec_mod.from_dict(d)
        out[s.name] = s
    covered = set(DRAWERS) | {d["family"] for d in FIXED}
    for fam in families.table():
        if fam.name not in covered:
            out.update((s.name, s) for s in fam.examples)
    for family, (draw, n) in DRAWERS.items():
        r = random.Random(f"{SEED}-{family}")
        got = 0
        while got < n:
            try:
                s = spec_mod.from_dict({"family": family, **draw(r)})
            except ValueError:
                continue
            if s.name not in out:
                out[s.name] = s
                got += 1
    return list(out.values())


def verilog_hash(spec: Any) -> str:
    from peforge import rtl

    return hashlib.sha256(rtl.verilog(spec).encode()).hexdigest()


def write() -> Path:
    """Regenerate :data:`HASH_FILE` from the current generators."""
    data = {s.name: {"spec": s.to_dict(), "sha256": verilog_hash(s)} for s in specs()}
    HASH_FILE.parent.mkdir(parents=True, exist_ok=True)
    HASH_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return HASH_FILE


if __name__ == "__main__":
    print(f"wrote {write()} ({len(specs())} specs)", file=sys.stderr)
