"""Run a board build's post-synthesis netlist through every ROM image the demo holds.

A bitstream that builds can still be wrong: Yosys maps the banks, requant tables
and multipliers, bakes the program in as memory init, and on ECP5
:mod:`pyhdl.fpga.regpack` moves flip-flops into the primitives.  :func:`check`
simulates the very netlist nextpnr placed (``<name>.json`` of the build, packed in
place on ECP5) in Icarus Verilog, driving the board's clock and button pins.  After
reset the demo classifies ROM image 0; the testbench waits for the "shown" LED and
reads the class LEDs and the golden-match LED from the pins, undoing each LED's
inversion.  Then it presses the button, as a user steps to the next image, and
reads that class, and so on through the ROM.  Every class must be the golden
model's.

The button is sampled every ``2**debounce_log2`` cycles (about 11 ms), which at
Icarus's ~1700 netlist cycles per second would take minutes per press.  So before
each sample the testbench forces the debounce counter's net to all ones for one
clock edge (its flip-flops then load ``ones + 1 = 0``, the value that samples) and
releases it: only the wait is shortened; the sampling, the press detection and the
demo's next-image logic are the netlist's own.

Cell models: on ECP5 Yosys's fabric models with this project's ``DP16KD`` /
``MULT18X18D`` (:mod:`pyhdl.fpga.ecp5_models`, our reading of the primitives); on
iCE40 Yosys's own, which model ``SB_RAM40_4K`` and ``SB_MAC16``
(:mod:`pyhdl.fpga.ice40_models`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import flow, ice40_models
from .ecp5_models import MODELLED, models_verilog
from .netlist import fabric_models, library_cells, simulation_verilog

__all__ = ["check", "pin_levels", "DEBOUNCE_NET"]

#: the board top's debounce counter (``pyhdl.fpga.boards.BoardTop``), by its netlist name
DEBOUNCE_NET = "debounce_tick"

#: cells the ECP5 check models itself or needs no behaviour for (global set/reset)
_ECP5_OWN = MODELLED | {"SGSR"}
_SGSR_STUB = "\n// global set/reset: the flip-flop models start from their init values\nmodule SGSR(input GSR, input CLK); endmodule\n"


def pin_levels(board, platform) -> dict:
    """Pin names of the netlist's top level and whether each is inverted on the board:
    ``{"clock": pin, "button": (pin, inverted), "klass": [(pin, inverted), ...],
    "match": (pin, inverted), "shown": (pin, inverted)}``.

    ``platform`` must be fresh (no resource requested yet).
    """
    for res in board.extra_resources(platform):
        platform.add_resources(res)

    def pin(name, number):
        port = platform.request(name, number, dir="-")
        return f"{name}_{number}__io", bool(port.invert[0])

    return {"clock": f"{platform.default_clk}_0__io", "button": pin(*board.button),
            "klass": [pin(*led) for led in board.class_leds], "match": pin(*board.match_led),
            "shown": pin(*board.shown_led)}


def _testbench(top: str, pins: dict, ports: dict, images: int, tick_bits: int, max_cycles: int) -> str:
    """A testbench that steps through ``images`` ROM images and prints, per image,
    ``shown <image> <cycle> <class> <match>``; ``timeout <cycle>`` when nothing shows
    within ``max_cycles`` of the last result, ``debounce <cycle>`` when the counter
    did not take the forced value."""
    def level(p):  # the LED's logical value from its pin
        name, inverted = p
        return f"({'~' if inverted else ''}{name})"

    button, button_inverted = pins["button"]
    wires = "\n".join(f"  wire {name};" for name in ports)
    conns = ",\n".join(f"    .{name}({name})" for name in ports)
    klass = ", ".join(level(p) for p in reversed(pins["klass"]))
    tick = f"dut.{DEBOUNCE_NET}"
    return f"""`timescale 1ns/1ps
module board_check;
{wires}
  reg clk = 0;
  reg pressed = 0;
  assign {pins["clock"]} = clk;
  assign {button} = pressed ^ 1'b{int(button_inverted)};
  {top} dut(
{conns});
  always #5 clk = ~clk;
  integer cycle = 0;
  integer limit = {max_cycles};
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle >= limit) begin
      $display("timeout %0d", cycle);
      $finish;
    end
  end
  wire shown = {level(pins["shown"])};
  // the next clock edge samples the button (see the module doc of pyhdl.fpga.boardcheck)
  task debounce_sample;
    begin
      @(negedge clk) force {tick} = {{{tick_bits}{{1'b1}}}};
      @(negedge clk) release {tick};
      if ({tick} !== {tick_bits}'d0) begin
        $display("debounce %0d", cycle);
        $finish;
      end
      @(negedge clk);
    end
  endtask
  integer image;
  initial begin
    for (image = 0; image < {images}; image = image + 1) begin
      if (image > 0) begin
        pressed = 1;  // two samples down: the second is the press
        debounce_sample;
        debounce_sample;
        pressed = 0;  // two samples up, so that the next press is an edge again
        debounce_sample;
        debounce_sample;
        wait (shown === 1'b0);
      end
      wait (shown === 1'b1);
      @(negedge clk);
      $display("shown %0d %0d %0d %0d", image, cycle, {{{klass}}}, {level(pins["match"])});
      limit = cycle + {max_cycles};
    end
    $finish;
  end
endmodule
"""


def _models(netlist: dict, family: str) -> str:
    if family == "ecp5":
        return fabric_models(library_cells(netlist) - _ECP5_OWN) + _SGSR_STUB + models_verilog()
    return ice40_models.models_verilog()


def check(board, platform, build_dir, name: str, expected, *, max_cycles: int = 20000,
          timeout: float | None = 600) -> dict:
    """Simulate ``<build_dir>/<name>.json`` (the placed netlist of ``board``'s build)
    through the ROM images and return ``{"classes", "matches", "cycles", "expected",
    "ok", "first_wrong"}``, a list entry per image (``cycles``: when its class showed).

    ``expected`` lists the golden model's class of each ROM image.  ``ok`` is true when
    every class equals its ``expected`` and the demo's own golden-match LED was on each
    time; ``first_wrong`` is the first image where not (None when ``ok``).  Raises
    FlowError when ``iverilog`` is missing, the netlist has no debounce counter to
    step, the simulation fails, or an image shows nothing within ``max_cycles``
    clock cycles of the one before.
    """
    expected = list(expected)
    if not expected:
        raise ValueError("expected must list the golden class of at least one ROM image")
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise flow.FlowError("the board netlist check needs Icarus Verilog (iverilog, vvp): "
                             "apt-get install -y iverilog")
    build = Path(build_dir).resolve()
    netlist = json.loads((build / f"{name}.json").read_text())
    if name not in netlist["modules"]:
        raise flow.FlowError(f"{build / (name + '.json')} has no module {name}")
    module = netlist["modules"][name]
    tick = module["netnames"].get(DEBOUNCE_NET)
    if tick is None:
        raise flow.FlowError(f"{build / (name + '.json')} has no net {DEBOUNCE_NET} (the button's "
                             f"debounce counter) to step through the ROM images with")
    simulation_verilog(netlist, build, "check_netlist")
    (build / "check_models.v").write_text(_models(netlist, board.family))
    (build / "check_tb.v").write_text(_testbench(name, pin_levels(board, platform), module["ports"],
                                                 len(expected), len(tick["bits"]), max_cycles))
    flow.run_tool(["iverilog", "-g2012", "-o", "check.vvp", "-s", "board_check", "check_tb.v",
                   "check_netlist.v", "check_models.v"], cwd=build, log=build / "check_compile.log",
                  timeout=timeout)
    log = build / "check.log"
    flow.run_tool(["vvp", "-n", "check.vvp"], cwd=build, log=log, timeout=timeout)
    lines = log.read_text().splitlines()
    shown = [[int(w) for w in line.split()[1:5]] for line in lines if line.startswith("shown ")]
    if len(shown) < len(expected):
        stop = next((line.split() for line in lines
                     if line.startswith(("timeout ", "debounce "))), None)
        if stop and stop[0] == "debounce":
            raise flow.FlowError(f"the {name} netlist's {DEBOUNCE_NET} did not take the forced value "
                                 f"(cycle {stop[1]}); see {log}")
        raise flow.FlowError(f"the {name} netlist showed no class for ROM image {len(shown)} within "
                             f"{max_cycles} cycles; see {log}")
    classes = [klass for _, _, klass, _ in shown]
    matches = [bool(match) for _, _, _, match in shown]
    wrong = [i for i, (k, e, m) in enumerate(zip(classes, expected, matches)) if k != e or not m]
    return {"classes": classes, "matches": matches, "cycles": [c for _, c, _, _ in shown],
            "expected": expected, "ok": not wrong, "first_wrong": wrong[0] if wrong else None}
