"""Property tests of the integer contract against an independent plain-Python model.

The reference here never uses shifts: it rounds the exact rational ``acc*m / 2**s``
half toward +inf with ``fractions.Fraction`` and clamps with ``min``/``max``.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden import contract, integer, randmodel


def ref_requantize(acc: int, m: int, s: int, lo: int, hi: int) -> int:
    exact = Fraction(acc * m, 2**s)
    rounded = math.floor(exact + Fraction(1, 2))  # half toward +inf
    return max(lo, min(hi, rounded))


def ref_infer(image, rows: list[list[int]]) -> list[list[int]]:
    """The whole model in Python ints, layer by layer."""
    a_lo, a_hi = -(2 ** (image.a_bits - 1)), 2 ** (image.a_bits - 1) - 1
    for layer in image.layers:
        out = []
        for x in rows:
            y = []
            for j in range(layer.out_features):
                acc = layer.bias[j] + sum(w * v for w, v in zip(layer.weight[j], x))
                if layer.requantize:
                    y.append(ref_requantize(acc, layer.m[j], layer.s[j], 0 if layer.relu else a_lo, a_hi))
                else:
                    y.append(acc)
            out.append(y)
        rows = out
    return rows


bits = st.integers(2, 8)
m_bits = st.integers(*contract.M_BITS_RANGE)
shifts = st.integers(1, contract.SHIFT_MAX)


@given(acc=st.integers(-(2**47), 2**47 - 1), m=st.integers(0, 2**24 - 1), s=shifts, a_bits=bits, relu=st.booleans())
def test_requantize_scalar_matches_reference(acc, m, s, a_bits, relu):
    lo, hi = contract.output_range(a_bits, relu)
    assert contract.requantize(acc, m, s, lo, hi) == ref_requantize(acc, m, s, lo, hi)


@given(k=st.integers(-(2**20), 2**20), s=st.integers(1, 40), m_bits_=m_bits, a_bits=bits)
def test_requantize_ties_round_toward_plus_infinity(k, s, m_bits_, a_bits):
    # acc*m = (2k+1) * 2**(s-1) is exactly halfway between k and k+1
    m, acc = 1, (2 * k + 1) * 2 ** (s - 1)
    lo, hi = contract.output_range(a_bits, False)
    got = contract.requantize(acc, m, s, lo, hi)
    assert got == max(lo, min(hi, k + 1))
    assert got == ref_requantize(acc, m, s, lo, hi)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), s_max=st.sampled_from([1, 2, 16, 31, contract.SHIFT_MAX]))
def test_requantize_tensor_and_numpy_match_scalar(data, s_max):
    n = 16
    acc = data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=n, max_size=n))
    m = data.draw(st.lists(st.integers(0, 2**16 - 1), min_size=n, max_size=n))
    s = data.draw(st.lists(st.integers(1, s_max), min_size=n, max_size=n))
    want = [ref_requantize(a, mm, ss, -128, 127) for a, mm, ss in zip(acc, m, s)]
    t = contract.requantize(torch.tensor(acc), torch.tensor(m), torch.tensor(s), -128, 127)
    a = contract.requantize(np.array(acc, dtype=np.int64), np.array(m, dtype=np.int64),
                            np.array(s, dtype=np.int64), -128, 127)
    assert t.tolist() == want
    assert a.tolist() == want


@pytest.mark.parametrize("s", [1, 2, contract.SHIFT_MAX])
@pytest.mark.parametrize("a_bits", [2, 8])
def test_requantize_extremes(s, a_bits):
    top = 2**16 - 1
    for acc in (-(2**31), 2**31 - 1, -1, 0, 1):
        for m in (0, 1, top):
            for relu in (False, True):
                lo, hi = contract.output_range(a_bits, relu)
                assert contract.requantize(acc, m, s, lo, hi) == ref_requantize(acc, m, s, lo, hi)


@given(real=st.floats(min_value=2.0**-80, max_value=1000.0, allow_subnormal=False),
       m_bits_=st.integers(11, contract.M_BITS_RANGE[1]))
def test_quantize_multiplier_is_nearest(real, m_bits_):
    m, s = contract.quantize_multiplier(real, m_bits_)
    assert 0 <= m < 2**m_bits_ and 1 <= s <= contract.SHIFT_MAX
    if s < contract.SHIFT_MAX:
        assert 2 ** (m_bits_ - 1) <= m  # all bits used
    # m / 2**s is the nearest multiple of 2**-s (up to the float input's own rounding)
    assert abs(Fraction(m, 2**s) - Fraction(real)) <= Fraction(1, 2 ** (s + 1))


@given(m_bits_=m_bits, data=st.data())
def test_quantize_multiplier_round_trip(m_bits_, data):
    s = data.draw(st.integers(1, contract.SHIFT_MAX))
    m = data.draw(st.integers(2 ** (m_bits_ - 1), 2**m_bits_ - 1))
    assert contract.quantize_multiplier(m / 2**s, m_bits_) == (m, s)


def test_quantize_multiplier_rejects():
    with pytest.raises(ValueError, match=r"^multiplier must be finite and > 0, not 0\.0$"):
        contract.quantize_multiplier(0.0, 16)
    with pytest.raises(ValueError, match=r"^multiplier must be finite and > 0, not nan$"):
        contract.quantize_multiplier(float("nan"), 16)
    with pytest.raises(TypeError, match=r"^multiplier must be a real number, not '1'$"):
        contract.quantize_multiplier("1", 16)
    with pytest.raises(ValueError, match=r"^multiplier 65536\.0 is too large for m_bits=16: it needs a shift of -1, "
                                         r"and the shift must be at least 1$"):
        contract.quantize_multiplier(65536.0, 16)
    with pytest.raises(ValueError, match=r"^m_bits must be between 2 and 24, not 25$"):
        contract.quantize_multiplier(0.1, 25)


@pytest.mark.parametrize("b", range(2, 9))
def test_ranges_every_width(b):
    assert contract.weight_range(b) == (-(2 ** (b - 1) - 1), 2 ** (b - 1) - 1)
    assert contract.activation_range(b) == (-(2 ** (b - 1)), 2 ** (b - 1) - 1)
    assert contract.output_range(b, True) == (0, 2 ** (b - 1) - 1)


@pytest.mark.parametrize("bad, exc, msg", [
    (1, ValueError, r"^w_bits must be between 2 and 8, not 1$"),
    (9, ValueError, r"^w_bits must be between 2 and 8, not 9$"),
    (8.0, TypeError, r"^w_bits must be an integer, not 8\.0$"),
    (True, TypeError, r"^w_bits must be an integer, not True$"),
])
def test_bit_widths_out_of_range(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        contract.weight_range(bad)


def test_accumulator_proof_names_the_numbers():
    assert contract.check_accumulator(0, 4, 127, 10, 8, 32) == 4 * 127 * 128 + 10
    with pytest.raises(ValueError, match=r"^layer 3: accumulator may overflow acc_bits=16: "
                                         r"in_features\*max\|w\|\*max\|x\| \+ max\|b\| = 3\*127\*128 \+ 0 "
                                         r"= 48768 > 32767$"):
        contract.check_accumulator(3, 3, 127, 0, 8, 16)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), w_bits=bits, a_bits=bits)
def test_integer_inference_matches_reference_every_width(seed, w_bits, a_bits):
    image = randmodel.random_image(seed, w_bits=w_bits, a_bits=a_bits, depth=(1, 3), width=(1, 12))
    x = torch.cat([randmodel.random_inputs(image, 3, seed), randmodel.corner_inputs(image)])
    got = integer.infer(image, x)
    assert got[-1].tolist() == ref_infer(image, x.tolist())
    assert len(got) == len(image.layers)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_wide_configuration_does_not_wrap_int64(seed):
    # acc_bits + m_bits = 72 > 63: the golden model must still be exact
    image = randmodel.random_image(seed, acc_bits=48, m_bits=24, depth=(1, 2), width=(1, 6))
    x = torch.cat([randmodel.random_inputs(image, 2, seed), randmodel.corner_inputs(image)])
    assert integer.infer(image, x)[-1].tolist() == ref_infer(image, x.tolist())


@pytest.mark.parametrize("w_bits, a_bits, acc_bits, m_bits", [(8, 8, 32, 16), (2, 2, 8, 2), (4, 8, 48, 24)])
def test_corner_images_match_reference(w_bits, a_bits, acc_bits, m_bits):
    for tag, image in randmodel.corner_images(w_bits=w_bits, a_bits=a_bits, acc_bits=acc_bits,
                                              m_bits=m_bits, max_features=32):
        x = torch.cat([randmodel.corner_inputs(image), randmodel.random_inputs(image, 4, 1)])
        assert integer.infer(image, x)[-1].tolist() == ref_infer(image, x.tolist()), tag


@pytest.mark.parametrize("w_bits", range(2, 9))
@pytest.mark.parametrize("a_bits", range(2, 9))
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_width_pair_matches_reference(w_bits, a_bits, seed):
    image = randmodel.random_image(seed, w_bits=w_bits, a_bits=a_bits, depth=(1, 2), width=(1, 6))
    x = torch.cat([randmodel.random_inputs(image, 2, seed), randmodel.corner_inputs(image)])
    assert integer.infer(image, x)[-1].tolist() == ref_infer(image, x.tolist())


@given(a_bits=bits, data=st.data())
def test_quantize_input_matches_reference(a_bits, data):
    image = randmodel.random_image(0, a_bits=a_bits, depth=1, width=(3, 3))
    values = data.draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=3, max_size=3))
    half = data.draw(st.integers(-(2**a_bits), 2**a_bits))  # exact .5 multiples of the scale
    values[0] = (half + 0.5) * image.input_scale
    lo, hi = -(2 ** (a_bits - 1)), 2 ** (a_bits - 1) - 1
    want = [max(lo, min(hi, round(v / image.input_scale))) for v in values]  # Python round: half to even
    assert integer.quantize_input(image, torch.tensor([values], dtype=torch.float64)).tolist() == [want]
