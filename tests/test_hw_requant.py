"""The requantization unit against golden.contract.requantize: random values, ties, extremes,
every shift, the saturation and window edges, streamed one value per cycle."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden import contract
from pyhdl import sizing
from pyhdl.requant import RequantUnit


def _expected(acc, m, s, relu, req, a_bits):
    """The contract's value; the unit reads the out-of-contract ``s = 0`` as "no shift"."""
    if not req:
        return acc
    lo, hi = contract.output_range(a_bits, bool(relu))
    if s == 0:  # clamp(acc*m) = clamp((2*acc*m + 2**0) >> 1)
        return contract.requantize(2 * acc, m, 1, lo, hi)
    return contract.requantize(acc, m, s, lo, hi)


def _stream(dut, cases, *, idle_every=0, seed=0):
    """Drive ``cases`` (acc, m, s, relu, req) one per cycle; return ``[(cycle, o_data)]`` of o_valid.

    Every ``idle_every``-th cycle (0: never) is idle and carries random operands, which
    must neither appear at the output nor disturb the values around them.
    """
    rng = random.Random(seed)
    acc_lo, acc_hi = contract.accumulator_range(dut.acc_bits)
    got, sent = [], []

    async def tb(ctx):
        todo = list(cases)
        cycle = 0
        while todo or cycle < (sent[-1] if sent else 0) + dut.stages + 1:
            idle = not todo or (idle_every and cycle % idle_every == idle_every - 1)
            if idle:
                acc, m, s = rng.randint(acc_lo, acc_hi), rng.randrange(2**dut.m_bits), rng.randrange(64)
                relu, req = rng.randrange(2), rng.randrange(2)
            else:
                acc, m, s, relu, req = todo.pop(0)
                sent.append(cycle)
            ctx.set(dut.i_valid, 0 if idle else 1)
            ctx.set(dut.i_acc, acc)
            ctx.set(dut.i_m, m)
            ctx.set(dut.i_s, s)
            ctx.set(dut.i_relu, relu)
            ctx.set(dut.i_requantize, req)
            if ctx.get(dut.o_valid):
                got.append((cycle, ctx.get(dut.o_data)))
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return sent, got


def _check(dut, cases, **kw):
    """Stream ``cases`` and compare every output with the contract, naming the first mismatch.

    A case that does not requantize is sent with ``m = 1``, as the PE sends it: the unit
    reads the raw accumulator off its product (``RequantUnit`` docstring).
    """
    cases = [(acc, m if req else 1, s, relu, req) for acc, m, s, relu, req in cases]
    sent, got = _stream(dut, cases, **kw)
    assert dut.stages == sizing.requant_stages()
    assert [c for c, _ in got] == [c + dut.stages for c in sent], "o_valid is not stages cycles after i_valid"
    mismatches = []
    for (acc, m, s, relu, req), (cycle, value) in zip(cases, got):
        want = _expected(acc, m, s, relu, req, dut.a_bits)
        if value != want:
            mismatches.append(f"acc={acc} m={m} s={s} relu={relu} requantize={req} "
                              f"(output cycle {cycle}): expected {want}, got {value}")
    assert not mismatches, f"{len(mismatches)} of {len(cases)} values wrong; first: {mismatches[0]}"
    return len(got)


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
    assert _check(dut, cases) == len(cases)


def _products(acc_bits, m_bits, a_bits, s):
    """(acc, m) pairs whose product lies on the edges that decide the result for shift ``s``.

    With ``t = s - 1`` the result changes where ``prod >> t`` crosses ``2*q - 1`` for
    q = lo, 0, 1, hi, hi+1 (rounding and saturation), and the window ends where
    ``prod >> t`` leaves ``a_bits + 1`` bits (``±2**a``): each edge, one below it and,
    on the other side, the lowest bits below ``t`` all set.  A product ``acc * 2**j``
    reaches edges past the accumulator range (``j`` zero low bits: edges to ``2**j``).
    """
    acc_lo, acc_hi = contract.accumulator_range(acc_bits)
    lo, hi = contract.activation_range(a_bits)
    t = max(s - 1, 0)
    pairs = []
    for q in (lo - 1, lo, 0, 1, hi, hi + 1):
        for half in (2 * q - 1, 2 * q - 2, 2 * q):
            pairs.append(half << t)
    for edge in (2**a_bits, -(2**a_bits), 2 ** (a_bits + 1), -(2 ** (a_bits + 1))):
        pairs.append(edge << t)
    out = []
    for edge in pairs:
        for delta in (-1, 0, 1):
            for j in range(m_bits):
                acc, rem = divmod(edge, 2**j)
                acc += delta
                if rem == 0 and acc_lo <= acc <= acc_hi:
                    out.append((acc, 2**j))
                    break
    return out


