"""Float model -> model image, following the integer contract (``docs/quantization.md``).

Per layer ``l`` with input scale ``s_in`` (the model's ``input_scale`` for layer 0,
else layer ``l-1``'s ``output_scale``):

* weights: per output channel ``s_w[j] = max_i |W[j,i]| / qw`` with
  ``qw = 2**(w_bits-1) - 1``, ``w_q = round(W / s_w[j])`` (never clamped: it is
  within ``±qw`` by construction);
* bias: ``b_q[j] = round(b[j] / (s_in * s_w[j]))``;
* activations: per tensor, calibrated on ``calibration_inputs`` by the largest
  magnitude seen: ``s = max|a| / (2**(a_bits-1) - 1)``;
* requantization: ``m[j] / 2**s[j] ≈ s_in * s_w[j] / s_out`` by
  :func:`golden.contract.quantize_multiplier`.

``round`` is torch's round-half-to-even (a float step, done once, offline).
"""

from __future__ import annotations

import math

import torch

from . import contract
from .image import ModelImage
from .importer import import_chain

__all__ = ["quantize_model", "dequantize_output", "predict_classes", "calibrate_scale"]


def calibrate_scale(values: torch.Tensor, a_bits: int) -> float:
    """Symmetric per-tensor scale mapping ``max|values|`` to ``2**(a_bits-1) - 1``.

    An all-zero tensor gets scale 1.0 (any positive scale represents it exactly).
    """
    peak = float(values.abs().max()) if values.numel() else 0.0
    if peak == 0.0:
        return 1.0
    return peak / contract.activation_range(a_bits)[1]


def _weight_scales(weight: torch.Tensor, w_bits: int) -> torch.Tensor:
    qw = contract.weight_range(w_bits)[1]
    peak = weight.abs().amax(dim=1)
    scale = peak / qw
    zero = peak == 0
    if zero.any():
        # An all-zero row is exact at any scale; borrow a typical one so its
        # bias and requantization multiplier stay in the ranges of its neighbours.
        fill = float(scale[~zero].median()) if (~zero).any() else 1.0
        scale = torch.where(zero, torch.full_like(scale, fill), scale)
    return scale


