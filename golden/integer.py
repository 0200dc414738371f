"""Integer golden inference: the contract applied to a model image, batched, in int64.

This is the reference the RTL is compared with, integer for integer.
"""

from __future__ import annotations

import torch

from . import contract
from .image import ModelImage

__all__ = ["quantize_input", "check_input", "infer"]


def quantize_input(image: ModelImage, x: torch.Tensor) -> torch.Tensor:
    """Float inputs ``[batch, in_features]`` to activations: ``clamp(round(x / input_scale))``."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 2 or x.shape[1] != image.in_features:
        raise ValueError(f"inputs must have shape [batch, {image.in_features}], not {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("inputs contain NaN or infinite values")
    lo, hi = contract.activation_range(image.a_bits)
    return torch.round(x / image.input_scale).clamp(lo, hi).to(torch.int64)


def check_input(image: ModelImage, x_q) -> torch.Tensor:
    """Validate integer activations ``[batch, in_features]`` against ``a_bits``; return int64."""
    x_q = torch.as_tensor(x_q)
    if x_q.is_floating_point() or x_q.dtype == torch.bool:
        raise TypeError(f"integer inputs must have an integer dtype, not {x_q.dtype}")
    if x_q.ndim != 2 or x_q.shape[1] != image.in_features:
        raise ValueError(f"inputs must have shape [batch, {image.in_features}], not {list(x_q.shape)}")
    lo, hi = contract.activation_range(image.a_bits)
    if x_q.numel() and (x_q.min() < lo or x_q.max() > hi):
        bad = int(x_q.min()) if x_q.min() < lo else int(x_q.max())
        raise ValueError(f"input value {bad} is outside the a_bits={image.a_bits} range {lo}..{hi}")
    return x_q.to(torch.int64)


_INT64_MAX = 2**63 - 1


def _fits_int64(layer, a_bits: int) -> bool:
    """Whether ``acc*m + 2**(s-1)`` provably stays inside int64 for this layer.

    Wide configurations (``acc_bits + m_bits`` above ~62) can exceed it; those
    layers are requantized with Python integers instead of wrapping silently.
    """
    max_abs_x = -contract.activation_range(a_bits)[0]
    bound = contract.accumulator_bound(layer.in_features, layer.max_abs_weight, max_abs_x, layer.max_abs_bias)
    return bound * max(layer.m) + 2 ** (max(layer.s) - 1) <= _INT64_MAX


def _requantize_exact(acc: torch.Tensor, layer, lo: int, hi: int) -> torch.Tensor:
    rows = [[contract.requantize(a, m, s, lo, hi) for a, m, s in zip(row, layer.m, layer.s)]
            for row in acc.tolist()]
    return torch.tensor(rows, dtype=torch.int64).reshape(acc.shape)


def infer(image: ModelImage, x_q) -> list[torch.Tensor]:
    """Run every layer; return each layer's integer outputs ``[batch, out_features]``.

    The last entry is the model output: requantized activations, or the raw
    accumulator (bias included) when the last layer does not requantize.
    """
    x = check_input(image, x_q)
    outputs = []
    for layer in image.layers:
        w = torch.tensor(layer.weight, dtype=torch.int64)
        b = torch.tensor(layer.bias, dtype=torch.int64)
        acc = x @ w.T + b
        if layer.requantize:
            lo, hi = contract.output_range(image.a_bits, layer.relu)
            if _fits_int64(layer, image.a_bits):
                m = torch.tensor(layer.m, dtype=torch.int64)
                s = torch.tensor(layer.s, dtype=torch.int64)
                x = contract.requantize(acc, m, s, lo, hi)
            else:
                x = _requantize_exact(acc, layer, lo, hi)
        else:
            x = acc
        outputs.append(x)
    return outputs
