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

The serial line is decoded too: after each class, the testbench waits for the demo's
result line (:func:`pyhdl.fpga.uart.result_text`, e.g. ``i=2 c=8 g=8 ok``) before it
presses the button, and every line must read the class the LEDs showed and the golden
class.  At 115200 baud a line is ~17 000 cycles at 12 MHz (~35 000 at 25 MHz), ten
seconds to minutes in Icarus per image, so by default only the first byte is received
at the board's baud rate (sampled in the middle of each bit: a wrong divisor garbles
it); then the transmitter's bit timer (the net ending in ``uart_timer``) is forced to 0
and every further bit lasts one clock cycle.  The characters, the framing and the
lines' order against the LEDs are the netlist's throughout; the bit timing of the
first frame.  With ``full_baud`` nothing is forced on the serial line: every byte of
every line is received at the board's baud rate.

Cell models: on ECP5 Yosys's fabric models with this project's ``DP16KD`` /
``MULT18X18D`` (:mod:`pyhdl.fpga.ecp5_models`, our reading of the primitives); on
iCE40 Yosys's own, which model ``SB_RAM40_4K`` and ``SB_MAC16``
(:mod:`pyhdl.fpga.ice40_models`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from . import flow, ice40_models
from .ecp5_models import MODELLED, models_verilog
from .netlist import fabric_models, library_cells, simulation_verilog
from .uart import result_text, uart_divisor

__all__ = ["check", "pin_levels", "DEBOUNCE_NET", "UART_TIMER"]

#: the board top's debounce counter (``pyhdl.fpga.boards.BoardTop``), by its netlist name
DEBOUNCE_NET = "debounce_tick"
#: the serial transmitter's bit timer (``pyhdl.fpga.uart.UartTx``): its netlist name ends so
UART_TIMER = "uart_timer"

#: cells the ECP5 check models itself or needs no behaviour for (global set/reset)
_ECP5_OWN = MODELLED | {"SGSR"}
_SGSR_STUB = "\n// global set/reset: the flip-flop models start from their init values\nmodule SGSR(input GSR, input CLK); endmodule\n"


def pin_levels(board, platform) -> dict:
    """Pin names of the netlist's top level and whether each is inverted on the board:
    ``{"clock": pin, "button": (pin, inverted), "klass": [(pin, inverted), ...],
    "match": (pin, inverted), "shown": (pin, inverted), "tx": (pin, inverted)}``.

    ``platform`` must be fresh (no resource requested yet).
    """
    for res in board.extra_resources(platform):
        platform.add_resources(res)

    def pin(name, number):
        port = platform.request(name, number, dir="-")
        return f"{name}_{number}__io", bool(port.invert[0])

    uart_name, uart_number = board.uart
    uart = platform.request(uart_name, uart_number, dir="-")
    return {"clock": f"{platform.default_clk}_0__io", "button": pin(*board.button),
            "klass": [pin(*led) for led in board.class_leds], "match": pin(*board.match_led),
            "shown": pin(*board.shown_led),
            "tx": (f"{uart_name}_{uart_number}__tx__io", bool(uart.tx.invert[0]))}


def _testbench(top: str, pins: dict, ports: dict, images: int, tick_bits: int, timer: list,
               divisor: int, max_cycles: int) -> str:
    """A testbench that steps through ``images`` ROM images and prints, per image,
    ``shown <image> <cycle> <class> <match>``, and per byte on the serial line ``uart
    <cycle> <byte>`` (``uart_frame <cycle>`` for a start or stop bit that is not low or
    high), the first byte sampled every ``divisor`` cycles, the rest every cycle with
    the bit ``timer`` references forced to 0 (every byte at ``divisor`` when there are none);
    ``timeout <cycle>`` when an image's class and line are not out within
    ``max_cycles`` of the last one's, ``debounce <cycle>`` when the counter did not take
    the forced value."""
    def level(p):  # the LED's logical value from its pin
        name, inverted = p
        return f"({'~' if inverted else ''}{name})"

    button, button_inverted = pins["button"]
    wires = "\n".join(f"  wire {name};" for name in ports)
    conns = ",\n".join(f"    .{name}({name})" for name in ports)
    klass = ", ".join(level(p) for p in reversed(pins["klass"]))
    tick = f"dut.{DEBOUNCE_NET}"
    forces = "\n".join(f"          force dut.{ref} = 1'b0;" for ref in timer)
    speed_up = f"""        if (period != 1) begin
{forces}
          period = 1;
        end""" if timer else ""
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
  wire tx = {level(pins["tx"])};
  // one receiver, sampling in the middle of each bit: the first byte at the board's baud
  // rate, then one bit per cycle if the bit timer is forced (see the module doc)
  integer period = {divisor};
  integer k;
  integer lines = 0;
  reg [7:0] rx_byte;
  initial begin
    wait (tx === 1'b1);
    forever begin
      @(negedge clk);
      if (tx === 1'b0) begin
        repeat (period / 2) @(negedge clk);
        if (tx !== 1'b0) $display("uart_frame %0d", cycle);
        for (k = 0; k < 8; k = k + 1) begin
          repeat (period) @(negedge clk);
          rx_byte[k] = tx;
        end
        repeat (period) @(negedge clk);
        if (tx !== 1'b1) $display("uart_frame %0d", cycle);
        $display("uart %0d %0d", cycle, rx_byte);
        if (rx_byte === 8'd10) lines = lines + 1;
{speed_up}
      end
    end
  end
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
      wait (lines > image);  // the line is out before the next press
      limit = cycle + {max_cycles};
    end
    $finish;
  end
endmodule
"""


def _escaped(name: str) -> str:
    """``name`` as a Verilog identifier (netlist names such as ``line.tx$17.uart_timer``)."""
    return name if name.replace("_", "a").isalnum() and not name[0].isdigit() else f"\\{name} "


def _bit_references(module: dict, net: str) -> list:
    """Every public name of every bit of ``net``, as Verilog references below the top.

    Yosys keeps a register's bits under several names (``assign`` aliases in the written
    Verilog) and the cells read whichever it picked, so forcing one name is not enough.
    """
    names = module["netnames"]
    wanted = set(b for b in names[net]["bits"] if isinstance(b, int))
    refs = []
    for name, info in names.items():
        if name.startswith("$"):
            continue
        bits = info["bits"]
        for i, b in enumerate(bits):
            if b in wanted:
                refs.append(_escaped(name) if len(bits) == 1 else f"{_escaped(name)}[{i + info.get('offset', 0)}]")
    return refs


def _models(netlist: dict, family: str) -> str:
    if family == "ecp5":
        return fabric_models(library_cells(netlist) - _ECP5_OWN) + _SGSR_STUB + models_verilog()
    return ice40_models.models_verilog()


def check(board, platform, build_dir, name: str, expected, *, n_classes: int, max_cycles: int = 20000,
          full_baud: bool = False, n_images: int | None = None, timeout: float | None = 600) -> dict:
    """Simulate ``<build_dir>/<name>.json`` (the placed netlist of ``board``'s build)
    through the ROM images and return ``{"classes", "matches", "cycles", "lines",
    "expected", "ok", "first_wrong"}``, a list entry per image (``cycles``: when its
    class showed; ``lines``: its result line as received, ``None`` when garbled).

    ``expected`` lists the golden model's class of every ROM image, or of the first few
    (only those are stepped through); ``n_images`` is how many the ROM holds (default
    ``len(expected)``) and ``n_classes`` the model's class count: they set the line's
    digits.  ``ok`` is true when every class
    equals its ``expected``, the demo's own golden-match LED was on each time and each
    line reads that class and golden class (:func:`pyhdl.fpga.uart.result_text`);
    ``first_wrong`` is the first image where not (None when ``ok``).  Raises FlowError
    when ``iverilog`` is missing, the netlist has no debounce counter or bit timer to
    force, the simulation fails, or an image's class or line is not out within
    ``max_cycles`` clock cycles of the one before (plus the line's time at the baud
    rate with ``full_baud``).

    ``full_baud``: receive every serial byte at the board's baud rate instead of the
    first only (module doc); about ten seconds per image on the iCEBreaker.
    """
    expected = list(expected)
    if not expected:
        raise ValueError("expected must list the golden class of at least one ROM image")
    n_images = len(expected) if n_images is None else n_images
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < len(expected):
        raise ValueError(f"n_images must be an int >= the {len(expected)} images expected lists, not {n_images!r}")
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise flow.FlowError("the board netlist check needs Icarus Verilog (iverilog, vvp): "
                             "apt-get install -y iverilog")
    build = Path(build_dir).resolve()
    source = build / f"{name}.json"
    netlist = json.loads(source.read_text())
    if name not in netlist["modules"]:
        raise flow.FlowError(f"{source} has no module {name}")
    module = netlist["modules"][name]
    tick = module["netnames"].get(DEBOUNCE_NET)
    if tick is None:
        raise flow.FlowError(f"{source} has no net {DEBOUNCE_NET} (the button's "
                             f"debounce counter) to step through the ROM images with")
    timers = [n for n in module["netnames"] if n == UART_TIMER or n.endswith("." + UART_TIMER)]
    if len(timers) != 1:
        raise flow.FlowError(f"{source} has {len(timers)} nets named *{UART_TIMER} (the serial "
                             f"transmitter's bit timer), not 1: {', '.join(timers) or 'none'}")
    divisor = uart_divisor(platform.default_clk_frequency)
    if full_baud:
        # start, 8 data and stop bits per character of the longest line
        longest = len(result_text(len(expected) - 1, n_classes - 1, n_classes - 1,
                                  n_images=n_images, n_classes=n_classes))
        max_cycles += 10 * longest * divisor
    # a second check of one build (e.g. at full baud) reuses the Verilog of its netlist
    key = hashlib.sha256(source.read_bytes()).hexdigest()
    stamp = build / "check_netlist.sha256"
    if not (build / "check_netlist.v").is_file() or not stamp.is_file() or stamp.read_text() != key:
        simulation_verilog(netlist, build, "check_netlist")
        stamp.write_text(key)
    (build / "check_models.v").write_text(_models(netlist, board.family))
    (build / "check_tb.v").write_text(_testbench(name, pin_levels(board, platform), module["ports"],
                                                 len(expected), len(tick["bits"]),
                                                 [] if full_baud else _bit_references(module, timers[0]),
                                                 divisor, max_cycles))
    flow.run_tool(["iverilog", "-g2012", "-o", "check.vvp", "-s", "board_check", "check_tb.v",
                   "check_netlist.v", "check_models.v"], cwd=build, log=build / "check_compile.log",
                  timeout=timeout)
    log = build / "check.log"
    flow.run_tool(["vvp", "-n", "check.vvp"], cwd=build, log=log, timeout=timeout)
    lines = log.read_text().splitlines()
    shown = [[int(w) for w in line.split()[1:5]] for line in lines if line.startswith("shown ")]
    received = _serial_lines(lines)
    if len(shown) < len(expected) or len(received) < len(expected):
        stop = next((line.split() for line in lines
                     if line.startswith(("timeout ", "debounce "))), None)
        if stop and stop[0] == "debounce":
            raise flow.FlowError(f"the {name} netlist's {DEBOUNCE_NET} did not take the forced value "
                                 f"(cycle {stop[1]}); see {log}")
        what = "class" if len(shown) < len(expected) else "serial line"
        raise flow.FlowError(f"the {name} netlist showed no {what} for ROM image "
                             f"{min(len(shown), len(received))} within {max_cycles} cycles; see {log}")
    classes = [klass for _, _, klass, _ in shown]
    matches = [bool(match) for _, _, _, match in shown]
    want = [result_text(i, k, e, n_images=n_images, n_classes=n_classes)
            for i, (k, e) in enumerate(zip(classes, expected))]
    received = received[:len(expected)]
    wrong = [i for i, (k, e, m, got, line) in enumerate(zip(classes, expected, matches, received, want))
             if k != e or not m or got != line]
    return {"classes": classes, "matches": matches, "cycles": [c for _, c, _, _ in shown],
            "lines": received, "expected": expected, "ok": not wrong,
            "first_wrong": wrong[0] if wrong else None}


def _serial_lines(log_lines) -> list:
    """The testbench's ``uart`` bytes as text lines, each ending in its ``\n``; a line with
    a framing error or a byte that is not text (or not a known level) is ``None``."""
    out, line, bad = [], [], False
    for entry in log_lines:
        if entry.startswith("uart_frame "):
            bad = True
        elif entry.startswith("uart "):
            value = entry.split()[2]
            code = int(value) if value.isdigit() else None
            bad |= code is None or not (32 <= code < 127 or code in (10, 13))
            line.append(chr(code) if code is not None else "?")
            if code == 10:
                out.append(None if bad else "".join(line))
                line, bad = [], False
    return out
