"""Per-PE requantization: ``y = clamp((acc*m + 2**(s-1)) >> s, lo, hi)`` (golden/contract.py).

Six registered stages, so that no clock period holds more than one multiplier,
one carry chain or a three-level mux tree (Fmax, issue 5):

1. partial products ``acc`` chunk x ``m`` (chunks of 17 bits: one DSP each);
2. ``prod = acc * m``: the partial products summed (one carry chain);
3. coarse shift by ``8 * ((s-1) >> 3)``;
4. fine shift by ``(s-1) & 7`` — together ``prod >> (s-1)``;
5. ``q = (half + 1) >> 1``, equal to ``(prod + 2**(s-1)) >> s`` for floor shifts,
   without a 64-bit variable rounding constant;
6. clamp to ``lo .. hi`` (``lo = 0`` after a ReLU) by checking that the bits above
   the result are copies of its sign (an AND/OR tree, no wide comparator), or pass
   the raw accumulator through for a layer that does not requantize.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
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
        A, a = self._acc_bits, self._a_bits
        stages = sizing.requant_stages()

        # control (valid, relu, requantize, s-1) and the raw accumulator ride along
        valid = [self.i_valid]
        relu = [self.i_relu]
        req = [self.i_requantize]
        sm1 = Signal(contract.SHIFT_BITS, name="rq_sm1_0")
        m.d.comb += sm1.eq(self.i_s - 1)
        shift = [sm1]
        raw = [self.i_acc]
        for k in range(1, stages + 1):
            for lst, shape, nm, rl in ((valid, 1, "v", False), (relu, 1, "relu", True),
                                       (req, 1, "req", True), (shift, contract.SHIFT_BITS, "sm1", True),
                                       (raw, signed(A), "raw", True)):
                sig = Signal(shape, name=f"rq_{nm}{k}", reset_less=rl)
                m.d.sync += sig.eq(lst[-1])
                lst.append(sig)

        # 1-2: acc * m from 17-bit chunks of acc (one DSP each), summed one stage later
        chunks = []
        for at in range(0, A, tech.MUL_CHUNK):
            top = at + tech.MUL_CHUNK >= A
            part = self.i_acc[at:min(A, at + tech.MUL_CHUNK)]
            part = part.as_signed() if top else part
            chunks.append((at, tech.registered_product(m, part, self.i_m, name=f"rq_pp{at}")))
        prod_width = A + self._m_bits + 1
        prod = Signal(signed(prod_width), name="rq_prod", reset_less=True)
        m.d.sync += prod.eq(sum(p << at for at, p in chunks))

        # 3-4: prod >> (s-1), coarse then fine
        coarse = Signal(signed(prod_width), name="rq_coarse", reset_less=True)
        m.d.sync += coarse.eq(prod >> Cat(Const(0, 3), shift[2][3:]))
        half = Signal(signed(prod_width), name="rq_half", reset_less=True)
        m.d.sync += half.eq(coarse >> shift[3][:3])

        # 5: rounding
        q = Signal(signed(prod_width), name="rq_q", reset_less=True)
        m.d.sync += q.eq((half + 1) >> 1)

        # 6: clamp: q fits a_bits iff bits a-1 .. top all equal the sign
        upper = q[a - 1:]
        fits = (upper == 0) | (upper == (1 << len(upper)) - 1)
        neg = q[-1]
        lo, hi = contract.activation_range(a)
        r5, q_req = relu[5], req[5]
        clamped = Mux(neg & r5, 0, Mux(fits, q, Mux(neg, lo, hi)))
        m.d.sync += [self.o_valid.eq(valid[5]),
                     self.o_data.eq(Mux(q_req, clamped, raw[5]))]
        return m
