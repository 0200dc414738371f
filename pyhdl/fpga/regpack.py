"""Move flip-flops into the ECP5 block RAMs' and multipliers' own registers.

Yosys maps inferred memories to ``DP16KD`` with ``REGMODE = NOREG`` and
multipliers to ``MULT18X18D`` with every ``REG_*`` off, so the register the
array puts after each RAM read and around each product is an ordinary
flip-flop in the fabric.  The block RAM's clock-to-out (5.8 ns at speed 6) then
needs that flip-flop close by, and a multiplier without registers is 3.9 ns of
a cycle that only starts once its operands have crossed the fabric.

:func:`pack_registers` rewrites the synthesized netlist (Yosys JSON, before
nextpnr) so that the primitive's own register does the job of the flip-flop:

* a ``DP16KD`` read port whose every used data output drives exactly one
  plain flip-flop (below) on the port's clock gets ``REGMODE_<port> = OUTREG``
  and drives the flip-flops' outputs directly; the flip-flops go;
* a ``MULT18X18D`` whose ``A`` and ``B`` inputs all come from plain flip-flops
  on one clock (or are constants) registers them itself (``REG_INPUTA_CLK`` /
  ``REG_INPUTB_CLK = CLK0``) and reads what fed the flip-flops; a flip-flop
  with no other load goes;
* a ``MULT18X18D`` whose every used product bit drives exactly one plain
  flip-flop on that clock registers its output (``REG_OUTPUT_CLK = CLK0``).

"Plain" is a ``TRELLIS_FF`` clocked on the rising edge, always enabled and
never set or reset (``CEMUX = 1``, ``LSR`` tied to 0): the array's data-path
registers are reset-less for this reason.  Each move is a register changing
place with no logic in between and the same clock, enable and (absent) reset,
so the design's cycle behaviour is unchanged: the RTL that the co-simulation
checks stays what runs.  What it relies on is the primitives' documented
register semantics (``DP16KD`` output register enabled by ``OCE``,
``MULT18X18D`` input/output registers on ``CLK0`` / ``CE0`` / ``RST0``); no
simulation model of either ships with Yosys, so that reading is not
simulated here (``docs/fpga.md``).
"""

from __future__ import annotations

import collections

__all__ = ["pack_registers", "is_library", "param_int"]

_MULT = "MULT18X18D"
_BRAM = "DP16KD"
_FF = "TRELLIS_FF"


def param_int(value) -> int:
    """A Yosys JSON integer parameter: an int, or a string of binary digits."""
    return int(value, 2) if isinstance(value, str) else int(value)


def _is_const(bit) -> bool:
    return isinstance(bit, str)


class _Module:
    """Drivers and loads of one module's nets (bit numbers of the Yosys JSON)."""

    def __init__(self, mod: dict):
        self.cells = mod.get("cells", {})
        self.driver = {}
        self.loads = collections.defaultdict(list)
        for port in mod.get("ports", {}).values():
            for bit in port["bits"]:
                if _is_const(bit):
                    continue
                if port["direction"] == "input":
                    self.driver[bit] = ("<port>", None)
                else:
                    self.loads[bit].append(("<port>", None))
        for name, cell in self.cells.items():
            dirs = cell.get("port_directions", {})
            for pin, bits in cell["connections"].items():
                for bit in bits:
                    if _is_const(bit):
                        continue
                    if dirs.get(pin) == "output":
                        self.driver[bit] = (name, pin)
                    else:
                        self.loads[bit].append((name, pin))

    def plain_ff(self, name):
        """The clock net of flip-flop ``name`` if it is plain (see module doc), else None."""
        cell = self.cells.get(name)
        if cell is None or cell["type"] != _FF:
            return None
        p, c = cell["parameters"], cell["connections"]
        if p.get("CEMUX", "").strip() != "1" or p.get("CLKMUX", "CLK") != "CLK":
            return None
        if c.get("LSR", ["0"]) != ["0"]:
            return None
        return c["CLK"][0]

    def remove(self, name):
        cell = self.cells.pop(name)
        for pin, bits in cell["connections"].items():
            for bit in bits:
                if not _is_const(bit) and (name, pin) in self.loads.get(bit, ()):
                    self.loads[bit].remove((name, pin))

    def reconnect(self, cell_name, pin, bit):
        cell = self.cells[cell_name]
        old = cell["connections"][pin][0]
        if not _is_const(old) and (cell_name, pin) in self.loads.get(old, ()):
            self.loads[old].remove((cell_name, pin))
        cell["connections"][pin] = [bit]
        if not _is_const(bit):
            self.loads[bit].append((cell_name, pin))

    def sole_ff_load(self, bit):
        """``(ff name, clock)`` if ``bit``'s only load is a plain flip-flop's ``DI``."""
        loads = self.loads.get(bit, [])
        if len(loads) != 1 or loads[0][1] != "DI":
            return None
        clk = self.plain_ff(loads[0][0])
        return None if clk is None else (loads[0][0], clk)


