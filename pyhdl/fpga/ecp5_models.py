"""Simulation models of the ECP5 ``DP16KD`` and ``MULT18X18D``, as this project reads them.

Yosys ships simulation models for the ECP5 fabric cells (``LUT4``, ``CCU2C``,
``TRELLIS_FF``, ``TRELLIS_DPR16X4``, ...) but declares ``DP16KD`` a blackbox and
``MULT18X18D`` exists only in its blackbox library, and Lattice's own models are
not on PyPI.  These models let the post-synthesis netlist (with the registers
:mod:`pyhdl.fpga.regpack` moved into these cells) run the same co-simulation as
the RTL.  They cover what the flow produces and stop with ``$fatal`` on
anything else:

* ``DP16KD`` with equal port widths of 9, 18 or 36 bits (36: pseudo dual port,
  port A writes with byte enables on ``ADA0..3``, port B reads; 18: byte enables
  on ``AD0..1``), ``REGMODE`` ``NOREG`` / ``OUTREG`` (output register enabled by
  ``OCE``), writes with ``WRITEMODE`` ``NORMAL`` (a port that never writes, as in a
  ROM Yosys splits over both ports, may have any), ``INITVAL_xx`` as Yosys lays them out
  (sixteen 18-bit units per 320-bit row, 20 bits apart).  A read of an address
  that the other port writes in the same cycle returns X: the array promises
  that never happens where the data is used (``pyhdl.tech.ram(collision_free)``),
  and X makes a broken promise visible in a 4-state simulator.
* ``MULT18X18D``: ``A * B`` (signed per ``SIGNEDA``/``SIGNEDB``), with input,
  pipeline and output registers on ``CLK0``/``CE0``/``RST0`` or none.

They check our reading of the primitives, not the silicon.
"""

from __future__ import annotations

__all__ = ["models_verilog", "MODELLED"]

#: the cells :func:`models_verilog` models; Yosys's fabric models cover the rest
MODELLED = frozenset({"DP16KD", "MULT18X18D"})


