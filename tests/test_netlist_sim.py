"""The flow's post-synthesis netlists run bit for bit; the small config fits the UP5K.

``pyhdl.fpga.netlist.flow_netlist`` gives the netlist nextpnr places (Yosys's
``synth_*`` with the flow's script, on ECP5 + ``pyhdl.fpga.regpack``) as Verilog with
simulation models: Yosys's for the fabric cells, this project's for the two ECP5
primitives Yosys ships none of (``pyhdl.fpga.ecp5_models``).  The small array runs
the co-simulation on it with every output compared; the multiplier model is checked
against Yosys's own reading of mixed-signedness products on random operands.  Icarus
(4-state): a read meeting a write in a collision-free memory would come out as X and
fail.  The UP5K synthesis of ``nmc synth`` is done once, its netlist simulated and
(``extended``) placed.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from pyhdl import tech
from pyhdl.sizing import ceil_div
from pyhdl.config import SMALL
from pyhdl.fpga import netlist, synth, targets
from testbench.runner import Simulation
from testbench.scenarios import add_resets, corner_job, random_job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("iverilog")]

ROOT = Path(__file__).resolve().parents[1]


# every testbench below counts ``checked`` and ``bad`` and ends the same way
_TB_END = """    $display("checked %0d mismatches %0d", checked, bad);
    $finish;
  end
endmodule
"""


def _simulate_netlist(tmp_path, nl: dict, top: str, tb: str, *rtl) -> str:
    """Run testbench ``tb`` on ``nl``'s netlist of ``top``, renamed ``<top>_net`` so that the
    testbench may instantiate the RTL (``rtl`` files) beside it; return vvp's output."""
    renamed = tmp_path / f"{top}_net.v"
    renamed.write_text(nl["sources"][0].read_text().replace(f"module {top}(", f"module {top}_net("))
    (tmp_path / "tb.v").write_text(tb)
    subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "sim"), str(tmp_path / "tb.v"), *map(str, rtl),
                    str(renamed), *map(str, nl["sources"][1:])], check=True)
    return subprocess.run(["vvp", "-n", str(tmp_path / "sim")], capture_output=True, text=True,
                          check=True, cwd=tmp_path).stdout


# registered operands and products of every signedness mix the array has (requant:
# unsigned x unsigned, signed x zero-extended unsigned; MAC lanes: signed 8 x 8)
PRODUCTS = """
module products(input clk, input signed [14:0] s15, input [15:0] u16, input [16:0] u17,
                input signed [7:0] s8a, input signed [7:0] s8b,
                output reg signed [31:0] p1, output reg [32:0] p2, output reg signed [15:0] p3);
  reg signed [14:0] s15_r; reg [15:0] u16_r; reg [16:0] u17_r; reg signed [7:0] s8a_r, s8b_r;
  always @(posedge clk) begin
    s15_r <= s15; u16_r <= u16; u17_r <= u17; s8a_r <= s8a; s8b_r <= s8b;
    p1 <= s15_r * $signed({1'b0, u16_r});
    p2 <= u17_r * u16_r;
    p3 <= s8a_r * s8b_r;
  end
endmodule
"""

PRODUCTS_TB = """
module tb;
  reg clk = 0; reg signed [14:0] s15; reg [15:0] u16; reg [16:0] u17; reg signed [7:0] s8a, s8b;
  wire signed [31:0] p1a, p1b; wire [32:0] p2a, p2b; wire signed [15:0] p3a, p3b;
  products gold(.clk(clk), .s15(s15), .u16(u16), .u17(u17), .s8a(s8a), .s8b(s8b), .p1(p1a), .p2(p2a), .p3(p3a));
  products_net dut(.clk(clk), .s15(s15), .u16(u16), .u17(u17), .s8a(s8a), .s8b(s8b), .p1(p1b), .p2(p2b), .p3(p3b));
  integer i, bad = 0, checked = 0;
  initial begin
    for (i = 0; i < 2000; i = i + 1) begin
      {s15, u16, u17, s8a, s8b} = {$urandom, $urandom};
      #5 clk = 1; #5 clk = 0;
      if (i > 4) begin
        checked = checked + 1;
        if (p1a !== p1b || p2a !== p2b || p3a !== p3b) begin
          bad = bad + 1;
          if (bad < 4) $display("cycle %0d: %h %h %h != %h %h %h", i, p1a, p2a, p3a, p1b, p2b, p3b);
        end
      end
    end
""" + _TB_END


def test_multiplier_model_matches_yosys_reading_of_mixed_signs(tmp_path):
    (tmp_path / "products.v").write_text(PRODUCTS)
    nl = netlist.ecp5_netlist(tmp_path / "products.v", "products", tmp_path / "nl")
    assert nl["packed"]["mult_inputs"] == nl["packed"]["mult_outputs"] == 3
    out = _simulate_netlist(tmp_path, nl, "products", PRODUCTS_TB, tmp_path / "products.v")
    assert "checked 1995 mismatches 0" in out, out


