"""Score an ONNX model on five PEs: INT8 (per-tensor and per-channel scales), FP8 E4M3 with an
FP32 accumulator, MXFP8 and NVFP4 block-dot units.

Run: ``.venv/bin/python examples/onnx_five_pes.py [--model M.onnx --inputs X.npz] [--limit 256]``.

Without ``--model`` it builds a small demo CNN on the digits (``onnx.helper``, 16x16 inputs,
0.4 M MACs per image) under ``build/examples/onnx_five_pes/``.  It writes the space TOML that
the README shows (``space.toml`` there), sweeps it (every MatMul / Gemm / Conv of the model
through each PE's bit-exact golden model) and prints accuracy, agreement with the float run,
output SQNR and the ecp5 cost of each PE.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from peforge import dse

OUT = Path(__file__).resolve().parent.parent / "build" / "examples" / "onnx_five_pes"

SPACE = """name = "my-model"
targets = ["ecp5"]
workloads = ["mymodel"]

[workload.mymodel]
onnx = "{model}"          # float model; MatMul / Gemm / Conv run on the PE
inputs = "{inputs}"       # one array per graph input (batch first) + "labels"
limit = {limit}

[[pe]]                      # INT8 MAC, per-tensor (the default) and per-channel scales
family = "intmac"
a = "int8"
b = "int8"
scaling = ["pe", "channel"]

[[pe]]                      # FP8 E4M3 MAC, FP32 accumulator
family = "mac"
a = "e4m3fn"
b = "e4m3fn"
acc = "fp32"

[[pe]]                      # MXFP8 (E8M0 scales, blocks of 32) and NVFP4 (E4M3 scales, blocks of 16)
family = "blockdot"
element_a = ["e4m3fn", "e2m1fn"]
element_b = ["e4m3fn", "e2m1fn"]
scale_a = ["e8m0fnu", "e4m3fn"]
scale_b = ["e8m0fnu", "e4m3fn"]
block = [32, 16]
zip = [["element_a", "element_b", "scale_a", "scale_b", "block"]]
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="your ONNX model (default: a demo CNN)")
    ap.add_argument("--inputs", type=Path, help="its inputs .npz (with 'labels')")
    ap.add_argument("--limit", type=int, default=256, help="samples to score")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    model, inputs = args.model, args.inputs
    if model is None:
        from peforge.workloads.onnx_build import save_cnn

        model, inputs = save_cnn(OUT, size=16, channels=(8, 16), pool_after=(0, 1))
    elif inputs is None:
        inputs = model.with_suffix(".npz")
    OUT.mkdir(parents=True, exist_ok=True)
    toml = OUT / "space.toml"
    toml.write_text(SPACE.format(model=Path(model).resolve(), inputs=Path(inputs).resolve(), limit=args.limit))
    rows = dse.run(dse.load_space(toml), OUT / "results", jobs=args.jobs)
    print(f"{'PE':58s} {'acc':>6s} {'agree':>6s} {'out SQNR':>9s} {'ecp5 LUTs':>9s}")
    for r in rows:
        print(
            f"{r['label']:58s} {r['mymodel_acc']:6.3f} {r['mymodel_agree']:6.3f} {r['mymodel_out_sqnr_db']:8.1f}  "
            f"{r.get('cost_luts', float('nan')):9.0f}"
        )
    base = dse.baselines(dse.EvalSettings(tuple(dse.load_space(toml).workloads)))
    print(f"float run: acc {base['mymodel_acc']:.3f}; rows in {OUT / 'results' / 'results.csv'}")


if __name__ == "__main__":
    main()
