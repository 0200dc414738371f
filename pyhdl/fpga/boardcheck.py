"""Run a board build's post-synthesis netlist until the demo shows its first class.

A bitstream that builds can still be wrong: Yosys maps the banks, requant tables
and multipliers, bakes the program in as memory init, and on ECP5
:mod:`pyhdl.fpga.regpack` moves flip-flops into the primitives.  :func:`check`
simulates the very netlist nextpnr placed (``<name>.json`` of the build, packed in
place on ECP5) in Icarus Verilog, driving the board's clock pin and holding its
button released.  After reset the demo classifies ROM image 0; the testbench waits
for the "shown" LED and reads the class LEDs and the golden-match LED from the
pins, undoing each LED's inversion.  The class must be the golden model's.

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
from .ecp5_models import models_verilog
from .netlist import fabric_models, library_cells, simulation_verilog

__all__ = ["check", "pin_levels"]

#: cells the ECP5 checks model themselves or need no behaviour for (global set/reset)
_ECP5_OWN = {"DP16KD", "MULT18X18D", "SGSR"}
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


def _testbench(top: str, pins: dict, ports: dict, max_cycles: int) -> str:
    """A testbench that prints ``shown <cycle> <class> <match>`` or ``timeout <max_cycles>``."""
    def level(p):  # the LED's logical value from its pin
        name, inverted = p
        return f"({'~' if inverted else ''}{name})"

    button, button_inverted = pins["button"]
    wires = "\n".join(f"  wire {name};" for name in ports)
    conns = ",\n".join(f"    .{name}({name})" for name in ports)
    klass = ", ".join(level(p) for p in reversed(pins["klass"]))
    return f"""`timescale 1ns/1ps
module board_check;
{wires}
  reg clk = 0;
  assign {pins["clock"]} = clk;
  assign {button} = 1'b{int(button_inverted)};  // released
  {top} dut(
{conns});
  always #5 clk = ~clk;
  integer cycle = 0;
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if ({level(pins["shown"])} === 1'b1) begin
      $display("shown %0d %0d %0d", cycle, {{{klass}}}, {level(pins["match"])});
      $finish;
    end
    if (cycle >= {max_cycles}) begin
      $display("timeout %0d", cycle);
      $finish;
    end
  end
endmodule
"""


def _models(netlist: dict, family: str) -> str:
    if family == "ecp5":
        return fabric_models(library_cells(netlist) - _ECP5_OWN) + _SGSR_STUB + models_verilog()
    return ice40_models.models_verilog()


def check(board, platform, build_dir, name: str, expected: int, *, max_cycles: int = 20000,
          timeout: float | None = 600) -> dict:
    """Simulate ``<build_dir>/<name>.json`` (the placed netlist of ``board``'s build) until the
    first class shows; return ``{"class", "match", "cycles", "expected", "ok"}``.

    ``ok`` is true when the class equals ``expected`` (the golden model's class of ROM
    image 0) and the demo's own golden-match LED is on.  Raises FlowError when
    ``iverilog`` is missing, the simulation fails, or nothing shows within
    ``max_cycles`` clock cycles.
    """
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise flow.FlowError("the board netlist check needs Icarus Verilog (iverilog, vvp): "
                             "apt-get install -y iverilog")
    build = Path(build_dir).resolve()
    netlist = json.loads((build / f"{name}.json").read_text())
    if name not in netlist["modules"]:
        raise flow.FlowError(f"{build / (name + '.json')} has no module {name}")
    ports = netlist["modules"][name]["ports"]
    simulation_verilog(netlist, build, "check_netlist")
    (build / "check_models.v").write_text(_models(netlist, board.family))
    (build / "check_tb.v").write_text(_testbench(name, pin_levels(board, platform), ports, max_cycles))
    flow.run_tool(["iverilog", "-g2012", "-o", "check.vvp", "-s", "board_check", "check_tb.v",
                   "check_netlist.v", "check_models.v"], cwd=build, log=build / "check_compile.log",
                  timeout=timeout)
    log = build / "check.log"
    flow.run_tool(["vvp", "-n", "check.vvp"], cwd=build, log=log, timeout=timeout)
    words = next((line.split() for line in reversed(log.read_text().splitlines())
                  if line.startswith(("shown ", "timeout "))), None)
    if words is None:
        raise flow.FlowError(f"the {name} netlist simulation printed no result; see {log}")
    if words[0] == "timeout":
        raise flow.FlowError(f"the {name} netlist showed no class within {max_cycles} cycles; see {log}")
    cycles, klass, match = (int(w) for w in words[1:4])
    return {"class": klass, "match": bool(match), "cycles": cycles, "expected": expected,
            "ok": klass == expected and bool(match)}
