"""Per-PE requantization: ``y = clamp((acc*m + 2**(s-1)) >> s, lo, hi)`` (golden/contract.py).

Three registered stages, so a 32x16 multiply and a 6-bit barrel shift do not
sit in one clock period:

1. ``prod = acc * m`` (DSP);
2. ``q = ((prod >> (s-1)) + 1) >> 1`` — equal to ``(prod + 2**(s-1)) >> s`` for
   floor shifts, without a 64-bit rounding constant;
3. clamp to ``lo .. hi`` (``lo = 0`` after a ReLU), or pass the raw accumulator
   through for a layer that does not requantize.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import contract

from . import sizing, tech

__all__ = ["RequantUnit"]


class RequantUnit(wiring.Component):
    """Requantize one accumulator per cycle, ``stages`` cycles of latency.

    Parameters
    ----------
    acc_bits : int
        Accumulator width (signed).
    m_bits : int
        Multiplier width (unsigned).
    a_bits : int
        Activation width: the clamp range.

    Members
    -------
    i_valid, i_acc, i_m, i_s, i_relu, i_requantize : In
        One accumulator with its parameters.
    o_valid : Out(1)
        ``stages`` cycles after ``i_valid``.
    o_data : Out(signed(acc_bits))
        The requantized value sign-extended, or ``i_acc`` unchanged when
        ``i_requantize`` was 0.
    """

    def __init__(self, *, acc_bits: int, m_bits: int, a_bits: int):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        self._acc_bits = contract.check_bits("acc_bits", acc_bits, *contract.ACC_BITS_RANGE)
        self._m_bits = contract.check_bits("m_bits", m_bits, *contract.M_BITS_RANGE)
        self._a_bits = contract.check_bits("a_bits", a_bits, *contract.BITS_RANGE)
        self._MustUse__silence = False
        super().__init__({
            "i_valid": In(1), "i_acc": In(signed(acc_bits)), "i_m": In(unsigned(m_bits)),
            "i_s": In(unsigned(contract.SHIFT_BITS)), "i_relu": In(1), "i_requantize": In(1),
            "o_valid": Out(1), "o_data": Out(signed(acc_bits)),
        })

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def m_bits(self) -> int:
        return self._m_bits

    @property
    def a_bits(self) -> int:
        return self._a_bits

    @property
    def stages(self) -> int:
        """Latency in cycles (``pyhdl.sizing.requant_stages()``)."""
        return sizing.requant_stages()

    def elaborate(self, platform):
        m = Module()
        lo_relu, hi = contract.output_range(self._a_bits, True)
        lo = contract.activation_range(self._a_bits)[0]

        # stage 1: product (signed acc x unsigned m)
        prod = tech.registered_product(m, self.i_acc, self.i_m, name="rq_prod")
        v1 = Signal(name="rq_v1")
        s1 = Signal(contract.SHIFT_BITS, name="rq_s1", reset_less=True)
        ctl1 = Signal(2, name="rq_ctl1", reset_less=True)
        raw1 = Signal(signed(self._acc_bits), name="rq_raw1", reset_less=True)
        m.d.sync += [v1.eq(self.i_valid), s1.eq(self.i_s),
                     ctl1.eq(self.i_relu | self.i_requantize << 1), raw1.eq(self.i_acc)]

        # stage 2: rounding shift
        sm1 = Signal(contract.SHIFT_BITS, name="rq_sm1")
        m.d.comb += sm1.eq(s1 - 1)
        half = Signal(prod.shape(), name="rq_half")
        m.d.comb += half.eq(prod >> sm1)
        q = Signal(signed(len(prod)), name="rq_q", reset_less=True)
        v2 = Signal(name="rq_v2")
        ctl2 = Signal(2, name="rq_ctl2", reset_less=True)
        raw2 = Signal(signed(self._acc_bits), name="rq_raw2", reset_less=True)
        m.d.sync += [q.eq((half + 1) >> 1), v2.eq(v1), ctl2.eq(ctl1), raw2.eq(raw1)]

        # stage 3: clamp, or the raw accumulator
        low = Mux(ctl2[0], lo_relu, lo)
        clamped = Mux(q > hi, hi, Mux(q < low, low, q))
        m.d.sync += [self.o_valid.eq(v2),
                     self.o_data.eq(Mux(ctl2[1], clamped, raw2))]
        return m
