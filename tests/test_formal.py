"""Formal proof (Yosys k-induction) of the requantization unit against the contract, for
every product, shift, ReLU and requantize flag; and that the proof catches a wrong
reference, so that a passing proof is not a vacuous one."""

from __future__ import annotations

import pytest

from pyhdl import formal, sizing
from pyhdl.config import DEFAULT, SMALL

# each proof runs Yosys and a solver for 5-15 s
pytestmark = pytest.mark.slow(seconds=10)


@pytest.mark.parametrize("acc_bits, m_bits, a_bits", [
    # the units of the two shipped arrays (32- and 24-bit accumulators)
    *sorted({(cfg.acc_bits, cfg.m_bits, cfg.a_bits) for cfg in (DEFAULT, SMALL)}, reverse=True),
    (8, 24, 2),    # narrowest accumulator and activations, widest multiplier
    (48, 2, 8),    # widest accumulator, narrowest multiplier
])
def test_requant_unit_is_proven_for_every_input(tmp_path, acc_bits, m_bits, a_bits):
    result = formal.prove_requant(acc_bits=acc_bits, m_bits=m_bits, a_bits=a_bits, build_dir=tmp_path)
    # the pipeline has no feedback: the induction closes at its depth, not later
    assert result["induction_length"] <= sizing.requant_stages()


@pytest.mark.parametrize("mutation", ["round_down", "no_relu"])
def test_a_wrong_reference_fails_the_proof(tmp_path, mutation):
    with pytest.raises(formal.ProofFailed, match=(
            rf"^requant unit \(32-bit accumulator, 16-bit m, 8-bit activations, reference mutated: {mutation}\): "
            r"the proof did not close \(model found for base case: FAIL!\); see .*prove\.log$")):
        formal.prove_requant(acc_bits=32, m_bits=16, a_bits=8, build_dir=tmp_path, mutation=mutation)


def test_checker_arguments_are_checked():
    with pytest.raises(ValueError, match=r"^mutation must be None, 'round_down' or 'no_relu', not 'typo'$"):
        formal.requant_checker(acc_bits=32, m_bits=16, a_bits=8, mutation="typo")
    with pytest.raises(ValueError, match=r"^acc_bits must be between 8 and 48, not 4$"):
        formal.prove_requant(acc_bits=4, m_bits=16, a_bits=8, build_dir=".")
