"""Random and corner model images for the co-simulation suite.

Every image here is built as a dict and passed through
:meth:`golden.image.ModelImage.from_dict`, so it obeys the contract: weights in
``±(2**(w_bits-1)-1)``, ``m < 2**m_bits``, ``1 <= s <= SHIFT_MAX`` and the
accumulator proof ``in*max|w|*max|x| + max|b| <= 2**(acc_bits-1)-1`` (weights
and bias are shrunk until it holds).  Everything is a pure function of its
seed and arguments (``random.Random(seed)``, never the global RNG).

Scales (``input_scale``, ``weight_scale``, ``output_scale``) are nominal here
(1.0): these images exist to exercise the integer datapath, not to mean
anything in float.
"""

from __future__ import annotations

import random

import torch

from . import contract
from .image import FORMAT, VERSION, ModelImage

__all__ = ["random_image", "random_inputs", "corner_images", "corner_inputs", "CORNER_TAGS"]

CORNER_TAGS = ("max_weights", "min_weights", "longest_accumulation", "rounding_ties",
               "shift_1", "shift_max", "m_zero", "m_max")


def _span(name: str, value) -> tuple[int, int]:
    if isinstance(value, bool) or isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{name} must be an integer or a (min, max) tuple of integers, not {value!r}")
    lo, hi = value
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} must satisfy 1 <= min <= max, not {value}")
    return lo, hi


def _check_widths(w_bits, a_bits, acc_bits, m_bits) -> None:
    contract.check_bits("w_bits", w_bits, *contract.BITS_RANGE)
    contract.check_bits("a_bits", a_bits, *contract.BITS_RANGE)
    contract.check_bits("acc_bits", acc_bits, *contract.ACC_BITS_RANGE)
    contract.check_bits("m_bits", m_bits, *contract.M_BITS_RANGE)


