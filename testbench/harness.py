"""The simulation harness: a Verilog top level that wraps ``nmc_<cfg.name>`` for cocotb.

Why a harness: every cocotb ``.value`` access costs 1-2 us and every awaited edge
about 3 us, so driving the array beat by beat from Python would cap the
co-simulation at a few thousand inferences per second.  Instead the harness holds

* a **load memory** and an **input memory** that it streams into ``load`` and
  ``i_stream`` itself (filled in bulk with ``$readmemh`` from files the
  testbench writes),
* a **response memory** that captures every ``o_stream`` beat with its cycle
  stamp (dumped in bulk with ``$writememh``),
* an **idle / backpressure generator** on each of the three streams: off,
  random (xorshift32, stall when the low byte is below a threshold) or a
  periodic 32-bit mask,
* a cycle counter, the cycle of the first input transfer (``first_in``), a
  ``done`` pulse counter, a ``busy`` cycle counter, and a sweep that copies all
  performance counters (``stat_addr`` 0..15) into a snapshot memory at the end.

Python writes a handful of control inputs per batch, raises ``go`` and waits for
``finished``: a whole batch of inferences costs a few dozen VPI accesses.  The
array itself is instantiated unchanged, so the Verilog in ``hdl/`` is exactly
what gets verified.

The harness is plain Verilog-2005 (Verilator and Icarus both run it).  This module
is pure Python: it writes the harness text and packs / unpacks its files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from pyhdl import sizing
from pyhdl.config import ArrayConfig

__all__ = ["Layout", "StallSpec", "NO_STALL", "OP_RUN", "OP_READ_LOAD", "OP_READ_INPUT", "OP_DUMP",
           "LOAD_FILE", "INPUT_FILE", "RESP_FILE", "STAT_FILE", "TOPLEVEL", "harness_verilog",
           "write_harness", "pack_inputs", "write_input_file", "write_load_file", "read_responses",
           "read_stats"]

TOPLEVEL = "nmc_harness"

#: ``op`` codes of the go/finished handshake.
OP_RUN, OP_READ_LOAD, OP_READ_INPUT, OP_DUMP = 0, 1, 2, 3

#: File names, relative to the simulator's working directory (the cocotb test_dir).
LOAD_FILE = "nmc_load.hex"
INPUT_FILE = "nmc_input.hex"
RESP_FILE = "nmc_resp.hex"
STAT_FILE = "nmc_stat.hex"

#: Number of performance-counter slots the harness snapshots (``stat_addr`` is 4 bits).
STAT_SLOTS = 16

STALL_MODES = {"off": 0, "random": 1, "pattern": 2}


@dataclasses.dataclass(frozen=True)
class StallSpec:
    """Idle (on a source) or backpressure (on a sink) insertion for one stream.

    Parameters
    ----------
    mode : str
        ``"off"``, ``"random"`` (stall with probability ``prob``, xorshift32 seeded by
        ``seed``) or ``"pattern"`` (stall on the cycles where the rotating 32-bit
        ``pattern`` has a 1 in bit 0).
    prob : float
        Stall probability of the random mode, 0 <= prob < 1 (quantized to 1/256).
    """

    mode: str = "off"
    prob: float = 0.0
    seed: int = 1
    pattern: int = 0

    def __post_init__(self):
        if self.mode not in STALL_MODES:
            raise ValueError(f"stall mode must be one of {', '.join(STALL_MODES)}, not {self.mode!r}")
        if not 0.0 <= self.prob < 1.0:
            raise ValueError(f"stall probability must be in [0, 1), not {self.prob}")
        if not 0 <= self.pattern < 2**32 or not 0 < self.seed < 2**32:
            raise ValueError(f"stall pattern must fit 32 bits and seed be 1..2**32-1, not {self.pattern:#x}, {self.seed}")

    @property
    def threshold(self) -> int:
        return min(255, round(self.prob * 256))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


NO_STALL = StallSpec()


@dataclasses.dataclass(frozen=True)
class Layout:
    """Widths and memory depths of the harness for one array configuration."""

    cfg: ArrayConfig
    load_data_bits: int
    load_depth: int = 1 << 14
    input_depth: int = 1 << 15
    resp_depth: int = 1 << 15

    @property
    def load_bits(self) -> int:
        return 32 + self.load_data_bits

    @property
    def input_bits(self) -> int:
        return self.cfg.simd * self.cfg.a_bits

    @property
    def out_bits(self) -> int:
        return self.cfg.acc_bits + 1

    @property
    def resp_bits(self) -> int:
        # {cycle[31:0], last, data[acc_bits-1:0]}
        return 32 + self.out_bits

    @property
    def dut_module(self) -> str:
        return f"nmc_{self.cfg.name}"

    @property
    def settle(self) -> int:
        """Idle cycles between the program load and the first input beat.

        ``sizing.schedule`` starts from a finished von-Neumann bus prefetch
        (``sizing.input_settle`` cycles after the last load handshake); the harness
        itself takes three cycles from that handshake to an offered beat (all loaded,
        the run state, the registered ``valid``).
        """
        return max(0, sizing.input_settle(self.cfg) - 3)


def _stall_logic(prefix: str) -> str:
    return f"""
  // {prefix}: idle/backpressure generator (xorshift32 or rotating mask)
  reg [31:0] {prefix}_rng, {prefix}_pat;
  wire {prefix}_stall = ({prefix}_mode == 2'd1 && {prefix}_rng[7:0] < {prefix}_thresh)
                      || ({prefix}_mode == 2'd2 && {prefix}_pat[0]);
  always @(posedge clk) begin
    if (rst || start) begin
      {prefix}_rng <= {prefix}_seed;
      {prefix}_pat <= {prefix}_pattern;
    end else begin
      {prefix}_rng <= xorshift({prefix}_rng);
      {prefix}_pat <= {{{prefix}_pat[0], {prefix}_pat[31:1]}};
    end
  end
"""


def harness_verilog(layout: Layout) -> str:
    """The harness top level ``nmc_harness`` for ``layout`` (instantiates ``nmc_<cfg.name>``)."""
    L = layout
    STAT_READ = sizing.stat_read_stages()
    la = max(1, (L.load_depth - 1).bit_length())
    ia = max(1, (L.input_depth - 1).bit_length())
    ra = max(1, (L.resp_depth - 1).bit_length())
    stall_ports = "\n".join(
        f"  input  wire [1:0]  {p}_mode,\n  input  wire [7:0]  {p}_thresh,\n"
        f"  input  wire [31:0] {p}_seed,\n  input  wire [31:0] {p}_pattern,"
        for p in ("ld", "in", "out"))
    return f"""// Simulation-only harness around {L.dut_module}; generated by testbench/harness.py.
// Do not edit: regenerate.  Not synthesizable ($readmemh/$writememh at run time).
`default_nettype none
module {TOPLEVEL} (
  input  wire        clk,
  input  wire        rst,
  input  wire        go,
  input  wire [1:0]  op,
  input  wire [31:0] n_load,
  input  wire [31:0] n_beats,
  input  wire [31:0] n_expect,
  input  wire [31:0] drain,
  input  wire [31:0] max_cycles,
{stall_ports}
  output reg         finished,
  output reg         timeout,
  output reg  [31:0] n_resp,
  output reg  [31:0] cycles,
  output reg  [31:0] n_done,
  output reg  [31:0] n_busy,
  output reg  [31:0] first_in
);
  localparam LW = {L.load_bits}, IW = {L.input_bits}, OW = {L.out_bits}, RW = {L.resp_bits};
  localparam LD = {L.load_depth}, ID = {L.input_depth}, RD = {L.resp_depth};

  function [31:0] xorshift(input [31:0] x);
    reg [31:0] a, b;
    begin
      a = x ^ (x << 13);
      b = a ^ (a >> 17);
      xorshift = b ^ (b << 5);
    end
  endfunction

  reg [LW-1:0] load_mem [0:LD-1];
  reg [IW-1:0] input_mem [0:ID-1];
  reg [RW-1:0] resp_mem [0:RD-1];
  reg [31:0]   stat_mem [0:{STAT_SLOTS - 1}];

  localparam S_IDLE = 3'd0, S_LOAD = 3'd1, S_RUN = 3'd2, S_DRAIN = 3'd3, S_STATS = 3'd4, S_FIN = 3'd5;
  reg [2:0]  state;
  wire       start = (state == S_IDLE) && go && (op == 2'd{OP_RUN});
  reg [31:0] ld_ptr, in_ptr, drain_left;
  reg [4:0]  stat_idx;
  reg        in_seen;
  reg [15:0] settle_left;

  reg          ld_valid;
  reg [LW-1:0] ld_payload;
  wire         ld_ready;
  reg          in_valid;
  reg [IW-1:0] in_payload;
  wire         in_ready;
  wire         o_valid;
  wire [OW-1:0] o_payload;
  wire         o_ready;
  wire [31:0]  stat_data;
  wire         busy, done;
{_stall_logic("ld")}{_stall_logic("in")}{_stall_logic("out")}
  assign o_ready = (state == S_RUN || state == S_DRAIN) && !out_stall;

  {L.dut_module} dut (
    .clk(clk), .rst(rst),
    .load__valid(ld_valid), .load__ready(ld_ready), .load__payload(ld_payload),
    .i_stream__valid(in_valid), .i_stream__ready(in_ready), .i_stream__payload(in_payload),
    .o_stream__valid(o_valid), .o_stream__ready(o_ready), .o_stream__payload(o_payload),
    .stat_addr(stat_idx[3:0]), .stat_data(stat_data),
    .busy(busy), .done(done)
  );

  wire ld_fire = ld_valid && ld_ready;
  wire in_fire = in_valid && in_ready;
  wire o_fire  = o_valid && o_ready;
  wire all_loaded = (ld_ptr == n_load) && !ld_valid;
  wire all_sent   = (in_ptr == n_beats) && !in_valid;

  always @(posedge clk) begin
    if (rst) begin
      state <= S_IDLE; finished <= 1'b0; timeout <= 1'b0;
      ld_valid <= 1'b0; in_valid <= 1'b0;
      ld_ptr <= 32'd0; in_ptr <= 32'd0; n_resp <= 32'd0; cycles <= 32'd0;
      n_done <= 32'd0; n_busy <= 32'd0; stat_idx <= 5'd0; drain_left <= 32'd0;
      first_in <= 32'd0; in_seen <= 1'b0; settle_left <= 16'd0;
    end else begin
      if (state == S_IDLE && go && op == 2'd{OP_READ_LOAD}) begin
        $readmemh("{LOAD_FILE}", load_mem);
        state <= S_FIN;
      end
      if (state == S_IDLE && go && op == 2'd{OP_READ_INPUT}) begin
        $readmemh("{INPUT_FILE}", input_mem);
        state <= S_FIN;
      end
      if (state == S_IDLE && go && op == 2'd{OP_DUMP}) begin
        if (n_resp != 32'd0)
          $writememh("{RESP_FILE}", resp_mem, 0, (n_resp > RD ? RD : n_resp) - 1);
        $writememh("{STAT_FILE}", stat_mem);
        state <= S_FIN;
      end
      if (start) begin
        state <= S_LOAD; timeout <= 1'b0; ld_valid <= 1'b0; in_valid <= 1'b0;
        ld_ptr <= 32'd0; in_ptr <= 32'd0; n_resp <= 32'd0; cycles <= 32'd0;
        n_done <= 32'd0; n_busy <= 32'd0; stat_idx <= 5'd0; drain_left <= drain;
        first_in <= 32'd0; in_seen <= 1'b0; settle_left <= 16'd{L.settle};
      end
      if (in_fire && !in_seen) begin
        first_in <= cycles;
        in_seen <= 1'b1;
      end
      if (state == S_LOAD || state == S_RUN || state == S_DRAIN) begin
        cycles <= cycles + 32'd1;
        if (busy) n_busy <= n_busy + 32'd1;
        if (done) n_done <= n_done + 32'd1;
        if (cycles == max_cycles) begin
          timeout <= 1'b1;
          state <= S_STATS;
        end
      end
      // load source: a new beat only when none is pending (valid never retracts)
      if (state == S_LOAD && (!ld_valid || ld_ready)) begin
        if (ld_ptr != n_load && !ld_stall) begin
          ld_payload <= load_mem[ld_ptr[{la - 1}:0]];
          ld_ptr <= ld_ptr + 32'd1;
          ld_valid <= 1'b1;
        end else begin
          ld_valid <= 1'b0;
        end
      end
      if (state == S_LOAD && all_loaded && cycles != max_cycles) begin
        if (settle_left == 16'd0)
          state <= S_RUN;
        else
          settle_left <= settle_left - 16'd1;
      end
      // input source
      if (state == S_RUN && (!in_valid || in_ready)) begin
        if (in_ptr != n_beats && !in_stall) begin
          in_payload <= input_mem[in_ptr[{ia - 1}:0]];
          in_ptr <= in_ptr + 32'd1;
          in_valid <= 1'b1;
        end else begin
          in_valid <= 1'b0;
        end
      end
      // result sink: every beat with its cycle stamp
      if (o_fire) begin
        if (n_resp < RD)
          resp_mem[n_resp[{ra - 1}:0]] <= {{cycles, o_payload}};
        n_resp <= n_resp + 32'd1;
      end
      if (state == S_RUN && all_sent && n_resp + (o_fire ? 32'd1 : 32'd0) >= n_expect && cycles != max_cycles)
        state <= S_DRAIN;
      if (state == S_DRAIN && cycles != max_cycles) begin
        if (drain_left == 32'd0) state <= S_STATS;
        else drain_left <= drain_left - 32'd1;
      end
      if (state == S_STATS) begin
        // stat_data shows the counter stat_addr selected {STAT_READ} cycle(s) before
        if (stat_idx >= 5'd{STAT_READ})
          stat_mem[stat_idx[3:0] - 4'd{STAT_READ}] <= stat_data;
        stat_idx <= stat_idx + 5'd1;
        if (stat_idx == 5'd{STAT_SLOTS - 1 + STAT_READ}) state <= S_FIN;
      end
      if (state == S_FIN) begin
        finished <= 1'b1;
        if (!go) begin
          finished <= 1'b0;
          state <= S_IDLE;
        end
      end
    end
  end
endmodule
`default_nettype wire
"""


def write_harness(layout: Layout, path) -> Path:
    """Write the harness to ``path`` only when its text changed (keeps Verilator's cache warm)."""
    path = Path(path)
    text = harness_verilog(layout)
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


# -- files ---------------------------------------------------------------------

def _hex_rows(bits: np.ndarray) -> list[str]:
    """Rows of little-endian bits ``[n, width]`` (0/1) to hex strings, MSB first."""
    n, width = bits.shape
    pad = (-width) % 4
    if pad:
        bits = np.concatenate([bits, np.zeros((n, pad), dtype=bits.dtype)], axis=1)
    nib = bits.reshape(n, -1, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype="S1")[nib[:, ::-1]]
    return [r.tobytes().decode() for r in chars]


def pack_inputs(x_q: np.ndarray, cfg: ArrayConfig) -> list[str]:
    """Integer activations ``[batch, in_features]`` to input-stream beats as hex strings.

    Vector after vector, ``ceil(in/simd)`` beats each; beat ``f`` lane ``s`` is element
    ``f*simd + s`` in two's complement ``a_bits`` (0 past the end), as in docs/hardware.md.
    """
    x = np.asarray(x_q, dtype=np.int64)
    batch, n = x.shape
    beats = -(-n // cfg.simd)
    lanes = np.zeros((batch, beats * cfg.simd), dtype=np.int64)
    lanes[:, :n] = x
    u = lanes & ((1 << cfg.a_bits) - 1)
    bits = ((u[:, :, None] >> np.arange(cfg.a_bits)) & 1).astype(np.uint8)
    return _hex_rows(bits.reshape(batch * beats, cfg.simd * cfg.a_bits))


def write_input_file(path, x_q: np.ndarray, cfg: ArrayConfig) -> int:
    rows = pack_inputs(x_q, cfg)
    Path(path).write_text("\n".join(rows) + "\n")
    return len(rows)


def write_load_file(path, words, data_bits: int) -> int:
    """``words = [(addr, data), ...]`` to load-port payloads ``addr | data << 32``."""
    mask = (1 << data_bits) - 1
    lines = []
    for addr, data in words:
        if not 0 <= addr < 2**32:
            raise ValueError(f"load address {addr:#x} does not fit 32 bits")
        lines.append(format(int(addr) | (int(data) & mask) << 32, "x"))
    Path(path).write_text("\n".join(lines) + "\n")
    return len(lines)


def _hex_words(path) -> tuple[list[int], list[bool]]:
    """Words of a ``$writememh`` dump (Icarus adds ``// 0x...`` address comments).

    A 4-state simulator may dump ``x``/``z`` digits: they read as 0 and are flagged.
    """
    words, unknown = [], []
    for line in Path(path).read_text().splitlines():
        if not line or line.startswith("//"):
            continue
        clean = line.lower().translate(_XZ)
        words.append(int(clean, 16))
        unknown.append(clean != line.lower())
    return words, unknown


_XZ = str.maketrans({"x": "0", "z": "0"})


_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
for _c in b"xXzZ":
    _NIBBLE[_c] = 16  # unknown: reads as 0, flagged


def _hex_table(path) -> tuple[np.ndarray, np.ndarray] | None:
    """Equal-width hex lines as ``(lo64, hi64)`` words and an unknown-digit flag, vectorised."""
    lines = [ln for ln in Path(path).read_bytes().split(b"\n") if ln and not ln.startswith(b"//")]
    if not lines or len({len(ln) for ln in lines}) != 1 or len(lines[0]) > 32:
        return None
    digits = _NIBBLE[np.frombuffer(b"".join(lines), dtype=np.uint8).reshape(len(lines), -1)]
    if (digits == 255).any():
        return None
    unknown = (digits == 16).any(axis=1)
    digits = np.where(digits == 16, 0, digits).astype(np.uint64)
    width = digits.shape[1]
    lo_digits, hi_digits = digits[:, max(0, width - 16):], digits[:, :max(0, width - 16)]

    def combine(block):
        out = np.zeros(len(block), dtype=np.uint64)
        for k in range(block.shape[1]):
            out = (out << np.uint64(4)) | block[:, k]
        return out
    return combine(lo_digits), combine(hi_digits), unknown


def read_responses(path, count: int, acc_bits: int):
    """Read ``count`` captured beats: ``(data int64 signed, last bool, cycle int64, unknown bool)``."""
    if count == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, bool)
    table = _hex_table(path)
    if table is None:  # ragged or odd lines: the plain (slow) path
        words, unknown = _hex_words(path)
        lo = np.array([w & (2**64 - 1) for w in words], dtype=np.uint64)
        hi = np.array([w >> 64 for w in words], dtype=np.uint64)
        unknown = np.array(unknown, dtype=bool)
    else:
        lo, hi, unknown = table
    if len(lo) != count:
        raise RuntimeError(f"response dump {path} holds {len(lo)} beats, expected {count}")
    a = np.uint64(acc_bits)
    raw = (lo & np.uint64((1 << acc_bits) - 1)).astype(np.int64)
    sign = np.int64(1) << (acc_bits - 1)
    data = (raw ^ sign) - sign
    last = ((lo >> a) & np.uint64(1)).astype(bool)
    cycle = ((lo >> (a + np.uint64(1))) | (hi << (np.uint64(63) - a))).astype(np.int64)
    return data, last, cycle, unknown


def read_stats(path) -> list[int]:
    words, _ = _hex_words(path)
    if len(words) != STAT_SLOTS:
        raise RuntimeError(f"counter snapshot {path} holds {len(words)} words, expected {STAT_SLOTS}")
    return words
