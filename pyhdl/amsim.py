"""Run ``NmcArray`` in the Amaranth simulator: load a program, stream vectors, collect results.

For the array's own unit tests (small configs); the cocotb/Verilator testbench
in testbench/ is the production checker.
"""

from __future__ import annotations

import dataclasses
import random

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from . import sizing
from .top import NmcArray

__all__ = ["RunResult", "run_array", "random_image_dict"]


@dataclasses.dataclass
class RunResult:
    outputs: list            # per vector: list of ints
    lasts: list              # per vector: list of last flags
    counters: dict           # name -> value after the run
    first_beat: int          # cycle the first input beat was accepted
    last_accept: list        # per vector: cycle its last result was accepted
    done_cycles: list        # cycles `done` was high
    collisions: list = dataclasses.field(default_factory=list)  # (cycle, memory) of watched reads meeting writes
    issues: list = dataclasses.field(default_factory=list)  # cycles a step was issued (trace_issues)
    retimed: list = dataclasses.field(default_factory=list)  # (cycle, register) of a retimed register gone wrong


def run_array(program, vectors, *, in_stall: float = 0.0, out_stall: float = 0.0, seed: int = 0,
              abort_beats: int | None = None, load: bool = True, timeout: int = 200_000,
              dut=None, watch_collisions: bool = False, input_gap: int | None = None,
              input_during_load: bool = False, trace_issues: bool = False) -> RunResult:
    """Load ``program``, stream ``vectors`` (lists of ints), return every output integer.

    ``in_stall``/``out_stall``: probability of holding ``valid``/``ready`` low in a cycle.
    ``abort_beats``: before the vectors, send that many beats of an extra vector, let
    the array run a few cycles, and assert reset (the program must survive it).
    ``load=False`` skips the load stream (for a ``NmcArray(cfg, program=...)``).
    ``watch_collisions``: record in ``collisions`` every cycle where one of the
    array's ``collisions`` flags is high (a used read meeting a write, same address).
    ``input_gap``: idle cycles between the last program write and the first offered
    input beat (0: the very next cycle); by default one less than
    ``sizing.input_settle`` (the beat is offered in the cycle after the gap), which
    ``sizing.schedule`` assumes.
    ``input_during_load``: offer the vectors from the cycle after the load's first
    write, while the rest of the program is still being written.
    ``trace_issues``: record in ``issues`` every cycle where the sequencer issued a step.

    Every run watches the array's ``retimed`` flags and raises AssertionError, naming the
    register and the first cycle, if one was ever high.
    """
    cfg = program.cfg
    if input_gap is not None and (isinstance(input_gap, bool) or not isinstance(input_gap, int) or input_gap < 0):
        raise ValueError(f"input_gap must be a non-negative int, not {input_gap!r}")
    if input_during_load and (abort_beats is not None or not load or not program.load_words):
        raise ValueError("input_during_load needs a load (load=True, a program with load words) "
                         "and no abort_beats")
    gap = sizing.input_settle(cfg) - 1 if input_gap is None else input_gap
    dut = dut or NmcArray(cfg)
    for option in ("lane_dsp", "requant_dsp"):
        if getattr(dut, option) != "inferred":
            # the simulator would run it with the SB_MAC16 instances' outputs at 0
            dut._MustUse__silence = True  # a refused array is not an unused design
            raise ValueError(f"the Amaranth simulator cannot run {option}={getattr(dut, option)!r} (SB_MAC16 "
                             f"instances); simulate its netlist instead (pyhdl.fpga.netlist.ice40_netlist)")
    wrapper = Module()
    wrapper.domains.sync = cd = ClockDomain("sync")
    wrapper.submodules.dut = dut
    rng = random.Random(seed)
    out_rng = random.Random(seed + 1)
    beats = [sizing.input_beats(v, cfg) for v in vectors]
    n_out = program.shapes[-1][1]
    res = RunResult([[] for _ in vectors], [[] for _ in vectors], {}, -1, [], [])
    state = {"cycle": 0, "loaded": False}

    async def clock(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1

    async def driver(ctx):
        for n, (addr, data) in enumerate(program.load_words if load else ()):
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.addr, addr)
            ctx.set(dut.load.payload.data, data)
            await ctx.tick().until(dut.load.ready)
            if n == 0 and input_during_load:
                state["loaded"] = True  # the inputs process starts offering
        ctx.set(dut.load.valid, 0)
        if input_during_load:
            return
        for _ in range(gap):  # by default: weights prefetched (sizing.schedule)
            await ctx.tick()
        if abort_beats is not None:
            for word in beats[0][:abort_beats]:
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload, word)
                await ctx.tick().until(dut.i_stream.ready)
            ctx.set(dut.i_stream.valid, 0)
            for _ in range(rng.randint(0, 3 * sizing.pe_stages(cfg))):
                await ctx.tick()
            ctx.set(cd.rst, 1)
            await ctx.tick()
            ctx.set(cd.rst, 0)
        state["loaded"] = True
        await send_vectors(ctx)

    async def inputs_during_load(ctx):
        while not state["loaded"]:
            await ctx.tick()
        await send_vectors(ctx)

    async def send_vectors(ctx):
        ctx.set(dut.stat_addr, 0)
        for vec in beats:
            for word in vec:
                while in_stall and rng.random() < in_stall:
                    ctx.set(dut.i_stream.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i_stream.valid, 1)
                ctx.set(dut.i_stream.payload, word)
                while True:
                    await ctx.delay(0)
                    ready = ctx.get(dut.i_stream.ready)
                    cyc = state["cycle"]
                    await ctx.tick()
                    if ready:
                        if res.first_beat < 0:
                            res.first_beat = cyc
                        break
        ctx.set(dut.i_stream.valid, 0)

    async def monitor(ctx):
        v = 0
        while v < len(vectors):
            ready = state["loaded"] and not (out_stall and out_rng.random() < out_stall)
            ctx.set(dut.o_stream.ready, ready)
            await ctx.delay(0)
            cyc = state["cycle"]
            valid = ctx.get(dut.o_stream.valid)
            if ctx.get(dut.done):
                res.done_cycles.append(cyc)
            if valid and ready:
                res.outputs[v].append(ctx.get(dut.o_stream.payload.data))
                last = ctx.get(dut.o_stream.payload.last)
                res.lasts[v].append(last)
                if last or len(res.outputs[v]) > n_out:
                    res.last_accept.append(cyc)
                    v += 1
            await ctx.tick()
            if cyc > timeout:
                raise TimeoutError(f"array produced {v} of {len(vectors)} results in {timeout} cycles")
        ctx.set(dut.o_stream.ready, 0)
        for _ in range(4):
            await ctx.tick()
        for i, name in enumerate(sizing.COUNTERS):
            ctx.set(dut.stat_addr, i)
            await ctx.tick().repeat(sizing.stat_read_stages())
            res.counters[name] = ctx.get(dut.stat_data)

    def watch(flags: dict, found: list):
        """A process appending (cycle, name) to ``found`` for each flag high in a cycle."""
        async def process(ctx):
            names = list(flags)
            async for _, _, *high in ctx.tick().sample(*flags.values()):
                if any(high):
                    found.extend((state["cycle"], n) for n, h in zip(names, high) if h)
        return process

    async def issues(ctx):
        cycle = 0  # the value sampled at a clock edge is the one of the cycle before it
        async for _, _, issued in ctx.tick().sample(dut.issued):
            if issued:
                res.issues.append(cycle)
            cycle += 1

    sim = Simulator(wrapper)
    sim.add_clock(1e-8)
    sim.add_process(clock)
    if watch_collisions and dut.collisions:
        sim.add_process(watch(dut.collisions, res.collisions))
    if trace_issues:
        sim.add_process(issues)
    if dut.retimed:
        sim.add_process(watch(dut.retimed, res.retimed))
    sim.add_testbench(driver, background=True)
    if input_during_load:
        sim.add_testbench(inputs_during_load, background=True)
    sim.add_testbench(monitor)
    sim.run()
    if res.retimed:
        cycle, name = res.retimed[0]
        raise AssertionError(f"the retimed register {name} differs from the expression it stands for "
                             f"in cycle {cycle} (and {len(res.retimed) - 1} more cycles)")
    return res


