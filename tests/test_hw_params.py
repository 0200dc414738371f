"""Every illegal array parameter raises its documented message (pyhdl.config.ArrayConfig)."""

from __future__ import annotations

import random

import pytest

from pyhdl import sizing
from pyhdl.config import DEFAULT, SMALL, ArrayConfig


@pytest.mark.parametrize("kw,exc,msg", [
    ({"pe": 3}, ValueError, r"^pe must be a power of two between 1 and 64, not 3$"),
    ({"pe": 128}, ValueError, r"^pe must be between 1 and 64, not 128$"),
    ({"pe": 2.0}, TypeError, r"^pe must be an integer, not 2\.0$"),
    ({"simd": 0}, ValueError, r"^simd must be between 1 and 64, not 0$"),
    ({"simd": 6}, ValueError, r"^simd must be a power of two between 1 and 64, not 6$"),
    ({"w_bits": 9}, ValueError, r"^w_bits must be between 2 and 8, not 9$"),
    ({"a_bits": 1}, ValueError, r"^a_bits must be between 2 and 8, not 1$"),
    ({"acc_bits": 49}, ValueError, r"^acc_bits must be between 8 and 48, not 49$"),
    ({"acc_bits": 12}, ValueError, r"^acc_bits must be at least w_bits \+ a_bits = 16, not 12$"),
    ({"m_bits": 1}, ValueError, r"^m_bits must be between 2 and 24, not 1$"),
    ({"bank_depth": 100}, ValueError, r"^bank_depth must be a power of two between 2 and 1048576, not 100$"),
    ({"max_layers": 0}, ValueError, r"^max_layers must be between 1 and 64, not 0$"),
    ({"max_features": 20}, ValueError, r"^max_features must be a multiple of max\(pe, simd\) = 8, not 20$"),
    ({"mode": "far"}, ValueError, r"^mode must be one of near, vonneumann, not 'far'$"),
    ({"bus_bits": 12}, ValueError, r"^bus_bits must be a multiple of 8, not 12$"),
    ({"bus_bits": True}, TypeError, r"^bus_bits must be an integer, not True$"),
])
def test_illegal_parameters(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        ArrayConfig(**kw)


def test_derived_sizes_of_the_committed_configs():
    # independent arithmetic from docs/hardware.md, not the functions under test
    for cfg in (DEFAULT, SMALL):
        rq = cfg.acc_bits + cfg.m_bits + 6
        desc = 2 * cfg.max_features.bit_length() + (cfg.bank_depth - 1).bit_length() \
            + (sizing.rq_depth(cfg) - 1).bit_length() + 2
        assert sizing.load_data_bits(cfg) == max(cfg.simd * cfg.w_bits, rq, desc)
        assert sizing.rq_depth(cfg) == cfg.max_layers * cfg.max_features // cfg.pe
        assert sum(w for _, w in sizing.descriptor_fields(cfg)) == desc
        assert [n for n, _ in sizing.descriptor_fields(cfg)] == [
            "in_features", "out_features", "bank_base", "rq_base", "relu", "requantize"]


def test_pack_helpers_round_trip_and_reject():
    cfg = SMALL
    word = sizing.pack_descriptor(cfg, in_features=64, out_features=10, bank_base=3, rq_base=2,
                                  relu=1, requantize=0)
    assert sizing.unpack_descriptor(cfg, word) == {"in_features": 64, "out_features": 10, "bank_base": 3,
                                                   "rq_base": 2, "relu": 1, "requantize": 0}
    assert sizing.unpack_requant(cfg, sizing.pack_requant(cfg, -5, 77, 9)) == {"bias": -5, "m": 77, "s": 9}
    assert sizing.unpack_lanes(sizing.pack_lanes([-128, 127, 0, -1], 8), 8, 4) == [-128, 127, 0, -1]
    with pytest.raises(ValueError, match=r"^descriptor field bank_base = 512 does not fit 9 bits$"):
        sizing.pack_descriptor(cfg, in_features=1, out_features=1, bank_base=512, rq_base=0,
                               relu=0, requantize=0)
    top = 2 ** (cfg.acc_bits - 1)
    assert sizing.unpack_requant(cfg, sizing.pack_requant(cfg, -top, 0, 1))["bias"] == -top
    with pytest.raises(ValueError, match=rf"^bias {top} does not fit acc_bits={cfg.acc_bits}$"):
        sizing.pack_requant(cfg, top, 0, 1)
    with pytest.raises(ValueError, match=r"^lane 1 value 128 does not fit 8 signed bits$"):
        sizing.pack_lanes([0, 128], 8)
    with pytest.raises(ValueError, match=r"^load address out of range: region 16, index 0, word 0$"):
        sizing.load_address(16, 0, 0)


def test_bus_words_per_step():
    for bus in (8, 16, 32, 64, 128, 512, 1024):
        cfg = DEFAULT.replace(mode="vonneumann", bus_bits=bus)
        assert sizing.bus_words_per_step(cfg) == -(-cfg.pe * cfg.simd * cfg.w_bits // bus)
        assert sizing.bus_bytes_per_step(cfg) == sizing.bus_words_per_step(cfg) * bus // 8
    assert sizing.bus_words_per_step(DEFAULT) == 1 and sizing.bus_bytes_per_step(DEFAULT) == 0


@pytest.mark.parametrize("shapes", [[(64, 32), (32, 10)], [(128, 128), (128, 128)], [(64, 10)], [(1, 4), (4, 1)]])
@pytest.mark.parametrize("cfg", [DEFAULT, SMALL], ids=lambda c: c.name)
def test_single_latency_budget_is_the_deepest_pipeline_within_the_ratio(cfg, shapes):
    hw = sizing.writeback_latency(cfg)
    assert sizing.inference_cycles(shapes, cfg) == sizing.inference_cycles(
        shapes, cfg, writeback=hw, drain=sizing.drain_latency(cfg))
    lo = sizing.issue_stages()  # the shallowest: the decision registers alone
    cycles = {w: sizing.inference_cycles(shapes, cfg, writeback=w, drain=0) for w in range(lo, hw + 2)}
    assert list(cycles.values()) == sorted(cycles.values())  # a deeper pipeline is never faster
    limit = 1.05 * sizing.ideal_cycles(shapes, cfg)
    budget = sizing.single_latency_budget(shapes, cfg, 1.05)
    if budget is None:
        assert cycles[lo] > limit
    else:
        assert cycles[budget] <= limit
        assert budget == hw or cycles[budget + 1] > limit


def test_schedule_latency_overrides_are_checked():
    lo = sizing.issue_stages()
    with pytest.raises(ValueError, match=rf"^writeback latency must be at least {lo}, not {lo - 1}$"):
        sizing.inference_cycles([(8, 8)], DEFAULT, writeback=lo - 1)
    with pytest.raises(ValueError, match=r"^drain latency must be at least 0, not -1$"):
        sizing.inference_cycles([(8, 8)], DEFAULT, drain=-1)
    with pytest.raises(TypeError, match=r"^writeback latency must be an int, not 2\.5$"):
        sizing.schedule([(8, 8)], DEFAULT, writeback=2.5)


# -- countdown readiness (the array's rule for a later layer's first group) ----------

def _random_cases(seed: int, count: int, min_layers: int = 1):
    rng = random.Random(seed)
    for _ in range(count):
        cfg = ArrayConfig(pe=rng.choice([1, 2, 4, 8]), simd=rng.choice([1, 2, 4, 8]), max_features=64,
                          bank_depth=4096, max_layers=4, mode=rng.choice(["near", "near", "vonneumann"]),
                          bus_bits=64)
        feats = [rng.choice([1, 2, 3, 5, 8, 9, 16, 17, 31, 32, 33, 64]) for _ in range(rng.randint(min_layers, 4) + 1)]
        yield cfg, list(zip(feats[:-1], feats[1:])), rng.choice([1, 2, 5])


def _least_distance(prev_shape, n_in, cfg):
    """Over the next layer's folds f: (G_p - 1 - producer_group(f)) * F_p + f, in steps."""
    (prev_in, prev_out) = prev_shape
    last, f_p = sizing.groups(prev_out, cfg) - 1, sizing.folds(prev_in, cfg)
    return min((last - sizing.producer_group(f, prev_out, cfg)) * f_p + f for f in range(sizing.folds(n_in, cfg)))


@pytest.mark.parametrize("mode", ["near", "vonneumann"])
def test_countdown_wait_is_the_least_distance_over_every_fold(mode):
    # the array decodes the wait from the previous layer's descriptor alone; for a
    # chain it is the least over the next layer's folds, and never shorter otherwise
    for P in (1, 2, 4, 8, 16):
        for S in (1, 2, 4, 8, 16):
            cfg = ArrayConfig(pe=P, simd=S, max_features=128, bank_depth=4096, mode=mode, bus_bits=64)
            full, K = sizing.readable_after(cfg), sizing.bus_words_per_step(cfg)
            for prev_out in range(1, 80, 3):
                for prev_in in (1, S, 5 * S + 1, 39 * S):
                    wait = sizing.countdown_wait((prev_in, prev_out), cfg)
                    chain = max(0, full - K * _least_distance((prev_in, prev_out), prev_out, cfg))
                    assert wait == chain, (cfg.name, prev_in, prev_out)
                    for n_in in (1, max(1, prev_out // 2), prev_out + 7):
                        assert wait >= full - K * _least_distance((prev_in, prev_out), n_in, cfg)


def test_countdown_steps_read_only_written_groups():
    for cfg, shapes, vectors in _random_cases(seed=12, count=60, min_layers=2):
        ready = sizing.readable_after(cfg)
        steps = sizing.schedule(shapes, cfg, vectors)["steps"]
        issued = {(v, layer, g, f): c for c, v, layer, g, f in steps}
        for c, v, layer, g, f in steps:
            if layer == 0:
                continue
            (prev_in, prev_out) = shapes[layer - 1]
            reads = range(sizing.producer_group(f, prev_out, cfg) + 1) if g == 0 else range(sizing.groups(prev_out, cfg))
            last_fold = sizing.folds(prev_in, cfg) - 1
            late = [k for k in reads if c < issued[v, layer - 1, k, last_fold] + ready]
            assert not late, (cfg.name, shapes, (v, layer, g, f), c, late)


def test_readable_after_is_the_pe_pipeline_and_a_cycle():
    # a reader's address reaches the buffer issue_stages cycles after its issue, a
    # cycle after the write-back (writeback_latency after the producer's issue)
    for cfg in (DEFAULT, SMALL, DEFAULT.replace(mode="vonneumann", bus_bits=64)):
        assert sizing.readable_after(cfg) == sizing.pe_stages(cfg) + 1
        assert sizing.readable_after(cfg) + sizing.issue_stages() == sizing.writeback_latency(cfg) + 1


@pytest.mark.parametrize("cfg", [DEFAULT, SMALL, ArrayConfig(pe=1, simd=1, max_features=16)],
                         ids=lambda c: c.name)
def test_stored_step_counts_are_the_folds_and_groups(cfg):
    # the hardware decodes a loaded descriptor with the same formula on Amaranth
    # values; here the ints, which are the memory init, against folds()/groups()
    fields = dict(sizing.descriptor_step_fields(cfg))
    for n in range(cfg.max_features + 1):
        word = sizing.pack_descriptor(cfg, in_features=n, out_features=n, bank_base=0, rq_base=0,
                                      relu=0, requantize=0)
        stored = sizing.pack_descriptor_steps(cfg, word)
        got, at = {}, 0
        for name, width in sizing.descriptor_step_fields(cfg):
            raw = stored >> at & (2**width - 1)
            got[name] = raw - (raw >> (width - 1) << width) if name.endswith("_m1") else raw
            at += width
        F, G = sizing.folds(n, cfg), sizing.groups(n, cfg)
        assert got == {"groups": G, "folds_m1": F - 1, "groups_m1": G - 1,
                       "one_fold": int(F == 1), "one_group": int(G == 1),
                       "wait_next": sizing.countdown_wait((n, n), cfg)}, n
        assert G < 2**fields["groups"]
        assert sizing.beats_left_init(cfg, n) == F - 2, n


@pytest.mark.parametrize("cfg", [DEFAULT, SMALL, ArrayConfig(pe=8, simd=2, max_features=64),
                                 ArrayConfig(pe=2, simd=4, max_features=64, mode="vonneumann", bus_bits=16)],
                         ids=lambda c: c.name)
def test_descriptor_step_logic_decodes_as_the_ints(cfg):
    # the same formula on Amaranth values is the array's load-time decode
    from amaranth.hdl import Module, Signal, Value, signed
    from amaranth.sim import Simulator
    feat = cfg.max_features.bit_length()
    m = Module()
    n_in, n_out = Signal(feat), Signal(feat)
    widths = dict(sizing.descriptor_step_fields(cfg))
    outs = {name: Signal(widths[name], name=name) for name in widths}
    m.d.comb += [outs[name].eq(v) for name, v in sizing.descriptor_steps(cfg, n_in, n_out).items()]
    left = Signal(signed(feat + 2))  # the input writer's register
    m.d.comb += left.eq(sizing.beats_left_init(cfg, n_in))
    # the countdown distance as the array decodes it, its two halves apart with the
    # first held in signals of the shapes the array's registers take
    parts = sizing.countdown_distance_parts(cfg, n_in, n_out)
    no_distance, least = Signal(), Signal(Value.cast(parts[1]).shape())
    distance = Signal(8)
    m.d.comb += [no_distance.eq(parts[0]), least.eq(parts[1]),
                 distance.eq(sizing.countdown_distance_clamp(cfg, no_distance, least))]
    grid = sorted({0, 1, 2, 3, cfg.pe, cfg.pe + 1, cfg.simd + 1, 3 * cfg.pe, 17, 40, cfg.max_features})
    mismatches = []

    async def bench(ctx):
        for i in grid:
            for o in grid:
                ctx.set(n_in, i)
                ctx.set(n_out, o)
                want = sizing.descriptor_steps(cfg, i, o)
                for name, sig in outs.items():
                    if ctx.get(sig) != int(want[name]) & (2**widths[name] - 1):
                        mismatches.append((i, o, name, ctx.get(sig), want[name]))
                if ctx.get(left) != sizing.beats_left_init(cfg, i):
                    mismatches.append((i, o, "beats_left", ctx.get(left), sizing.beats_left_init(cfg, i)))
                if ctx.get(distance) != sizing.countdown_distance(cfg, i, o):
                    mismatches.append((i, o, "distance", ctx.get(distance), sizing.countdown_distance(cfg, i, o)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches


@pytest.mark.parametrize("cfg", [SMALL, DEFAULT, ArrayConfig(pe=2, simd=2, max_layers=40)],
                         ids=lambda c: f"{c.name}_layers{c.max_layers}")
def test_load_decode_follows_the_address_map(cfg):
    # the array's control decodes of a load word against the address map read off the
    # ints: aliases of a control word in the high word bits, descriptors at and past
    # max_layers, n_layers past max_layers and in the data's top bit
    from types import SimpleNamespace

    from amaranth.hdl import Module, Signal, signed
    from amaranth.sim import Simulator

    from pyhdl.top import load_decode
    width = sizing.load_data_bits(cfg)
    m = Module()
    arriving = SimpleNamespace(addr=Signal(32, name="addr"), data=Signal(width, name="data"))
    got = load_decode(m, cfg, arriving, Signal(signed(cfg.max_layers.bit_length() + 1)))
    L = cfg.max_layers
    words = sorted({0, 1, 2, 3, L - 1, L, L + 1, 15, 16, 17, 2**19, 2**20 - 1})
    datas = sorted({0, 1, L - 1, L, L + 1, 2**L.bit_length(), 2**width - 1, 1 << (width - 1)})
    rng = random.Random(5)
    cases = [(sizing.load_address(region, index, word), rng.choice(datas))
             for region in range(5) for index in (0, 3) for word in words]
    cases += [(sizing.load_address(sizing.REGION_CONTROL, 0, sizing.CONTROL_N_LAYERS), d) for d in datas]
    mismatches = []

    async def bench(ctx):
        for addr, value in cases:
            ctx.set(arriving.addr, addr)
            ctx.set(arriving.data, value)
            await ctx.tick()
            region, word = addr >> 28, addr & (2**20 - 1)
            want = {"control": region == sizing.REGION_CONTROL,
                    "n_layers": word == sizing.CONTROL_N_LAYERS, "clear": word == sizing.CONTROL_CLEAR,
                    "descriptor": region == sizing.REGION_DESCRIPTOR and word < L,
                    "descriptor0": region == sizing.REGION_DESCRIPTOR and word == 0,
                    "has_layers": value != 0, "last_layer": min(value, L) - 1}
            for name, sig in got.items():
                if ctx.get(sig) != int(want[name]):
                    mismatches.append((hex(addr), value, name, ctx.get(sig), int(want[name])))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:5]
