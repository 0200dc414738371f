"""pyhdl.fpga.regpack: which flip-flops move into DP16KD / MULT18X18D registers, and which stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyhdl.fpga import flow, regpack, report, targets

CLK, CLK2 = 2, 3


class _Netlist:
    """A one-module Yosys JSON document built cell by cell; nets are ints from 10 up."""

    def __init__(self):
        self.cells, self.next = {}, 10

    def net(self):
        self.next += 1
        return self.next

    def ff(self, name, d, *, clk=CLK, lsr="0", cemux="1 "):
        q = self.net()
        conn = {"CLK": [clk], "DI": [d], "LSR": [lsr], "Q": [q]}
        dirs = {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"}
        if cemux.strip() != "1":
            conn["CE"], dirs["CE"] = [self.net()], "input"
        self.cells[name] = {"type": "TRELLIS_FF", "connections": conn, "port_directions": dirs,
                            "parameters": {"CEMUX": cemux, "CLKMUX": "CLK", "GSR": "DISABLED",
                                           "LSRMUX": "LSR", "REGSET": "RESET"}}
        return q

    def lut(self, name, *inputs):
        z = self.net()
        conn = {pin: [bit] for pin, bit in zip("ABCD", inputs)}
        conn["Z"] = [z]
        self.cells[name] = {"type": "LUT4", "connections": conn, "parameters": {"INIT": "1" * 16},
                            "port_directions": {**{p: "input" for p in "ABCD"[:len(inputs)]}, "Z": "output"}}
        return z

    def bram(self, name, width=36):
        outs = {f"DO{s}{i}": [self.net()] for s in "AB" for i in range(18)}
        conn = {**outs, "CLKA": [CLK], "CLKB": [CLK], "OCEA": ["0"], "OCEB": ["1"]}
        self.cells[name] = {"type": "DP16KD", "connections": conn,
                            "port_directions": {p: "output" if p.startswith("DO") else "input" for p in conn},
                            "parameters": {"DATA_WIDTH_A": f"{width:032b}", "DATA_WIDTH_B": f"{width:032b}",
                                           "REGMODE_A": "NOREG", "REGMODE_B": "NOREG"}}
        return [outs[f"DO{s}{i}"][0] for s in "AB" for i in range(18)]

    def mult(self, name, a, b):
        p = {f"P{i}": [self.net()] for i in range(36)}
        conn = {**{f"A{i}": [a[i]] for i in range(18)}, **{f"B{i}": [b[i]] for i in range(18)}, **p}
        self.cells[name] = {"type": "MULT18X18D", "connections": conn, "parameters": {},
                            "port_directions": {k: "output" if k.startswith("P") else "input" for k in conn}}
        return [p[f"P{i}"][0] for i in range(36)]

    def doc(self):
        return {"modules": {"top": {"ports": {}, "cells": self.cells, "netnames": {}}}}


def _mult_design(*, lsr="0", other_load=False, clk_b=CLK):
    n = _Netlist()
    a = [n.ff(f"a{i}", n.net()) for i in range(8)] + ["0"] * 10
    b = [n.ff(f"b{i}", n.net(), clk=clk_b, lsr=lsr if i == 0 else "0") for i in range(8)]
    b += [b[7]] * 10  # sign extension: one flip-flop drives eleven inputs
    p = n.mult("mul", a, b)
    for i in range(16):
        n.ff(f"p{i}", p[i])
    if other_load:
        n.lut("uses_a0", a[0])
    return n


def test_multiplier_takes_its_operand_and_product_registers():
    n = _mult_design()
    d_a0 = n.cells["a0"]["connections"]["DI"][0]
    q_p3 = n.cells["p3"]["connections"]["Q"][0]
    doc = n.doc()
    counts = regpack.pack_registers(doc)
    assert counts == {"bram_ports": 0, "bram_ffs": 0, "mult_inputs": 1, "mult_outputs": 1,
                      "operand_ffs": 16, "product_ffs": 16}
    cells = doc["modules"]["top"]["cells"]
    mul = cells["mul"]
    assert [c for c in cells if cells[c]["type"] == "TRELLIS_FF"] == []
    assert mul["parameters"]["REG_INPUTA_CLK"] == mul["parameters"]["REG_INPUTB_CLK"] == "CLK0"
    assert mul["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert mul["connections"]["CLK0"] == [CLK] and mul["connections"]["CE0"] == ["1"]
    assert mul["connections"]["RST0"] == ["0"]
    # the multiplier reads what fed the flip-flops and drives what they drove
    assert mul["connections"]["A0"] == [d_a0] and mul["connections"]["A9"] == ["0"]
    assert mul["connections"]["P3"] == [q_p3]
    assert len({mul["connections"][f"B{i}"][0] for i in range(7, 18)}) == 1


def test_operand_register_with_another_load_stays_for_it():
    n = _mult_design(other_load=True)
    doc = n.doc()
    counts = regpack.pack_registers(doc)
    assert counts["mult_inputs"] == 1 and counts["operand_ffs"] == 15
    assert "a0" in doc["modules"]["top"]["cells"]


@pytest.mark.parametrize("kwargs", [{"lsr": 99}, {"clk_b": CLK2}])
def test_reset_or_second_clock_keeps_the_multiplier_as_it_is(kwargs):
    n = _mult_design(**kwargs)
    before = json.dumps(n.doc(), sort_keys=True)
    doc = n.doc()
    counts = regpack.pack_registers(doc)
    assert counts["mult_inputs"] == counts["mult_outputs"] == 0
    assert json.dumps(doc, sort_keys=True) == before


def test_block_ram_output_register():
    n = _Netlist()
    dout = n.bram("ram")
    for i, bit in enumerate(dout):
        n.ff(f"r{i}", bit)
    doc = n.doc()
    assert regpack.pack_registers(doc)["bram_ffs"] == 36
    ram = doc["modules"]["top"]["cells"]["ram"]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]


@pytest.mark.parametrize("spoil", ["logic", "enable", "fanout"])
def test_block_ram_output_with_logic_enable_or_fanout_stays(spoil):
    n = _Netlist()
    dout = n.bram("ram")
    for i, bit in enumerate(dout):
        if i == 5 and spoil == "logic":
            bit = n.lut("mux", bit, n.net())
        n.ff(f"r{i}", bit, cemux="CE" if i == 5 and spoil == "enable" else "1 ")
    if spoil == "fanout":
        n.lut("also", dout[5])
    doc = n.doc()
    assert regpack.pack_registers(doc)["bram_ports"] == 0
    assert doc["modules"]["top"]["cells"]["ram"]["parameters"]["REGMODE_B"] == "NOREG"


def test_not_a_netlist():
    with pytest.raises(TypeError, match=r"^netlist must be a Yosys JSON document \(a dict with 'modules'\)$"):
        regpack.pack_registers([])


# A weight memory read into a register, then into a registered multiply: the ECP5 flow
# moves the read register into the DP16KD and the multiply's registers into the DSP.
LANE = """
module lane(input clk, input rst, input we, input [8:0] waddr, input [15:0] wdata,
            input [8:0] raddr, input signed [7:0] act, output reg signed [23:0] acc);
  (* no_rw_check *) reg [15:0] mem [0:511];
  reg [15:0] word, word2;
  reg signed [7:0] w, a;
  reg signed [15:0] p;
  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    word <= mem[raddr];
    word2 <= word;
    w <= word2[7:0] ^ word2[15:8];
    a <= act;
    p <= w * a;
    if (rst) acc <= 0; else acc <= acc + p;
  end
