"""One processing element: a weight bank beside ``simd`` MAC lanes.

Folding (FINN MVU style): neuron ``j = g*pe + p`` of a layer lives on PE ``p``;
each issued step the PE reads one bank word (``simd`` weights of its neuron for
input fold ``f``), multiplies it lane by lane with the broadcast ``simd``
activations, sums the lanes in a registered adder tree and accumulates.  The
first fold of a group starts the accumulator from the neuron's bias, the last
one hands it to the requantization unit.

Pipeline (cycle ``k`` after the step is issued; see ``pyhdl.sizing.pe_stages``)::

    k=0  bank address        k=1  bank read data       k=2  bank output register
    k=3  weight/activation registers   k=4, 5  the same again, toward the multipliers
    k=6  products            k=6+log2(simd)  lane sum  k=7+log2(simd)  accumulator
    k=8+log2(simd)  the finished context's sum, with more than two PEs
                    (``pyhdl.sizing.finish_stages``)
    +7   requantization (that sum copied into the multipliers' input registers,
         multiply, rounding shift, clamp) -> result

(``R = pyhdl.sizing.buffer_read_stages()`` = 2 cycles of read latency: no logic
follows a block RAM's data output in the cycle it is read; ``O =
pyhdl.sizing.operand_stages()`` = 3 operand registers.)

The requant table (bias/m/s per neuron group) is two memories: the bias is read
four cycles before the accumulator takes it, m and s ``1 + finish_stages`` cycles
later, four cycles before the requant unit takes them; each is registered twice.  In ``vonneumann`` mode the PE has no bank; its
weight word arrives over the shared bus with the same timing as bank read data.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden import contract

from . import sizing, tech
from .config import ArrayConfig
from .requant import RequantUnit

__all__ = ["ProcessingElement"]


def _load_reg(m, port, name, *, reset=False):
    """``port`` (a program-load write input) registered inside the PE.  The load data
    fans out to every PE's block RAMs across the array: one register per PE lets
    each sit beside its RAMs (an ECP5 critical path without it).  The load port is
    closed while inferences run, so a write landing a cycle later meets no read."""
    reg = Signal.like(port, name=name, reset_less=not reset)
    m.d.sync += reg.eq(port)
    return reg


class ProcessingElement(wiring.Component):
    """A PE with its own weight bank (``near`` mode) or a weight input (``vonneumann``).

    Parameters
    ----------
    cfg : ArrayConfig
        Array parameters (``simd``, widths, ``bank_depth``, ``mode``).
    index : int
        PE number ``0 .. pe-1`` (names only).
    bank_init, rq_init : sequence of int
        Initial bank words and requant words (e.g. from ``pyhdl.compiler.Program``).
    lane_dsp : str
        How the lanes' products are built (:data:`pyhdl.tech.LANE_DSP`): ``"inferred"``,
        or ``"ice40_pairs"`` (two lanes and their sum per iCE40 ``SB_MAC16``, Verilog
        only; the same cycles).
    requant_dsp : str
        How the requant unit's partial products are built
        (:data:`pyhdl.tech.REQUANT_DSP`): ``"inferred"``, or ``"ice40"`` (an iCE40
        ``SB_MAC16`` per accumulator chunk, Verilog only; the same cycles).

    Members
    -------
    bank_we, bank_waddr, bank_wdata : In
        Bank write port (program load).  Absent in ``vonneumann`` mode.
    rq_we, rq_waddr, rq_wdata : In
        Requant-table write port (program load).
    step_valid, step_addr, step_first, step_last, step_ctx, step_rq, step_relu, step_requantize : In
        One issued step (stage 0): bank word, first/last fold of the group, inference
        context (whose partial sum it adds to), requant entry.
    weights : In(simd*w_bits)
        ``vonneumann`` mode only: the step's weight word, one cycle after ``step_valid``.
    act : In(simd*a_bits)
        The step's activations, ``pyhdl.sizing.buffer_read_stages()`` cycles after
        ``step_valid`` (registered here).
    result_valid, result : Out
        The neuron's requantized value (sign-extended) or raw accumulator, ``stages``
        cycles after the step that was the group's last fold.
    """

    def __init__(self, *, cfg: ArrayConfig, index: int = 0, bank_init=(), rq_init=(),
                 lane_dsp: str = "inferred", requant_dsp: str = "inferred"):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        self._lane_dsp = tech.check_lane_dsp(lane_dsp, cfg)
        self._requant_dsp = tech.check_requant_dsp(requant_dsp, m_bits=cfg.m_bits)
        self._cfg = cfg
        self._index = contract.check_bits("index", index, 0, cfg.pe - 1)
        self._bank_init = list(bank_init)
        self._rq_init = list(rq_init)
        if len(self._bank_init) > cfg.bank_depth:
            raise ValueError(f"bank_init has {len(self._bank_init)} words, bank_depth is {cfg.bank_depth}")
        if len(self._rq_init) > sizing.rq_depth(cfg):
            raise ValueError(f"rq_init has {len(self._rq_init)} words, rq_depth is {sizing.rq_depth(cfg)}")
        self._MustUse__silence = False
        wbits = cfg.simd * cfg.w_bits
        members = {
            "rq_we": In(1), "rq_waddr": In(sizing.index_bits(sizing.rq_depth(cfg))),
            "rq_wdata": In(sizing.rq_bits(cfg)),
            "step_valid": In(1), "step_addr": In(sizing.index_bits(cfg.bank_depth)),
            "step_first": In(1), "step_last": In(1), "step_ctx": In(1),
            "step_rq": In(sizing.index_bits(sizing.rq_depth(cfg))),
            "step_relu": In(1), "step_requantize": In(1),
            "act": In(cfg.simd * cfg.a_bits),
            "result_valid": Out(1), "result": Out(signed(cfg.acc_bits)),
        }
        if self.has_bank:
            members.update({"bank_we": In(1), "bank_waddr": In(sizing.index_bits(cfg.bank_depth)),
                            "bank_wdata": In(wbits)})
        else:
            members["weights"] = In(wbits)
        super().__init__(members)
        self._collisions = {mem: Signal(name=f"pe{index}_{mem}_collision")
                            for mem in (["bank"] if self.has_bank else []) + ["rq_bias", "rq_ms"]}

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def index(self) -> int:
        return self._index

    @property
    def lane_dsp(self) -> str:
        return self._lane_dsp

    @property
    def requant_dsp(self) -> str:
        return self._requant_dsp

    @property
    def has_bank(self) -> bool:
        return self._cfg.mode == "near"

    @property
    def collisions(self) -> dict:
        """Memory name (``bank``, ``rq_bias``, ``rq_ms``) -> signal high in a cycle where a read whose
        data is used meets a write to the same address.  Both memories are built
        ``collision_free`` (:func:`pyhdl.tech.ram`); simulation checks that promise
        with these.  Nothing reads them, so synthesis removes them."""
        return dict(self._collisions)

    @property
    def stages(self) -> int:
        """Issue-to-result latency (``pyhdl.sizing.pe_stages``)."""
        return sizing.pe_stages(self._cfg)

    def elaborate(self, platform):
        m = Module()
        cfg, p = self._cfg, self._index
        S, levels = cfg.simd, sizing.tree_levels(cfg)
        R = sizing.buffer_read_stages()  # k of the first operand register - 1
        F = sizing.finish_stages(cfg)
        O = sizing.operand_stages()

        # control travels beside the data; index k = valid during issue cycle + k
        fields = {"valid": 1, "first": 1, "last": 1, "ctx": 1, "rq": len(self.step_rq), "relu": 1,
                  "requantize": 1}
        src = {"valid": self.step_valid, "first": self.step_first, "last": self.step_last,
               "ctx": self.step_ctx,
               "rq": self.step_rq, "relu": self.step_relu, "requantize": self.step_requantize}
        ctl = [src]
        for k in range(1, R + O + 2 + F + levels):
            stage = {}
            for name, width in fields.items():
                sig = Signal(width, name=f"pe{p}_{name}{k}", reset_less=name != "valid")
                m.d.sync += sig.eq(ctl[-1][name])
                stage[name] = sig
            ctl.append(stage)

        # k=1: weight word (bank read data or bus)
        if self.has_bank:
            # written only by the load port, which is closed while inferences are in
            # flight (load.ready = ~busy), and read only by issued steps
            bank = tech.ram(shape=unsigned(S * cfg.w_bits), depth=cfg.bank_depth,
                            init=self._bank_init, name=f"bank{p}", collision_free=True)
            m.submodules[f"bank{p}"] = bank
            wp = bank.write_port()
            m.d.comb += [wp.en.eq(_load_reg(m, self.bank_we, f"pe{p}_bank_we", reset=True)),
                         wp.addr.eq(_load_reg(m, self.bank_waddr, f"pe{p}_bank_waddr")),
                         wp.data.eq(_load_reg(m, self.bank_wdata, f"pe{p}_bank_wdata"))]
            rp = bank.read_port(transparent_for=())
            m.d.comb += [rp.addr.eq(self.step_addr), rp.en.eq(self.step_valid)]
            m.d.comb += self._collisions["bank"].eq(rp.en & wp.en & (rp.addr == wp.addr))
            word = rp.data
        else:
            word = self.weights

        # k=2 .. R: the bank's output register(s), so the weights keep pace with the
        # activations, which come from registered buffer reads
        for k in range(2, R + 1):
            reg = Signal(S * cfg.w_bits, name=f"pe{p}_bank_out{k}", reset_less=True)
            m.d.sync += reg.eq(word)
            word = reg

        # k=R+1 .. R+O: registered weights and activations; the last pair has only its
        # multipliers to reach, so placement can put it beside them.  The iCE40 pairs'
        # DSPs hold that last pair in their own input registers (A_REG, B_REG).
        pairs = self._lane_dsp == "ice40_pairs"
        w_r, a_r = word, self.act
        for k in range(1, O + 1 - pairs):
            w_k = Signal(S * cfg.w_bits, name=f"pe{p}_w{k}", reset_less=True)
            a_k = Signal(S * cfg.a_bits, name=f"pe{p}_a{k}", reset_less=True)
            m.d.sync += [w_k.eq(w_r), a_k.eq(a_r)]
            w_r, a_r = w_k, a_k

        def lanes(w, a, s):
            return (w[s * cfg.w_bits:(s + 1) * cfg.w_bits].as_signed(),
                    a[s * cfg.a_bits:(s + 1) * cfg.a_bits].as_signed())

        # k=R+O+1: products
        terms = []
        first_level = 0
        if pairs:
            # k=R+O+2 already: each DSP takes the operands of stage R+O-1 into its own
            # input registers (stage R+O) and gives the sum of two lanes' products
            for s in range(0, S, 2):
                terms.append(tech.ice40_pair_sum(m, *lanes(w_r, a_r, s), *lanes(w_r, a_r, s + 1),
                                                 name=f"pe{p}_sum0_{s // 2}"))
            first_level = 1
        else:
            for s in range(S):
                terms.append(tech.registered_product(m, *lanes(w_r, a_r, s), name=f"pe{p}_prod{s}"))

        # k=R+O+1+levels: registered adder tree
        for level in range(first_level, levels):
            nxt = []
            for i in range(0, len(terms), 2):
                t = Signal(signed(len(terms[i]) + 1), name=f"pe{p}_sum{level}_{i // 2}", reset_less=True)
                m.d.sync += t.eq(terms[i] + terms[i + 1])
                nxt.append(t)
            terms = nxt
        lane_sum = terms[0]

        # The requant table is two memories at the same addresses: the bias, read so
        # that it arrives with the lane sum, and m | s, read so that they arrive with
        # the finished accumulator (every step carries its own table index, so m and s
        # need no latching with a group's last fold).  Each read is registered twice:
        # the first register becomes the block RAM's own output register
        # (pyhdl.fpga.regpack); the bias's second sits beside the accumulator (the
        # route from the RAM to the accumulator's adder, 3.2 ns on ECP5, is a path of
        # its own), m's second makes it 1 for a layer that does not requantize (the
        # requant unit then reads the raw accumulator off its product).  That is a
        # synchronous set/reset of this flip-flop; in the unit's input register, which
        # the ECP5 multipliers take in, it would keep them from taking it.
        ms_bits = cfg.m_bits + contract.SHIFT_BITS
        rq_we = _load_reg(m, self.rq_we, f"pe{p}_rq_we", reset=True)
        rq_waddr = _load_reg(m, self.rq_waddr, f"pe{p}_rq_waddr")
        rq_wdata = _load_reg(m, self.rq_wdata, f"pe{p}_rq_wdata")
        read = {}
        for what, lo, width, k in (("bias", 0, cfg.acc_bits, R + O - 2 + levels),
                                   ("ms", cfg.acc_bits, ms_bits, R + O - 1 + F + levels)):
            mem = tech.ram(shape=unsigned(width), depth=sizing.rq_depth(cfg),
                           init=[(w >> lo) & ((1 << width) - 1) for w in self._rq_init],
                           name=f"rq_{what}{p}", collision_free=True)  # as the bank
            m.submodules[f"rq_{what}{p}"] = mem
            wport = mem.write_port()
            m.d.comb += [wport.en.eq(rq_we), wport.addr.eq(rq_waddr),
                         wport.data.eq(rq_wdata[lo:lo + width])]
            rport = mem.read_port(transparent_for=())
            m.d.comb += [rport.addr.eq(ctl[k]["rq"]),
                         self._collisions[f"rq_{what}"].eq(
                             ctl[k]["valid"] & wport.en & (rport.addr == wport.addr))]
            first = Signal(width, name=f"pe{p}_rq_{what}_read", reset_less=True)
            m.d.sync += first.eq(rport.data)
            read[what] = first
        bias = Signal(signed(cfg.acc_bits), name=f"pe{p}_rq_bias", reset_less=True)
        mult = Signal(cfg.m_bits, name=f"pe{p}_rq_m", reset_less=True)
        shift = Signal(contract.SHIFT_BITS, name=f"pe{p}_rq_s", reset_less=True)
        c, c_done = ctl[R + O + 1 + levels], ctl[R + O + 1 + F + levels]
        m.d.sync += [bias.eq(read["bias"]), shift.eq(read["ms"][cfg.m_bits:]),
                     mult.eq(Mux(c_done["requantize"], read["ms"][:cfg.m_bits], 1))]

        # k=R+O+2+levels: accumulator, starting from the bias on the group's first fold
        # the two inference contexts' steps interleave in any order, each context
        # with its own partial sum and its own adder: a shared adder needs the context
        # select and the bias select in front of its carry chain, two LUT levels in the
        # accumulator's loop on the UP5K instead of one
        accs = [Signal(signed(cfg.acc_bits), name=f"pe{p}_acc{k}", reset_less=True) for k in range(2)]
        # Each accumulator's "first fold" and "add" flags are registers of its own, decoded
        # from the stage before with the step's context: one `first` for both contexts'
        # bias selects fanned out to every accumulator bit (96 loads on the UP5K) and
        # limited the small config's PEs alone there (docs/fpga.md)
        before = ctl[R + O + levels]
        for k in range(2):
            first_k = Signal(name=f"pe{p}_first_acc{k}", reset_less=True)
            add_k = Signal(name=f"pe{p}_add_acc{k}")
            m.d.sync += [first_k.eq(before["first"] & (before["ctx"] == k)),
                         add_k.eq(before["valid"] & (before["ctx"] == k))]
            acc_sum = Signal(signed(cfg.acc_bits), name=f"pe{p}_acc_next{k}")
            m.d.comb += acc_sum.eq(Mux(first_k, bias, accs[k]) + lane_sum)
            with m.If(add_k):
                m.d.sync += accs[k].eq(acc_sum)
        # +finish_stages: the finished context's sum, selected into a register of its
        # own: from the accumulators through the select straight into the requant
        # multipliers' input registers was one LUT with 6.4-7.5 ns of routing to the
        # DSPs at 8x8 on ECP5 (sizing.finish_stages)
        if F:
            finished = Signal(signed(cfg.acc_bits), name=f"pe{p}_finished", reset_less=True)
            m.d.sync += finished.eq(Mux(c_done["ctx"], accs[1], accs[0]))
        else:
            done_ctx = Signal(name=f"pe{p}_done_ctx", reset_less=True)
            m.d.sync += done_ctx.eq(c["ctx"])
            finished = Mux(done_ctx, accs[1], accs[0])
        done = Signal(name=f"pe{p}_done")
        flags = Signal(2, name=f"pe{p}_flags", reset_less=True)
        m.d.sync += [done.eq(c_done["valid"] & c_done["last"]),
                     flags.eq(c_done["relu"] | c_done["requantize"] << 1)]

        # +requant_stages: requantization, from a copy of the accumulator in its input
        # registers (the accumulator itself also feeds back into its adder)
        m.submodules[f"requant{p}"] = unit = RequantUnit(
            acc_bits=cfg.acc_bits, m_bits=cfg.m_bits, a_bits=cfg.a_bits, dsp=self._requant_dsp)
        m.d.comb += [unit.i_valid.eq(done), unit.i_acc.eq(finished), unit.i_m.eq(mult), unit.i_s.eq(shift),
                     unit.i_relu.eq(flags[0]), unit.i_requantize.eq(flags[1]),
                     self.result_valid.eq(unit.o_valid), self.result.eq(unit.o_data)]
        return m
