"""Dynamic energy from switching activity: a toggle-count model driven by the golden model.

A workload's operand stream is run through the PE's golden model; for every activity class
(:data:`.components.CLASSES`) the model counts bit toggles between successive cycles on the
signals that class computes:

* ``operand``: the operand port words (decoders, operand muxes);
* ``product``: each lane's exact product (multipliers, alignment shifters), as the RTL holds
  it (minifloat: one's complement magnitude in units of ``2**product_lsb_exp``);
* ``sum``: the lane sum (adder tree);
* ``acc``: the accumulator register (the golden model's output);
* ``ctl``: valid/first and flags, taken as 1 (no data dependence modelled).

Each family's part of this (operand layout, products, sums) is its toggle model
(:mod:`.toggles`, the family's ``energy`` part in :data:`peforge.families.FAMILIES`).
:func:`digits_stream` gives real operands: the project's digits MLP
(:mod:`peforge.workloads.digits`), its activations and trained weights quantised per chain.

The ratio of a workload's toggle rate to that of uniformly random finite operands scales each
class's gate energy (:func:`peforge.models.cost.estimate` ``activity=``), so random operands
reproduce the anchored per-operation energy and real data shows how much less it switches.
Glitches, clock and leakage power are not modelled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from peforge.families import family_of
from peforge.spec import Spec

from .components import CLASSES
from .model import CostEstimate, estimate
from .toggles import ToggleModel, toggles

__all__ = ["toggle_rates", "activity", "random_stream", "digits_stream", "energy"]


def _model(spec: Spec) -> ToggleModel:
    return family_of(spec).part("energy")


def _acc_words(acc: np.ndarray) -> list[np.ndarray]:
    if acc.dtype != object:
        return [acc.astype(np.uint64)]
    mask = (1 << 64) - 1
    return [
        np.vectorize(lambda v: int(v) & mask, otypes=[np.uint64])(acc),
        np.vectorize(lambda v: (int(v) >> 64) & mask, otypes=[np.uint64])(acc),
    ]


def toggle_rates(spec: Spec, **inputs: Any) -> list[float]:
    """Toggle rate (toggled fraction of bits per step) per activity class for one stream.

    ``inputs`` are what :func:`peforge.models.golden.run` takes for ``spec`` (``a``, ``b``,
    ``first`` and the family's controls: a SIMD PE's ``mode``, block scales, ...).
    """
    from peforge.models import golden

    out = golden.run(spec, **inputs)
    acc_bits = golden.port_widths(spec)["acc"]
    rates = _model(spec).rates(spec, inputs)
    rates.append(toggles(_acc_words(out["acc"]), acc_bits))
    rates.append(1.0)
    return rates


def random_stream(spec: Spec, steps: int = 1024, batch: int = 4, chain: int = 64, seed: int = 0) -> dict[str, Any]:
    """Uniformly random finite operand codes, a new accumulation every ``chain`` steps."""
    rng = np.random.default_rng(seed)
    first = np.zeros((batch, steps), bool)
    first[:, ::chain] = True
    return _model(spec).random(spec, rng, first)


def digits_stream(spec: Spec, samples: int = 8, seed: int = 0) -> dict[str, Any]:
    """Real operands: the project's digits MLP (:func:`peforge.workloads.digits.mlp`, 64-64-10)
    on ``samples`` test images: every layer's input activations (a) against its trained weight
    columns (b), each quantised to the operand format with a power-of-two scale per chain (per
    image for a, per output neuron for b); one accumulation chain per (image, neuron), as long
    as the layer's fan-in, laid out by the family's toggle model."""
    from peforge.workloads import digits

    net = digits.mlp()
    rng = np.random.default_rng(seed)
    x_test = digits.dataset().x_test
    xs = x_test[rng.choice(len(x_test), samples, replace=False)]
    model = _model(spec)
    parts: dict[str, list[np.ndarray]] = {}
    for h, layer in zip(net.layer_inputs(xs), net.layers):
        k, m = layer.w.shape
        av = np.repeat(h[:, None, :], m, axis=1).reshape(-1, k)  # [samples*m, k]
        bv = np.repeat(layer.w.T[None], len(h), axis=0).reshape(-1, k)
        chains = model.chains(spec, av, bv)
        steps = next(iter(chains.values())).shape[1]
        first = np.zeros((len(av), steps), bool)
        first[:, 0] = True
        for key, arr in {**chains, "first": first}.items():
            arr = np.asarray(arr)
            parts.setdefault(key, []).append(arr.reshape(-1, *arr.shape[2:]))
    batch = 8
    n = len(np.concatenate(parts["first"])) // batch * batch
    out = {key: np.concatenate(v)[:n].reshape(batch, -1, *v[0].shape[1:]) for key, v in parts.items()}
    out["first"][:, 0] = True
    return out


def activity(spec: Spec, stream: dict[str, Any], seed: int = 0) -> list[float]:
    """Per-class toggle rate of ``stream`` relative to random finite operands (same spec)."""
    ref = toggle_rates(spec, **random_stream(spec, seed=seed))
    got = toggle_rates(spec, **stream)
    return [g / r if r > 0 else 1.0 for g, r in zip(got, ref)]


def energy(
    spec: Spec, workload: str | dict[str, Any] = "random", target: str = "asic45", seed: int = 0
) -> CostEstimate:
    """:func:`estimate` on an ASIC target with the activity of ``workload``
    (``"random"``, ``"digits"`` or a stream dict); the activity is stored in ``notes``."""
    if isinstance(workload, str):
        if workload == "random":
            act = [1.0] * len(CLASSES)
        elif workload == "digits":
            act = activity(spec, digits_stream(spec, seed=seed), seed)
        else:
            raise ValueError(f"workload={workload!r}: allowed 'random', 'digits' or a stream dict")
    else:
        act = activity(spec, workload, seed)
    est = estimate(spec, target, activity=act)
    est.notes["activity"] = dict(zip(CLASSES, (round(x, 3) for x in act)))
    est.notes["workload"] = workload if isinstance(workload, str) else "custom"
    return est