def _used_outputs(mod: _Module, cell_name: str, pins: list[str]):
    """``(pin, bit)`` for each of ``pins`` of ``cell_name`` that drives a load."""
    for pin in pins:
        bit = mod.cells[cell_name]["connections"].get(pin, ["x"])[0]
        if not _is_const(bit) and mod.loads.get(bit):
            yield pin, bit


def _outputs_registered(mod: _Module, cell_name: str, pins: list[str], clock) -> bool:
    """Whether the used ``pins`` of ``cell_name`` (at least one) each drive only a plain
    flip-flop on ``clock``."""
    loads = [mod.sole_ff_load(bit) for _, bit in _used_outputs(mod, cell_name, pins)]
    return bool(loads) and all(load is not None and load[1] == clock for load in loads)


def _move_output(mod: _Module, cell_name: str, pins: list[str]) -> int:
    """Let ``pins`` drive the nets of the flip-flops they fed; remove those flip-flops."""
    used = list(_used_outputs(mod, cell_name, pins))
    for pin, bit in used:
        ff = mod.loads[bit][0][0]
        q = mod.cells[ff]["connections"]["Q"][0]
        mod.remove(ff)
        mod.cells[cell_name]["connections"][pin] = [q]
        mod.driver[q] = (cell_name, pin)
    return len(used)


def _pack_mult(mod: _Module, name: str, counts: collections.Counter) -> None:
    cell = mod.cells[name]
    conn = cell["connections"]
    operand_ffs, clocks = {}, set()
    for side in "AB":
        for i in range(18):
            bit = conn.get(f"{side}{i}", ["0"])[0]
            if _is_const(bit):
                continue
            src = mod.driver.get(bit)
            clk = mod.plain_ff(src[0]) if src else None
            if clk is None or src[1] != "Q":
                return
            clocks.add(clk)
            operand_ffs[(side, i)] = src[0]
    if len(clocks) != 1:
        return
    clock = clocks.pop()
    product = _outputs_registered(mod, name, [f"P{i}" for i in range(36)], clock)
    for (side, i), ff in operand_ffs.items():
        mod.reconnect(name, f"{side}{i}", mod.cells[ff]["connections"]["DI"][0])
    for ff in set(operand_ffs.values()):
        if not mod.loads.get(mod.cells[ff]["connections"]["Q"][0]):
            mod.remove(ff)
            counts["operand_ffs"] += 1
    params = cell["parameters"]
    params.update({"REG_INPUTA_CLK": "CLK0", "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0",
                   "REG_INPUTB_CLK": "CLK0", "REG_INPUTB_CE": "CE0", "REG_INPUTB_RST": "RST0",
                   "GSR": "DISABLED"})
    conn.update({"CLK0": [clock], "CE0": ["1"], "RST0": ["0"]})
    cell["port_directions"].update({"CLK0": "input", "CE0": "input", "RST0": "input"})
    mod.loads[clock].append((name, "CLK0"))
    counts["mult_inputs"] += 1
    if product:
        counts["product_ffs"] += _move_output(mod, name, [f"P{i}" for i in range(36)])
        params.update({"REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0"})
        counts["mult_outputs"] += 1