def _rom_words(n=256, bits=18, seed=5):
    import random
    rng = random.Random(seed)
    return [rng.randrange(2**bits) for _ in range(n)]


# a read-only table as a board build bakes it in (requant m | s at 8x8: 256 x 22 bits,
# the top bits of s 0 in every word), its read registered as the array registers it:
# Yosys drops the constant bits and reads one 18-bit port of a DP16KD whose write mode
# is READBEFOREWRITE (the ULX3S netlist check stopped on that once)
def _rom_verilog(words):
    init = "\n".join(f"    mem[{i}] = 22'h{w:06x};" for i, w in enumerate(words))
    return f"""module rom(input clk, input [7:0] addr, output reg [21:0] q);
  reg [21:0] mem [0:255];
  initial begin
{init}
  end
  reg [21:0] rd;
  always @(posedge clk) begin
    rd <= mem[addr];
    q <= rd;
  end
endmodule
"""


ROM_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0;
  reg [7:0] addr = 0;
  wire [21:0] q;
  rom_net dut(.clk(clk), .addr(addr), .q(q));
  reg [21:0] want [0:255];
  integer i, bad = 0, checked = 0;
  initial begin
    $readmemh("words.hex", want);
    // after the edge that presents address i, q holds the word of address i - 1
    for (i = 0; i < 256 + 1; i = i + 1) begin
      addr = i;
      #1 clk = 1; #1 clk = 0;
      if (i >= 1) begin
        checked = checked + 1;
        if (q !== want[i - 1]) begin
          if (bad == 0) $display("first mismatch at address %0d: %h, expected %h", i - 1, q, want[i - 1]);
          bad = bad + 1;
        end
      end
    end