endmodule
"""


@pytest.mark.slow
def test_ecp5_flow_packs_a_mac_lane(tmp_path):
    source = tmp_path / "lane.v"
    source.write_text(LANE)
    target = targets.ecp5()
    raw = flow.implement(source, "lane", target, tmp_path / "build")
    assert raw["packed"] == {"bram_ports": 1, "bram_ffs": 16, "mult_inputs": 1, "mult_outputs": 1,
                             "operand_ffs": 16, "product_ffs": 16}
    r = report.summarize(raw, target, pe=1, simd=1)
    assert r["packed"] == raw["packed"]
    cells = json.loads((tmp_path / "build" / "netlist.json").read_text())["modules"]["lane"]["cells"]
    ram = next(c for c in cells.values() if c["type"] == "DP16KD")
    mul = next(c for c in cells.values() if c["type"] == "MULT18X18D")
    assert "OUTREG" in (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"])
    assert mul["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    # nextpnr times the packed cells: no path starts at a block RAM's unregistered output
    assert r["critical_path"]["steps"][0][1] != next(n for n, c in cells.items() if c["type"] == "DP16KD")
    assert r["fmax_mhz"] > 0


def test_netlist_cosimulation_bad_input_is_one_line(capsys):
    from pyhdl.fpga import netlist
    with pytest.raises(ValueError, match=r"^config must be one of small, default, not 'huge'$"):
        netlist.cosimulate("huge")
    assert netlist._main(["--vectors", "0"]) == 1
    assert capsys.readouterr().out == "netlist co-simulation: vectors must be a positive int, not 0\n"


def test_command_line_packs_a_netlist_file_in_place(tmp_path, capsys):
    netlist, counts = tmp_path / "n.json", tmp_path / "counts.json"
    netlist.write_text(json.dumps(_mult_design().doc()))
    assert regpack.main([str(netlist), str(counts)]) == 0
    moved = json.loads(counts.read_text())
    assert moved["mult_inputs"] == moved["mult_outputs"] == 1
    assert capsys.readouterr().out == f"regpack: {moved}\n"
    packed = json.loads(netlist.read_text())["modules"]["top"]["cells"]
    assert packed["mul"]["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert not any(name.startswith("p") and c["type"] == "TRELLIS_FF" for name, c in packed.items())


def test_command_line_unreadable_netlist_is_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    assert regpack.main([str(missing), str(tmp_path / "c.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"regpack: cannot read netlist {missing}: ") and err.count("\n") == 1
