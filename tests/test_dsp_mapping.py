"""DSPs on the iCE40: which multiplies get one (pyhdl.fpga.dspplan), and that Yosys's
SB_MAC16 mapping of the array's registered products, and the SB_MAC16s the array
instantiates itself (pyhdl.tech: lane pairs, requant products), compute what the RTL does."""

from __future__ import annotations

import json
import re
import subprocess
import types

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import contract
from pyhdl import tech, verilog
from pyhdl.config import SMALL
from pyhdl.fpga import dspplan, flow, ice40_models, netlist, targets
from pyhdl.requant import RequantUnit
from pyhdl.sizing import ceil_div
from pyhdl.top import NmcArray

LANE = dspplan.Multiply("top.pe0", "$1", 8, 8)
RQ_LOW = dspplan.Multiply("top.pe0.requant0", "$2", 17, 16)
RQ_HIGH = dspplan.Multiply("top.pe0.requant0", "$3", 15, 17)


@pytest.mark.parametrize("mul, dsps", [(LANE, 1), (RQ_LOW, 1), (RQ_HIGH, 1),
                                       (dspplan.Multiply("m", "c", 32, 16), 2),
                                       (dspplan.Multiply("m", "c", 34, 34), 9)])
def test_dsps_a_multiply_needs(mul, dsps):
    # a slice under 2 bits (17 = 16 + 1) goes to logic, as Yosys's mul2dsp does
    assert dspplan.dsps_needed(mul, 16) == dsps


def test_the_small_array_keeps_its_requant_chunks_and_half_its_lanes_on_the_up5k():
    pes = [[dspplan.Multiply(f"top.pe{p}", f"$l{s}", 8, 8) for s in range(4)]
           + [dspplan.Multiply(f"top.pe{p}.requant{p}", "$lo", 17, 16),
              dspplan.Multiply(f"top.pe{p}.requant{p}", "$hi", 15, 17)] for p in range(2)]
    muls = pes[0] + pes[1]
    up5k = targets.ice40()
    soft = dspplan.plan(muls, up5k.dsp_budget, up5k.dsp_bits)
    # 4 requant chunks (~500 LUT4 each in logic) and the first 4 lanes fill the 8 DSPs
    assert soft == pes[1][:4]
    kept = [m for m in muls if m not in soft]
    assert sum(dspplan.dsps_needed(m, up5k.dsp_bits) for m in kept) == up5k.dsp_budget
    assert dspplan.booth_commands(soft) == [*dspplan.PREPARE, "booth " + " ".join(f"top.pe1/$l{s}" for s in range(4))]
    assert dspplan.plan(muls, 100, 16) == [] and dspplan.booth_commands([]) == []


def test_bad_budget():
    with pytest.raises(ValueError, match=r"^DSP budget must be an int >= 0, not -1$"):
        dspplan.plan([LANE], -1, 16)
    assert targets.ecp5().dsp_budget is None


class _TwoLanes(wiring.Component):
    """A PE's first adder-tree level for two lanes: weights and activations registered
    as one word each, a registered product per lane slice, the two summed in a register;
    with ``lane_dsp="ice40_pairs"`` the same three stages in one ``SB_MAC16``."""

    def __init__(self, lane_dsp="inferred"):
        self._lane_dsp = lane_dsp
        super().__init__({"w": In(16), "a": In(16), "s": Out(signed(17))})

    def elaborate(self, platform):
        m = Module()

        def lane(word, k):
            return word[8 * k:8 * k + 8].as_signed()

        if self._lane_dsp == "ice40_pairs":
            m.d.comb += self.s.eq(tech.ice40_pair_sum(m, lane(self.w, 0), lane(self.a, 0), lane(self.w, 1),
                                                      lane(self.a, 1), name="sum0"))
            return m
        w, a = Signal(16, name="w1"), Signal(16, name="a1")
        m.d.sync += [w.eq(self.w), a.eq(self.a)]
        prods = [tech.registered_product(m, lane(w, k), lane(a, k), name=f"prod{k}") for k in range(2)]
        total = Signal(signed(17), name="sum0", reset_less=True)
        m.d.sync += total.eq(prods[0] + prods[1])
        m.d.comb += self.s.eq(total)
        return m


