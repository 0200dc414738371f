"""The requantization unit against golden.contract.requantize: random values, ties, extremes."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden import contract
from pyhdl import sizing
from pyhdl.requant import RequantUnit


def _cases(acc_bits, m_bits, a_bits, seed):
    rng = random.Random(seed)
    acc_lo, acc_hi = contract.accumulator_range(acc_bits)
    m_max = 2**m_bits - 1
    cases = []
    for acc in (acc_lo, acc_hi, 0, -1, 1):
        for m in (0, 1, m_max):
            for s in (1, contract.SHIFT_MAX, m_bits):
                cases.append((acc, m, s))
    for _ in range(150):
        s = rng.randint(1, contract.SHIFT_MAX)
        m = rng.randint(0, m_max)
        # exact ties: acc*m = k*2**s + 2**(s-1)
        if m and s <= acc_bits + m_bits - 3 and rng.random() < 0.3:
            k = rng.randint(-(2 ** (acc_bits + m_bits - s - 3)), 2 ** (acc_bits + m_bits - s - 3))
            target = k * 2**s + 2 ** (s - 1)
            if target % m == 0 and acc_lo <= target // m <= acc_hi:
                cases.append((target // m, m, s))
                continue
        cases.append((rng.randint(acc_lo, acc_hi), m, rng.choice((s, m_bits + rng.randint(0, 8)))))
    # ties with m = 1: acc = k*2**s + 2**(s-1)
    for s in (1, 2, 5):
        for k in (-3, -1, 0, 2):
            cases.append((k * 2**s + 2 ** (s - 1), 1, s))
    return [(a, m, s, relu, req) for (a, m, s) in cases for relu, req in ((0, 1), (1, 1), (0, 0))]


@pytest.mark.parametrize("acc_bits,m_bits,a_bits", [(32, 16, 8), (16, 8, 4), (48, 24, 2)])
def test_requant_matches_contract(acc_bits, m_bits, a_bits):
    dut = RequantUnit(acc_bits=acc_bits, m_bits=m_bits, a_bits=a_bits)
    cases = _cases(acc_bits, m_bits, a_bits, seed=acc_bits)
    got = []

    async def tb(ctx):
        for i in range(len(cases) + dut.stages):
            if i < len(cases):
                acc, m, s, relu, req = cases[i]
                ctx.set(dut.i_valid, 1)
                ctx.set(dut.i_acc, acc)
                ctx.set(dut.i_m, m)
                ctx.set(dut.i_s, s)
                ctx.set(dut.i_relu, relu)
                ctx.set(dut.i_requantize, req)
            else:
                ctx.set(dut.i_valid, 0)
            if ctx.get(dut.o_valid):
                got.append((i, ctx.get(dut.o_data)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert dut.stages == sizing.requant_stages()
    assert [i for i, _ in got] == [k + dut.stages for k in range(len(cases))]
    for (acc, m, s, relu, req), (_, value) in zip(cases, got):
        lo, hi = contract.output_range(a_bits, bool(relu))
        want = contract.requantize(acc, m, s, lo, hi) if req else acc
        assert value == want, f"acc={acc} m={m} s={s} relu={relu} requantize={req}: got {value}, want {want}"


@pytest.mark.parametrize("kw,exc,msg", [
    ({"acc_bits": 7, "m_bits": 16, "a_bits": 8}, ValueError, r"^acc_bits must be between 8 and 48, not 7$"),
    ({"acc_bits": 32, "m_bits": 25, "a_bits": 8}, ValueError, r"^m_bits must be between 2 and 24, not 25$"),
    ({"acc_bits": 32, "m_bits": 16, "a_bits": 1}, ValueError, r"^a_bits must be between 2 and 8, not 1$"),
    ({"acc_bits": 32.0, "m_bits": 16, "a_bits": 8}, TypeError, r"^acc_bits must be an integer, not 32\.0$"),
])
def test_requant_rejects_bad_parameters(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        RequantUnit(**kw)