def _fit_weight(in_features: int, a_bits: int, w_bits: int, acc_bits: int) -> int:
    """Largest weight magnitude (<= the w_bits maximum) whose products over ``in_features`` fit."""
    max_x = -contract.activation_range(a_bits)[0]
    limit = contract.accumulator_range(acc_bits)[1]
    return min(contract.weight_range(w_bits)[1], limit // (in_features * max_x))


def _budget(in_features: int, max_w: int, a_bits: int, acc_bits: int) -> int:
    """What the accumulator proof leaves for ``max|b|``."""
    max_x = -contract.activation_range(a_bits)[0]
    return contract.accumulator_range(acc_bits)[1] - in_features * max_w * max_x


def _layer(weight, bias, m, s, relu: bool, requant: bool) -> dict:
    out = len(weight)
    return {"in_features": len(weight[0]), "out_features": out, "weight": weight, "bias": bias,
            "m": list(m) if requant else [], "s": list(s) if requant else [],
            "relu": relu, "requantize": requant, "weight_scale": [1.0] * out,
            "output_scale": 1.0 if requant else None}


def _image(name, w_bits, a_bits, acc_bits, m_bits, layers) -> ModelImage:
    data = {"format": FORMAT, "version": VERSION, "name": name, "w_bits": w_bits, "a_bits": a_bits,
            "acc_bits": acc_bits, "m_bits": m_bits, "input_scale": 1.0, "layers": layers}
    return ModelImage.from_dict(data, source=f"generated image {name!r}")


def _sensible_multiplier(rng: random.Random, in_features: int, max_w: int, a_bits: int, m_bits: int):
    """``(m, s)`` mapping a typical accumulator to the activation range, times 2**[-2, 2]."""
    hi = contract.activation_range(a_bits)[1]
    typical = max(1.0, (in_features ** 0.5) * max(max_w, 1) * hi / 3)
    real = hi / typical * 2 ** rng.uniform(-2, 2)
    try:
        return contract.quantize_multiplier(real, m_bits)
    except ValueError:  # needs a shift below 1: the largest legal gain instead
        return 2**m_bits - 1, 1


def random_image(seed: int, *, w_bits: int = 8, a_bits: int = 8, acc_bits: int = 32, m_bits: int = 16,
                 depth=(1, 4), width=(1, 128), bias: bool | None = None, relu: bool | None = None,
                 requantize_last: bool | None = None) -> ModelImage:
    """A random MLP image: ``depth`` layers, every width drawn from ``width`` (inclusive).

    ``bias``/``relu``/``requantize_last`` None means drawn at random (ReLU per
    hidden layer; a raw last layer never has a ReLU).  Multipliers are mostly
    "sensible" (a typical accumulator lands in range) and sometimes (1 in 5
    neurons) fully random ``m``/``s``, so saturation and zero outputs occur too.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    _check_widths(w_bits, a_bits, acc_bits, m_bits)
    dlo, dhi = _span("depth", depth)
    wlo, whi = _span("width", width)
    for name, v in (("bias", bias), ("relu", relu), ("requantize_last", requantize_last)):
        if v is not None and not isinstance(v, bool):
            raise TypeError(f"{name} must be True, False or None, not {v!r}")
    rng = random.Random(seed)
    n_layers = rng.randint(dlo, dhi)
    sizes = [rng.randint(wlo, whi) for _ in range(n_layers + 1)]
    has_bias = rng.random() < 0.5 if bias is None else bias
    req_last = rng.random() < 0.5 if requantize_last is None else requantize_last
    layers = []
    for n in range(n_layers):
        fin, fout = sizes[n], sizes[n + 1]
        last = n == n_layers - 1
        requant = req_last or not last
        layer_relu = requant and (rng.random() < 0.5 if relu is None else relu)
        max_w = _fit_weight(fin, a_bits, w_bits, acc_bits)
        peak = rng.choice([max_w, max(1, max_w // 2), rng.randint(0, max_w)]) if max_w else 0
        weight = [[rng.randint(-peak, peak) for _ in range(fin)] for _ in range(fout)]
        budget = _budget(fin, peak, a_bits, acc_bits)
        b_peak = min(budget, max(1, fin * max(peak, 1) * 2 ** (a_bits - 1) // 4))
        b = [rng.randint(-b_peak, b_peak) if has_bias else 0 for _ in range(fout)]
        ms = [_sensible_multiplier(rng, fin, peak, a_bits, m_bits) if rng.random() < 0.8
              else (rng.randrange(2**m_bits), rng.randint(1, contract.SHIFT_MAX)) for _ in range(fout)]
        layers.append(_layer(weight, b, [m for m, _ in ms], [s for _, s in ms], layer_relu, requant))
    return _image(f"random{seed}", w_bits, a_bits, acc_bits, m_bits, layers)


def random_inputs(image: ModelImage, n: int, seed: int) -> torch.Tensor:
    """``n`` uniform random activations in the ``a_bits`` range: int64 ``[n, in_features]``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, not {n!r}")
    lo, hi = contract.activation_range(image.a_bits)
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi + 1, (n, image.in_features), generator=gen, dtype=torch.int64)


def corner_inputs(image: ModelImage) -> torch.Tensor:
    """Rows: all maximum, all minimum, zeros, alternating max/min, alternating min/max."""
    lo, hi = contract.activation_range(image.a_bits)
    n = image.in_features
    alt = [hi if i % 2 == 0 else lo for i in range(n)]
    rows = [[hi] * n, [lo] * n, [0] * n, alt, [hi + lo - v for v in alt]]
    return torch.tensor(rows, dtype=torch.int64)


