"""Workloads: digits split, trained networks, im2col convolution, cache, error metrics."""

from __future__ import annotations

import numpy as np
import pytest

from peforge.workloads import digits, tensors
from peforge.workloads.digits import _im2col


def test_dataset_split_is_fixed_and_scaled() -> None:
    ds = digits.dataset()
    assert ds.x_train.shape[1] == 64 and len(ds.x_train) + len(ds.x_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))


@pytest.mark.parametrize("make", [digits.mlp, digits.cnn], ids=["mlp", "cnn"])
def test_networks_train_to_high_accuracy(make) -> None:
    net = make()
    assert net.accuracy() >= 0.95
    # The float64 matmul and the float32 default agree on the predictions of almost every image.
    x = digits.dataset().x_test
    p32 = np.argmax(net.forward(x), 1)
    p64 = np.argmax(net.forward(x, matmul=lambda a, w: a @ w), 1)
    assert np.mean(p32 == p64) >= 0.99


def test_every_product_goes_through_matmul() -> None:
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    net = digits.cnn()

    def spy(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        calls.append((a.shape, w.shape))
        return np.zeros((a.shape[0], w.shape[1]))

    logits = net.forward(digits.dataset().x_test[:5], matmul=spy)
    assert calls == [((5 * 64, 9), (9, 8)), ((5, 128), (128, 10))]
    assert np.array_equal(logits, np.broadcast_to(net.layers[-1].b, (5, 10)))
    assert [a.shape for a in net.layer_inputs(digits.dataset().x_test[:5])] == [c[0] for c in calls]


def test_im2col_equals_direct_convolution() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 3))
    k = rng.standard_normal((3, 3, 3, 4))  # kh, kw, cin, cout
    got = (_im2col(x) @ k.reshape(27, 4)).reshape(2, 8, 8, 4)
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros_like(got)
    for i in range(8):
        for j in range(8):
            want[:, i, j, :] = np.einsum("nhwc,hwco->no", pad[:, i : i + 3, j : j + 3, :], k)
    assert np.allclose(got, want)


def test_weights_cache_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PEFORGE_CACHE", str(tmp_path))
    trained = digits._load_or_train("mlp")
    files = list((tmp_path / "workloads").glob("digits-mlp-*.npz"))
    assert len(files) == 1
    loaded = digits._load_or_train("mlp")
    assert all(np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) for a, b in zip(trained.layers, loaded.layers))


def test_sqnr_and_relative_error() -> None:
    ref = np.array([3.0, 4.0])
    assert tensors.sqnr_db(ref, ref) == np.inf
    assert tensors.sqnr_db(ref, ref + [0.0, 0.25]) == pytest.approx(10 * np.log10(25 / 0.0625))
    assert tensors.relative_error(ref, [3.0, 3.0]) == pytest.approx(1 / 5)
    assert tensors.sqnr_db(ref, [np.nan, 4.0]) == -np.inf
    with pytest.raises(ValueError, match="shapes"):
        tensors.sqnr_db(ref, [1.0])


def test_distributions_are_seeded_with_unit_scale() -> None:
    for name, gen in tensors.DISTRIBUTIONS.items():
        a, b = gen((20000,), seed=3), gen((20000,), seed=3)
        assert np.array_equal(a, b), name
    assert np.std(tensors.laplacian((200000,), 0)) == pytest.approx(1.0, rel=0.02)
    t = tensors.student_t((200000,), 0)
    assert np.mean(np.abs(t) > 6) > 10 * np.mean(np.abs(tensors.gaussian((200000,), 0)) > 6)
    with pytest.raises(ValueError, match="df=0"):
        tensors.student_t((3,), df=0)


def test_tiny_lm_scores_an_overflowing_matmul_as_worst_without_warnings() -> None:
    """A format that overflows (a matmul that returns inf) is the worst result, quietly."""
    import warnings

    from peforge.workloads.llm import tiny_lm

    def overflowing(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        out = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
        out[0, 0] = np.inf
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = tiny_lm(overflowing, tokens=16, d=16, ffn=32, vocab=16)
    assert r["logit_sqnr_db"] == float("-inf")
    assert r["acc"] < 1.0
    exact = tiny_lm(
        lambda x, w: np.asarray(x, np.float64) @ np.asarray(w, np.float64), tokens=16, d=16, ffn=32, vocab=16
    )
    assert exact["acc"] == 1.0