def _pack_bram(mod: _Module, name: str, counts: collections.Counter) -> None:
    cell = mod.cells[name]
    conn, params = cell["connections"], cell["parameters"]
    # 36-bit wide (pseudo dual port): all 36 outputs belong to the read port, clocked by CLKB
    pdp = param_int(params.get("DATA_WIDTH_A", 18)) == 36
    groups = [("AB", "B")] if pdp else [("A", "A"), ("B", "B")]
    for sides, clock_side in groups:
        clock = conn.get(f"CLK{clock_side}", ["0"])[0]
        if _is_const(clock):
            continue
        pins = [f"DO{s}{i}" for s in sides for i in range(18)]
        if not _outputs_registered(mod, name, pins, clock):
            continue
        counts["bram_ffs"] += _move_output(mod, name, pins)
        for s in sides:
            params[f"REGMODE_{s}"] = "OUTREG"
            conn[f"OCE{s}"] = ["1"]
        counts["bram_ports"] += 1


def is_library(mod: dict) -> bool:
    """A cell library's (black- or whitebox) module of a Yosys JSON document, not the design's."""
    attrs = mod.get("attributes", {})
    return any(param_int(attrs.get(a, 0)) for a in ("blackbox", "whitebox", "lib_whitebox"))


def pack_registers(netlist: dict) -> dict:
    """Rewrite ``netlist`` (Yosys ``write_json`` document) in place; return what moved.

    The counts: ``bram_ports`` read ports given ``OUTREG`` (``bram_ffs`` flip-flops
    removed), ``mult_inputs`` / ``mult_outputs`` multipliers given input / output
    registers (``operand_ffs`` / ``product_ffs`` flip-flops removed).
    """
    if not isinstance(netlist, dict) or "modules" not in netlist:
        raise TypeError("netlist must be a Yosys JSON document (a dict with 'modules')")
    counts = collections.Counter({k: 0 for k in (
        "bram_ports", "bram_ffs", "mult_inputs", "mult_outputs", "operand_ffs", "product_ffs")})
    for mod in netlist["modules"].values():
        if not mod.get("cells") or is_library(mod):
            continue
        view = _Module(mod)
        for name in [n for n, c in view.cells.items() if c["type"] == _BRAM]:
            _pack_bram(view, name, counts)
        for name in [n for n, c in view.cells.items() if c["type"] == _MULT]:
            _pack_mult(view, name, counts)
    return dict(counts)


def main(argv=None) -> int:
    """``python -m pyhdl.fpga.regpack NETLIST COUNTS``: pack ``NETLIST`` (Yosys JSON) in
    place and write what moved to ``COUNTS`` (JSON).  The ECP5 board builds run it
    between Yosys and nextpnr (:mod:`pyhdl.fpga.boards`)."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m pyhdl.fpga.regpack", description=main.__doc__.split("\n")[0])
    parser.add_argument("netlist", help="Yosys write_json netlist, rewritten in place")
    parser.add_argument("counts", help="where to write the counts of moved registers (JSON)")
    args = parser.parse_args(argv)
    try:
        with open(args.netlist) as f:
            netlist = json.load(f)
    except (OSError, ValueError) as e:
        print(f"regpack: cannot read netlist {args.netlist}: {e}", file=sys.stderr)
        return 1
    counts = pack_registers(netlist)
    with open(args.netlist, "w") as f:
        json.dump(netlist, f)
    with open(args.counts, "w") as f:
        json.dump(counts, f)
    print(f"regpack: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