#: the contract's extremes first (activations -128..127, weights -127..127: the lane
#: pairs' 16-bit sum reaches +-32512 there), then random values in those ranges
TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  reg signed [7:0] w0 = 0, w1 = 0, a0 = 0, a1 = 0;
  wire signed [16:0] s;
  reg signed [16:0] want [0:7];
  two_lanes dut(.clk(clk), .rst(rst), .w({w1, w0}), .a({a1, a0}), .s(s));
  always #5 clk = ~clk;
  integer i, bad = 0;
  initial begin
    for (i = 0; i < 300; i = i + 1) begin
      @(negedge clk);
      if (i >= 4 && s !== want[(i - 3) % 8]) begin
        if (bad == 0) $display("first mismatch: vector %0d s=%0d want %0d", i - 3, s, want[(i - 3) % 8]);
        bad = bad + 1;
      end
      if (i < 16) begin
        a0 = i[0] ? 127 : -128; a1 = i[1] ? 127 : -128; w0 = i[2] ? 127 : -127; w1 = i[3] ? 127 : -127;
      end else begin
        w0 = $random % 128; w1 = $random % 128; a0 = $random; a1 = $random;
      end
      want[i % 8] = w0 * a0 + w1 * a1;
    end
    $display("mismatches %0d of 296", bad);
    $finish;
  end