""" + _TB_END


def test_read_only_block_ram_reads_its_init(tmp_path):
    words = _rom_words()
    (tmp_path / "rom.v").write_text(_rom_verilog(words))
    (tmp_path / "words.hex").write_text("\n".join(f"{w:06x}" for w in words) + "\n")
    nl = netlist.ecp5_netlist(tmp_path / "rom.v", "rom", tmp_path / "nl")
    text = nl["sources"][0].read_text()
    assert "READBEFOREWRITE" in text and text.count("DP16KD ") == 1
    out = _simulate_netlist(tmp_path, nl, "rom", ROM_TB)
    assert "checked 256 mismatches 0" in out, out


@pytest.mark.slow(seconds=70)
def test_small_array_packed_netlist_is_bit_exact(tmp_path):
    nl = netlist.ecp5_netlist(ROOT / "hdl" / f"nmc_{SMALL.name}.v", f"nmc_{SMALL.name}", tmp_path / "nl")
    # every block-RAM read port and every multiplier took its registers
    assert nl["packed"]["bram_ports"] == 10 and nl["packed"]["bram_ffs"] > 0
    assert nl["packed"]["mult_inputs"] == nl["packed"]["mult_outputs"] == 12
    _runs_bit_exact(nl, "ecp5_netlist", seed=21)


def _runs_bit_exact(nl: dict, name: str, *, seed: int) -> None:
    """Random models (two vectors each, one per context, under three traffic kinds),
    every corner model under random stalls and a mid-inference reset on netlist ``nl``:
    every output compared.  A gate-level netlist runs ~20x slower than the RTL in
    Icarus, so each corner runs once, not back to back and alone as well (the RTL
    co-simulations run those)."""
    nl["name"] = name
    job = random_job(SMALL, 3, seed=seed, vectors=2, max_width=32, isolated=False)
    corner_job(SMALL, seed=seed + 1, runs=("random",), job=job)
    add_resets(job, 1, seed=seed + 2)
    res = Simulation(SMALL, simulator="icarus", netlist=nl).run(job, name="pytest")
    assert res["failures"] == [], res["failures"][0]
    checked = sum(len(sc.inputs) * job.models[sc.model].image.out_features for sc in job.scenarios)
    assert res["outputs_checked"] == checked


@pytest.fixture(scope="module")
def up5k_synthesis():
    """``nmc synth --target ice40``'s synthesis of the small config, done once for the
    tests below that need it (:class:`pyhdl.fpga.synth.Netlists`)."""
    return synth.Netlists()


@pytest.mark.slow(seconds=70)
def test_small_array_ice40_netlist_is_bit_exact(tmp_path, up5k_synthesis):
    """The netlist that ``nmc synth --target ice40`` places (two lanes and their sum per
    SB_MAC16 in its 8x8 mode, ``tech.ice40_pair_sum``; the requant chunks on the other
    4 SB_MAC16 with their operand and product registers inside, ``tech.ice40_product``),
    harness removed, with Yosys's iCE40 models: every output of the random, corner and
    reset job compared."""
    target = targets.ice40()
    source = synth.design_verilog(SMALL, tmp_path, lane_dsp=target.lane_dsp, requant_dsp=target.requant_dsp)
    build = up5k_synthesis.directory(source, synth.top_name(SMALL), target, tmp_path / target.name)
    nl = netlist.flow_netlist(build, target)
    assert nl["soft_multiplies"] == 0 and nl["top"] == synth.top_name(SMALL)
    text = nl["sources"][0].read_text()
    assert len(re.findall(r"^\s*SB_MAC16 ", text, re.M)) == 8
    assert len(re.findall(r"\.MODE_8x8\(1'h1\)", text)) == SMALL.pe * SMALL.simd // 2
    chunks = ceil_div(SMALL.acc_bits, tech.ICE40_MUL_BITS)
    assert len(re.findall(r"\.PIPELINE_16x16_MULT_REG2\(1'h1\)", text)) == SMALL.pe * chunks
    _runs_bit_exact(nl, "ice40_pairs_netlist", seed=31)


@pytest.mark.extended
@pytest.mark.slow(seconds=120)
def test_small_config_fits_the_up5k_in_the_harness(tmp_path, up5k_synthesis):
    """The small array, its banks in block RAM, its lanes two per SB_MAC16 and the requant
    chunks on the other four (``tech.ice40_product``), placed and routed on the UP5K with the measurement harness
    (nextpnr would stop with DoesNotFit; 84 % of the logic cells are used).  Extended:
    ~90 s of nextpnr; the default suite places the small array in the iCEBreaker
    bitstream (``tests/test_board.py``) and this flow on one MAC lane
    (``tests/test_synth.py``)."""
    target = targets.ice40()
    rep = synth.run(SMALL, target, tmp_path, netlists=up5k_synthesis)
    build = Path(rep["synthesis"])
    assert rep["mapping_problems"] == []
    assert rep["design"]["dsp"] == target.dsp_budget
    # the pairs' black boxes came through synthesis with their 8x8 mode and became SB_MAC16
    netlist_cells = [c for mod in json.loads((build / "netlist.json").read_text())["modules"].values()
                     for c in mod["cells"].values()]
    assert not [c for c in netlist_cells if c["type"] == tech.ICE40_DSP_CELL]
    # the pairs' in their 8x8 mode, the requant chunks' with the product registered inside
    # (a parameter the instance leaves out takes the model's default, 0)
    dsps = [{k: int(v, 2) for k, v in c["parameters"].items()} for c in netlist_cells if c["type"] == "SB_MAC16"]
    assert len([d for d in dsps if d.get("MODE_8x8")]) == SMALL.pe * SMALL.simd // 2
    assert len([d for d in dsps if d.get("PIPELINE_16x16_MULT_REG2")]) == SMALL.pe * ceil_div(
        SMALL.acc_bits, tech.ICE40_MUL_BITS)
    assert rep["design"]["bram"] == rep["utilization"]["ICESTORM_RAM"]["used"] >= rep["expected_min"]["bram"]
    cells = rep["utilization"]["ICESTORM_LC"]
    assert cells["used"] <= cells["available"]
    assert rep["fmax_mhz"] > 0 and rep["critical_path"] is not None
    assert rep["nextpnr_command"][0] == target.nextpnr and "--seed" in rep["nextpnr_command"]
    # the array's netlist with every route the shortest: no placement beats it
    assert rep["fmax_mhz"] <= rep["ceiling"]["mhz"] and rep["ceiling"]["end"]


@pytest.mark.extended
@pytest.mark.slow(seconds=80)
def test_small_array_ice40_netlist_of_inferred_lanes_is_bit_exact(tmp_path):
    """The committed Verilog (one ``$mul`` per lane) through the same flow: the DSP plan
    puts 4 lanes on SB_MAC16 and builds 4 in logic (``booth``), product registers kept
    against Yosys's ice40_dsp miscompile; every output compared.  Extended (~80 s): the
    default suite checks that mapping on two lanes (``tests/test_dsp_mapping.py``)."""
    nl = netlist.ice40_netlist(ROOT / "hdl" / f"nmc_{SMALL.name}.v", f"nmc_{SMALL.name}", tmp_path / "nl")
    assert nl["soft_multiplies"] == 4
    assert len(re.findall(r"^\s*SB_MAC16 ", nl["sources"][0].read_text(), re.M)) == 8
    _runs_bit_exact(nl, "ice40_netlist", seed=31)


def test_a_netlist_is_taken_from_a_synthesis_only(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no synthesis in .*/none: synthesis\.json does not exist$"):
        netlist.flow_netlist(tmp_path / "none", targets.ice40())