def _property_cases(acc_bits, m_bits, a_bits, seed):
    """Every shift 0 .. SHIFT_MAX against extreme operands, edge products and random values."""
    rng = random.Random(seed)
    acc_lo, acc_hi = contract.accumulator_range(acc_bits)
    m_max = 2**m_bits - 1
    flags = ((0, 1), (1, 1), (0, 0), (1, 0))
    cases = []
    for s in range(contract.SHIFT_MAX + 1):
        for acc in (acc_lo, acc_lo + 1, -1, 0, 1, acc_hi):
            for m in (0, 1, m_max):
                cases += [(acc, m, s, relu, req) for relu, req in flags]
        for acc, m in _products(acc_bits, m_bits, a_bits, s):
            cases += [(acc, m, s, relu, 1) for relu in (0, 1)]
    for _ in range(1500):
        # log-uniform magnitudes, so that every shift meets products of every size
        acc = rng.choice((-1, 1)) * rng.randrange(2 ** rng.randint(0, acc_bits - 1))
        m = rng.randrange(2 ** rng.randint(1, m_bits))
        relu, req = rng.choice(flags[:3])
        cases.append((max(acc_lo, acc), m, rng.randint(0, contract.SHIFT_MAX), relu, req))
    rng.shuffle(cases)
    return cases


@pytest.mark.parametrize("acc_bits,m_bits,a_bits", [
    (8, 2, 2), (8, 2, 8), (32, 16, 8), (48, 24, 2), (48, 24, 8), (13, 5, 5)])
def test_requant_every_shift_and_edge(acc_bits, m_bits, a_bits):
    """Each s in 0 .. SHIFT_MAX, m in {0, 1, max}, acc extremes, rounding and saturation edges,
    ReLU and raw pass-through, streamed one value per cycle with idle cycles in between."""
    dut = RequantUnit(acc_bits=acc_bits, m_bits=m_bits, a_bits=a_bits)
    cases = _property_cases(acc_bits, m_bits, a_bits, seed=acc_bits * 100 + a_bits)
    assert _check(dut, cases, idle_every=13, seed=a_bits) == len(cases)


def test_requant_edges_reach_every_outcome():
    """The edge products of :func:`_products` land on both sides of every rounding and clamp edge."""
    for acc_bits, m_bits, a_bits in ((48, 24, 8), (8, 2, 2)):
        lo, hi = contract.activation_range(a_bits)
        reach = 2 ** (acc_bits - 1) * (2**m_bits - 1)  # the largest |acc*m|
        shifts = [s for s in range(1, contract.SHIFT_MAX + 1) if 2 ** (s + a_bits + 1) <= reach]
        assert len(shifts) >= 5
        for s in shifts:
            seen = {contract.rounding_shift(acc * m, s) for acc, m in _products(acc_bits, m_bits, a_bits, s)}
            want = {lo - 1, lo, -1, 0, 1, hi, hi + 1}
            assert want <= seen, (f"acc_bits={acc_bits} m_bits={m_bits} a_bits={a_bits} s={s}: "
                                  f"edges miss {sorted(want - seen)}")


@pytest.mark.parametrize("kw,exc,msg", [
    ({"acc_bits": 7, "m_bits": 16, "a_bits": 8}, ValueError, r"^acc_bits must be between 8 and 48, not 7$"),
    ({"acc_bits": 32, "m_bits": 25, "a_bits": 8}, ValueError, r"^m_bits must be between 2 and 24, not 25$"),
    ({"acc_bits": 32, "m_bits": 16, "a_bits": 1}, ValueError, r"^a_bits must be between 2 and 8, not 1$"),
    ({"acc_bits": 32.0, "m_bits": 16, "a_bits": 8}, TypeError, r"^acc_bits must be an integer, not 32\.0$"),
])
def test_requant_rejects_bad_parameters(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        RequantUnit(**kw)
