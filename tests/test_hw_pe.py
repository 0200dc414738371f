"""One processing element: bank, MAC lanes, adder tree, accumulator and requant, in the simulator."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden import contract
from pyhdl import sizing
from pyhdl.config import ArrayConfig
from pyhdl.pe import ProcessingElement


@pytest.mark.parametrize("cfg", [
    ArrayConfig(pe=2, simd=4, bank_depth=16, max_features=8, max_layers=1),
    ArrayConfig(pe=1, simd=1, bank_depth=16, max_features=4, max_layers=1),
    ArrayConfig(pe=1, simd=8, bank_depth=16, max_features=8, max_layers=1, w_bits=3, a_bits=5,
                acc_bits=12, m_bits=4),
], ids=lambda c: c.name)
def test_pe_dot_products(cfg):
    """Groups of F folds: bias + sum of lane products, requantized or raw, ``stages`` after the last fold."""
    rng = random.Random(cfg.simd)
    S, F, groups = cfg.simd, 3, 4
    wlo, whi = contract.weight_range(cfg.w_bits)
    alo, ahi = contract.activation_range(cfg.a_bits)
    weights = [[rng.randint(wlo, whi) for _ in range(S)] for _ in range(F * groups)]
    acts = [[rng.randint(alo, ahi) for _ in range(S)] for _ in range(F * groups)]
    bound = 2 ** (cfg.acc_bits - 1) - 1 - F * S * (whi * -alo)
    rq = [(rng.randint(-bound, bound), rng.randint(0, 2**cfg.m_bits - 1), rng.randint(1, 12))
          for _ in range(groups)]
    flags = [(g % 2, 1) if g < groups - 1 else (0, 0) for g in range(groups)]  # last group raw
    dut = ProcessingElement(cfg=cfg, index=0,
                            bank_init=[sizing.pack_lanes(w, cfg.w_bits) for w in weights],
                            rq_init=[sizing.pack_requant(cfg, *e) for e in rq])
    expected = []
    for g in range(groups):
        acc = rq[g][0] + sum(w * a for f in range(F) for w, a in
                             zip(weights[g * F + f], acts[g * F + f]))
        relu, req = flags[g]
        lo, hi = contract.output_range(cfg.a_bits, bool(relu))
        expected.append(contract.requantize(acc, rq[g][1], rq[g][2], lo, hi) if req else acc)
    got = []

    async def tb(ctx):
        steps = F * groups
        lead = sizing.buffer_read_stages()  # activations arrive this many cycles after their step
        for t in range(steps + dut.stages + 2):
            if t < steps:
                g, f = divmod(t, F)
                ctx.set(dut.step_valid, 1)
                ctx.set(dut.step_addr, t)
                ctx.set(dut.step_first, f == 0)
                ctx.set(dut.step_last, f == F - 1)
                ctx.set(dut.step_rq, g)
                ctx.set(dut.step_relu, flags[g][0])
                ctx.set(dut.step_requantize, flags[g][1])
            else:
                ctx.set(dut.step_valid, 0)
            if lead <= t < steps + lead:
                ctx.set(dut.act, sizing.pack_lanes(acts[t - lead], cfg.a_bits))
            if ctx.get(dut.result_valid):
                got.append((t, ctx.get(dut.result)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert dut.stages == sizing.pe_stages(cfg)
    assert [t for t, _ in got] == [g * F + F - 1 + dut.stages for g in range(groups)]
    assert [v for _, v in got] == expected


@pytest.mark.parametrize("kw,exc,msg", [
    ({"cfg": None}, TypeError, r"^cfg must be an ArrayConfig, not None$"),
    ({"index": 2}, ValueError, r"^index must be between 0 and 1, not 2$"),
    ({"bank_init": [0] * 17}, ValueError, r"^bank_init has 17 words, bank_depth is 16$"),
    ({"rq_init": [0] * 5}, ValueError, r"^rq_init has 5 words, rq_depth is 4$"),
])
def test_pe_rejects_bad_parameters(kw, exc, msg):
    args = {"cfg": ArrayConfig(pe=2, simd=4, bank_depth=16, max_features=8, max_layers=1)}
    args.update(kw)
    with pytest.raises(exc, match=msg):
        ProcessingElement(**args)
