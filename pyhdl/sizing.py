"""Sizing and cycle math of the array: pure functions, the only place they live.

Folding (as in FINN's MVU): a layer with ``in_features = N`` and
``out_features = M`` on ``pe = P`` processing elements of ``simd = S`` lanes is
cut into ``G = ceil(M/P)`` neuron groups and ``F = ceil(N/S)`` input folds.
Neuron ``j = g*P + p`` lives on PE ``p``; each cycle every PE multiplies one
bank word (``S`` weights of row ``j``, inputs ``f*S .. f*S+S-1``) with the
same broadcast ``S`` activations.  A layer therefore issues ``G*F`` steps and
each PE's bank holds ``G*F`` words for it.

Hardware, compiler, testbench and tests all import these functions; nothing
else may restate them.
"""

from __future__ import annotations

from .config import ArrayConfig

__all__ = ["ceil_div", "folds", "groups", "layer_steps", "bank_words", "ideal_cycles"]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def folds(in_features: int, cfg: ArrayConfig) -> int:
    """Input folds ``F = ceil(in/SIMD)``: cycles one neuron group spends on one layer."""
    return ceil_div(in_features, cfg.simd)


def groups(out_features: int, cfg: ArrayConfig) -> int:
    """Neuron groups ``G = ceil(out/PE)``."""
    return ceil_div(out_features, cfg.pe)


def layer_steps(in_features: int, out_features: int, cfg: ArrayConfig) -> int:
    """Issue cycles of one layer in steady state: ``G*F``."""
    return groups(out_features, cfg) * folds(in_features, cfg)


def bank_words(in_features: int, out_features: int, cfg: ArrayConfig) -> int:
    """Words one layer occupies in every PE's bank (also ``G*F``)."""
    return layer_steps(in_features, out_features, cfg)


def ideal_cycles(shapes, cfg: ArrayConfig) -> int:
    """``sum ceil(out/PE)*ceil(in/SIMD)`` over ``shapes = [(in, out), ...]``: no fill, no stall."""
    return sum(layer_steps(i, o, cfg) for i, o in shapes)
