"""Serial output of the board demo: an 8N1 transmitter and the result line it sends.

After each classification the board sends one line of text over its USB serial port
(115200 baud, 8 data bits, no parity, one stop bit), e.g. ::

    i=02 c=8 g=8 ok

``i`` is the ROM image, ``c`` the class the array computed, ``g`` the golden integer
model's class for that image (fixed when the bitstream is built), then ``ok`` or
``NO`` for whether they agree.  Numbers are hexadecimal with as many digits as their
range needs.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartTx", "ResultLine", "uart_divisor", "result_text"]


def uart_divisor(clk_hz: float, baud: int = 115200) -> int:
    """Clock cycles per bit, rounded; the baud rate it gives must be within 2 % of ``baud``."""
    if not isinstance(baud, int) or isinstance(baud, bool) or baud <= 0:
        raise ValueError(f"baud must be a positive integer, not {baud!r}")
    if not clk_hz > 0:
        raise ValueError(f"clock frequency must be positive, not {clk_hz!r}")
    divisor = round(clk_hz / baud)
    if divisor < 1 or abs(clk_hz / divisor - baud) > 0.02 * baud:
        raise ValueError(f"a {clk_hz / 1e6:g} MHz clock cannot make {baud} baud within 2 % "
                         f"(nearest divisor {max(divisor, 1)} gives {clk_hz / max(divisor, 1):.0f})")
    return divisor


def _hex_digits(n_values: int) -> int:
    return max(1, ((n_values - 1).bit_length() + 3) // 4)


def result_text(image: int, klass: int, golden: int, *, n_images: int, n_classes: int) -> str:
    """The line :class:`ResultLine` sends, as a string (what tests and users expect)."""
    ok = "ok" if klass == golden else "NO"
    di, dc = _hex_digits(n_images), _hex_digits(n_classes)
    return f"i={image:0{di}x} c={klass:0{dc}x} g={golden:0{dc}x} {ok}\r\n"


class UartTx(wiring.Component):
    """8N1 serial transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (:func:`uart_divisor`).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send, least significant bit first; ``ready`` while the line is idle.
    tx : Out(1)
        The serial line (idle high).
    """

    def __init__(self, *, divisor: int):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 1:
            raise ValueError(f"divisor must be a positive integer, not {divisor!r}")
        self._MustUse__silence = False
        self._divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        # start bit, 8 data bits, stop bit, and one more (high) step that ends the stop
        # bit's time before the next byte is taken; the line then stays high
        frame = Signal(11, name="uart_frame")
        bits_left = Signal(range(12), name="uart_bits_left")
        timer = Signal(range(self._divisor), name="uart_timer")
        m.d.comb += self.i.ready.eq(bits_left == 0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(0b11, 2))),
                         bits_left.eq(11), timer.eq(0)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [self.tx.eq(frame[0]), frame.eq(frame >> 1), bits_left.eq(bits_left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class ResultLine(wiring.Component):
    """Sends :func:`result_text` for each new result of a :class:`~pyhdl.fpga.boards.DigitsDemo`.

    Parameters
    ----------
    expected : list of int
        The golden class of each image.
    n_classes : int
        Classes of the model (sets the digits of ``c`` and ``g``).
    divisor : int
        Clock cycles per bit.

    Members
    -------
    image, klass, shown, match : In
        The demo's outputs of the same names.  A line is due when ``shown`` rises; it
        starts once the previous line is out (while ``shown`` is still high) and
        reports the values of the cycle it starts in.
    tx : Out(1)
        The serial line.
    """

    def __init__(self, *, expected, n_classes: int, divisor: int):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        expected = [int(e) for e in expected]
        if not expected:
            raise ValueError("expected is empty: there must be at least one image")
        if not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, not {n_classes!r}")
        for i, e in enumerate(expected):
            if not 0 <= e < n_classes:
                raise ValueError(f"golden class {e} of image {i} is outside 0..{n_classes - 1}")
        self._expected, self._n_classes = expected, n_classes
        self._tx = UartTx(divisor=divisor)
        self._tx._MustUse__silence = True  # covered by this component's own warning
        self._MustUse__silence = False
        super().__init__({
            "image": In(range(len(expected))), "klass": In(range(max(2, n_classes))),
            "shown": In(1), "match": In(1), "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = tx = self._tx
        m.d.comb += self.tx.eq(tx.tx)
        n_images = len(self._expected)
        di, dc = _hex_digits(n_images), _hex_digits(self._n_classes)
        image = Signal.like(self.image, name="line_image")
        klass = Signal.like(self.klass, name="line_class")
        match = Signal(name="line_match")
        golden = Array(Const(e, range(max(2, self._n_classes))) for e in self._expected)[image]

        def hex_char(value, digit):
            nibble = (value >> (4 * digit))[:4]
            return Mux(nibble < 10, nibble + ord("0"), nibble + (ord("a") - 10))[:8]

        def text(s):
            return [Const(ord(ch), 8) for ch in s]

        chars = (text("i=") + [hex_char(image, d) for d in reversed(range(di))]
                 + text(" c=") + [hex_char(klass, d) for d in reversed(range(dc))]
                 + text(" g=") + [hex_char(golden, d) for d in reversed(range(dc))]
                 + [Const(ord(" "), 8), Mux(match, ord("o"), ord("N")), Mux(match, ord("k"), ord("O"))]
                 + text("\r\n"))
        index = Signal(range(len(chars) + 1), name="line_index", init=len(chars))
        shown_r = Signal(name="line_shown_r")
        due = Signal(name="line_due")
        m.d.sync += shown_r.eq(self.shown)
        with m.If(self.shown & ~shown_r):
            m.d.sync += due.eq(1)
        with m.If(due & self.shown & (index == len(chars))):
            m.d.sync += [image.eq(self.image), klass.eq(self.klass), match.eq(self.match),
                         index.eq(0), due.eq(0)]
        m.d.comb += [tx.i.valid.eq(index != len(chars)),
                     tx.i.payload.eq(Array(chars)[index])]
        with m.If(tx.i.valid & tx.i.ready):
            m.d.sync += index.eq(index + 1)
        return m
