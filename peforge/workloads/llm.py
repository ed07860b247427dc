"""A small transformer-style block with LLM-like numerics, as a Python-callable workload.

``peforge.workloads.llm:tiny_lm`` (the ``tiny_lm`` built-in) runs one pre-norm feed-forward
block and an output head on ``tokens`` token vectors:

    x = RMSNorm(h) * gamma                     gamma has a few channels 20-100x the rest
    h' = h + GELU(x @ W_up) @ W_down           (PE: 2 matrix products)
    logits = RMSNorm(h') @ W_head              (PE: 1 matrix product)

with heavy-tailed (Student-t, df 4) weights, fixed seeded random values (no training, no
downloads).  As in trained LLMs (LLM.int8(), SmoothQuant), the outlier channels are large but
carry little of the signal: their rows of ``W_up`` are divided by their gamma, so a format that
flattens the ordinary channels to zero to fit the outliers loses the answer.  The metric
``acc`` is the top-1 agreement of the PE's next-token prediction with the float64 run;
``logit_sqnr_db`` is the SQNR of the logits.  About 5.2 M MACs with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .base import MatMul, float64_matmul, top1_accuracy
from .tensors import sqnr_db, student_t

__all__ = ["TinyLM", "tiny_lm", "model"]


def _rmsnorm(h: np.ndarray) -> np.ndarray:
    return h / np.sqrt(np.mean(h * h, axis=1, keepdims=True) + 1e-6)


def _gelu(u: np.ndarray) -> np.ndarray:
    return 0.5 * u * (1.0 + np.tanh(0.7978845608028654 * (u + 0.044715 * u**3)))


@dataclass(frozen=True)
class TinyLM:
    """Weights and inputs of the block (see the module docstring)."""

    h: np.ndarray  # [tokens, d] residual stream
    gamma: np.ndarray  # [d] norm gain with outlier channels
    w_up: np.ndarray  # [d, ffn]
    w_down: np.ndarray  # [ffn, d]
    w_head: np.ndarray  # [d, vocab]

    def logits(self, matmul: MatMul) -> np.ndarray:
        """The block's logits through ``matmul``.  A format that overflows gives inf / NaN
        activations on purpose (the metrics score them as the worst result:
        :func:`.tensors.sqnr_db`, :func:`.base.top1_accuracy`), so NumPy's warnings about
        them are silenced here rather than printed per sweep point."""
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            x = _rmsnorm(self.h) * self.gamma
            h2 = self.h + np.asarray(matmul(_gelu(np.asarray(matmul(x, self.w_up))), self.w_down))
            return np.asarray(matmul(_rmsnorm(h2), self.w_head), np.float64)


@lru_cache(maxsize=8)
def model(tokens: int = 128, d: int = 64, ffn: int = 256, vocab: int = 128, seed: int = 0, outliers: int = 2) -> TinyLM:
    """The seeded block (cached per argument set)."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((tokens, d))
    gamma = np.ones(d)
    cols = rng.choice(d, size=min(outliers, d), replace=False)
    gamma[cols] = rng.uniform(20.0, 100.0, size=len(cols))
    w_up = student_t((d, ffn), seed=seed + 1, df=4.0) / np.sqrt(d)
    w_up[cols] /= gamma[cols, None]
    w_down = student_t((ffn, d), seed=seed + 2, df=4.0) / np.sqrt(ffn)
    w_head = student_t((d, vocab), seed=seed + 3, df=4.0) / np.sqrt(d)
    for a in (h, gamma, w_up, w_down, w_head):
        a.setflags(write=False)
    return TinyLM(h, gamma, w_up, w_down, w_head)


@lru_cache(maxsize=8)
def _reference(tokens: int, d: int, ffn: int, vocab: int, seed: int, outliers: int) -> np.ndarray:
    return model(tokens, d, ffn, vocab, seed, outliers).logits(float64_matmul)


def tiny_lm(
    matmul: MatMul, tokens: int = 128, d: int = 64, ffn: int = 256, vocab: int = 128, seed: int = 0, outliers: int = 2
) -> dict[str, float]:
    """Top-1 agreement with the float64 run (``acc``) and logit SQNR of the block through ``matmul``."""
    ref = _reference(tokens, d, ffn, vocab, seed, outliers)
    out = model(tokens, d, ffn, vocab, seed, outliers).logits(matmul)
    return {"acc": top1_accuracy(out, np.argmax(ref, axis=1)), "logit_sqnr_db": sqnr_db(ref, out)}