def corner_images(*, w_bits: int = 8, a_bits: int = 8, acc_bits: int = 32, m_bits: int = 16,
                  max_features: int = 64, out_features: int = 4, seed: int = 0) -> list[tuple[str, ModelImage]]:
    """One single-layer image per tag of :data:`CORNER_TAGS` (in that order).

    * ``max_weights`` / ``min_weights``: every weight ``+qw`` / ``-qw``
      (``qw = 2**(w_bits-1)-1``), ``in = min(8, max_features)`` (fewer if the
      accumulator cannot hold 8 products), biases ``+budget, -budget, 0, random``
      so that all-min or all-max inputs drive the accumulator to exactly its proven
      bound; raw output (the accumulator itself is checked).
    * ``longest_accumulation``: ``in = max_features``, random ``±max`` weights
      (magnitude shrunk only if the accumulator proof needs it), raw output.
    * ``rounding_ties``: ``in = 4`` (all-ones weights over ``max_features`` inputs
      when ``max_features < 4``), weights ``1, 1, -1, -1``, odd biases, and per
      neuron ``m = 2**(s-1)`` (or ``m = 3, s = 1``) so that every odd accumulator
      gives ``acc*m + 2**(s-1)`` an exact ``.5`` before the shift — including the
      corner inputs (whose accumulator is just the odd bias) and negative ties.
    * ``shift_1``, ``shift_max``: the ``max_weights`` layer requantized with
      ``s = 1`` (random ``m``) / ``s = SHIFT_MAX`` (``m = 2**m_bits - 1``).
    * ``m_zero``, ``m_max``: the same layer with ``m = 0`` / ``m = 2**m_bits - 1``
      (shifts ``1, m_bits, m_bits + 8, SHIFT_MAX`` across neurons).
    """
    _check_widths(w_bits, a_bits, acc_bits, m_bits)
    contract.check_bits("max_features", max_features, 1, 2**16)
    contract.check_bits("out_features", out_features, 1, 2**16)
    rng = random.Random(seed)
    qw = contract.weight_range(w_bits)[1]
    max_x = -contract.activation_range(a_bits)[0]
    limit = contract.accumulator_range(acc_bits)[1]
    fin = min(8, max_features, limit // (qw * max_x))
    if fin < 1:
        raise ValueError(f"acc_bits={acc_bits} cannot hold even one product of max|w|={qw} and max|x|={max_x}")
    budget = _budget(fin, qw, a_bits, acc_bits)
    biases = [[budget, -budget, 0, rng.randint(-budget, budget)][j % 4] for j in range(out_features)]

    def extreme(sign: int) -> list[list[int]]:
        return [[sign * qw] * fin for _ in range(out_features)]

    def requantized(ms) -> list[dict]:
        return [_layer(extreme(1), biases, [m for m, _ in ms], [s for _, s in ms], False, True)]

    shifts = [1, m_bits, m_bits + 8, contract.SHIFT_MAX]
    m_max = 2**m_bits - 1
    long_w = _fit_weight(max_features, a_bits, w_bits, acc_bits)
    long_weight = [[rng.choice((-long_w, long_w)) for _ in range(max_features)] for _ in range(out_features)]
    long_budget = _budget(max_features, long_w, a_bits, acc_bits)
    long_bias = [rng.randint(-long_budget, long_budget) for _ in range(out_features)]

    tie_ms = [(3, 1), (1, 1)] + [(2 ** (s - 1), s) for s in (2, 3, 5, 9, m_bits) if s <= m_bits]
    tie_ms = tie_ms[:max(out_features, 2)] + [tie_ms[-1]] * (out_features - len(tie_ms))
    tie_bias = [(2 * j + 1) * (-1) ** j for j in range(out_features)]
    tie_layer = _layer([[1, 1, -1, -1] for _ in range(out_features)], tie_bias,
                       [m for m, _ in tie_ms], [s for _, s in tie_ms], False, True)
    if max_features < 4:
        tie_layer = _layer([[1] * max_features for _ in range(out_features)], tie_bias,
                           [m for m, _ in tie_ms], [s for _, s in tie_ms], False, True)

    layers = {
        "max_weights": [_layer(extreme(1), biases, [], [], False, False)],
        "min_weights": [_layer(extreme(-1), biases, [], [], False, False)],
        "longest_accumulation": [_layer(long_weight, long_bias, [], [], False, False)],
        "rounding_ties": [tie_layer],
        "shift_1": requantized([(rng.randrange(2**m_bits), 1) for _ in range(out_features)]),
        "shift_max": requantized([(m_max, contract.SHIFT_MAX)] * out_features),
        "m_zero": requantized([(0, shifts[j % 4]) for j in range(out_features)]),
        "m_max": requantized([(m_max, shifts[j % 4]) for j in range(out_features)]),
    }
    return [(tag, _image(f"corner_{tag}", w_bits, a_bits, acc_bits, m_bits, layers[tag])) for tag in CORNER_TAGS]
