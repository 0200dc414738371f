"""Board tops: the digits demo classifies like the golden model (Amaranth simulator) and the
iCEBreaker bitstream builds with weights in block RAM and multipliers in DSPs."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.sim import Simulator

from pyhdl.config import DEFAULT, SMALL
from pyhdl.fpga import boardcheck, boards, flow, synth, targets
from pyhdl.fpga.uart import result_text, uart_divisor


def _demo(d, **changes):
    args = {"cfg": SMALL, "program": d["program"], "vectors": d["vectors"], "expected": d["expected"], **changes}
    return boards.DigitsDemo(**args)


def test_demo_classifies_each_rom_image_like_the_golden_model(small_digits):
    d = small_digits
    n_images = len(d["vectors"])
    dut = _demo(d)
    # enough cycles for one inference however the array schedules it: generous, not a timing claim
    limit = 20 * sum(i * o for i, o in d["program"].shapes)
    seen = []

    async def bench(ctx):
        for i in range(n_images + 1):           # the last request wraps around to image 0
            if i:
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                await ctx.tick()
            for _ in range(limit):
                await ctx.tick()
                if ctx.get(dut.shown):
                    seen.append((ctx.get(dut.image), ctx.get(dut.klass), ctx.get(dut.match)))
                    break
            else:
                raise AssertionError(f"request {i}: no result within {limit} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [(i % n_images, d["expected"][i % n_images], 1) for i in range(n_images + 1)]
    assert seen == want


def test_demo_flags_a_wrong_golden_class(small_digits):
    d = small_digits
    wrong = [(e + 1) % d["program"].shapes[-1][1] for e in d["expected"]]
    dut = _demo(d, vectors=d["vectors"][:1], expected=wrong[:1])
    result = []

    async def bench(ctx):
        for _ in range(20 * sum(i * o for i, o in d["program"].shapes)):
            await ctx.tick()
            if ctx.get(dut.shown):
                result.append((ctx.get(dut.klass), ctx.get(dut.match)))
                return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert result == [(d["expected"][0], 0)]


def test_demo_bad_arguments(small_digits):
    d = small_digits
    with pytest.raises(ValueError, match=r"^vectors is empty: the demo needs at least one input vector$"):
        _demo(d, vectors=[], expected=[])
    with pytest.raises(ValueError, match=r"^expected has 1 classes for 3 vectors$"):
        _demo(d, expected=[0])
    with pytest.raises(ValueError, match=r"^vector 1 has 63 elements, the model takes 64$"):
        _demo(d, vectors=[d["vectors"][0], d["vectors"][1][:63], d["vectors"][2]])
    with pytest.raises(ValueError, match=r"^program was compiled for a different ArrayConfig$"):
        _demo(d, cfg=DEFAULT)
    with pytest.raises(ValueError, match=r"^board must be one of icebreaker, ulx3s, not 'de10'$"):
        boards.build("de10", "unused")


def test_a_board_build_past_its_time_limit_is_stopped_with_its_tools(tmp_path, monkeypatch, ended, stuck_tool):
    # amaranth-boards' script runs the tools named by YOSYS etc.; this Yosys never ends
    fake, pid_file = stuck_tool("stuck-yosys")
    monkeypatch.setenv("YOSYS", str(fake))
    with pytest.raises(flow.FlowTimeout, match=r"^the icebreaker build did not finish within 2 s and was stopped; "
                                               r"see .*/build/build\.log$"):
        boards.build("icebreaker", tmp_path / "build", n_images=1, timeout=2)
    child = int(pid_file.read_text())
    assert ended(child), f"Yosys's child {child} outlived the stopped build"


@pytest.mark.parametrize("timeout, error, message", [
    (0, ValueError, r"^timeout must be > 0 seconds \(None: no limit\), not 0$"),
    ("60", TypeError, r"^timeout must be a number of seconds or None, not '60'$"),
])
def test_bad_board_build_timeout(timeout, error, message):
    with pytest.raises(error, match=message):
        boards.build("icebreaker", "unused", timeout=timeout)


@pytest.mark.slow(seconds=130)
def test_icebreaker_bitstream_has_weights_in_block_ram_and_macs_in_dsps(tmp_path, small_digits):
    rep = boards.build("icebreaker", tmp_path, n_images=len(small_digits["vectors"]))
    bitstream = Path(rep["bitstream"])
    assert bitstream.suffix == ".bin" and bitstream.stat().st_size == rep["bitstream_bytes"] > 0
    assert "End of script" in Path(rep["logs"]["yosys"]).read_text()
    want = synth.expected_mapping(SMALL, targets.ice40())
    assert rep["design"]["dsp"] >= want["dsp"]
    assert rep["design"]["bram"] >= want["bram"]
    assert rep["utilization"]["ICESTORM_RAM"]["used"] == rep["design"]["bram"]
    # the board's only clock is the 12 MHz oscillator: the placed design must run at it
    assert rep["goal_mhz"] == 12.0 and rep["meets_goal"] and rep["fmax_mhz"] >= 12.0
    assert rep["expected"] == small_digits["expected"]
    # the placed netlist, simulated with Yosys's SB_MAC16 / SB_RAM40_4K models, shows the
    # golden class of every ROM image, stepped by the button (a DSP miscompile once dropped
    # every other lane here)
    check = rep["netlist_check"]
    assert check["classes"] == check["expected"] == small_digits["expected"]
    assert check["matches"] == [True] * len(small_digits["expected"])
    assert check["ok"] and check["first_wrong"] is None
    assert check["cycles"] == sorted(check["cycles"])
    # the serial line, decoded from the netlist's pin, says the same for every image
    n_images, n_classes = len(small_digits["expected"]), small_digits["program"].shapes[-1][1]
    assert check["lines"] == [result_text(i, e, e, n_images=n_images, n_classes=n_classes)
                              for i, e in enumerate(small_digits["expected"])]
    # again for the first two images with every serial byte at 115200 baud (104 cycles per
    # bit; ~20 s of Icarus per image), nothing forced on the line: the same lines, the
    # second image's class later by the first one's line; and a wrong golden class for
    # the second image is named as such
    board = boards.BOARDS["icebreaker"]
    first_two = small_digits["expected"][:2]
    wrong = [first_two[0], (first_two[1] + 1) % 10]
    again = boardcheck.check(board, board.make_platform(), bitstream.parent, "nmc_icebreaker", wrong,
                             n_classes=n_classes, n_images=n_images, full_baud=True)
    assert (again["ok"], again["first_wrong"], again["classes"]) == (False, 1, check["classes"][:2])
    assert again["lines"] == check["lines"][:2]
    line_bits = 10 * len(check["lines"][0]) * uart_divisor(board.make_platform().default_clk_frequency)
    assert all(b - a > line_bits for a, b in zip(again["cycles"], again["cycles"][1:]))
    assert rep["design"]["dsp"] == targets.ice40().dsp_budget


def test_ecp5_board_script_packs_registers_between_yosys_and_nextpnr():
    from amaranth.hdl import Module
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    platform = boards._with_register_packing(ULX3S_85F_Platform)()
    assert "python" in platform.required_tools
    plan = platform.prepare(Module(), "t")
    script = plan.files[f"{plan.script}.sh"]
    if isinstance(script, bytes):
        script = script.decode()
    commands = [line for line in script.splitlines() if line.startswith('"$')]
    assert [c.split()[0] for c in commands] == ['"$YOSYS"', '"$PYTHON"', '"$NEXTPNR_ECP5"', '"$ECPPACK"']
    assert commands[1] == '"$PYTHON" -m pyhdl.fpga.regpack t.json regpack.json'
    assert "--json t.json" in commands[2]
    # the iCE40 boards need no packing: their flow has nothing to move
    assert not targets.ice40().pack_registers and targets.ecp5().pack_registers


@pytest.mark.usefixtures("iverilog")
def test_board_check_bad_input(tmp_path):
    board = boards.BOARDS["icebreaker"]
    with pytest.raises(ValueError, match=r"^expected must list the golden class of at least one ROM image$"):
        boardcheck.check(board, board.make_platform(), tmp_path, "top", [], n_classes=10)
    with pytest.raises(ValueError, match=r"^n_images must be an int >= the 2 images expected lists, not 1$"):
        boardcheck.check(board, board.make_platform(), tmp_path, "top", [1, 2], n_classes=10, n_images=1)
    top = tmp_path / "top.json"
    top.write_text('{"modules": {"top": {"ports": {}, "cells": {}, "netnames": {}}}}')
    with pytest.raises(flow.FlowError, match=r"top\.json has no net debounce_tick \(the button's debounce "
                                             r"counter\) to step through the ROM images with$"):
        boardcheck.check(board, board.make_platform(), tmp_path, "top", [1], n_classes=10)
    top.write_text('{"modules": {"top": {"ports": {}, "cells": {}, "netnames": '
                   '{"debounce_tick": {"bits": [2, 3]}}}}}')
    with pytest.raises(flow.FlowError, match=r"top\.json has 0 nets named \*uart_timer \(the serial "
                                             r"transmitter's bit timer\), not 1: none$"):
        boardcheck.check(board, board.make_platform(), tmp_path, "top", [1], n_classes=10)


def test_serial_lines_from_the_check_log():
    def log(text, frame_error_at=None):
        out = []
        for n, ch in enumerate(text):
            if n == frame_error_at:
                out.append(f"uart_frame {n}")
            out.append(f"uart {n} {ord(ch)}")
        return out

    good = "i=0 c=1 g=1 ok\r\n"
    assert boardcheck._serial_lines(log(good + good)) == [good, good]
    # a line is complete at its newline; a framing error or a byte that is not text garbles it
    assert boardcheck._serial_lines(log(good + "i=1")) == [good]
    assert boardcheck._serial_lines(log(good + good, frame_error_at=3)) == [None, good]
    assert boardcheck._serial_lines(["uart 1 7", "uart 2 10"] + log(good)) == [None, good]
    assert boardcheck._serial_lines(["uart 1 x", "uart 2 10"]) == [None]
