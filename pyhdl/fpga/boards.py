"""Board tops and bitstreams: the digits MLP baked into the array, classifying digits held in ROM.

:class:`DigitsDemo` is board-independent: an ``NmcArray`` whose banks, requant
tables and descriptors start out holding the compiled digits model (memory
init, no load port traffic), a ROM of a few quantized digit images, and a
small controller.  At reset it classifies image 0; every ``start`` pulse moves
to the next image and classifies it.  It streams the image's beats into the
array, takes the argmax of the raw last-layer outputs (first maximum wins, as
in ``torch.argmax``) and shows the class, plus whether it equals the golden
model's class for that image.

:class:`BoardTop` puts it on a board: the class in binary on four LEDs, the
golden match and "result shown" on two more, ``start`` from a debounced button,
and one line of text per result on the board's USB serial port, 115200 8N1
(:mod:`pyhdl.fpga.uart`).
:func:`build` makes the bitstream through amaranth-boards with the YoWASP tools
(``nmc.toolenv`` sets YOSYS, NEXTPNR_*, ECPPACK, ICEPACK).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal, unsigned
from amaranth.lib import io, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden import contract

from .. import sizing, tech
from ..config import ArrayConfig, DEFAULT, SMALL
from . import boardcheck, dspplan, flow, report, targets
from .uart import ResultLine, uart_divisor

__all__ = ["DigitsDemo", "BoardTop", "Board", "BOARDS", "digits_program", "build"]


class DigitsDemo(wiring.Component):
    """The array with a model baked in, a ROM of input vectors and an argmax controller.

    Parameters
    ----------
    cfg : ArrayConfig
    program : pyhdl.compiler.Program
        The compiled model (its memories become the array's init).
    vectors : list of list of int
        Quantized input vectors (``a_bits`` signed, ``in_features`` each), at least one.
    expected : list of int
        The golden class of each vector.
    lane_dsp : str
        The array's MAC lanes (:class:`~pyhdl.top.NmcArray`); ``"ice40_pairs"`` on the
        iCE40 board, whose Verilog then cannot run in the Amaranth simulator.
    requant_dsp : str
        The array's requant partial products (:class:`~pyhdl.top.NmcArray`);
        ``"ice40"`` on the iCE40 board, likewise.

    Members
    -------
    start : In(1)
        A one-cycle pulse: classify the next vector (wrapping around).
    image : Out
        Index of the vector being (or last) classified.
    klass : Out
        Argmax of the last layer's outputs for ``image``.
    shown : Out(1)
        ``klass`` holds the result of ``image``.
    match : Out(1)
        ``klass`` equals the golden class of ``image`` (valid while ``shown``).
    """

    def __init__(self, *, cfg: ArrayConfig, program, vectors, expected, lane_dsp: str = "inferred",
                 requant_dsp: str = "inferred"):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        if getattr(program, "cfg", None) != cfg:
            raise ValueError("program was compiled for a different ArrayConfig")
        vectors = [list(v) for v in vectors]
        if not vectors:
            raise ValueError("vectors is empty: the demo needs at least one input vector")
        if len(expected) != len(vectors):
            raise ValueError(f"expected has {len(expected)} classes for {len(vectors)} vectors")
        n_in, n_out = program.shapes[0][0], program.shapes[-1][1]
        for i, v in enumerate(vectors):
            if len(v) != n_in:
                raise ValueError(f"vector {i} has {len(v)} elements, the model takes {n_in}")
        self._cfg, self._program = cfg, program
        self._vectors, self._expected = vectors, [int(e) for e in expected]
        self._n_out = n_out
        self._lane_dsp = tech.check_lane_dsp(lane_dsp, cfg)
        self._requant_dsp = tech.check_requant_dsp(requant_dsp, m_bits=cfg.m_bits)
        self._MustUse__silence = False
        super().__init__({
            "start": In(1),
            "image": Out(range(len(vectors))),
            "klass": Out(range(max(2, n_out))),
            "shown": Out(1),
            "match": Out(1),
        })

    def serial_line(self, m: Module, *, divisor: int) -> ResultLine:
        """A :class:`~pyhdl.fpga.uart.ResultLine` added to ``m`` and wired to this demo's
        outputs: one line of text per result, ``divisor`` clock cycles per bit."""
        m.submodules.line = line = ResultLine(expected=self._expected, n_classes=self._n_out, divisor=divisor)
        m.d.comb += [line.image.eq(self.image), line.klass.eq(self.klass),
                     line.shown.eq(self.shown), line.match.eq(self.match)]
        return line

    @property
    def beats(self) -> int:
        """Input beats per vector, ``ceil(in_features / simd)``."""
        return sizing.folds(self._program.shapes[0][0], self._cfg)

    def rom_words(self) -> list[int]:
        """ROM image: vector ``i`` beat ``b`` at word ``i << index_bits(beats) | b``."""
        cfg, F = self._cfg, self.beats
        stride = 1 << sizing.index_bits(F)
        words = []
        for v in self._vectors:
            words += sizing.input_beats(v, cfg) + [0] * (stride - F)
        return words

    def elaborate(self, platform):
        from ..top import NmcArray

        m = Module()
        cfg, F = self._cfg, self.beats
        m.submodules.array = array = NmcArray(cfg, program=self._program, lane_dsp=self._lane_dsp,
                                                requant_dsp=self._requant_dsp)
        words = self.rom_words()
        m.submodules.rom = rom = Memory(shape=unsigned(cfg.simd * cfg.a_bits), depth=len(words), init=words)
        rd = rom.read_port()

        beat = Signal(sizing.index_bits(F), name="beat")
        beat_next = Signal(sizing.index_bits(F), name="beat_next")
        pending = Signal(init=1, name="pending")        # classify image 0 after reset
        ran = Signal(name="ran")                        # later requests step to the next image
        n = Signal(range(max(2, self._n_out)), name="neuron")
        best = Signal.like(array.o_stream.payload.data, name="best")
        best_n = Signal.like(n, name="best_n")
        expected = Array(Const(e, range(max(2, self._n_out))) for e in self._expected)

        i_fire = array.i_stream.valid & array.i_stream.ready
        o_fire = array.o_stream.valid & array.o_stream.ready
        m.d.comb += [rd.addr.eq(Cat(beat_next, self.image)), array.i_stream.payload.eq(rd.data),
                     array.stat_addr.eq(0)]
        m.d.sync += beat.eq(beat_next)
        with m.If(self.start):
            m.d.sync += pending.eq(1)

        with m.FSM(name="demo"):
            with m.State("IDLE"):
                m.d.comb += beat_next.eq(0)
                with m.If(pending & ~self.start):
                    m.d.sync += [pending.eq(0), self.shown.eq(0)]
                    with m.If(ran):
                        last = len(self._vectors) - 1
                        m.d.sync += self.image.eq(Mux(self.image == last, 0, self.image + 1))
                    m.next = "PRIME"
            with m.State("PRIME"):       # the ROM read of beat 0 is in flight
                m.d.comb += beat_next.eq(0)
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [array.i_stream.valid.eq(1), beat_next.eq(beat + i_fire)]
                with m.If(i_fire & (beat == F - 1)):
                    m.d.comb += beat_next.eq(0)
                    m.d.sync += n.eq(0)
                    m.next = "RECV"
            with m.State("RECV"):
                m.d.comb += [array.o_stream.ready.eq(1), beat_next.eq(0)]
                data = array.o_stream.payload.data
                better = (n == 0) | (data > best)
                winner = Signal.like(n, name="winner")
                m.d.comb += winner.eq(best_n)
                with m.If(better):
                    m.d.comb += winner.eq(n)
                with m.If(o_fire):
                    m.d.sync += n.eq(n + 1)
                    with m.If(better):
                        m.d.sync += [best.eq(data), best_n.eq(n)]
                    with m.If(array.o_stream.payload.last):
                        m.d.sync += [self.klass.eq(winner), self.shown.eq(1),
                                     self.match.eq(winner == expected[self.image])]
                        m.d.sync += ran.eq(1)
                        m.next = "IDLE"
        return m


class BoardTop(Elaboratable):
    """:class:`DigitsDemo` on a board: class on LEDs and the serial port, ``start`` from a
    debounced button.

    Parameters
    ----------
    demo_args : dict
        Keyword arguments of :class:`DigitsDemo`.
    board : Board
        LED and button resource names.
    debounce_log2 : int
        The button is sampled every ``2**debounce_log2`` cycles (~11 ms at 12 MHz for 17).
    """

    def __init__(self, *, demo_args: dict, board: "Board", debounce_log2: int = 17):
        self._demo_args = demo_args
        self._board = board
        self._debounce_log2 = debounce_log2

    def elaborate(self, platform):
        m = Module()
        m.submodules.demo = demo = DigitsDemo(**self._demo_args)
        board = self._board
        for res in board.extra_resources(platform):
            platform.add_resources(res)

        def buffer(direction, name, number):
            buf = io.Buffer(direction, platform.request(name, number, dir="-"))
            m.submodules[f"{name}{number}"] = buf
            return buf

        for i, (name, number) in enumerate(board.class_leds):
            bit = demo.klass[i] if i < len(demo.klass) else 0
            m.d.comb += buffer("o", name, number).o.eq(demo.shown & bit)
        m.d.comb += buffer("o", *board.match_led).o.eq(demo.shown & demo.match)
        m.d.comb += buffer("o", *board.shown_led).o.eq(demo.shown)
        line = demo.serial_line(m, divisor=uart_divisor(platform.default_clk_frequency))
        m.submodules.uart_tx = uart_tx = io.Buffer("o", platform.request(*board.uart, dir="-").tx)
        m.d.comb += uart_tx.o.eq(line.tx)
        button = buffer("i", *board.button)

        tick = Signal(self._debounce_log2, name="debounce_tick")
        sampled = Signal(2, name="button_sampled")
        m.d.sync += tick.eq(tick + 1)
        with m.If(tick == 0):
            m.d.sync += sampled.eq(Cat(button.i, sampled[0]))
        m.d.comb += demo.start.eq((tick == 0) & sampled[0] & ~sampled[1])
        return m


@dataclasses.dataclass(frozen=True)
class Board:
    """A board the demo runs on: platform, target, array config and the resources used."""

    name: str
    platform: str
    family: str
    cfg: ArrayConfig
    class_leds: tuple
    match_led: tuple
    shown_led: tuple
    button: tuple
    uart: tuple = ("uart", 0)
    extra: str | None = None

    def make_platform(self):
        if self.platform == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform
            return ICEBreakerPlatform()
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
        return ULX3S_85F_Platform()

    def extra_resources(self, platform):
        return [getattr(platform, self.extra)] if self.extra else []


#: placeholder in amaranth's Yosys script for the DSP plan (:func:`pyhdl.fpga.flow.soft_multiplies`)
_DSP_PLAN_MARK = "# nmc: DSP plan"

#: amaranth's build script step between Yosys and nextpnr on ECP5 boards; ``$PYTHON``
#: is set to the running interpreter by :func:`build`
_PACK_COMMAND = '{{invoke_tool("python")}} -m pyhdl.fpga.regpack {{name}}.json regpack.json'


def _with_register_packing(platform_class):
    """``platform_class`` (an amaranth-boards ECP5 platform) with :mod:`pyhdl.fpga.regpack`
    run on Yosys's netlist before nextpnr, as ``nmc synth`` does: the bitstream then uses
    the block RAMs' and multipliers' own registers that the Fmax is measured with."""
    class Packed(platform_class):
        @property
        def required_tools(self):
            return [*super().required_tools, "python"]

        @property
        def command_templates(self):
            yosys, *rest = super().command_templates
            return [yosys, _PACK_COMMAND, *rest]

    Packed.__name__ = Packed.__qualname__ = f"{platform_class.__name__}_Packed"
    return Packed


BOARDS = {
    # iCEBreaker with its break-off PMOD: LEDs 2..5 = class bits, main green LED = golden
    # match, main red LED = result shown; the main user button steps to the next image;
    # result lines on the FTDI's second channel.
    "icebreaker": Board("icebreaker", "icebreaker", "ice40", SMALL,
                        class_leds=(("led", 2), ("led", 3), ("led", 4), ("led", 5)),
                        match_led=("led_g", 0), shown_led=("led_r", 0), button=("button", 0),
                        extra="break_off_pmod"),
    # ULX3S-85F: LEDs 0..3 = class bits, LED 6 = golden match, LED 7 = shown; FIRE 1 steps;
    # result lines on the FTDI serial port.
    "ulx3s": Board("ulx3s", "ulx3s", "ecp5", DEFAULT,
                   class_leds=(("led", 0), ("led", 1), ("led", 2), ("led", 3)),
                   match_led=("led", 6), shown_led=("led", 7), button=("button_fire", 0)),
}


def digits_program(cfg: ArrayConfig, n_images: int = 4, seed: int = 0) -> dict:
    """The digits model compiled for ``cfg`` and the first ``n_images`` test images.

    Returns ``{"program", "vectors", "expected", "labels"}``; ``expected`` is the
    golden integer model's argmax, ``labels`` the data set's.
    """
    from golden import integer, zoo
    from ..compiler import compile_model

    contract.check_bits("images", n_images, 1, 64)
    entry = next(e for e in zoo.default_models(seed) if e.name == "digits")
    program = compile_model(entry.image, cfg)
    rows = entry.test_index[:n_images]
    x_q = entry.x_q[rows]
    out = integer.infer(entry.image, x_q)[-1]
    return {"program": program, "vectors": x_q.tolist(), "expected": out.argmax(dim=1).tolist(),
            "labels": entry.targets[rows].tolist()}


def build(board_name: str, build_dir, *, n_images: int = 4, seed: int = 0,
          timeout: float | None = flow.PNR_TIMEOUT_S, check: bool = True, full_baud: bool = False) -> dict:
    """Build the bitstream of ``board_name`` in ``build_dir``; return its report.

    The report has the resources and Fmax of the whole board top (no harness),
    ``bitstream`` (path) and ``bitstream_bytes``.  A tool failure, a Yosys log
    without "End of script" or a missing bitstream raises FlowError.  The build
    script (Yosys, nextpnr, the packer) is stopped after ``timeout`` seconds (None:
    no limit) with FlowTimeout: amaranth-boards' script has no limit of its own.

    ``check``: simulate the placed netlist through every ROM image, pressing the
    button between them and decoding the serial line (:func:`pyhdl.fpga.boardcheck.check`,
    Icarus Verilog), reported as ``netlist_check``; a class or line other than the
    golden model's raises FlowError naming the image.  ``full_baud``: the check receives
    every serial byte at the board's baud rate, not the first only (slower).
    """
    from nmc import toolenv

    if board_name not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, not {board_name!r}")
    flow.check_timeout("timeout", timeout)
    board = BOARDS[board_name]
    target = targets.ice40() if board.family == "ice40" else targets.ecp5(6)
    demo = digits_program(board.cfg, n_images, seed)
    top = BoardTop(demo_args={"cfg": board.cfg, "program": demo["program"], "vectors": demo["vectors"],
                              "expected": demo["expected"], "lane_dsp": target.lane_dsp,
                              "requant_dsp": target.requant_dsp}, board=board)
    platform = board.make_platform()
    if target.pack_registers:
        platform = _with_register_packing(type(platform))()
    name = f"nmc_{board.name}"
    overrides = {"script_after_read": _DSP_PLAN_MARK,
                 "synth_opts": target.synth.removeprefix(f"synth_{board.family}").strip(),
                 "script_after_synth": "\n".join([*target.after_synth, "tee -q -o stat.json stat -json"]),
                 "nextpnr_opts": "--report nextpnr-report.json --timing-allow-fail --seed 1"}
    if tech.instantiates_primitives(lane_dsp=target.lane_dsp, requant_dsp=target.requant_dsp):
        platform.add_file(f"{tech.ICE40_DSP_CELL}.v", tech.ice40_dsp_stub())
    plan = platform.prepare(top, name, **overrides)
    build = Path(build_dir).resolve()
    env = toolenv.environment()
    # amaranth-boards' program step looks these up; a bitstream build never programs
    env.setdefault("ICEPROG", "true")
    env.setdefault("OPENFPGALOADER", "true")
    env["PYTHON"] = sys.executable
    plan.extract(str(build))
    # which multiplies fit the device's DSPs is known once the design is elaborated
    soft = flow.soft_multiplies(target, build, [f"read_rtlil {name}.il", f"hierarchy -top {name}"])
    script = build / f"{name}.ys"
    script.write_text(script.read_text().replace(_DSP_PLAN_MARK, "\n".join(dspplan.booth_commands(soft))))
    log = build / "build.log"
    try:
        flow.run_tool(["sh", f"{plan.script}.sh"], cwd=build, log=log, env=env, timeout=timeout)
    except flow.FlowTimeout:
        raise flow.FlowTimeout(f"the {board.name} build did not finish within {timeout:g} s and was stopped; "
                               f"see {log}") from None
    except flow.FlowError:
        flow.check_yosys_log(build / f"{name}.rpt")
        raise flow.FlowError(f"the {board.name} build failed; see {log} and {build / (name + '.tim')}") from None
    flow.check_yosys_log(build / f"{name}.rpt")
    bitstream = build / (f"{name}.bin" if board.family == "ice40" else f"{name}.bit")
    if not bitstream.is_file() or bitstream.stat().st_size == 0:
        raise flow.FlowError(f"{board.name} build wrote no bitstream {bitstream}")
    packed = build / "regpack.json"
    raw = {"stat": json.loads((build / "stat.json").read_text()),
           "pnr": json.loads((build / "nextpnr-report.json").read_text()),
           "packed": json.loads(packed.read_text()) if target.pack_registers else None,
           "top": name, "harness": None,
           "logs": {"yosys": str(build / f"{name}.rpt"), "nextpnr": str(build / f"{name}.tim")}}
    # on a board the goal is the board's clock, not the array's Fmax target
    board_target = dataclasses.replace(target, name=f"{board.name}", goal_mhz=platform.default_clk_frequency / 1e6)
    rep = report.summarize(raw, board_target, pe=board.cfg.pe, simd=board.cfg.simd, config=board.cfg.name)
    rep.update({"board": board.name, "bitstream": str(bitstream), "bitstream_bytes": bitstream.stat().st_size,
                "images": len(demo["vectors"]), "expected": demo["expected"], "labels": demo["labels"]})
    if check:
        got = boardcheck.check(board, board.make_platform(), build, name, demo["expected"],
                               n_classes=demo["program"].shapes[-1][1], full_baud=full_baud, timeout=timeout)
        rep["netlist_check"] = got
        if not got["ok"]:
            i = got["first_wrong"]
            line = "garbled" if got["lines"][i] is None else repr(got["lines"][i])
            raise flow.FlowError(
                f"the {board.name} netlist classified ROM image {i} as {got['classes'][i]} (golden-match LED "
                f"{'on' if got['matches'][i] else 'off'}, serial line {line}), the golden model "
                f"as {got['expected'][i]}: the bitstream is wrong; see {build / 'check.log'}")
    (build / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    return rep
