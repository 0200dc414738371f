"""cocotb components: Harness control, Drivers, Monitor, Model, Scoreboard, CounterChecker.

Wired by callbacks as in cocotb's ``examples/matrix_multiplier``: the
:class:`InputDriver` hands every batch it sends to its callbacks (the
:class:`GoldenModel`, which pushes the expected outputs to the
:class:`Scoreboard`); the :class:`OutputMonitor` hands every batch of captured
beats to its callbacks (the scoreboard's :meth:`Scoreboard.receive`).

Everything is transaction level: a batch of vectors is one file write and one
go/finished handshake with the harness (``testbench/harness.py``); Python never
touches the design per cycle or per beat.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
from pathlib import Path

import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from golden import integer

from . import harness as H

__all__ = ["COUNTERS", "CLEAR_COUNTERS", "Harness", "LoadDriver", "InputDriver", "OutputMonitor",
           "GoldenModel", "Scoreboard", "Beats", "Expected", "check_counters"]

#: Performance counters by ``stat_addr`` (docs/hardware.md).
COUNTERS = ("busy", "stall_input", "stall_output", "mac_ops", "bank_reads",
            "act_reads", "act_writes", "inferences", "bus_bytes")
#: Load word that clears the performance counters (control region, address 1).
CLEAR_COUNTERS = (0x3000_0001, 0)


class Harness:
    """The go/finished handshake and the control inputs of ``nmc_harness``."""

    def __init__(self, dut, layout: H.Layout):
        self.dut = dut
        self.layout = layout
        self.workdir = Path(os.getcwd())

    async def reset(self, cycles: int = 2) -> None:
        self.dut.go.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def configure(self, *, n_load: int, n_beats: int, n_expect: int, drain: int, max_cycles: int,
                  stalls: dict[str, H.StallSpec]) -> None:
        d = self.dut
        d.n_load.value = n_load
        d.n_beats.value = n_beats
        d.n_expect.value = n_expect
        d.drain.value = drain
        d.max_cycles.value = min(max_cycles, 2**32 - 1)
        for prefix, stream in (("ld", "load"), ("in", "input"), ("out", "output")):
            spec = stalls.get(stream, H.NO_STALL)
            getattr(d, f"{prefix}_mode").value = H.STALL_MODES[spec.mode]
            getattr(d, f"{prefix}_thresh").value = spec.threshold
            getattr(d, f"{prefix}_seed").value = spec.seed
            getattr(d, f"{prefix}_pattern").value = spec.pattern

    def start(self, op: int) -> None:
        self.dut.op.value = op
        self.dut.go.value = 1

    async def finish(self) -> None:
        await RisingEdge(self.dut.finished)
        self.dut.go.value = 0
        await FallingEdge(self.dut.finished)  # back in idle: the next go is seen

    async def command(self, op: int) -> None:
        self.start(op)
        await self.finish()

    def status(self) -> dict:
        d = self.dut
        return {"n_resp": int(d.n_resp.value), "cycles": int(d.cycles.value),
                "n_done": int(d.n_done.value), "n_busy": int(d.n_busy.value),
                "first_in": int(d.first_in.value),
                "timeout": bool(int(d.timeout.value))}


class LoadDriver:
    """Drives the load port: program words (and the counter clear) in one bulk transfer."""

    def __init__(self, harness: Harness, data_bits: int):
        self.harness = harness
        self.data_bits = data_bits
        self.pending = 0

    async def load(self, words) -> None:
        if len(words) > self.harness.layout.load_depth:
            raise ValueError(f"{len(words)} load words exceed the harness load memory ({self.harness.layout.load_depth})")
        self.pending = H.write_load_file(self.harness.workdir / H.LOAD_FILE, words, self.data_bits)
        await self.harness.command(H.OP_READ_LOAD)


class InputDriver:
    """Drives the input stream with whole activation vectors; tells its callbacks what it sent."""

    def __init__(self, harness: Harness, cfg):
        self.harness = harness
        self.cfg = cfg
        self.callbacks = []
        self.pending_beats = 0

    async def send(self, model, x_q: np.ndarray, base_index: int) -> None:
        beats = H.write_input_file(self.harness.workdir / H.INPUT_FILE, x_q, self.cfg)
        if beats > self.harness.layout.input_depth:
            raise ValueError(f"{beats} input beats exceed the harness input memory ({self.harness.layout.input_depth})")
        self.pending_beats = beats
        await self.harness.command(H.OP_READ_INPUT)
        for cb in self.callbacks:
            cb(model, x_q, base_index)


@dataclasses.dataclass
class Beats:
    data: np.ndarray   # int64, sign-extended
    last: np.ndarray   # bool
    cycle: np.ndarray  # cycle stamp (harness cycle counter)
    unknown: np.ndarray = None  # bool: the beat had X/Z bits (4-state simulators)

    def __post_init__(self):
        if self.unknown is None:
            self.unknown = np.zeros(len(self.data), dtype=bool)


class OutputMonitor:
    """Collects the captured o_stream beats and the counter snapshot after a run."""

    def __init__(self, harness: Harness, acc_bits: int):
        self.harness = harness
        self.acc_bits = acc_bits
        self.callbacks = []

    async def collect(self, count: int) -> tuple[Beats, list[int]]:
        await self.harness.command(H.OP_DUMP)
        kept = min(count, self.harness.layout.resp_depth)
        beats = Beats(*H.read_responses(self.harness.workdir / H.RESP_FILE, kept, self.acc_bits))
        stats = H.read_stats(self.harness.workdir / H.STAT_FILE)
        for cb in self.callbacks:
            cb(beats, count)
        return beats, stats


@dataclasses.dataclass
class Expected:
    model: str
    base_index: int
    x_q: np.ndarray
    pending: object  # per-layer golden outputs (numpy [n, out_l]), or a Future of them

    @property
    def layers(self) -> list:
        if isinstance(self.pending, concurrent.futures.Future):
            self.pending = self.pending.result()
        return self.pending

    @property
    def final(self) -> np.ndarray:
        return self.layers[-1]


def _golden(image, x_q) -> list:
    return [t.numpy() for t in integer.infer(image, x_q)]


class GoldenModel:
    """The Model: ``golden.integer.infer`` on every batch the input driver sends.

    It runs in a worker thread while the simulator runs the batch (torch releases the
    GIL, and cocotb holds it only inside Python callbacks); the scoreboard waits for
    the result when the outputs arrive.
    """

    def __init__(self, scoreboard: "Scoreboard"):
        self.scoreboard = scoreboard
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="golden")

    def __call__(self, model, x_q: np.ndarray, base_index: int) -> None:
        future = self.pool.submit(_golden, model.image, x_q)
        self.scoreboard.expect(Expected(model.name, base_index, x_q, future))


class Scoreboard:
    """Compares every output integer (and ``last`` flag) with the golden, in order.

    Keeps the first mismatch as a readable report: model, input index, layer,
    neuron, PE, cycle, and the golden's per-layer values for that input.
    """

    def __init__(self, pe: int):
        self.pe = pe
        self.queue: collections.deque[Expected] = collections.deque()
        self.checked = 0
        self.errors: list[str] = []

    def expect(self, block: Expected) -> None:
        self.queue.append(block)

    def discard(self) -> None:
        """Drop what an intentionally aborted run (reset mid-inference) still expected."""
        self.queue.clear()

    def receive(self, beats: Beats, count: int) -> None:
        if not self.queue:
            self.errors.append(f"UNEXPECTED: {count} output beats arrived while nothing was expected")
            return
        block = self.queue.popleft()
        exp = block.final
        n, out = exp.shape
        flat = exp.reshape(-1)
        exp_last = np.tile(np.arange(out) == out - 1, n)
        k = min(len(flat), len(beats.data))
        bad = np.nonzero((beats.data[:k] != flat[:k]) | (beats.last[:k] != exp_last[:k]) | beats.unknown[:k])[0]
        self.checked += int(k - bad.size) if bad.size == 0 else int(bad[0])
        if bad.size:
            i = int(bad[0])
            self.errors.append(self._report(block, i, beats, "X/Z" if beats.unknown[i] else "MISMATCH"))
        elif count < len(flat):
            self.errors.append(self._report(block, count, None,
                                            f"LOST: only {count} of {len(flat)} output beats arrived; first missing"))
        elif count > len(flat):
            extra = beats.data[len(flat):len(flat) + 8].tolist()
            cyc = beats.cycle[len(flat)] if len(beats.cycle) > len(flat) else "?"
            self.errors.append(f"UNEXPECTED: model {block.model!r}: {count - len(flat)} output beats after the "
                               f"{len(flat)} expected, first at cycle {cyc}: {extra}")

    def _report(self, block: Expected, i: int, beats: Beats | None, what: str) -> str:
        out = block.final.shape[1]
        v, j = divmod(i, out)
        layer = len(block.layers) - 1
        head = (f"{what}: model {block.model!r} input {block.base_index + v} layer {layer} "
                f"neuron {j} PE {j % self.pe}")
        if beats is not None:
            head += (f" cycle {int(beats.cycle[i])}: RTL {int(beats.data[i])} (last={int(beats.last[i])}), "
                     f"golden {int(block.final[v, j])} (last={int(j == out - 1)})")
        lines = [head, f"  input {block.base_index + v}: {block.x_q[v].tolist()}"]
        lines += [f"  golden layer {n}: {layer_out[v].tolist()}" for n, layer_out in enumerate(block.layers)]
        return "\n".join(lines)

    @property
    def ok(self) -> bool:
        return not self.errors

    def assert_empty(self) -> None:
        if self.queue:
            self.errors.append(f"LEFT OVER: {len(self.queue)} expected batches never received")
            self.queue.clear()


def check_counters(stats: list[int], expected: dict[str, int]) -> list[str]:
    """Compare counter snapshot ``stats`` with exact expectations ``{name: value}``."""
    errors = []
    for name, value in expected.items():
        got = stats[COUNTERS.index(name)]
        if got != value % 2**32:
            errors.append(f"counter {name} (stat_addr {COUNTERS.index(name)}): RTL {got}, expected {value}")
    return errors