def random_image_dict(rng: random.Random, sizes, *, w_bits=8, a_bits=8, acc_bits=32, m_bits=16,
                      raw_last=False, relu=True, name="random") -> dict:
    """A ModelImage dict of random integers for layer widths ``sizes = [in, h1, ..., out]``."""
    from golden import contract
    wlo, whi = contract.weight_range(w_bits)
    layers = []
    for n, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = n == len(sizes) - 2
        requant = not (last and raw_last)
        bmax = 2 ** (w_bits + a_bits - 1)
        layers.append({
            "in_features": fin, "out_features": fout,
            "weight": [[rng.randint(wlo, whi) for _ in range(fin)] for _ in range(fout)],
            "bias": [rng.randint(-bmax, bmax) for _ in range(fout)],
            "m": [rng.randint(0, 2**m_bits - 1) for _ in range(fout)] if requant else [],
            "s": [rng.randint(m_bits, m_bits + 8) for _ in range(fout)] if requant else [],
            "relu": bool(relu and requant and rng.random() < 0.7), "requantize": requant,
            "weight_scale": [1.0] * fout, "output_scale": 1.0 if requant else None,
        })
    return {"format": "nmc-model-image", "version": 1, "name": name, "w_bits": w_bits,
            "a_bits": a_bits, "acc_bits": acc_bits, "m_bits": m_bits, "input_scale": 1.0,
            "layers": layers}
