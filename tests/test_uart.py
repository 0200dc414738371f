"""The board demo's serial output: 8N1 frames bit for bit, and the result line after a
classification says what the golden model says (Amaranth simulator)."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from pyhdl.config import SMALL
from pyhdl.fpga import boards
from pyhdl.fpga.uart import ResultLine, UartTx, result_text, uart_divisor


def decode_8n1(trace: list[int], divisor: int) -> bytes:
    """Bytes on a line sampled once per cycle; every bit must last exactly ``divisor``
    cycles, start low, stop high."""
    out, t = bytearray(), 0
    while t < len(trace):
        if trace[t]:
            t += 1
            continue
        frame = trace[t:t + 10 * divisor]
        if len(frame) < 10 * divisor:
            raise AssertionError(f"frame at cycle {t} cut off after {len(frame)} cycles")
        bits = []
        for b in range(10):
            cell = frame[b * divisor:(b + 1) * divisor]
            if len(set(cell)) != 1:
                raise AssertionError(f"frame at cycle {t}: bit {b} changes inside its {divisor} cycles: {cell}")
            bits.append(cell[0])
        if bits[0] != 0 or bits[9] != 1:
            raise AssertionError(f"frame at cycle {t}: start {bits[0]}, stop {bits[9]}")
        out.append(sum(bit << i for i, bit in enumerate(bits[1:9])))
        t += 10 * divisor
    return bytes(out)


def test_uart_tx_sends_every_byte_as_an_8n1_frame_under_idle_gaps():
    divisor, payload = 3, bytes([0x00, 0xFF, 0x55, 0xA5, 0x0D, 0x80, 0x01])
    dut = UartTx(divisor=divisor)
    trace = []
    rng = random.Random(5)

    async def send(ctx):
        for byte in payload:
            for _ in range(rng.randrange(4)):   # idle gaps between bytes
                await ctx.tick()
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def watch(ctx):
        for _ in range(len(payload) * (10 * divisor + 6) + 20):
            await ctx.tick()
            trace.append(ctx.get(dut.tx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(send)
    sim.add_testbench(watch, background=True)
    sim.run_until(1e-6 * (len(payload) * (10 * divisor + 6) + 20))
    assert trace[0] == 1                       # idle high out of reset
    assert decode_8n1(trace, divisor) == payload


def _line_of_first_result(d, expected, divisor=4):
    """Run the digits demo with a ResultLine on its outputs until the first line is out."""
    n_classes = d["program"].shapes[-1][1]
    m = Module()
    m.submodules.demo = demo = boards.DigitsDemo(cfg=SMALL, program=d["program"],
                                                 vectors=d["vectors"], expected=expected)
    line = demo.serial_line(m, divisor=divisor)
    want_len = len(result_text(0, 0, 0, n_images=len(d["vectors"]), n_classes=n_classes))
    # a generous bound, not a timing claim: one inference plus the line
    limit = 20 * sum(i * o for i, o in d["program"].shapes) + want_len * 10 * divisor
    trace = []

    async def watch(ctx):
        idle = 0
        for _ in range(limit):
            await ctx.tick()
            trace.append(ctx.get(line.tx))
            idle = idle + 1 if trace[-1] else 0
            # a line is out when the line has been idle for a frame's time after some frames
            if idle == 10 * divisor and len(decode_8n1(trace, divisor)) >= want_len:
                return

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(watch)
    sim.run()
    return decode_8n1(trace, divisor).decode("ascii"), n_classes


def test_result_line_reports_the_class_the_golden_model_computes(small_digits):
    d = small_digits
    text, n_classes = _line_of_first_result(d, d["expected"])
    golden = d["expected"][0]
    assert text == result_text(0, golden, golden, n_images=len(d["vectors"]), n_classes=n_classes)
    assert text == f"i=0 c={golden:x} g={golden:x} ok\r\n"


def test_result_line_says_no_when_the_golden_class_differs(small_digits):
    d = small_digits
    n_classes = d["program"].shapes[-1][1]
    wrong = [(e + 1) % n_classes for e in d["expected"]]
    text, _ = _line_of_first_result(d, wrong)
    assert text == f"i=0 c={d['expected'][0]:x} g={wrong[0]:x} NO\r\n"


def test_divisor_and_bad_arguments():
    assert uart_divisor(12e6) == 104          # iCEBreaker: 115385 baud, +0.2 %
    assert uart_divisor(25e6) == 217          # ULX3S: 115207 baud
    with pytest.raises(ValueError, match=r"^a 0\.2 MHz clock cannot make 115200 baud within 2 % "
                                         r"\(nearest divisor 2 gives 100000\)$"):
        uart_divisor(0.2e6)
    with pytest.raises(ValueError, match=r"^baud must be a positive integer, not 0$"):
        uart_divisor(12e6, 0)
    with pytest.raises(ValueError, match=r"^clock frequency must be positive, not -1$"):
        uart_divisor(-1)
    with pytest.raises(ValueError, match=r"^divisor must be a positive integer, not 0$"):
        UartTx(divisor=0)
    with pytest.raises(ValueError, match=r"^expected is empty: there must be at least one image$"):
        ResultLine(expected=[], n_classes=10, divisor=4)
    with pytest.raises(ValueError, match=r"^golden class 10 of image 1 is outside 0\.\.9$"):
        ResultLine(expected=[3, 10], n_classes=10, divisor=4)
    with pytest.raises(ValueError, match=r"^n_classes must be a positive integer, not 0$"):
        ResultLine(expected=[0], n_classes=0, divisor=4)
