"""Per-PE requantization: ``y = clamp((acc*m + 2**(s-1)) >> s, lo, hi)`` (golden/contract.py).

With ``t = s - 1``, ``half = prod >> t`` and ``q = (half + 1) >> 1``.  The clamp
to ``a_bits`` needs only the window ``w = prod[t : t+a]`` and one flag, "a bit
of ``prod`` from ``t + a`` up differs from the sign": without the flag ``half``
is ``(sign, w)`` exactly, with it ``q`` is out of range on the side of the sign.
So the unit never shifts, rounds or holds the whole ``acc_bits + m_bits``
product, which is where the LUTs went.  Seven registered stages, so that no
clock period holds more than one multiplier, one carry chain or about three LUT
levels (Fmax, issue 5):

1. the inputs registered for the multipliers alone (a layer that does not
   requantize comes with ``m = 1``, so that its raw accumulator is the product);
2. partial products ``acc`` chunk x ``m`` (chunks of 17 bits: one DSP each);
3. ``prod = acc * m``: the partial products summed (one carry chain); beside
   it, from ``s`` alone, which byte groups of ``prod`` lie above the window;
4. coarse window: ``a + 7`` bits from bit ``8*(s >> 3)`` of ``2*prod`` (an
   8-way mux each); beside it, per byte group above the coarse window, "a bit
   differs from the sign, and the group lies above the window";
5. fine window ``w``: ``a`` bits from bit ``s & 7`` of the coarse window (8-way
   each); the flag from the groups and the coarse bits above ``w``;
6. ``q = (sign, w[1:]) + w[0]``, an ``a``-bit carry chain in place of a
   product-wide ``(half + 1) >> 1``, and beside it the saturation and ReLU
   decisions, read off ``w``, the flag and the sign;
7. the result ORed together from ``q``, the saturation value and the raw
   accumulator, which passes through for a layer that does not requantize.

With ``dsp="ice40"`` stages 1 and 2 are the registers inside one iCE40 ``SB_MAC16``
per 16-bit chunk (:func:`pyhdl.tech.ice40_product`): the same cycles, no fabric
flip-flop for the operands or the partial products.

The raw accumulator is taken from ``prod`` (``acc * 1``) rather than carried
from the input: two stages of ``acc_bits`` flip-flops fewer, which the iCE40
UP5K, where a flip-flop without its own LUT takes a logic cell, needs to hold
the small array.

Bit ``s + j`` of ``2*prod`` is bit ``t + j`` of ``prod``, so ``t`` needs no
subtractor.  The contract's ``s`` is ``1 .. SHIFT_MAX`` (images reject 0); the
unit reads ``s = 0`` as "no shift", ``y = clamp(acc*m, lo, hi)``.
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
    dsp : str
        How the partial products are built (:data:`pyhdl.tech.REQUANT_DSP`):
        ``"inferred"``, or ``"ice40"`` (an ``SB_MAC16`` per chunk, Verilog only; the
        same cycles).

    Members
    -------
    i_valid, i_acc, i_m, i_s, i_relu, i_requantize : In
        One accumulator with its parameters; ``i_s = 0`` means no shift.  With
        ``i_requantize`` 0, ``i_m`` must be 1 (``i_s`` is ignored): the raw
        accumulator is read off the product ``i_acc * i_m``.
    o_valid : Out(1)
        ``stages`` cycles after ``i_valid``.
    o_data : Out(signed(acc_bits))
        The requantized value sign-extended, or ``i_acc`` unchanged when
        ``i_requantize`` was 0.  Meaningful only with ``o_valid``: it has no
        reset value.
    """

    def __init__(self, *, acc_bits: int, m_bits: int, a_bits: int, dsp: str = "inferred"):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        self._acc_bits = contract.check_bits("acc_bits", acc_bits, *contract.ACC_BITS_RANGE)
        self._m_bits = contract.check_bits("m_bits", m_bits, *contract.M_BITS_RANGE)
        self._a_bits = contract.check_bits("a_bits", a_bits, *contract.BITS_RANGE)
        self._dsp = tech.check_requant_dsp(dsp, m_bits=m_bits)
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
    def dsp(self) -> str:
        return self._dsp

    @property
    def stages(self) -> int:
        """Latency in cycles (``pyhdl.sizing.requant_stages()``)."""
        return sizing.requant_stages()

    def elaborate(self, platform):
        m = Module()
        A, a = self._acc_bits, self._a_bits
        stages = sizing.requant_stages()

        # 1: the inputs registered, so that only the multipliers read them (the PE's
        # accumulator also feeds back into its adder; its route to the DSPs was an ECP5
        # critical path).  On ECP5 these registers become the DSPs' own input registers
        # (pyhdl.fpga.regpack), which takes plain flip-flops: no logic before them
        # that synthesis would turn into a synchronous set or reset.  The iCE40 DSPs
        # (dsp="ice40") have theirs built in.
        if self._dsp == "inferred":
            acc_in = Signal(signed(A), name="rq_acc1", reset_less=True)
            m_in = Signal(self._m_bits, name="rq_m1", reset_less=True)
            m.d.sync += [acc_in.eq(self.i_acc), m_in.eq(self.i_m)]
            product = tech.registered_product
        else:
            acc_in, m_in = self.i_acc, self.i_m
            product = tech.ice40_product

        # control (valid, relu, requantize, s) rides along
        valid, relu, req, shift = [self.i_valid], [self.i_relu], [self.i_requantize], [self.i_s]
        for k in range(1, stages):
            for lst, shape, nm, rl in ((valid, 1, "v", False), (relu, 1, "relu", True),
                                       (req, 1, "req", True), (shift, contract.SHIFT_BITS, "s", True)):
                sig = Signal(shape, name=f"rq_{nm}{k}", reset_less=rl)
                m.d.sync += sig.eq(lst[-1])
                lst.append(sig)

        # 2-3: acc * m from chunks of acc (17 or 16 bits: one DSP each), summed one stage
        # later; acc_bits + m_bits bits hold every product of a signed and an unsigned operand
        chunks = []
        width = tech.REQUANT_CHUNK_BITS[self._dsp]
        for at in range(0, A, width):
            part = acc_in[at:min(A, at + width)]
            part = part.as_signed() if at + width >= A else part
            chunks.append((at, product(m, part, m_in, name=f"rq_pp{at}")))
        prod = Signal(signed(A + self._m_bits), name="rq_prod", reset_less=True)
        m.d.sync += prod.eq(sum(p << at for at, p in chunks))
        sign = prod[-1]
        # 4-6: the raw accumulator (acc * 1); stage 6 zeroes a requantized value's copy
        # (a synchronous reset, free in the flip-flop), so that stage 7 can OR, not mux
        raw = prod[:A]
        for k in range(4, 7):
            nxt = Signal(signed(A), name=f"rq_raw{k}", reset_less=True)
            m.d.sync += nxt.eq(Mux(req[5], 0, raw) if k == 6 else raw)
            raw = nxt
        # 2*prod: its bit s + j is prod's bit t + j with t = s - 1, so no subtractor
        # makes t; s = 0 then means "no shift": y = clamp(acc*m, lo, hi)
        twice = Cat(Const(0, 1), prod)
        top_bit = len(twice) - 1  # the sign; bits past it read as the sign too

        def bits(at, n):
            """``n`` bits of ``twice >> at`` (sign-extended)."""
            return Cat(*(twice[min(i, top_bit)] for i in range(at, at + n)))

        def mux_tree(sel, options):
            """``options[sel]`` as a binary tree of 2-way muxes; a Switch became a parallel
            AND-OR mux in Yosys, about 80 LUT4 more per unit on ECP5."""
            for b in range(len(sel)):
                options = [Mux(sel[b], hi, lo) for lo, hi in zip(options[0::2], options[1::2])]
            return options[0]

        # The flag covers bits s+a and up of twice.  Bits a .. a+6 of the coarse window go
        # to stage 4; bits from 8*(s >> 3) + a+7 up are checked here in byte groups
        # g = 0, 1, ... from a+7, group g lying above the window iff g >= s >> 3.  That
        # mask depends on s only: registered a stage early, it keeps stage 3 at "XOR
        # with the sign, OR of 8, AND mask".
        fine = a + 7  # coarse-window bits: the window and the seven bits above it
        groups = [(at, min(at + 8, top_bit)) for at in range(fine, top_bit, 8)]
        above = Signal(max(1, len(groups)), name="rq_above2", reset_less=True)
        m.d.sync += above.eq(Cat(*(shift[2][3:] <= g for g in range(len(groups)))))
        differs = Signal(max(1, len(groups)), name="rq_differs3", reset_less=True)
        m.d.sync += differs.eq(Cat(*(Cat(*(twice[i] ^ sign for i in range(lo, hi))).any() & above[g]
                                     for g, (lo, hi) in enumerate(groups))))

        # 4: coarse window, bits 8*(s >> 3) .. 8*(s >> 3) + a+6 of twice
        coarse = Signal(fine, name="rq_coarse3", reset_less=True)
        sign3 = Signal(name="rq_sign3", reset_less=True)
        m.d.sync += [coarse.eq(mux_tree(shift[3][3:], [bits(8 * v, fine) for v in range(8)])),
                     sign3.eq(sign)]

        # 5: window w = coarse bits (s & 7) .. (s & 7) + a-1, prod bits t .. t+a-1; the
        # flag: a group above, or a coarse bit a-1+j, j > s & 7, that differs from the sign
        window = Signal(a, name="rq_window4", reset_less=True)
        fine_s = shift[4][:3]
        m.d.sync += window.eq(mux_tree(fine_s, [coarse[v:v + a] for v in range(8)]))
        flag = Signal(name="rq_flag4", reset_less=True)
        sign4 = Signal(name="rq_sign4", reset_less=True)
        near = [(coarse[a - 1 + j] ^ sign3) & (fine_s < j) for j in range(1, 8)]
        m.d.sync += [flag.eq(differs.any() | Cat(*near).any()), sign4.eq(sign3)]

        # 6: without the flag half = prod >> t is (sign, w), in -2**a .. 2**a - 1, and
        # q = (half + 1) >> 1 = (sign, w[1:]) + w[0] leaves the a_bits range only upwards,
        # at w all ones.  With the flag, q >= 2**(a-1) for a positive product and
        # q <= -2**(a-1) = lo for a negative one.  So the carry chain makes q's low a
        # bits while the range is read off w beside it: no comparator after the adder.
        ones = window.all()
        hi_sat = ~sign4 & (flag | ones)
        lo_sat = sign4 & flag
        neg = sign4 & (flag | ~ones)  # q < 0; q = 0 at half = -1
        keep = req[5] & ~(relu[5] & neg)  # a requantized value that no ReLU zeroes
        q_low = Signal(a, name="rq_qlow5", reset_less=True)
        take_q = Signal(name="rq_take_q5", reset_less=True)    # the result is q
        set_hi = Signal(name="rq_set_hi5", reset_less=True)    # bits 0 .. a-2 of hi
        set_lo = Signal(name="rq_set_lo5", reset_less=True)    # bit a-1 of lo
        set_ext = Signal(name="rq_set_ext5", reset_less=True)  # the result's sign extension
        m.d.sync += [q_low.eq(Cat(window[1:], sign4) + window[0]),
                     take_q.eq(keep & ~hi_sat & ~lo_sat), set_hi.eq(keep & hi_sat),
                     set_lo.eq(keep & lo_sat), set_ext.eq(keep & neg)]

        # 7: every term is 0 unless it is the result (the raw copy is 0 for a requantized
        # value, the requant terms are 0 for a raw one), so the bits are ORed.  Above
        # a_bits the OR with one shared signal is a synchronous set of a reset-less
        # flip-flop, no LUT; o_data is meaningful only with o_valid, so it needs no reset.
        low = Signal(a, name="rq_low6", reset_less=True)
        ext = Signal(A - a, name="rq_ext6", reset_less=True)
        m.d.sync += [low.eq(Cat(*((take_q & q_low[k]) | (set_lo if k == a - 1 else set_hi)
                                  for k in range(a))) | raw[:a]),
                     ext.eq(Mux(set_ext, -1, raw[a:])),
                     self.o_valid.eq(valid[6])]
        m.d.comb += self.o_data.eq(Cat(low, ext))
        return m