def quantize_model(model, calibration_inputs, *, w_bits: int = 8, a_bits: int = 8, acc_bits: int = 32,
                   m_bits: int = 16, name: str = "model", requantize_last: bool = False) -> ModelImage:
    """Quantize a float chain of Linear/ReLU layers to a checked :class:`ModelImage`.

    The last layer outputs its raw accumulator unless ``requantize_last`` is true or
    it ends in a ReLU (the clamp is part of requantization, so it is then requantized).
    Raises TypeError/ValueError naming the layer and the numbers when the model or
    the widths are not acceptable (including an accumulator that could overflow).
    """
    contract.check_bits("w_bits", w_bits, *contract.BITS_RANGE)
    contract.check_bits("a_bits", a_bits, *contract.BITS_RANGE)
    contract.check_bits("acc_bits", acc_bits, *contract.ACC_BITS_RANGE)
    contract.check_bits("m_bits", m_bits, *contract.M_BITS_RANGE)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, not {name!r}")
    if not isinstance(requantize_last, bool):
        raise TypeError(f"requantize_last must be True or False, not {requantize_last!r}")
    specs = import_chain(model)
    if isinstance(calibration_inputs, torch.Tensor):
        x = calibration_inputs.detach().to(torch.float64)
    else:
        try:
            x = torch.as_tensor(calibration_inputs, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"calibration_inputs must be a tensor [batch, features], "
                            f"not {type(calibration_inputs).__name__}") from None
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != specs[0].in_features:
        raise ValueError(f"calibration_inputs must have shape [batch >= 1, {specs[0].in_features}], not {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("calibration_inputs contain NaN or infinite values")

    input_scale = calibrate_scale(x, a_bits)
    s_in = input_scale
    layers = []
    for n, spec in enumerate(specs):
        last = n == len(specs) - 1
        s_w = _weight_scales(spec.weight, w_bits)
        w_q = torch.round(spec.weight / s_w[:, None]).to(torch.int64)
        b_real = spec.bias / (s_in * s_w)
        # prove the accumulator bound before any float -> int64 conversion can wrap
        _check_layer(n, spec, int(w_q.abs().max()), _max_abs_int(n, b_real), a_bits, acc_bits)
        b_q = torch.round(b_real).to(torch.int64)
        x = x @ spec.weight.T + spec.bias
        if spec.relu:
            x = x.clamp_min(0.0)
        requant = spec.relu or requantize_last or not last
        layer = {
            "in_features": spec.in_features, "out_features": spec.out_features,
            "weight": w_q.tolist(), "bias": b_q.tolist(), "relu": spec.relu, "requantize": requant,
            "weight_scale": s_w.tolist(), "m": [], "s": [], "output_scale": None,
        }
        if requant:
            s_out = calibrate_scale(x, a_bits)
            ms = [_multiplier(n, j, s_in * float(s_w[j]) / s_out, m_bits) for j in range(spec.out_features)]
            layer.update(m=[m for m, _ in ms], s=[s for _, s in ms], output_scale=s_out)
            s_in = s_out
        layers.append(layer)
    data = {"format": "nmc-model-image", "version": 1, "name": name, "w_bits": w_bits, "a_bits": a_bits,
            "acc_bits": acc_bits, "m_bits": m_bits, "input_scale": input_scale, "layers": layers}
    return ModelImage.from_dict(data, source=f"model {name!r}")


def _max_abs_int(n: int, values: torch.Tensor) -> int:
    """``max|round(values)|`` as an exact Python int (no int64 wrap for huge values)."""
    peak = float(values.abs().max())
    if not math.isfinite(peak):
        raise ValueError(f"layer {n}: the bias cannot be represented at scale s_in*s_w "
                         f"(the scale underflows to 0 or the bias is too large)")
    return int(round(peak))


def _check_layer(n, spec, max_abs_w: int, max_abs_b: int, a_bits, acc_bits) -> None:
    """The accumulator proof, reported with the torch layer's index as well."""
    try:
        contract.check_accumulator(n, spec.in_features, max_abs_w, max_abs_b, a_bits, acc_bits)
    except ValueError as e:
        raise ValueError(f"{e} (torch layer {spec.index})") from None


def _multiplier(n: int, j: int, real: float, m_bits: int) -> tuple[int, int]:
    try:
        return contract.quantize_multiplier(real, m_bits)
    except ValueError as e:
        raise ValueError(f"layer {n} neuron {j}: {e}") from None


def dequantize_output(image: ModelImage, y_int) -> torch.Tensor:
    """Model output integers ``[batch, out]`` back to float64.

    Raw last layer: ``acc * s_in_last * s_w[j]``; requantized: ``y * output_scale``.
    """
    y = torch.as_tensor(y_int)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"integer outputs must have an integer dtype, not {y.dtype}")
    if y.ndim != 2 or y.shape[1] != image.out_features:
        raise ValueError(f"outputs must have shape [batch, {image.out_features}], not {list(y.shape)}")
    last = image.layers[-1]
    y = y.to(torch.float64)
    if last.requantize:
        return y * last.output_scale
    s_in = image.layers[-2].output_scale if len(image.layers) > 1 else image.input_scale
    return y * (s_in * torch.tensor(last.weight_scale, dtype=torch.float64))


def predict_classes(image: ModelImage, y_int) -> torch.Tensor:
    """Class per row: arg-max of the *dequantized* outputs.

    A raw last layer has one scale per neuron (``s_in * s_w[j]``), so the arg-max
    of the raw integers is not the model's prediction; compare dequantized values.
    """
    return dequantize_output(image, y_int).argmax(dim=1)
