"""User workloads: tensor files, Python callables, ONNX models; space TOML, sweep rows and CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from typer.testing import CliRunner

from peforge import dse
from peforge.cli import app
from peforge.models import golden
from peforge.spec import IntMacSpec, MinifloatMacSpec
from peforge.workloads import digits, tensors
from peforge.workloads.evaluate import evaluate
from peforge.workloads.files import load_layers
from peforge.workloads.onnx_model import OnnxWorkload, run_model

runner = CliRunner()


def _layers(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "fc1.x": rng.standard_normal((2, 3, 16)),
        "fc1.w": rng.standard_normal((16, 8)),
        "fc2.x": rng.standard_normal((5, 8)),
        "fc2.weight": rng.standard_normal((4, 8)),
    }


def test_npz_npy_and_safetensors_give_the_same_layers(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    t = _layers(np.random.default_rng(0))
    np.savez(tmp_path / "l.npz", **t)
    (tmp_path / "dir").mkdir()
    for k, v in t.items():
        np.save(tmp_path / "dir" / f"{k}.npy", v)
    save_file({k: v.astype(np.float32) for k, v in t.items()}, str(tmp_path / "l.safetensors"))
    for path, exact in (
        (tmp_path / "l.npz", True),
        (tmp_path / "dir", True),
        (tmp_path / "dir" / "fc1.x.npy", True),
        (tmp_path / "l.safetensors", False),
    ):
        layers = load_layers(path)
        assert [n for n, _, _ in layers] == ["fc1", "fc2"]
        (_, x1, w1), (_, x2, w2) = layers
        assert x1.shape == (6, 16) and w1.shape == (16, 8) and w2.shape == (8, 4)  # weight [m, k] transposed
        ref = t["fc2.weight"].T
        assert np.array_equal(w2, ref) if exact else np.array_equal(w2, ref.astype(np.float32).astype(np.float64))


def test_safetensors_bf16_and_fp8_tensors(tmp_path: Path) -> None:
    """A hand-written safetensors file (header + raw little-endian data) with bf16 and FP8 tensors."""
    x = np.array([[1.5, -2.0, 0.375]], dtype=ml_dtypes.bfloat16)
    w = np.array([[1.0], [0.5], [-4.0]], dtype=ml_dtypes.float8_e4m3fn)
    blobs = [x.tobytes(), w.tobytes()]
    header = {
        "a.x": {"dtype": "BF16", "shape": [1, 3], "data_offsets": [0, 6]},
        "a.w": {"dtype": "F8_E4M3", "shape": [3, 1], "data_offsets": [6, 9]},
    }
    h = json.dumps(header).encode()
    (tmp_path / "t.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    [(name, xs, ws)] = load_layers(tmp_path / "t.safetensors")
    assert name == "a" and xs.tolist() == [[1.5, -2.0, 0.375]] and ws.ravel().tolist() == [1.0, 0.5, -4.0]


@pytest.mark.parametrize(
    "tensors_, needle",
    [
        ({"fc1.x": np.ones((2, 4))}, "layer 'fc1' needs exactly one of 'fc1.w'"),
        ({"fc1.w": np.ones((4, 2))}, "layer 'fc1' has weights but no activations"),
        (
            {"fc1.x": np.ones((2, 4)), "fc1.w": np.ones((3, 2))},
            "tensor 'fc1.w' has shape (3, 2): expected [k, m] with k = 4",
        ),
        ({"fc1.x": np.ones((2, 4)), "fc1.w": np.ones(4)}, "tensor 'fc1.w' has shape (4,): expected a matrix"),
        (
            {"fc1.x": np.ones((2, 4)), "fc1.w": np.ones((4, 2)), "extra": np.ones(2)},
            "tensor 'extra' is not part of a pair",
        ),
        ({"fc1.x": np.full((2, 4), np.nan), "fc1.w": np.ones((4, 2))}, "tensor 'fc1.x' holds NaN or inf"),
    ],
)
def test_tensor_file_errors_name_file_tensor_and_expectation(tmp_path: Path, tensors_, needle) -> None:
    np.savez(tmp_path / "bad.npz", **tensors_)
    with pytest.raises(ValueError) as err:
        load_layers(tmp_path / "bad.npz")
    assert str(tmp_path / "bad.npz") in str(err.value) and needle in str(err.value)
    with pytest.raises(ValueError, match="suffix '.txt' is not a tensor file"):
        (tmp_path / "a.txt").write_text("x")
        load_layers(tmp_path / "a.txt")


def test_tensor_file_scores_every_layer_against_float64(tmp_path: Path) -> None:
    t = _layers(np.random.default_rng(1))
    np.savez(tmp_path / "layers.npz", **t)
    spec = IntMacSpec("int8", "int8")
    res = evaluate(spec, str(tmp_path / "layers.npz"))
    x2, w2 = t["fc2.x"], t["fc2.weight"].T
    want = tensors.sqnr_db(x2 @ w2, golden.matmul(spec, x2, w2))
    assert res["workload"] == "layers" and res["fc2_sqnr_db"] == pytest.approx(want, rel=1e-12)
    assert res["sqnr_db"] == pytest.approx((res["fc1_sqnr_db"] + res["fc2_sqnr_db"]) / 2)
    assert 0 < res["fc1_rel_err"] < 0.1 and res["overflow_frac"] == 0.0


def test_callables_and_digits_as_callables(tmp_path: Path) -> None:
    (tmp_path / "my_score.py").write_text(
        "import numpy as np\n"
        "def score(matmul, scale=1.0):\n"
        "    x = np.linspace(-1, 1, 32).reshape(4, 8) * scale\n"
        "    return {'err': float(np.abs(matmul(x, np.eye(8)) - x).max()), 'acc': 0.5}\n"
        "def bad(matmul):\n    return {'err': 'high'}\n"
    )
    spec = IntMacSpec("int4", "int4")
    res = evaluate(spec, {"callable": "my_score:score", "options": {"scale": 2.0}}, base_dir=tmp_path)
    assert res["workload"] == "score" and res["acc"] == 0.5 and res["acc_drop"] == 0.0
    x = np.linspace(-1, 1, 32).reshape(4, 8) * 2.0
    assert res["err"] == pytest.approx(float(np.abs(golden.matmul(spec, x, np.eye(8)) - x).max()))
    with pytest.raises(ValueError, match=r"returned \{'err': 'high'\}: expected a dict of metric name"):
        evaluate(spec, "my_score:bad", base_dir=tmp_path)
    with pytest.raises(ValueError, match="module 'no_such_mod' cannot be imported"):
        evaluate(spec, "no_such_mod:f")
    m = MinifloatMacSpec("e2m1fn", "e2m1fn", "exact")
    assert evaluate(m, "mlp")["acc"] == digits.mlp().accuracy(lambda a, b: golden.matmul(m, a, b))


def _space_with_user_workloads(tmp_path: Path) -> Path:
    np.savez(tmp_path / "acts.npz", **_layers(np.random.default_rng(2)))
    (tmp_path / "nets.py").write_text(
        "def twice(matmul):\n    import numpy as np\n"
        "    return {'acc': float(matmul(np.ones((1, 2)), np.ones((2, 1)))[0, 0] / 2)}\n"
    )
    (tmp_path / "space.toml").write_text(
        'name = "user"\ntargets = ["ice40"]\nworkloads = ["outliers", "acts.npz", "mine"]\n'
        "[tensor]\nshape = [8, 64, 8]\n"
        '[workload.mine]\ncallable = "nets:twice"\n'
        '[[pe]]\nfamily = "intmac"\nscaling = ["pe", "channel", "block16:mx"]\n'
        '[[pe]]\nfamily = "blockdot"\nscaling = ["pe", "channel"]\n'
    )
    return tmp_path / "space.toml"


def test_space_scaling_axis_and_user_workloads(tmp_path: Path, monkeypatch) -> None:
    from peforge.dse import evaluation

    monkeypatch.setattr(evaluation, "cost_of", lambda spec, target: {"luts": 1.0, "fmax_mhz": 100.0})
    space = dse.load_space(_space_with_user_workloads(tmp_path))
    points, invalid = space.expand()
    assert [dict(p.options).get("scaling") for p in points] == ["pe", "channel", "block16:mx", "pe"]
    assert len(invalid) == 1 and "scales its blocks natively" in invalid[0].reason
    assert [w if isinstance(w, str) else w.name for w in space.workloads] == ["outliers", "acts", "mine"]
    rows = dse.run(space, tmp_path / "out", jobs=1, progress=False)
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    by = {r["label"]: r for r in rows}
    pe, ch = by["intmac_int8xint8_l1_s0_n4096 pe"], by["intmac_int8xint8_l1_s0_n4096 channel"]
    assert pe["mine_acc"] == 1.0 and pe["accuracy_mean"] == 1.0 and {"acts_fc1_sqnr_db", "acts_fc2_rel_err"} <= set(pe)
    assert pe["sqnr_db_mean"] == pytest.approx((pe["outliers_sqnr_db"] + pe["acts_sqnr_db"]) / 2)
    assert ch["outliers_sqnr_db"] > pe["outliers_sqnr_db"]  # per-token scales help on outlier rows
    assert pe["overflow_frac_max"] == 0.0 and pe["outliers_nan_frac"] == 0.0
    # the same settings survive the trip to a worker (plain dicts)
    settings = dse.EvalSettings(tuple(space.workloads), space.tensor)
    assert dse.EvalSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_space_errors_name_the_workload(tmp_path: Path) -> None:
    for body, needle in (
        ('[workload.x]\nonnx = "m.onnx"\n', "needs 'inputs'"),
        ('[workload.x]\ntensors = "a.npz"\ncallable = "m:f"\n', "exactly one of"),
        ('[workload.x]\ntensors = "a.npz"\nbatch = 3\n', "key 'batch' is unknown for tensors"),
        ('workloads = ["a", "a"]\n', "'a' is unknown"),
        ('workloads = ["gaussian", "gaussian"]\n', "used twice"),
    ):
        (tmp_path / "s.toml").write_text(body + '[[pe]]\nfamily = "intmac"\n')
        with pytest.raises(ValueError, match=needle):
            dse.load_space(tmp_path / "s.toml")


def test_existing_spaces_keep_their_keys_and_digest() -> None:
    space = dse.Space(pes=[{"family": "intmac"}])
    assert space.workloads == ["gaussian", "laplacian", "student_t", "mlp", "cnn"]
    assert "workload" not in space.to_dict() and space.points()[0].key == "intmac_int8xint8_l1_s0_n4096|ecp5"


# ---- ONNX -----------------------------------------------------------------------------------


def _toy_model(int_weights: bool = False):
    """Conv (stride 2, pads, dilation, 2 groups, bias) -> Relu -> MaxPool -> Reshape -> MatMul
    (batched 3-D x 2-D) -> Gemm (transB, alpha, beta, C): every replaced op and its attributes."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    gen = (
        (lambda *s: rng.integers(-3, 4, s).astype(np.float32))
        if int_weights
        else (lambda *s: rng.standard_normal(s).astype(np.float32))
    )
    inits = [
        numpy_helper.from_array(gen(4, 1, 3, 3), "cw"),
        numpy_helper.from_array(gen(4), "cb"),
        numpy_helper.from_array(np.array([0, 4, 12], np.int64), "shape"),
        numpy_helper.from_array(gen(12, 6), "mw"),
        numpy_helper.from_array(gen(5, 24), "gw"),
        numpy_helper.from_array(gen(5), "gc"),
    ]
    nodes = [
        helper.make_node(
            "Conv", ["x", "cw", "cb"], ["c"], strides=[2, 2], pads=[1, 2, 2, 1], dilations=[2, 1], group=2
        ),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("Reshape", ["p", "shape"], ["q"]),
        helper.make_node("MatMul", ["q", "mw"], ["m"]),
        helper.make_node("Flatten", ["m"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gw", "gc"], ["y"], transB=1, alpha=0.5, beta=2.0),
    ]
    graph = helper.make_graph(
        nodes,
        "toy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_replaced_ops_equal_the_onnx_reference_implementation() -> None:
    from onnx.reference import ReferenceEvaluator

    model = _toy_model()
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 8)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    got = run_model(model, {"x": x}, lambda a, b: a @ b, batch=2)
    assert got.shape == want.shape == (3, 5) and np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pe_run_of_an_onnx_model_is_bit_exact_on_integer_data(tmp_path: Path) -> None:
    """Small integers through an exact INT16 MAC: every product the PE computes is exact, so the
    PE run equals ONNX's own float evaluation (exact on small integers) bit for bit."""
    from onnx.reference import ReferenceEvaluator

    model = _toy_model(int_weights=True)
    x = np.random.default_rng(2).integers(-4, 5, (4, 2, 8, 8)).astype(np.float32)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    (tmp_path / "toy.onnx").write_bytes(model.SerializeToString())
    np.savez(tmp_path / "toy.npz", x=x, labels=np.argmax(want, axis=1))
    res = evaluate(IntMacSpec("int16", "int16"), str(tmp_path / "toy.onnx"))
    assert res["acc"] == 1.0 and res["agree"] == 1.0 and res["out_sqnr_db"] == float("inf")
    wl = OnnxWorkload("toy", tmp_path / "toy.onnx", tmp_path / "toy.npz")
    from peforge.workloads.pe import PEMatmul

    assert np.array_equal(wl.run(PEMatmul(IntMacSpec("int16", "int16"))), want)
    coarse = evaluate(IntMacSpec("int2", "int2"), str(tmp_path / "toy.onnx"))
    assert coarse["out_sqnr_db"] < 20 and coarse["acc_drop"] == 1.0 - coarse["acc"]


def test_onnx_input_errors_name_file_tensor_and_expectation(tmp_path: Path) -> None:
    (tmp_path / "toy.onnx").write_bytes(_toy_model().SerializeToString())
    spec = IntMacSpec("int8", "int8")
    cases = (
        ({"x": np.zeros((2, 2, 8, 7), np.float32)}, "tensor 'x' has shape (2, 2, 8, 7): expected [N, 2, 8, 8]"),
        ({"image": np.zeros((2, 2, 8, 8))}, "no tensor 'x': expected one array per graph input"),
        ({"x": np.zeros((2, 2, 8, 8)), "labels": np.zeros(3, np.int64)}, "tensor 'labels' has shape (3,)"),
    )
    for arrays, needle in cases:
        np.savez(tmp_path / "in.npz", **arrays)
        with pytest.raises(ValueError) as err:
            evaluate(spec, {"onnx": str(tmp_path / "toy.onnx"), "inputs": str(tmp_path / "in.npz")})
        assert str(tmp_path / "in.npz") in str(err.value) and needle in str(err.value), str(err.value)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    np.savez(tmp_path / "junk.npz", x=np.zeros((1, 2, 8, 8)))
    with pytest.raises(ValueError, match="junk.onnx: not a valid ONNX model"):
        evaluate(spec, str(tmp_path / "junk.onnx"))


def test_cli_evaluate(tmp_path: Path) -> None:
    model = _toy_model(int_weights=True)
    (tmp_path / "toy.onnx").write_bytes(model.SerializeToString())
    x = np.random.default_rng(3).integers(-4, 5, (6, 2, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "intmac",
            "--a",
            "int8",
            "--b",
            "int8",
            "-w",
            str(tmp_path / "toy.onnx"),
            "--inputs",
            str(tmp_path / "inputs.npz"),
            "--limit",
            "4",
            "--scaling",
            "channel",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["workload"] == "toy" and data["scaling"] == "channel" and data["outputs"] > 0 and 0 <= data["acc"] <= 1
    result = runner.invoke(app, ["evaluate", "mac", "--acc", "fp16", "-w", "mlp", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["overflow_frac"] > 0.5
    result = runner.invoke(app, ["evaluate", "blockdot", "-w", "gaussian", "--scaling", "tensor"])
    assert result.exit_code == 2 and "error:" in result.output and "natively" in result.output
    result = runner.invoke(app, ["evaluate", "intmac", "-w", str(tmp_path / "missing.npz")])
    assert result.exit_code == 3 and "missing.npz: no such file" in " ".join(result.output.split())