endmodule
"""


@pytest.mark.slow
@pytest.mark.parametrize("lane_dsp, dsps", [("inferred", 2), ("ice40_pairs", 1)])
def test_ice40_dsp_mapping_of_a_two_product_sum_computes_it(tmp_path, iverilog, lane_dsp, dsps):
    """Inferred: Yosys 0.70's ``ice40_dsp`` gave one register to two SB_MAC16s here and
    left the sum reading an undriven net (one lane's product came out);
    ``tech.registered_product`` keeps the product's wire so that it does not
    (``pyhdl/tech.py``).  Pairs: one SB_MAC16 in its 8x8 mode, through the flow's
    black box and rename, with the same three cycles."""
    text = verilog.convert(_TwoLanes(lane_dsp), name="two_lanes")
    if lane_dsp == "ice40_pairs":
        text += tech.ice40_dsp_stub()
    (tmp_path / "two.v").write_text(text)
    flow.run_yosys("\n".join(["read_verilog two.v", f"{targets.ice40().synth} -top two_lanes",
                              *targets.ice40().after_synth, "tee -q -o stat.txt stat", "write_json synth.json",
                              ""]), cwd=tmp_path, name="synth")
    assert re.search(rf"\b{dsps}\s+SB_MAC16\b", (tmp_path / "stat.txt").read_text())
    netlist.simulation_verilog(json.loads((tmp_path / "synth.json").read_text()), tmp_path, "net")
    (tmp_path / "tb.v").write_text(TESTBENCH)
    (tmp_path / "models.v").write_text(ice40_models.models_verilog())
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "-s", "tb", "tb.v", "net.v", "models.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert "mismatches 0 of 296" in out, out


def test_ice40_model_defaults_become_netlist_constants():
    text = ("module SB_X (\n input CLOCK_ENABLE `ICE40_DEFAULT_ASSIGNMENT_1,\n"
            " input  [15:0] MASK `ICE40_DEFAULT_ASSIGNMENT_V(16'h 0005),\n input RE `ICE40_DEFAULT_ASSIGNMENT_0,\n"
            " input D\n);\nendmodule\n")
    defaults = ice40_models.input_defaults(text)
    assert defaults == {"SB_X": {"CLOCK_ENABLE": (1, 1), "MASK": (16, 5), "RE": (1, 0)}}
    assert "`ICE40" not in ice40_models.models_verilog(text).split(");")[0]
    doc = {"modules": {"top": {"cells": {"x": {"type": "SB_X", "connections": {"RE": [7], "D": [8]}}}}}}
    assert ice40_models.connect_defaults(doc, defaults) == 2
    conn = doc["modules"]["top"]["cells"]["x"]["connections"]
    assert conn["CLOCK_ENABLE"] == ["1"] and conn["MASK"] == ["1", "0", "1"] + ["0"] * 13 and conn["RE"] == [7]
    # the real models: the RAM's and IO's defaults are found
    real = ice40_models.input_defaults()
    assert real["SB_RAM40_4K"]["RCLKE"] == (1, 1) and real["SB_RAM40_4K"]["MASK"] == (16, 0)


def _module_interface(text: str, name: str):
    """Port names and parameter names of module ``name`` in Verilog ``text``."""
    body = re.search(rf"module {name}\s*\((.*?)\);(.*?)endmodule", text, re.S)
    ports = set(re.findall(r"(?:input|output)\s*(?:\[[^\]]*\])?\s*([\w, ]+?)(?=,\s*(?:input|output)|\s*$)",
                           body.group(1).replace("\n", " ")))
    names = {p.strip() for group in ports for p in group.split(",")}
    return names, {n: w for w, n in re.findall(r"parameter\s*(\[[^\]]*\])?\s*(\w+)\s*=", body.group(2))}


def test_the_dsp_stub_has_the_ports_and_parameters_of_yosys_sb_mac16():
    # the flow renames the stub's cells to SB_MAC16 after synthesis: the two must agree
    stub_ports, stub_params = _module_interface(tech.ice40_dsp_stub(), tech.ICE40_DSP_CELL)
    real_ports, real_params = _module_interface(ice40_models.models_verilog(), "SB_MAC16")
    assert stub_ports == real_ports and len(real_ports) == 27
    assert stub_params == real_params and len(real_params) == 20
    assert targets.ice40().after_synth == (f"chtype -set SB_MAC16 t:{tech.ICE40_DSP_CELL}",)


def test_instantiated_dsps_come_off_the_budget(tmp_path):
    doc = {"modules": {"top": {"cells": {
        "a": {"type": tech.ICE40_DSP_CELL}, "b": {"type": "SB_MAC16"}, "m": {"type": "$mul"}}}}}
    assert dspplan.instantiated(doc, ("SB_MAC16", tech.ICE40_DSP_CELL)) == 2
    assert dspplan.instantiated(doc, ("MULT18X18D",)) == 0
    # a design that instantiates more than the device has fails before synthesis
    cells = "\n".join(f"  {tech.ICE40_DSP_CELL} u{i} (.CLK(clk));" for i in range(9))
    (tmp_path / "many.v").write_text(f"module many(input clk);\n{cells}\nendmodule\n" + tech.ice40_dsp_stub())
    with pytest.raises(flow.FlowError, match=r"^the design instantiates 9 SB_MAC16, iCE40UP5K-SG48 has 8$"):
        flow.soft_multiplies(targets.ice40(), tmp_path, ["read_verilog many.v", "hierarchy -top many"])


def test_lane_pairs_reject_configs_they_cannot_build():
    with pytest.raises(ValueError, match=r"^lane_dsp='ice40_pairs' pairs the lanes: simd must be even, not 1$"):
        NmcArray(SMALL.replace(simd=1), lane_dsp="ice40_pairs")
    with pytest.raises(ValueError, match=r"^lane_dsp must be one of inferred, ice40_pairs, not 'dsp48'$"):
        NmcArray(SMALL, lane_dsp="dsp48")
    # ArrayConfig stops at 8 bits today; the pairs would not survive a wider contract
    wide = types.SimpleNamespace(w_bits=12, a_bits=8, simd=4)
    with pytest.raises(ValueError, match=r"^lane_dsp='ice40_pairs' needs w_bits and a_bits <= 8 \(an SB_MAC16 "
                                         r"half is 8x8\), not w_bits=12, a_bits=8$"):
        tech.check_lane_dsp("ice40_pairs", wide)


def test_ice40_requant_products_reject_what_they_cannot_build():
    with pytest.raises(ValueError, match=r"^requant_dsp must be one of inferred, ice40, not 'mult18'$"):
        NmcArray(SMALL, requant_dsp="mult18")
    with pytest.raises(ValueError, match=r"^requant_dsp='ice40' needs m_bits <= 16 \(an SB_MAC16 operand\), "
                                         r"not 20$"):
        NmcArray(SMALL.replace(m_bits=20), requant_dsp="ice40")
    with pytest.raises(ValueError, match=r"^requant_dsp must be one of inferred, ice40, not None$"):
        RequantUnit(acc_bits=24, m_bits=16, a_bits=8, dsp=None)
    assert [tech.REQUANT_CHUNK_BITS[d] for d in tech.REQUANT_DSP] == [17, 16]
    assert not tech.instantiates_primitives(lane_dsp="inferred", requant_dsp="inferred")
    assert tech.instantiates_primitives(lane_dsp="inferred", requant_dsp="ice40")
    m = Module()
    m._MustUse__silence = True  # only the argument checks run
    with pytest.raises(ValueError, match=r"^ice40_product p: needs a of at most 16 bits and b unsigned of at most "
                                         r"16, not signed\(17\) and unsigned\(16\)$"):
        tech.ice40_product(m, Signal(signed(17)), Signal(16), name="p")
    with pytest.raises(ValueError, match=r"^ice40_product p: needs a of at most 16 bits and b unsigned of at most "
                                         r"16, not unsigned\(8\) and signed\(16\)$"):
        tech.ice40_product(m, Signal(8), Signal(signed(16)), name="p")


REQUANT_TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0, valid = 0, relu = 0, req = 0;
  reg signed [{A1}:0] acc = 0;
  reg [{M1}:0] m = 0;
  reg [{S1}:0] s = 0;
  wire signed [{A1}:0] q;
  wire q_valid;
  reg [{W1}:0] cases [0:{N1}];
  reg signed [{A1}:0] want [0:{N1}];
  requant dut(.clk(clk), .rst(rst), .i_valid(valid), .i_acc(acc), .i_m(m), .i_s(s), .i_relu(relu),
              .i_requantize(req), .o_valid(q_valid), .o_data(q));
  always #5 clk = ~clk;
  integer i, got = 0, bad = 0;
  initial begin
    $readmemh("cases.hex", cases);
    $readmemh("want.hex", want);
    for (i = 0; i < {N} + {STAGES} + 2; i = i + 1) begin
      @(negedge clk);
      if (q_valid) begin
        if (q !== want[got]) begin
          if (bad == 0) $display("first mismatch: case %0d q=%0d want %0d", got, q, want[got]);
          bad = bad + 1;
        end
        got = got + 1;
      end
      valid = i < {N};
      if (i < {N}) {{acc, m, s, relu, req}} = cases[i];
    end
    $display("outputs %0d mismatches %0d", got, bad);
    $finish;
  end
endmodule
"""


@pytest.mark.slow
@pytest.mark.parametrize("acc_bits", [24, 33])
def test_ice40_requant_products_compute_the_contract(tmp_path, iverilog, acc_bits):
    """``requant_dsp="ice40"``: the requant unit with an SB_MAC16 per 16-bit chunk
    (``tech.ice40_product``; 24 bits: a signed 8-bit top chunk, the small config's; 33:
    a 1-bit one), synthesized as the UP5K flow does and run on Yosys's SB_MAC16 model
    against the contract: every shift, m in {0, 1, max}, the accumulator's extremes,
    the rounding and saturation edges, one value per cycle."""
    from test_hw_requant import _expected, _property_cases

    m_bits, a_bits = 16, 8
    unit = RequantUnit(acc_bits=acc_bits, m_bits=m_bits, a_bits=a_bits, dsp="ice40")
    text = verilog.convert(unit, name="requant") + tech.ice40_dsp_stub()
    (tmp_path / "requant.v").write_text(text)
    flow.run_yosys("\n".join(["read_verilog requant.v", f"{targets.ice40().synth} -top requant",
                              *targets.ice40().after_synth, "tee -q -o stat.txt stat", "write_json synth.json",
                              ""]), cwd=tmp_path, name="synth")
    chunks = ceil_div(acc_bits, tech.ICE40_MUL_BITS)
    assert re.search(rf"\b{chunks}\s+SB_MAC16\b", (tmp_path / "stat.txt").read_text())
    netlist.simulation_verilog(json.loads((tmp_path / "synth.json").read_text()), tmp_path, "net")
    cases = [(acc, m if req else 1, s, relu, req)
             for acc, m, s, relu, req in _property_cases(acc_bits, m_bits, a_bits, seed=acc_bits)]
    fields = ((acc_bits, 0), (m_bits, 1), (contract.SHIFT_BITS, 2), (1, 3), (1, 4))
    word_bits = sum(w for w, _ in fields)
    with open(tmp_path / "cases.hex", "w") as f:
        for case in cases:
            word = 0
            for width, k in fields:
                word = (word << width) | (case[k] % 2**width)
            f.write(f"{word:x}\n")
    (tmp_path / "want.hex").write_text("".join(f"{_expected(*c, a_bits) % 2**acc_bits:x}\n" for c in cases))
    (tmp_path / "tb.v").write_text(REQUANT_TESTBENCH.format(
        A1=acc_bits - 1, M1=m_bits - 1, S1=contract.SHIFT_BITS - 1, W1=word_bits - 1, N=len(cases),
        N1=len(cases) - 1, STAGES=unit.stages))
    (tmp_path / "models.v").write_text(ice40_models.models_verilog())
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "-s", "tb", "tb.v", "net.v", "models.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert f"outputs {len(cases)} mismatches 0" in out, out
