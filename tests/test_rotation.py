"""peforge.rotation: the fast Hadamard butterfly against the Sylvester matrix product, the
matmul unchanged before quantisation (exactly for dyadic data and blocks 4^j, to float64
rounding otherwise), seeded random signs, padding, and the rotation option of golden.matmul."""

from __future__ import annotations

import numpy as np
import pytest

from peforge import rotation as R
from peforge.models import golden
from peforge.spec import BlockDotSpec, MinifloatMacSpec


@pytest.mark.parametrize("n", [2, 4, 8, 32, 128])
def test_sylvester_matrix_is_orthogonal(n):
    h = R.hadamard_matrix(n)
    assert set(np.unique(h)) == {-1.0, 1.0}
    np.testing.assert_array_equal(h @ h.T, n * np.eye(n))
    # independent definition: H[i, j] = (-1)^popcount(i & j)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pop = np.vectorize(lambda v: bin(v).count("1"))(i & j)
    np.testing.assert_array_equal(h, (-1.0) ** pop)


@pytest.mark.parametrize("kind", ["hadamard", "random-hadamard"])
@pytest.mark.parametrize("block", [None, 4, 32])
def test_butterfly_equals_the_matrix_product(kind, block):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((5, 64)), rng.standard_normal((64, 3))
    xr, wr = R.rotate_matmul(x, w, kind, block, seed=4)
    r = R.rotation_matrix(64, kind, block, seed=4)
    np.testing.assert_allclose(r @ r.T, np.eye(64), atol=1e-14)
    np.testing.assert_allclose(xr, x @ r, atol=1e-13)
    np.testing.assert_allclose(wr, r.T @ w, atol=1e-13)
    np.testing.assert_allclose(xr @ wr, x @ w, rtol=0, atol=1e-12 * np.abs(x).sum() * np.abs(w).max())


@pytest.mark.parametrize("block", [4, 16, 64])
@pytest.mark.parametrize("kind", ["hadamard", "random-hadamard"])
def test_product_is_exact_for_dyadic_data(kind, block):
    """Integers and blocks 4^j (1/sqrt(b) a power of two): every step is exact in float64."""
    rng = np.random.default_rng(2)
    x = rng.integers(-50, 50, (6, 128)).astype(float)
    w = rng.integers(-50, 50, (128, 5)).astype(float)
    xr, wr = R.rotate_matmul(x, w, kind, block, seed=7)
    np.testing.assert_array_equal(xr @ wr, x @ w)


def test_random_signs_are_seeded_and_padding_keeps_the_product():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, 50)), rng.standard_normal((50, 6))  # 50: padded to 64
    a = R.rotate_matmul(x, w, "random-hadamard", 32, seed=1)
    b = R.rotate_matmul(x, w, "random-hadamard", 32, seed=1)
    c = R.rotate_matmul(x, w, "random-hadamard", 32, seed=2)
    assert a[0].shape == (4, 64) and a[1].shape == (64, 6)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    np.testing.assert_allclose(a[0] @ a[1], x @ w, atol=1e-12)
    np.testing.assert_allclose(c[0] @ c[1], x @ w, atol=1e-12)


def test_rotation_spreads_an_outlier_channel():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((256, 64))
    x[:, 5] *= 40.0
    w = np.eye(64)
    crest = lambda t: np.abs(t).reshape(256, -1, 16).max(-1) / np.sqrt((t.reshape(256, -1, 16) ** 2).mean(-1))  # noqa: E731
    xr, _ = R.rotate_matmul(x, w, "hadamard", 16)
    assert np.median(crest(x)[:, 0]) > 3.5 and np.median(crest(xr)[:, 0]) < 1.5


def test_golden_matmul_rotation_option():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((6, 48)), rng.standard_normal((48, 5))
    x[:, 7] *= 50
    spec = BlockDotSpec("int4", "int4", "e4m3fn", "e4m3fn", block=16)
    xr, wr = R.rotate_matmul(x, w, "random-hadamard", 16, seed=3)
    np.testing.assert_array_equal(
        golden.matmul(spec, x, w, rotation="random-hadamard", rotation_block=16, rotation_seed=3),
        golden.matmul(spec, xr, wr),
    )
    mac = MinifloatMacSpec("e4m3fn", "e4m3fn", "fp32", lanes=4)
    np.testing.assert_allclose(
        golden.matmul(mac, x, w, rotation="hadamard"), x @ w, rtol=0.2, atol=0.1 * np.abs(x @ w).max()
    )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rotation="walsh"), "rotation='walsh'"),
        (dict(rotation="hadamard", rotation_block=12), "rotation_block=12"),
        (dict(rotation="none", rotation_block=3), "rotation_block=3"),
    ],
)
def test_bad_rotation_options(kw, match):
    with pytest.raises(ValueError, match=match):
        golden.matmul(BlockDotSpec(), np.ones((2, 32)), np.ones((32, 2)), **kw)


def test_sweep_rotation_axis_prices_the_activation_unit():
    """A [[pe]] entry with matmul = { rotation = [...], rotation_block = 16 }: one point per
    rotation, the rotation unit's cost beside the PE's, the quality measured through it."""
    from peforge.dse.evaluation import EvalSettings, evaluate
    from peforge.dse.space import Space, TensorSettings

    space = Space.from_dict(
        {
            "pe": [
                {
                    "family": "blockdot",
                    "element_a": "int4",
                    "element_b": "int4",
                    "scale_a": "e4m3fn",
                    "scale_b": "e4m3fn",
                    "block": 16,
                    "lanes": 4,
                    "matmul": {"rotation": ["none", "hadamard", "random-hadamard"], "rotation_block": 16},
                }
            ],
            "targets": ["asic45"],
            "workloads": ["gaussian"],
        }
    )
    points = space.points()
    assert [dict(p.options)["rotation"] for p in points] == ["none", "hadamard", "random-hadamard"]
    settings = EvalSettings(("gaussian",), TensorSettings((8, 64, 8), 0))
    rows = [evaluate(p, settings) for p in points]
    assert "rotation_energy_pj_per_mac" not in rows[0] and not rows[0].get("error")
    from peforge.models.cost.rotation import hadamard_estimate

    unit = hadamard_estimate(16, "asic45")
    for row in rows[1:]:
        assert not row.get("error"), row.get("error")
        assert row["rotation_gates_nand2"] == unit.gates_nand2
        assert row["rotation_energy_pj_per_mac"] == pytest.approx(unit.energy_pj_per_op / 16 / 8, rel=1e-3)
        assert row["energy_pj_per_mac_with_rotation"] > row["energy_pj_per_mac"]
        assert np.isfinite(row["gaussian_sqnr_db"])


def test_hadamard_unit_netlist_counts_its_adders():
    from peforge.models.cost.rotation import hadamard_netlist, rotation_cost

    n = hadamard_netlist(32, 16)
    assert n.notes["stages"] == 5 and n.notes["adders"] == 160 and n.ffs == 32 * 21
    assert rotation_cost("none", None).energy_pj_per_mac == 0.0
    with pytest.raises(ValueError, match="block=12"):
        hadamard_netlist(12)
