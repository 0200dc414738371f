"""NmcArray end to end in the Amaranth simulator, against golden.integer.infer.

Small configs and models; every output integer is compared, and the counters
against the cycle model of pyhdl.sizing.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from amaranth.sim import Simulator

from golden import contract, integer
from golden.image import ModelImage
from pyhdl import amsim, sizing
from pyhdl.compiler import compile_model
from pyhdl.config import ArrayConfig
from pyhdl.top import NmcArray


def _model(cfg, sizes, seed, **kw):
    rng = random.Random(seed)
    image = ModelImage.from_dict(amsim.random_image_dict(
        rng, sizes, w_bits=cfg.w_bits, a_bits=cfg.a_bits, acc_bits=cfg.acc_bits, m_bits=cfg.m_bits, **kw))
    lo, hi = contract.activation_range(cfg.a_bits)
    return image, rng, lambda n: [[rng.randint(lo, hi) for _ in range(sizes[0])] for _ in range(n)]


def _check(image, vectors, result, cfg):
    golden = integer.infer(image, torch.tensor(vectors))[-1].tolist()
    for v, (want, got) in enumerate(zip(golden, result.outputs)):
        assert len(got) == len(want), f"vector {v}: {len(got)} results, expected {len(want)}"
        for j, (w, g) in enumerate(zip(want, got)):
            assert g == w, f"vector {v} neuron {j} (PE {j % cfg.pe}): got {g}, golden {w}"
        assert result.lasts[v] == [0] * (len(want) - 1) + [1], f"vector {v}: last flags {result.lasts[v]}"


CORNERS = [
    (ArrayConfig(pe=2, simd=4, bank_depth=64, max_features=32, max_layers=4), [10, 7, 5], True),
    (ArrayConfig(pe=1, simd=1, bank_depth=64, max_features=8, max_layers=4), [5, 3, 2], False),
    (ArrayConfig(pe=4, simd=2, bank_depth=64, max_features=32, max_layers=4,
                 w_bits=4, a_bits=4, acc_bits=16, m_bits=8), [13, 9, 6, 3], True),
    (ArrayConfig(pe=2, simd=8, bank_depth=32, max_features=16, max_layers=2), [16, 3], False),
    # von-Neumann baseline: one shared weight memory, 4 and 8 bus words per step
    (ArrayConfig(pe=2, simd=4, bank_depth=64, max_features=32, max_layers=4,
                 mode="vonneumann", bus_bits=16), [10, 7, 5], True),
    (ArrayConfig(pe=4, simd=2, bank_depth=64, max_features=32, max_layers=4,
                 mode="vonneumann", bus_bits=8), [9, 6, 3], False),
]
# a vector of one input beat (folds = 1) is where a stale layer-0 fold count shows
ONE_BEAT = (CORNERS[3][0], [8, 5, 3], False)


@pytest.mark.parametrize("cfg,sizes,raw", CORNERS, ids=[c[0].name for c in CORNERS])
def test_back_to_back_bit_exact_and_cycle_exact(cfg, sizes, raw):
    image, rng, draw = _model(cfg, sizes, seed=len(sizes) + cfg.pe, raw_last=raw)
    program = compile_model(image, cfg)
    vectors = draw(4)
    result = amsim.run_array(program, vectors, trace_issues=True)
    _check(image, vectors, result, cfg)
    model = sizing.schedule(program.shapes, cfg, len(vectors))
    assert [t - result.first_beat for t in result.last_accept] == model["accept"]
    assert [t - result.first_beat for t in result.issues] == model["issue"]
    steps = sizing.ideal_cycles(program.shapes, cfg)
    c = result.counters
    assert c["busy"] == model["accept"][-1]
    assert c["mac_ops"] == len(vectors) * steps * cfg.pe * cfg.simd
    assert c["bank_reads"] == len(vectors) * steps * cfg.pe
    assert c["act_reads"] == len(vectors) * steps
    hidden = sum(sizing.groups(o, cfg) for _, o in program.shapes[:-1])
    assert c["act_writes"] == len(vectors) * (sizing.folds(sizes[0], cfg) + hidden)
    assert c["inferences"] == len(vectors)
    assert c["stall_input"] == 0
    assert c["bus_bytes"] == len(vectors) * steps * sizing.bus_bytes_per_step(cfg)
    assert result.done_cycles == result.last_accept


def test_isolated_inference_cycles():
    cfg, sizes, _ = CORNERS[0]
    image, rng, draw = _model(cfg, sizes, seed=5)
    program = compile_model(image, cfg)
    vectors = draw(1)
    result = amsim.run_array(program, vectors)
    _check(image, vectors, result, cfg)
    assert result.counters["busy"] == sizing.inference_cycles(program.shapes, cfg)


@pytest.mark.parametrize("seed", [1, 2])
def test_stalls_on_both_streams(seed):
    cfg, sizes, _ = CORNERS[0]
    image, rng, draw = _model(cfg, sizes, seed=seed, raw_last=seed == 2)
    program = compile_model(image, cfg)
    vectors = draw(5)
    result = amsim.run_array(program, vectors, in_stall=0.4, out_stall=0.5, seed=seed)
    _check(image, vectors, result, cfg)
    c = result.counters
    assert c["mac_ops"] == len(vectors) * sizing.ideal_cycles(program.shapes, cfg) * cfg.pe * cfg.simd
    assert c["inferences"] == len(vectors)
    assert c["stall_input"] > 0


def test_output_backpressure_is_counted():
    cfg, sizes, _ = CORNERS[0]
    image, rng, draw = _model(cfg, sizes, seed=4)
    program = compile_model(image, cfg)
    vectors = draw(4)
    result = amsim.run_array(program, vectors, out_stall=0.9, seed=4)
    _check(image, vectors, result, cfg)
    assert result.counters["stall_output"] > 0
    assert result.counters["stall_input"] == 0


@pytest.mark.parametrize("model", [CORNERS[0], ONE_BEAT], ids=["folds3", "folds1"])
@pytest.mark.parametrize("abort_beats", [1, 3])
def test_reset_mid_inference_keeps_program(abort_beats, model):
    # the vectors follow the reset at once: layer 0's fold count must survive it too
    cfg, sizes, _ = model
    image, rng, draw = _model(cfg, sizes, seed=7)
    program = compile_model(image, cfg)
    vectors = draw(3)
    result = amsim.run_array(program, vectors, abort_beats=abort_beats, seed=abort_beats)
    _check(image, vectors, result, cfg)
    assert result.counters["inferences"] == len(vectors)


@pytest.mark.parametrize("model", [CORNERS[0], ONE_BEAT], ids=["folds3", "folds1"])
@pytest.mark.parametrize("descriptor0_last", [False, True], ids=["compiler_order", "descriptor0_last"])
def test_input_right_after_the_last_program_write(model, descriptor0_last):
    # the first beat is offered in the cycle after the last write; with layer 0's
    # descriptor written last, a beat taken then was counted against the old layer 0
    cfg, sizes, raw = model
    image, rng, draw = _model(cfg, sizes, seed=7, raw_last=raw)
    program = compile_model(image, cfg)
    if descriptor0_last:
        d0 = sizing.load_address(sizing.REGION_DESCRIPTOR, 0, 0)
        words = program.load_words
        program = dataclasses.replace(program, load_words=[w for w in words if w[0] != d0]
                                      + [w for w in words if w[0] == d0])
    vectors = draw(3)
    result = amsim.run_array(program, vectors, input_gap=0, timeout=20_000)
    _check(image, vectors, result, cfg)
    assert result.counters["inferences"] == len(vectors)


def test_a_beat_offered_right_after_a_load_is_taken_once_the_program_is_in():
    # the port contract (docs/hardware.md): a beat offered in the cycle after the last
    # load handshake is taken load_to_input cycles after that handshake, not before
    # (it would count against the program being written) and not later
    cfg, sizes, raw = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=3, raw_last=raw)
    program = compile_model(image, cfg)
    vector = draw(1)[0]
    dut = NmcArray(cfg)
    seen = {"outputs": []}

    async def testbench(ctx):
        for addr, data in program.load_words:
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.addr, addr)
            ctx.set(dut.load.payload.data, data)
            await ctx.tick().until(dut.load.ready)
        ctx.set(dut.load.valid, 0)
        ctx.set(dut.o_stream.ready, 1)
        for n, word in enumerate(sizing.input_beats(vector, cfg)):
            ctx.set(dut.i_stream.valid, 1)
            ctx.set(dut.i_stream.payload, word)
            cycles = 1
            while not ctx.get(dut.i_stream.ready):
                await ctx.tick()
                cycles += 1
            await ctx.tick()
            if n == 0:
                seen["first_beat"] = cycles
        ctx.set(dut.i_stream.valid, 0)
        for _ in range(500):
            if ctx.get(dut.o_stream.valid):
                seen["outputs"].append(ctx.get(dut.o_stream.payload.data))
            if ctx.get(dut.done):
                return
            await ctx.tick()
        raise TimeoutError("no result within 500 cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["first_beat"] == sizing.load_to_input()
    assert seen["outputs"] == integer.infer(image, torch.tensor([vector]))[-1].tolist()[0]


def test_input_settle_is_the_least_gap_the_schedule_holds_after():
    # a von-Neumann step issues with its last prefetched bus word: a beat offered at
    # sizing.input_settle after the load issues its step when sizing.schedule says, one
    # offered a cycle earlier is taken as early but its step issues a cycle late
    cfg, sizes, raw = CORNERS[4]
    least = 3 + sizing.beat_notice_stages()
    assert sizing.bus_words_per_step(cfg) >= least, f"the corner must fetch a step in {least} or more bus words"
    image, _, draw = _model(cfg, sizes, seed=5, raw_last=raw)
    program = compile_model(image, cfg)
    vectors = draw(1)
    first_issue = sizing.schedule(program.shapes, cfg, 1)["issue"][0]
    late = {}
    for gap in (sizing.input_settle(cfg) - 1, sizing.input_settle(cfg) - 2):
        result = amsim.run_array(program, vectors, input_gap=gap, trace_issues=True)
        _check(image, vectors, result, cfg)
        late[gap] = result.issues[0] - result.first_beat - first_issue
    assert late == {sizing.input_settle(cfg) - 1: 0, sizing.input_settle(cfg) - 2: 1}


@pytest.mark.parametrize("pe", [8, 2], ids=["pair_stage", "no_pair_stage"])
def test_drain_fifo_depth_is_the_least_that_drains_every_cycle(monkeypatch, pe):
    # 8 results of one layer of one fold, written back a group per cycle, are read one
    # per cycle, each counted against the FIFO from its read to its beat: with one
    # entry fewer than sizing.drain_fifo_depth the drain pauses and they leave late
    cfg = ArrayConfig(pe=pe, simd=8, bank_depth=64, max_features=16, max_layers=2)
    assert sizing.drain_pair_stages(cfg) == (pe > 2)
    image, _, draw = _model(cfg, [8, 8], seed=3, raw_last=False)
    program = compile_model(image, cfg)
    vectors = draw(2)
    accept = sizing.schedule(program.shapes, cfg, len(vectors))["accept"]
    depth, late = sizing.drain_fifo_depth(cfg), {}
    for entries in (depth, depth - 1):
        monkeypatch.setattr(sizing, "drain_fifo_depth", lambda cfg, entries=entries: entries)
        result = amsim.run_array(program, vectors)
        _check(image, vectors, result, cfg)
        late[entries] = [t - result.first_beat - a for t, a in zip(result.last_accept, accept)]
    assert late[depth] == [0, 0]
    assert min(late[depth - 1]) > 0, late


def test_a_load_waits_for_a_started_vector():
    # busy is counted from registered events and rises two cycles after a vector's first
    # beat: a load offered while that vector's later beats pause must wait all the same,
    # until its last result is out, and the vector must come out unharmed
    cfg, sizes, raw = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=11, raw_last=raw)
    program = compile_model(image, cfg)
    vector = draw(1)[0]
    beats = sizing.input_beats(vector, cfg)
    dut = NmcArray(cfg, program=program)
    outputs, seen = [], {"first": None, "done": None, "load_ready": []}

    async def testbench(ctx):
        # a counter clear changes no result, so a load slipping in would show only here
        ctx.set(dut.load.payload.addr, sizing.load_address(sizing.REGION_CONTROL, 0, sizing.CONTROL_CLEAR))
        ctx.set(dut.o_stream.ready, 1)
        ctx.set(dut.i_stream.valid, 1)
        ctx.set(dut.i_stream.payload, beats[0])
        await ctx.tick().until(dut.i_stream.ready)
        ctx.set(dut.i_stream.valid, 0)
        ctx.set(dut.load.valid, 1)
        for cycle in range(200):
            if cycle == 5:  # the rest of the vector after a pause
                for word in beats[1:]:
                    ctx.set(dut.i_stream.valid, 1)
                    ctx.set(dut.i_stream.payload, word)
                    await ctx.tick().until(dut.i_stream.ready)
                ctx.set(dut.i_stream.valid, 0)
            await ctx.delay(0)
            seen["load_ready"].append(ctx.get(dut.load.ready))
            if ctx.get(dut.o_stream.valid):
                outputs.append(ctx.get(dut.o_stream.payload.data))
            if ctx.get(dut.done):
                return
            await ctx.tick()
        raise TimeoutError("no result within 200 cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert not any(seen["load_ready"]), f"load.ready high in cycles {[i for i, r in enumerate(seen['load_ready']) if r]}"
    golden = integer.infer(image, torch.tensor([vector]))[-1].tolist()[0]
    assert outputs == golden


def test_counter_clear_restarts_every_counter_in_the_cycle_after_the_write():
    # the same vector before and after a clear must count the same: the clear zeroes
    # everything (the write lands load_stages cycles after the load handshake and is the
    # counters' reset in that cycle) and loses no event of the run after it.  The read is
    # registered (stat_read_stages), so one counter is watched across the write per run.
    cfg, sizes, raw = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=5, raw_last=raw)
    vector = draw(1)[0]
    beats = sizing.input_beats(vector, cfg)
    program = compile_model(image, cfg)
    golden = integer.infer(image, torch.tensor([vector]))[-1].tolist()[0]

    def clear_run(watched):
        dut = NmcArray(cfg, program=program)
        seen = {"runs": [], "outputs": []}

        async def counters(ctx):
            values = {}
            for i, name in enumerate(sizing.COUNTERS):
                ctx.set(dut.stat_addr, i)
                await ctx.tick().repeat(sizing.stat_read_stages())
                values[name] = ctx.get(dut.stat_data)
            return values

        async def one_vector(ctx):
            outputs = []
            ctx.set(dut.o_stream.ready, 1)
            for word in beats:
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload, word)
                await ctx.tick().until(dut.i_stream.ready)
            ctx.set(dut.i_stream.valid, 0)
            for _ in range(500):
                if ctx.get(dut.o_stream.valid):
                    outputs.append(ctx.get(dut.o_stream.payload.data))
                if ctx.get(dut.done):
                    break
                await ctx.tick()
            else:
                raise TimeoutError("no result within 500 cycles")
            # busy falls two cycles after the last result and a counter shows an event a
            # cycle after it: well within eight idle cycles, in which nothing counts
            await ctx.tick().repeat(8)
            seen["outputs"].append(outputs)
            seen["runs"].append(await counters(ctx))

        async def testbench(ctx):
            await one_vector(ctx)
            ctx.set(dut.stat_addr, sizing.COUNTERS.index(watched))
            ctx.set(dut.load.payload.addr, sizing.load_address(sizing.REGION_CONTROL, 0, sizing.CONTROL_CLEAR))
            ctx.set(dut.load.valid, 1)
            await ctx.tick().until(dut.load.ready)
            ctx.set(dut.load.valid, 0)
            await ctx.tick().repeat(sizing.load_stages() - 1)
            # the write's cycle; stat_data shows it stat_read_stages cycles later
            await ctx.tick().repeat(sizing.stat_read_stages())
            seen["write_cycle"] = ctx.get(dut.stat_data)
            await ctx.tick()
            seen["after"] = ctx.get(dut.stat_data)
            await one_vector(ctx)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(testbench)
        sim.run()
        return seen

    for watched in sizing.COUNTERS:
        seen = clear_run(watched)
        assert seen["outputs"] == [golden, golden]
        first, second = seen["runs"]
        assert first["inferences"] == 1 and first["mac_ops"] > 0
        assert seen["write_cycle"] == first[watched], f"{watched} changed before the clear's write landed"
        assert seen["after"] == 0, f"{watched} is {seen['after']} in the cycle after the clear"
        assert second == first


@pytest.mark.parametrize("gap", [-1, 1.5, True])
def test_input_gap_is_checked(gap):
    cfg, sizes, _ = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=1)
    with pytest.raises(ValueError, match=rf"^input_gap must be a non-negative int, not {gap!r}$"):
        amsim.run_array(compile_model(image, cfg), draw(1), input_gap=gap)


@pytest.mark.parametrize("corner", [0, 4])
def test_program_as_memory_init(corner):
    cfg, sizes, _ = CORNERS[corner]
    image, rng, draw = _model(cfg, sizes, seed=9, raw_last=True)
    program = compile_model(image, cfg)
    vectors = draw(2)
    result = amsim.run_array(program, vectors, load=False, dut=NmcArray(cfg, program=program))
    _check(image, vectors, result, cfg)


@pytest.mark.parametrize("in_stall", [0.0, 0.5], ids=["eager", "stalled"])
def test_input_offered_while_a_new_program_loads_waits_for_all_of_it(in_stall):
    # the array runs model A; model B's load starts by closing the input (n_layers = 0),
    # so B's vectors, offered from the load's second word on, wait for B's last write
    # instead of running on A's layer count with half of B's weights
    cfg, sizes, _ = CORNERS[0]
    image_a, _, _ = _model(cfg, sizes, seed=21)
    image_b, rng, draw = _model(cfg, [sizes[0], 6, 3], seed=22, raw_last=True)
    a, b = compile_model(image_a, cfg), compile_model(image_b, cfg)
    vectors = draw(3)
    result = amsim.run_array(b, vectors, dut=NmcArray(cfg, program=a), input_during_load=True,
                             in_stall=in_stall, seed=3)
    _check(image_b, vectors, result, cfg)
    assert result.counters["inferences"] == len(vectors)
    assert result.first_beat > len(b.load_words)


@pytest.mark.parametrize("option, value", [("lane_dsp", "ice40_pairs"), ("requant_dsp", "ice40")])
def test_ice40_primitives_are_not_simulated_silently_wrong(option, value):
    # Amaranth's simulator runs an Instance with its outputs at 0 rather than refusing it
    cfg, sizes, _ = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=21)
    with pytest.raises(ValueError, match=rf"^the Amaranth simulator cannot run {option}='{value}' \(SB_MAC16 "
                                         r"instances\); simulate its netlist instead "
                                         r"\(pyhdl\.fpga\.netlist\.ice40_netlist\)$"):
        amsim.run_array(compile_model(image, cfg), draw(1), dut=NmcArray(cfg, **{option: value}))


def test_input_during_load_needs_a_load():
    cfg, sizes, _ = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=21)
    program = compile_model(image, cfg)
    with pytest.raises(ValueError, match=r"^input_during_load needs a load \(load=True, a program "
                                         r"with load words\) and no abort_beats$"):
        amsim.run_array(program, draw(1), load=False, input_during_load=True)


def test_array_rejects_bad_arguments():
    cfg = CORNERS[0][0]
    with pytest.raises(TypeError, match=r"^cfg must be an ArrayConfig, not 3$"):
        NmcArray(3)
    image, _, _ = _model(cfg, [4, 2], seed=1)
    other = compile_model(image, cfg.replace(bank_depth=128))
    with pytest.raises(ValueError, match=r"^program was compiled for a different ArrayConfig$"):
        NmcArray(cfg, program=other)


@pytest.mark.parametrize("n_layers", [3, 2**19], ids=["low-bits-above", "high-bits"])
def test_layer_count_above_max_layers_is_clamped(n_layers):
    # the control word is clamped to max_layers (docs/hardware.md): a model of exactly
    # max_layers layers still runs whole when told more
    cfg = ArrayConfig(pe=2, simd=4, bank_depth=64, max_features=32, max_layers=2)
    image, rng, draw = _model(cfg, [10, 7, 5], seed=11)
    program = compile_model(image, cfg)
    addr, count = program.load_words[-1]
    assert count == cfg.max_layers
    program = dataclasses.replace(program, load_words=program.load_words[:-1] + [(addr, n_layers)])
    vectors = draw(2)
    _check(image, vectors, amsim.run_array(program, vectors), cfg)


def test_a_retimed_register_gone_wrong_is_named(monkeypatch):
    # every run checks the retimed registers; here a flag that rises with each issued
    # step stands in for in_open's, as if the register missed its expression
    monkeypatch.setattr(NmcArray, "retimed", property(lambda self: {"in_open": self.issued}))
    cfg, sizes, _ = CORNERS[0]
    image, _, draw = _model(cfg, sizes, seed=21)
    with pytest.raises(AssertionError, match=r"^the retimed register in_open differs from the expression it "
                                             r"stands for in cycle \d+ \(and [1-9]\d* more cycles\)$"):
        amsim.run_array(compile_model(image, cfg), draw(2))