def _ports(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _dp16kd() -> str:
    ins = (_ports("DIA", 18) + _ports("ADA", 14) + ["CEA", "OCEA", "CLKA", "WEA", "RSTA", "CSA0", "CSA1", "CSA2"]
           + _ports("DIB", 18) + _ports("ADB", 14) + ["CEB", "OCEB", "CLKB", "WEB", "RSTB", "CSB0", "CSB1", "CSB2"])
    outs = _ports("DOA", 18) + _ports("DOB", 18)
    inits = "\n".join(f'  parameter [319:0] INITVAL_{i:02X} = 320\'h0;' for i in range(64))
    init_rows = "\n".join(f"    row[{i}] = INITVAL_{i:02X};" for i in range(64))
    cat = lambda names: "{" + ", ".join(reversed(names)) + "}"  # noqa: E731
    return f"""
module DP16KD(
  input {", ".join(ins)},
  output {", ".join(outs)}
);
  parameter integer DATA_WIDTH_A = 18;
  parameter integer DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
{inits}

  wire [17:0] dia = {cat(_ports("DIA", 18))};
  wire [17:0] dib = {cat(_ports("DIB", 18))};
  wire [13:0] ada = {cat(_ports("ADA", 14))};
  wire [13:0] adb = {cat(_ports("ADB", 14))};
  // 1024 units of 18 bits (each row of INITVAL holds 16 units, 20 bits apart)
  reg [17:0] unit [0:1023];
  reg [319:0] row [0:63];
  reg [17:0] lat_a, lat_b, out_a, out_b;
  integer i;
  initial begin
    if (DATA_WIDTH_A != DATA_WIDTH_B || (DATA_WIDTH_A != 9 && DATA_WIDTH_A != 18 && DATA_WIDTH_A != 36))
      $fatal(1, "DP16KD model: port widths %0d/%0d are not modelled", DATA_WIDTH_A, DATA_WIDTH_B);
    if (CLKAMUX != "CLKA" || CLKBMUX != "CLKB")
      $fatal(1, "DP16KD model: only non-inverted clocks are modelled");
{init_rows}
    for (i = 0; i < 1024; i = i + 1)
      unit[i] = row[i / 16][(i % 16) * 20 +: 18];
    lat_a = 0; lat_b = 0; out_a = 0; out_b = 0;
  end

  // x36: port A writes unit pair {{2j+1, 2j}} at ADA[13:5] with byte enables ADA[3:0]
  // and port B reads it at ADB[13:5]; x18: unit ADx[13:4], byte enables ADx[1:0];
  // x9: half (ADx[3]) of unit ADx[13:4]
  wire wide = DATA_WIDTH_A == 36;
  wire [9:0] ua = wide ? {{ada[13:5], 1'b0}} : ada[13:4];
  wire [9:0] ub = wide ? {{adb[13:5], 1'b0}} : adb[13:4];
  // a write with no byte enabled writes nothing (and collides with nothing)
  wire wr_a = CEA && WEA && (wide ? |ada[3:0] : DATA_WIDTH_A == 18 ? |ada[1:0] : 1'b1);
  wire wr_b = CEB && WEB && !wide && (DATA_WIDTH_B == 18 ? |adb[1:0] : 1'b1);
  wire rd_b = CEB && !WEB;
  wire rd_a = CEA && !WEA && !wide;
  // the same unit (pair, at x36) written by one port while the other reads it
  wire clash_b = wr_a && rd_b && (wide ? ua[9:1] == ub[9:1] : ua == ub);
  wire clash_a = wr_b && rd_a && ua == ub;

  task write(input [9:0] u, input [3:0] be, input [35:0] d, input integer width, input half);
    begin
      if (width == 9) begin
        if (half) unit[u][17:9] <= d[8:0]; else unit[u][8:0] <= d[8:0];
      end else begin
        if (be[0]) unit[u][8:0] <= d[8:0];
        if (be[1]) unit[u][17:9] <= d[17:9];
        if (width == 36 && be[2]) unit[u + 1][8:0] <= d[26:18];
        if (width == 36 && be[3]) unit[u + 1][17:9] <= d[35:27];
      end
    end
  endtask

  // the write mode only decides what a port shows in a cycle it writes; Yosys gives a
  // read-only port (a ROM split over both ports) READBEFOREWRITE, and only NORMAL
  // writes are modelled
  always @(posedge CLKA)
    if (wr_a && WRITEMODE_A != "NORMAL")
      $fatal(1, "DP16KD model: port A writes with WRITEMODE_A = %s; only NORMAL writes are modelled", WRITEMODE_A);
  always @(posedge CLKB)
    if (wr_b && WRITEMODE_B != "NORMAL")
      $fatal(1, "DP16KD model: port B writes with WRITEMODE_B = %s; only NORMAL writes are modelled", WRITEMODE_B);
  always @(posedge CLKA) begin
    if (wr_a)
      write(ua, wide ? ada[3:0] : {{2'b00, ada[1:0]}}, {{dib, dia}}, DATA_WIDTH_A, ada[3]);
    if (!wide) begin
      if (REGMODE_A == "OUTREG" && OCEA) out_a <= lat_a;
      if (RSTA) lat_a <= 0;
      else if (rd_a) lat_a <= clash_a ? 18'bx : DATA_WIDTH_A == 9 ? (ada[3] ? unit[ua][17:9] : unit[ua][8:0]) : unit[ua];
    end
  end
  // at x36 the read (port B) fills both halves, low on DOA, high on DOB
  always @(posedge CLKB) begin
    if (wr_b)
      write(ub, {{2'b00, adb[1:0]}}, {{18'b0, dib}}, DATA_WIDTH_B, adb[3]);
    if (REGMODE_B == "OUTREG" && OCEB) out_b <= lat_b;
    if (wide && REGMODE_A == "OUTREG" && OCEB) out_a <= lat_a;
    if (RSTB) begin
      lat_b <= 0;
      if (wide) lat_a <= 0;
    end else if (rd_b) begin
      if (wide) begin
        lat_a <= clash_b ? 18'bx : unit[ub];
        lat_b <= clash_b ? 18'bx : unit[ub + 1];
      end else
        lat_b <= clash_b ? 18'bx : DATA_WIDTH_B == 9 ? (adb[3] ? unit[ub][17:9] : unit[ub][8:0]) : unit[ub];
    end
  end
  // at x36 the low half of the read word comes out on DOA (registered per REGMODE_A)
  wire [17:0] doa = REGMODE_A == "OUTREG" ? out_a : lat_a;
  wire [17:0] dob = REGMODE_B == "OUTREG" ? out_b : lat_b;
  assign {cat(_ports("DOA", 18))} = doa;
  assign {cat(_ports("DOB", 18))} = dob;
endmodule
"""


def _mult18x18d() -> str:
    ins = (_ports("A", 18) + _ports("B", 18) + _ports("C", 18)
           + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"] + _ports("CLK", 4) + _ports("CE", 4) + _ports("RST", 4)
           + _ports("SRIA", 18) + _ports("SRIB", 18))
    outs = _ports("P", 36) + _ports("SROA", 18) + _ports("SROB", 18) + _ports("ROA", 18) + _ports("ROB", 18)
    outs += _ports("ROC", 18) + ["SIGNEDP"]
    cat = lambda names: "{" + ", ".join(reversed(names)) + "}"  # noqa: E731
    params = "\n".join(f'  parameter {p} = "{d}";' for p, d in [
        ("REG_INPUTA_CLK", "NONE"), ("REG_INPUTA_CE", "CE0"), ("REG_INPUTA_RST", "RST0"),
        ("REG_INPUTB_CLK", "NONE"), ("REG_INPUTB_CE", "CE0"), ("REG_INPUTB_RST", "RST0"),
        ("REG_INPUTC_CLK", "NONE"), ("REG_PIPELINE_CLK", "NONE"), ("REG_PIPELINE_CE", "CE0"),
        ("REG_PIPELINE_RST", "RST0"), ("REG_OUTPUT_CLK", "NONE"), ("REG_OUTPUT_CE", "CE0"),
        ("REG_OUTPUT_RST", "RST0"), ("CLK0_DIV", "ENABLED"), ("CLK1_DIV", "ENABLED"), ("CLK2_DIV", "ENABLED"),
        ("CLK3_DIV", "ENABLED"), ("HIGHSPEED_CLK", "NONE"), ("GSR", "ENABLED"), ("CAS_MATCH_REG", "FALSE"),
        ("SOURCEB_MODE", "B_SHIFT"), ("MULT_BYPASS", "DISABLED"), ("RESETMODE", "SYNC")])
    return f"""
module MULT18X18D(
  input {", ".join(ins)},
  output {", ".join(outs)}
);
{params}
  wire [17:0] a = {cat(_ports("A", 18))};
  wire [17:0] b = {cat(_ports("B", 18))};
  reg [17:0] a_r, b_r;
  reg sa_r, sb_r;
  reg [35:0] pipe_r, out_r;
  initial begin
    a_r = 0; b_r = 0; sa_r = 0; sb_r = 0; pipe_r = 0; out_r = 0;
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") || (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0")
        || (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0") || (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0"))
      $fatal(1, "MULT18X18D model: only registers on CLK0 / CE0 / RST0 are modelled");
  end
  always @(posedge CLK0) begin
    if (RST0) begin
      a_r <= 0; b_r <= 0; sa_r <= 0; sb_r <= 0;
    end else if (CE0) begin
      a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB;
    end
  end
  wire [17:0] a_in = REG_INPUTA_CLK == "NONE" ? a : a_r;
  wire [17:0] b_in = REG_INPUTB_CLK == "NONE" ? b : b_r;
  wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_r;
  wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_r;
  // each operand as a 19-bit signed number (a sign bit only when SIGNEDx says so)
  wire signed [18:0] a_x = {{sa & a_in[17], a_in}};
  wire signed [18:0] b_x = {{sb & b_in[17], b_in}};
  wire signed [37:0] full = a_x * b_x;
  wire [35:0] product = full[35:0];
  always @(posedge CLK0) begin
    if (RST0) begin
      pipe_r <= 0; out_r <= 0;
    end else if (CE0) begin
      pipe_r <= product;
      out_r <= REG_PIPELINE_CLK == "NONE" ? product : pipe_r;
    end
  end
  wire [35:0] p = REG_OUTPUT_CLK != "NONE" ? out_r : REG_PIPELINE_CLK != "NONE" ? pipe_r : product;
  assign {cat(_ports("P", 36))} = p;
endmodule
"""


def models_verilog() -> str:
    """Verilog text of the two models (module names ``DP16KD`` and ``MULT18X18D``)."""
    return "// generated by pyhdl.fpga.ecp5_models: this project's reading of the primitives\n" + _dp16kd() + _mult18x18d()
