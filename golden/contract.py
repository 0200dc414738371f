"""The nmc integer contract: one module, imported by the golden model and the hardware.

Everything here is plain integer arithmetic, written so that the same function
accepts Python ``int`` scalars, NumPy integer arrays and torch ``int64`` tensors.
The rules are those of ``docs/quantization.md``; change both together.

* weights: signed ``w_bits`` (2..8), symmetric per output channel, range
  ``±(2**(w_bits-1) - 1)``, zero point 0;
* activations: signed ``a_bits`` (2..8), symmetric per tensor, zero point 0,
  range ``[-2**(a_bits-1), 2**(a_bits-1) - 1]`` (the clamp of requantization);
* bias: integer at scale ``s_in * s_w[j]``, fits ``acc_bits``;
* accumulator: signed ``acc_bits``; a layer is accepted only when
  ``in_features * max|w| * max|x| + max|b| <= 2**(acc_bits-1) - 1``;
* requantization: ``y = clamp((acc * m + 2**(s-1)) >> s, lo, hi)`` with
  ``0 <= m < 2**m_bits``, ``1 <= s <= SHIFT_MAX`` and ``>>`` arithmetic (floor);
  ``lo = 0`` after a ReLU, else ``-2**(a_bits-1)``; ``hi = 2**(a_bits-1) - 1``.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "BITS_RANGE", "ACC_BITS_RANGE", "M_BITS_RANGE", "SHIFT_BITS", "SHIFT_MAX",
    "check_bits", "weight_range", "activation_range", "output_range", "accumulator_range",
    "accumulator_bound", "check_accumulator", "quantize_multiplier", "requantize",
    "rounding_shift",
]

#: Legal range (inclusive) of ``w_bits`` and ``a_bits``.
BITS_RANGE = (2, 8)
#: Legal range (inclusive) of ``acc_bits``.
ACC_BITS_RANGE = (8, 48)
#: Legal range (inclusive) of ``m_bits``.
M_BITS_RANGE = (2, 24)
#: Width of the per-channel shift field; ``s`` lies in ``1 .. SHIFT_MAX``.
SHIFT_BITS = 6
SHIFT_MAX = 2**SHIFT_BITS - 1


def check_bits(name: str, value, lo: int, hi: int) -> int:
    """Return ``value`` if it is an integer in ``lo..hi``; raise TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {value}")
    return int(value)


def weight_range(w_bits: int) -> tuple[int, int]:
    """Symmetric weight range ``(-(2**(w_bits-1)-1), 2**(w_bits-1)-1)``."""
    check_bits("w_bits", w_bits, *BITS_RANGE)
    q = 2 ** (w_bits - 1) - 1
    return -q, q


def activation_range(a_bits: int) -> tuple[int, int]:
    """Range of an activation (input or requantized output): ``[-2**(a-1), 2**(a-1)-1]``."""
    check_bits("a_bits", a_bits, *BITS_RANGE)
    return -(2 ** (a_bits - 1)), 2 ** (a_bits - 1) - 1


def output_range(a_bits: int, relu: bool) -> tuple[int, int]:
    """Clamp bounds ``(lo, hi)`` of requantization; ``lo = 0`` when a ReLU follows."""
    lo, hi = activation_range(a_bits)
    return (0 if relu else lo), hi


def accumulator_range(acc_bits: int) -> tuple[int, int]:
    check_bits("acc_bits", acc_bits, *ACC_BITS_RANGE)
    return -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1


def accumulator_bound(in_features: int, max_abs_w: int, max_abs_x: int, max_abs_b: int) -> int:
    """Largest ``|acc|`` a layer can reach: ``in_features*max|w|*max|x| + max|b|``."""
    return in_features * max_abs_w * max_abs_x + max_abs_b


def check_accumulator(layer: int, in_features: int, max_abs_w: int, max_abs_b: int,
                      a_bits: int, acc_bits: int) -> int:
    """Prove that layer ``layer`` cannot overflow a signed ``acc_bits`` accumulator.

    ``max|x|`` is the largest activation magnitude, ``2**(a_bits-1)``.  Returns the
    bound; raises ValueError with every number of the proof otherwise.
    """
    max_abs_x = -activation_range(a_bits)[0]
    bound = accumulator_bound(in_features, max_abs_w, max_abs_x, max_abs_b)
    limit = accumulator_range(acc_bits)[1]
    if bound > limit:
        raise ValueError(
            f"layer {layer}: accumulator may overflow acc_bits={acc_bits}: "
            f"in_features*max|w|*max|x| + max|b| = {in_features}*{max_abs_w}*{max_abs_x} + {max_abs_b} "
            f"= {bound} > {limit}")
    return bound


def quantize_multiplier(real: float, m_bits: int) -> tuple[int, int]:
    """Express a positive real multiplier as ``m / 2**s``.

    ``m`` uses all ``m_bits`` bits (``2**(m_bits-1) <= m < 2**m_bits``) unless the
    multiplier is so small that ``s`` would exceed :data:`SHIFT_MAX`; then
    ``s = SHIFT_MAX`` and ``m`` is as large as still fits (possibly 0).
    """
    check_bits("m_bits", m_bits, *M_BITS_RANGE)
    if isinstance(real, bool) or not isinstance(real, numbers.Real):
        raise TypeError(f"multiplier must be a real number, not {real!r}")
    if not math.isfinite(real) or real <= 0:
        raise ValueError(f"multiplier must be finite and > 0, not {real}")
    frac, exp = math.frexp(real)  # real = frac * 2**exp, 0.5 <= frac < 1
    m = round(frac * 2**m_bits)
    s = m_bits - exp
    if m == 2**m_bits:  # rounding carried into a new bit
        m //= 2
        s -= 1
    if s > SHIFT_MAX:
        m = round(real * 2**SHIFT_MAX)
        s = SHIFT_MAX
    if s < 1:
        raise ValueError(
            f"multiplier {real} is too large for m_bits={m_bits}: it needs a shift of {s}, "
            f"and the shift must be at least 1")
    return int(m), int(s)


def rounding_shift(value, s):
    """``(value + 2**(s-1)) >> s``: round half toward +inf, arithmetic shift."""
    one = s * 0 + 1  # an integer 1 of the same kind (int, ndarray or tensor) as ``s``
    return (value + (one << (s - 1))) >> s


def _clamp(value, lo, hi):
    if isinstance(value, numbers.Integral):
        return max(lo, min(hi, int(value)))
    if hasattr(value, "clamp"):  # torch
        return value.clamp(lo, hi)
    import numpy as np
    return np.clip(value, lo, hi)


def requantize(acc, m, s, lo, hi):
    """``clamp((acc*m + 2**(s-1)) >> s, lo, hi)``: the contract's requantization."""
    return _clamp(rounding_shift(acc * m, s), lo, hi)
