"""``NmcArray``: the near-memory MAC array top level (ports: docs/hardware.md).

Folding: a layer of ``N`` inputs and ``M`` outputs runs as ``G = ceil(M/pe)``
neuron groups of ``F = ceil(N/simd)`` input folds; one step per cycle issues
fold ``f`` of group ``g`` to every PE at once (PE ``p`` computes neuron
``g*pe + p`` from its own bank word ``bank_base + g*F + f``).  A layer costs
``G*F`` issue cycles; the sequencer moves to the next layer (or the next
inference) without a bubble and only waits where data is really missing:

* layer 0 fold ``f`` waits for input beat ``f`` (input and compute overlap);
* the first fold of a later layer waits until enough cycles have passed since its
  inference's last step that every group of the previous layer that the first group
  reads is written back by the time it reads it (``pyhdl.sizing.countdown_wait``,
  decoded from each descriptor as it is loaded);
* the last layer's first step waits for a free output-buffer slot.

Two inference contexts (by vector parity) share the pipeline: where the oldest
inference (A) would wait for a previous layer's write-back at a group boundary,
the next vector (B) runs a whole layer-0 group instead, so back to back the
array issues a step every cycle.  Every decision is registered once before it
drives the memories and PEs (``pyhdl.sizing.issue_stages``).

Activation storage uses ``B = max(pe, simd)`` lane memories: element ``i`` is in
lane ``i % B``, word ``i // B``.  The input buffer has two slots (the next vector
streams in while the current one is used), the hidden activations ping-pong
between two buffers per context, and the output buffer has two slots drained to
``o_stream`` one result per beat while the next inference computes.

The exact cycle behaviour is ``pyhdl.sizing.schedule``; the counters agree with it.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from . import sizing, tech
from .config import ArrayConfig
from .pe import ProcessingElement

__all__ = ["NmcArray"]


def _log2(n: int) -> int:
    return (n - 1).bit_length()


class NmcArray(wiring.Component):
    """The array: ``pe`` processing elements of ``simd`` MAC lanes each.

    Parameters
    ----------
    cfg : ArrayConfig
        Array parameters.
    program : pyhdl.compiler.Program or None
        When given, the weight banks, requant tables, descriptor table and
        ``n_layers`` start out holding this program (memory init), so no load is
        needed, e.g. for a bitstream with the model baked in.
    lane_dsp : str
        How the MAC lanes' products are built (:data:`pyhdl.tech.LANE_DSP`):
        ``"inferred"`` (the committed Verilog, any target) or ``"ice40_pairs"`` (two
        lanes per iCE40 ``SB_MAC16``, :func:`pyhdl.tech.ice40_pair_sum`; Verilog only,
        cycle for cycle the same array).  The Amaranth simulator does not refuse the
        instance, it leaves its outputs at 0: :func:`pyhdl.amsim.run_array` refuses such
        an array instead.

    Members
    -------
    load : In(stream.Signature(StructLayout({"addr": 32, "data": load_data_bits})))
        Program load (docs/hardware.md, memory map).
    i_stream : In(stream.Signature(simd*a_bits))
        Input activations, ``simd`` lanes per beat.
    o_stream : Out(stream.Signature(StructLayout({"data": signed(acc_bits), "last": 1})))
        Results, one per beat.
    stat_addr : In(4)
    stat_data : Out(32)
        Performance counter ``stat_addr``.
    busy, done : Out(1)
    """

    def __init__(self, cfg: ArrayConfig, *, program=None, lane_dsp: str = "inferred"):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        if program is not None and getattr(program, "cfg", None) != cfg:
            raise ValueError("program was compiled for a different ArrayConfig")
        self._lane_dsp = tech.check_lane_dsp(lane_dsp, cfg)
        self._MustUse__silence = False
        self._cfg = cfg
        self._program = program
        super().__init__({
            "load": In(stream.Signature(data.StructLayout({
                "addr": 32, "data": sizing.load_data_bits(cfg)}))),
            "i_stream": In(stream.Signature(cfg.simd * cfg.a_bits)),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "data": signed(cfg.acc_bits), "last": 1}))),
            "stat_addr": In(4),
            "stat_data": Out(32),
            "busy": Out(1),
            "done": Out(1),
        })
        # the PEs are made here so that their collision flags are known before
        # elaboration (and stay inside the PE: wired to the top, they would become
        # ports that a kept PE hierarchy could not remove)
        self._pes = [ProcessingElement(cfg=cfg, index=p,
                                       bank_init=program.banks[p] if program else (),
                                       rq_init=program.requant[p] if program else (),
                                       lane_dsp=lane_dsp)
                     for p in range(cfg.pe)]
        for pe in self._pes:
            pe._MustUse__silence = True  # the array's own must-use warning covers them
        self._issued = Signal(name="issued")
        mems = ["inbuf", "actbuf"] + [f"outbuf{p}" for p in range(cfg.pe)]
        self._collisions = {mem: Signal(name=f"{mem}_collision") for mem in mems}
        for p, pe in enumerate(self._pes):
            self._collisions.update({f"{mem}{p}": flag for mem, flag in pe.collisions.items()})
        # with several beats per input-buffer word, the next beat may be written into
        # the word a step is reading (other lanes, same cycle)
        self._collision_free = frozenset(mem for mem in self._collisions
                                         if mem != "inbuf" or sizing.lane_ratio(cfg) == 1)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def lane_dsp(self) -> str:
        """How the MAC lanes are built (:data:`pyhdl.tech.LANE_DSP`)."""
        return self._lane_dsp

    @property
    def program(self):
        return self._program

    @property
    def collisions(self) -> dict:
        """Memory name -> signal high in a cycle where a read whose data is used meets
        a write to the same address.  Every memory in ``collision_free`` has one, and
        so has the input buffer, which is not collision free when a word holds several
        beats (``lane_ratio > 1``); simulation checks the promise with these
        (``tests/test_hw_collisions.py``).
        Nothing reads them, so synthesis removes them."""
        return dict(self._collisions)

    @property
    def issued(self) -> Signal:
        """High in a cycle where the sequencer issues a step; simulation compares the
        cycles with ``pyhdl.sizing.schedule`` (``tests/test_hw_array.py``).  Nothing
        reads it, so synthesis removes it."""
        return self._issued

    @property
    def collision_free(self) -> frozenset:
        """Names of the memories built ``collision_free`` (:func:`pyhdl.tech.ram`)."""
        return self._collision_free

    @property
    def stages(self) -> int:
        """Issue-decision-to-write-back latency of a step (``pyhdl.sizing.writeback_latency``)."""
        return sizing.writeback_latency(self._cfg)

    def _vn_init(self, width, per, words):
        """Shared weight memory contents of ``vonneumann`` mode from the program's banks."""
        cfg, banks = self._cfg, self._program.banks
        K, SW = sizing.bus_words_per_step(cfg), cfg.simd * cfg.w_bits
        depth = max(len(b) for b in banks)
        init = [0] * (depth * K)
        for p, bank in enumerate(banks):
            for i, w in enumerate(bank):
                if words == 1:
                    init[i * K + p // per] |= w << ((p % per) * SW)
                else:
                    for j in range(words):
                        init[i * K + p * words + j] = w >> (j * width) & (2**width - 1)
        return init

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        P, S = cfg.pe, cfg.simd
        B, R, Q = sizing.lanes(cfg), sizing.lane_ratio(cfg), sizing.lanes(cfg) // cfg.pe
        AW, OW = sizing.act_words(cfg), sizing.out_words(cfg)
        W = sizing.pe_stages(cfg)
        prog = self._program
        feat_bits = cfg.max_features.bit_length()
        bank_bits = sizing.index_bits(cfg.bank_depth)
        rq_bits = sizing.index_bits(sizing.rq_depth(cfg))
        layer_bits = max(1, cfg.max_layers.bit_length())
        group_bits = feat_bits  # groups and folds are <= max_features

        # ---- program memories -------------------------------------------------------
        pes = self._pes
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe
        desc_mem = tech.ram(shape=unsigned(sizing.descriptor_bits(cfg)), depth=cfg.max_layers,
                            init=prog.descriptors if prog else (), name="descriptors")
        m.submodules.descriptors = desc_mem
        # each descriptor's step counts, decoded as it is loaded (sizing.descriptor_steps)
        step_fields = sizing.descriptor_step_fields(cfg)
        wait_bits = dict(step_fields)["wait_next"]
        steps_mem = tech.ram(shape=unsigned(sum(w for _, w in step_fields)), depth=cfg.max_layers,
                             init=[sizing.pack_descriptor_steps(cfg, d) for d in prog.descriptors] if prog else (),
                             name="descriptor_steps")
        m.submodules.descriptor_steps = steps_mem
        n_init = len(prog.descriptors) if prog else 0
        # the layer count (control word) is kept only as what the sequencer asks of it:
        # no adder or compare on the way from a register into the issue decision
        has_layers = Signal(name="has_layers", reset_less=True, init=n_init != 0)
        last_layer = Signal(signed(layer_bits + 1), name="last_layer", reset_less=True, init=n_init - 1)

        def fields(word, layout=sizing.descriptor_fields(cfg)):
            out, at = {}, 0
            for name, width in layout:
                out[name] = word[at:at + width]
                at += width
            return out

        # ---- load port ------------------------------------------------------------
        # The load is registered as it is accepted (payload and handshake), and every
        # write, the sequencer restart and the counter clear act a cycle later, from the
        # registers: no path runs from the load handshake into the memories or the
        # sequencer.  The control words are decoded from the port on arrival.
        busy = Signal(name="busy_r")
        vector_start_r = Signal(name="vector_start_r")
        ld = Signal.like(self.load.payload, name="load_r", reset_less=True)
        ld_fire = Signal(name="load_write")  # ld is written in this cycle
        region, index, word = ld.addr[28:32], ld.addr[20:28], ld.addr[0:20]
        clear = Signal(name="clear_counters")
        load_hold = Signal(name="load_hold")  # a multi-cycle weight write in progress
        # an input beat and a program write never land in one cycle: the beat would be
        # counted against the program being replaced.  An offered beat goes first (a
        # held load cannot starve a vector that has started; busy then closes the port,
        # and vector_start_r covers the cycle before busy rises); a beat waits while a
        # write lands (i_stream.ready below)
        m.d.comb += self.load.ready.eq(~busy & ~vector_start_r & ~load_hold & ~(self.i_stream.valid & has_layers))
        m.d.sync += [ld.eq(self.load.payload), ld_fire.eq(self.load.valid & self.load.ready)]
        arriving = self.load.payload
        ctl_word = Signal(name="load_r_is_control", reset_less=True)
        ctl_n_layers = Signal(name="load_r_is_n_layers", reset_less=True)
        ctl_clear = Signal(name="load_r_is_clear", reset_less=True)
        # n = min(data, max_layers): written as OR trees and a narrow subtract, not
        # a compare and subtract as wide as the load data
        n_low = arriving.data[:layer_bits]
        n_clamp = (arriving.data[layer_bits:] != 0) | (n_low > cfg.max_layers)
        n_any = Signal(name="load_r_has_layers", reset_less=True)
        n_last = Signal.like(last_layer, name="load_r_last_layer", reset_less=True)
        # a descriptor write (and whether it is layer 0's), decoded on arrival too: the
        # address compare is a carry chain as wide as the word field
        desc_word = Signal(name="load_r_is_descriptor", reset_less=True)
        desc_word0 = Signal(name="load_r_is_descriptor0", reset_less=True)
        m.d.sync += [desc_word.eq((arriving.addr[28:32] == sizing.REGION_DESCRIPTOR)
                                  & (arriving.addr[0:20] < cfg.max_layers)),
                     desc_word0.eq((arriving.addr[28:32] == sizing.REGION_DESCRIPTOR)
                                   & (arriving.addr[0:20] == 0))]
        m.d.sync += [ctl_word.eq(arriving.addr[28:32] == sizing.REGION_CONTROL),
                     ctl_n_layers.eq(arriving.addr[0:20] == sizing.CONTROL_N_LAYERS),
                     ctl_clear.eq(arriving.addr[0:20] == sizing.CONTROL_CLEAR),
                     n_any.eq(arriving.data != 0),
                     n_last.eq(Mux(n_clamp, cfg.max_layers - 1, n_low - 1))]
        vn = cfg.mode == "vonneumann"
        K = sizing.bus_words_per_step(cfg)
        if vn:
            vn_width, vn_per, vn_words = sizing.vn_layout(cfg)
            SW = S * cfg.w_bits
            wmem = tech.ram(shape=unsigned(vn_width), depth=cfg.bank_depth * K,
                            init=self._vn_init(vn_width, vn_per, vn_words) if prog else (),
                            name="weights")
            m.submodules.weights = wmem
            # region 0 writes: one PE word into its slot of the shared memory; a PE word
            # wider than the bus is written one bus word per cycle (load.ready low meanwhile)
            wwp = wmem.write_port(granularity=SW if vn_words == 1 else vn_width)
            part = Signal(range(max(2, vn_words)), name="vn_load_part")
            part_data = Signal(SW, name="vn_load_data", reset_less=True)
            part_base = Signal(len(wwp.addr), name="vn_load_addr", reset_less=True)
            bank_hit = ld_fire & (region == sizing.REGION_BANK) & (index < P)
            if vn_words == 1:
                m.d.comb += [wwp.addr.eq(word * K + index // vn_per),
                             wwp.data.eq(ld.data[:SW].replicate(vn_per)),
                             wwp.en.eq(Mux(bank_hit, 1 << (index % vn_per), 0))]
            else:
                with m.If(part != 0):
                    m.d.comb += [wwp.addr.eq(part_base + part), wwp.en.eq(1),
                                 wwp.data.eq(part_data.word_select(part, vn_width))]
                    m.d.sync += part.eq(Mux(part == vn_words - 1, 0, part + 1))
                with m.Elif(bank_hit):
                    m.d.comb += [wwp.addr.eq(word * K + index * vn_words), wwp.en.eq(1),
                                 wwp.data.eq(ld.data[:vn_width])]
                    m.d.sync += [part.eq(1), part_data.eq(ld.data[:SW]),
                                 part_base.eq(word * K + index * vn_words)]
            if vn_words > 1:
                # the next load would land while this word's later parts are written
                m.d.comb += load_hold.eq((part != 0) | bank_hit)
        for p, pe in enumerate(pes):
            hit = ld_fire & (index == p)
            if pe.has_bank:
                m.d.comb += [pe.bank_we.eq(hit & (region == sizing.REGION_BANK)),
                             pe.bank_waddr.eq(word), pe.bank_wdata.eq(ld.data)]
            m.d.comb += [pe.rq_we.eq(hit & (region == sizing.REGION_REQUANT)),
                         pe.rq_waddr.eq(word), pe.rq_wdata.eq(ld.data)]
        dwp, swp = desc_mem.write_port(), steps_mem.write_port()
        ld_desc = fields(ld.data)
        ld_steps = sizing.descriptor_steps(cfg, ld_desc["in_features"], ld_desc["out_features"])
        # the countdown wait is decoded over two cycles (two carry chains and two
        # selects in all): its distance on arrival, the wait from that register
        arriving_desc = fields(arriving.data)
        ld_distance = Signal(range(sizing.ceil_div(sizing.readable_after(cfg), K) + 1),
                             name="load_r_countdown_distance", reset_less=True)
        m.d.sync += ld_distance.eq(sizing.countdown_distance(cfg, arriving_desc["in_features"],
                                                             arriving_desc["out_features"]))
        ld_steps["wait_next"] = sizing.countdown_wait_from(cfg, ld_distance)
        desc_we = ld_fire & desc_word
        for wp, data in ((dwp, ld.data), (swp, Cat(*[ld_steps[n][:w] for n, w in step_fields]))):
            m.d.comb += [wp.en.eq(desc_we),
                         wp.addr.eq(word), wp.data.eq(data)]
        with m.If(ld_fire & ctl_word):
            with m.If(ctl_n_layers):
                m.d.sync += [has_layers.eq(n_any), last_layer.eq(n_last)]
            with m.If(ctl_clear):
                m.d.comb += clear.eq(1)

        # descriptor views that do not depend on the sequencer position
        d0_rp = desc_mem.read_port(domain="comb")
        dl_rp = desc_mem.read_port(domain="comb")
        m.d.comb += [d0_rp.addr.eq(0), dl_rp.addr.eq(last_layer)]
        d0 = fields(d0_rp.data)
        # layer 0's step counts (input beats per vector, groups); the sequencer's flags
        # compare against the values they take next cycle
        d0_steps = sizing.descriptor_steps(cfg, d0["in_features"], d0["out_features"])
        g0_next, f0_next_m1, g0_next_m1 = d0_steps["groups"], d0_steps["folds_m1"], d0_steps["groups_m1"]
        # the input side only asks "is this the vector's last beat": beats == folds - 1,
        # an equality against a register rather than an increment before a compare
        # it is taken from the load data when descriptor 0 is written, so that a beat
        # accepted in the next cycle already sees the new layer 0, and it survives reset
        # (like the program), so that a beat right after reset sees it too
        # the wait of layer 1 (pyhdl.sizing.countdown_wait after layer 0), for a hand-over
        # straight into layer 1, is kept the same way (it is read long after any load)
        first = sizing.unpack_descriptor(cfg, prog.descriptors[0] if prog and prog.descriptors else 0)
        first_steps = sizing.descriptor_steps(cfg, first["in_features"], first["out_features"])
        f0_m1 = Signal(signed(feat_bits + 1), name="in_folds_m1", init=first_steps["folds_m1"], reset_less=True)
        wait1 = Signal(wait_bits, name="wait1", init=first_steps["wait_next"], reset_less=True)
        with m.If(ld_fire & desc_word0):
            m.d.sync += [f0_m1.eq(ld_steps["folds_m1"]), wait1.eq(ld_steps["wait_next"])]
        with m.Else():
            m.d.sync += f0_m1.eq(f0_next_m1)
        out_n = Signal(feat_bits, name="out_n")  # results per inference
        m.d.sync += out_n.eq(fields(dl_rp.data)["out_features"])

        # ---- input buffer: two slots, written by i_stream -----------------------------
        full = [Signal(name=f"in_full{s}") for s in range(2)]
        beats = [Signal(feat_bits, name=f"in_beats{s}") for s in range(2)]
        ws = Signal(name="in_wslot")
        # one word holds all B lanes (lane l in bits l*a_bits..): every lane is read at
        # the same address, and writes enable their lanes through the byte-style mask
        # a fold is read only once its beat is in (in_ok), and a released slot is written
        # again only after its last read (in_release_r)
        inbuf = tech.ram(shape=unsigned(B * cfg.a_bits), depth=2 * AW, name="inbuf", style="block",
                         collision_free="inbuf" in self._collision_free)
        m.submodules.inbuf = inbuf
        in_wp = inbuf.write_port(granularity=cfg.a_bits)
        in_rp = inbuf.read_port(transparent_for=())
        wbeats = Mux(ws, beats[1], beats[0])
        wfull = Mux(ws, full[1], full[0])
        in_fire = Signal(name="in_fire")
        m.d.comb += [self.i_stream.ready.eq(~wfull & has_layers & ~ld_fire),
                     in_fire.eq(self.i_stream.valid & self.i_stream.ready)]
        in_word = (wbeats >> _log2(R)) + Mux(ws, AW, 0)
        in_blk = wbeats[:_log2(R)] if R > 1 else Const(0)
        m.d.comb += [in_wp.addr.eq(in_word), in_wp.data.eq(self.i_stream.payload.replicate(R)),
                     in_wp.en.eq(Cat(*[in_fire & (in_blk == l // S) for l in range(B)]))]
        vector_start = Signal(name="vector_start")
        m.d.comb += vector_start.eq(in_fire & (wbeats == 0))
        in_release = [Signal(name=f"in_release{c}") for c in range(2)]  # layer 0 of slot issued
        # the slot takes new beats issue_stages cycles after the release: the released
        # vector's last step reads it that many cycles after its issue, and a beat
        # written then would meet that read (the input buffer is collision free only so)
        in_release_r = [in_release[c] for c in range(2)]
        for k in range(1, sizing.issue_stages() + 1):
            delayed = [Signal(name=f"in_release_r{k}_{c}") for c in range(2)]
            m.d.sync += [delayed[c].eq(in_release_r[c]) for c in range(2)]
            in_release_r = delayed
            if k == 1:
                # the beat count restarts a cycle after the release, so the decision
                # does not drive it: nothing reads a released slot's count before its
                # context is at layer 0 again (docs/design.md)
                beats_restart = delayed
        for c in range(2):
            with m.If(in_fire & (ws == c)):
                m.d.sync += beats[c].eq(beats[c] + 1)
                with m.If(beats[c] == f0_m1):
                    m.d.sync += full[c].eq(1)
            with m.If(beats_restart[c]):
                m.d.sync += beats[c].eq(0)
            with m.If(in_release_r[c]):
                m.d.sync += full[c].eq(0)
        with m.If(in_fire & (wbeats == f0_m1)):
            m.d.sync += ws.eq(~ws)

        # ---- hidden activation buffers: a ping-pong pair per inference context ----------
        # a word is read only after all its producers are written (raw_ok), and written
        # again only by the layer after the one reading it, whose first write-back comes
        # `stages` cycles after its first step, long after the reader's last read
        actbuf = tech.ram(shape=unsigned(B * cfg.a_bits), depth=4 * AW, name="actbuf", style="block",
                          collision_free=True)
        m.submodules.actbuf = actbuf
        act_wp = actbuf.write_port(granularity=cfg.a_bits)
        act_rp = actbuf.read_port(transparent_for=())

        # ---- output buffer: two slots of pe lanes -------------------------------------
        out_wps, out_rps = [], []
        for p in range(P):
            # read every cycle, but the data is used only for groups already written
            # (out_groups), and a slot is written again only after it is released
            mem = tech.ram(shape=signed(cfg.acc_bits), depth=2 * OW, name=f"outbuf{p}", collision_free=True)
            m.submodules[f"outbuf{p}"] = mem
            out_wps.append(mem.write_port())
            out_rps.append(mem.read_port(transparent_for=()))
        # out_full: the slot belongs to an inference until its last result is accepted;
        # out_pend: the drain has not read all of it yet.  Under backpressure the drain
        # finishes reading a slot long before its last beat leaves the FIFO, so it must
        # not take a still-full slot for a new inference's results.
        out_full = [Signal(name=f"out_full{s}") for s in range(2)]
        out_pend = [Signal(name=f"out_pending{s}") for s in range(2)]
        out_wr = [Signal(group_bits, name=f"out_groups{s}") for s in range(2)]

        # ---- sequencer ---------------------------------------------------------------
        # Inference contexts are numbered by parity (input slot, output slot and act
        # buffer pair).  Context A (`ctx`) is the oldest inference with steps left and
        # walks every layer; context B (the next vector) may run whole layer-0 groups
        # while A would otherwise wait for its previous layer's write-back.  When A
        # finishes, B's progress becomes A's starting point.
        interleave = not vn  # the bus prefetch of vonneumann mode follows A only
        loaded = Signal(name="loaded")       # cur_* hold descriptor `layer`
        layer = Signal(layer_bits, name="layer")
        g = Signal(group_bits, name="group")
        f = Signal(group_bits, name="fold")
        bank_addr = Signal(bank_bits, name="bank_addr")
        rq_addr = Signal(rq_bits, name="rq_addr")
        wr_buf = Signal(name="wr_buf")       # act buffer of the pair this layer writes
        actx = Signal(name="ctx")
        cur_last = Signal(name="cur_is_last")
        cur_relu = Signal(name="cur_relu")
        cur_req = Signal(name="cur_requantize")
        b_g = Signal(group_bits, name="b_group")
        b_f = Signal(group_bits, name="b_fold")
        b_bank = Signal(bank_bits, name="b_bank_addr")
        b_rq = Signal(rq_bits, name="b_rq_addr")
        b_own = Signal(name="b_in_group")    # B is in the middle of a group
        g0 = Signal(group_bits, name="in_groups")
        g0_m1 = Signal(signed(group_bits + 1), name="in_groups_m1", init=-1)
        m.d.sync += [g0.eq(g0_next), g0_m1.eq(g0_next_m1)]
        # equality checks of the decision, kept as registers updated with their operands
        # (see "zero flags" below): b_done = (b_g == g0), B has issued all of its layer 0
        b_done = Signal(name="b_done", init=1)  # b_g = g0 = 0 after reset
        layer0 = Signal(name="layer_is_0", init=1)
        g_zero = Signal(name="group_is_0", init=1)
        f_zero = Signal(name="fold_is_0", init=1)
        bg_zero = Signal(name="b_group_is_0", init=1)

        # descriptor of the layer A goes to next
        nxt_rp = desc_mem.read_port(domain="comb")
        nxt_idx = Signal(layer_bits, name="next_layer")
        m.d.comb += [nxt_idx.eq(Mux(~loaded, 0, Mux(cur_last, Mux(b_done, 1, 0), layer + 1))),
                     nxt_rp.addr.eq(nxt_idx)]
        nd = fields(nxt_rp.data)
        # its step counts come decoded from their own memory: the next-layer flags are a
        # memory read and a select, with no carry chain
        nxt_steps_rp = steps_mem.read_port(domain="comb")
        m.d.comb += nxt_steps_rp.addr.eq(nxt_idx)
        ns = fields(nxt_steps_rp.data, step_fields)
        F_nd_m1, G_nd_m1 = ns["folds_m1"].as_signed(), ns["groups_m1"].as_signed()
        F_nd_is1, G_nd_is1 = ns["one_fold"], ns["one_group"]

        # readiness of a later layer's first group: per context, its age, the cycles
        # since its last step as they will be next cycle if it does not issue, counted
        # up to `full_age` (all its write-backs are in), against the wait of the layer A
        # is in (wait_cur), of the layer after it (cur_wait_next, decoded with its
        # descriptor) and of layer 1 (wait1, from descriptor 0's load).  A group's later
        # folds never wait: the wait covers every fold (pyhdl.sizing.countdown_wait).
        # The age is 2 after a step in the last cycle (issued_r), else age_next.
        full_age = sizing.readable_after(cfg)
        age_next = [Signal(range(full_age + 1), name=f"age_next{c}", init=full_age) for c in range(2)]
        issued_r = [Signal(name=f"issued_r{c}") for c in range(2)]
        wait_cur = Signal(wait_bits, name="wait_cur")
        cur_wait_next = Signal(wait_bits, name="cur_wait_next")
        # f + 1, b_f + 1 and b_g + 1 kept as registers, so no candidate or flag has an
        # adder before its compare (see "readiness flags" and "zero flags" below)
        f1 = Signal(group_bits + 1, name="fold_plus1", init=1)
        bf1 = Signal(group_bits + 1, name="b_fold_plus1", init=1)
        bg1 = Signal(group_bits + 1, name="b_group_plus1", init=1)

        def of_a(pair):
            """The element of a per-context pair that belongs to context A (``ctx``)."""
            return Mux(actx, pair[1], pair[0])

        def of_b(pair):
            return Mux(actx, pair[0], pair[1])

        abeats = of_a(beats)
        # The decision reads its checks from registers (Fmax: a carry chain before the
        # arbitration and its fan-out was the critical path), computed a cycle ahead for
        # each move the sequencer can make (see "readiness" below) and selected by the
        # move it made.  Whenever read, they equal:
        #   data_ok  layer 0: beats[A] > f (the fold's input beat is in); later layers:
        #            g != 0, f != 0, or A's age >= this layer's wait (its producers
        #            will be written when it reads them)
        #   a_calm   not (a later layer's group 0 whose producers are not all written:
        #            A's age < full_age)
        #   b_ready  beats[B] > b_f                   (B's next fold's beat is in)
        checks_names = ("data_ok", "a_calm", "b_ready")
        moves = ("stay", "b", "a_fold", "a_last_fold")  # by move code
        ready_if = {move: [Signal(name=f"{what}_if_{move}", init=what == "a_calm") for what in checks_names]
                    for move in moves}
        move_made = Signal(2, name="move_made")  # the move of last cycle, index into moves
        data_ok, a_calm, b_ready = (Array(ready_if[move][i] for move in moves)[move_made]
                                    for i in range(len(checks_names)))
        first_step = g_zero & f_zero
        out_ok = ~(cur_last & first_step & of_a(out_full))
        weights_ok = Const(1)
        if vn:
            # the next step's K bus words are fetched one per cycle; it issues with the last
            phase = Signal(range(max(2, K)), name="bus_phase")
            weights_ok = phase == K - 1
        active = Signal(name="active")
        m.d.comb += active.eq(loaded & has_layers)
        a_ok = active & data_ok & out_ok & weights_ok
        b_avail = Signal(name="b_available")
        # b_ready is beats[B] > 0 here: B is at a group boundary (b_f = 0) whenever this is read
        m.d.comb += b_avail.eq(active & ~layer0 & ~b_done & b_ready if interleave else 0)
        pick_a = Signal(name="issue_a")
        pick_b = Signal(name="issue_b")
        boundary = ~b_own & f_zero
        m.d.comb += [
            pick_b.eq(Mux(b_own, b_ready, boundary & ~(a_ok & a_calm) & b_avail)),
            pick_a.eq(~b_own & a_ok & ~(boundary & ~a_calm & b_avail)),
        ]
        issue = Signal(name="issue")
        m.d.comb += [issue.eq(pick_a | pick_b), self._issued.eq(issue)]
        # the age counts from a registered copy of the issue, so the decision drives one
        # flip-flop per context here (with the counters driven by the decision, ECP5
        # seeds 1 and 2 placed at 102.6 / 110.9 MHz, limited by the decision)
        for c in range(2):
            m.d.sync += issued_r[c].eq(pick_a & (actx == c) | pick_b & (actx != c))
            with m.If(issued_r[c]):
                m.d.sync += age_next[c].eq(min(3, full_age))
            with m.Elif(age_next[c] != full_age):
                m.d.sync += age_next[c].eq(age_next[c] + 1)
        stall_in = Signal(name="stall_input")
        stall_out = Signal(name="stall_output")
        m.d.comb += [stall_in.eq(~issue & active & Mux(b_own, 1, layer0 & ~data_ok & (abeats != 0))),
                     stall_out.eq(~issue & ~b_own & active & data_ok & ~out_ok)]

        def load_cur():
            return [cur_F_m1.eq(F_nd_m1), cur_G_m1.eq(G_nd_m1),
                    cur_last.eq(nxt_idx == last_layer),
                    cur_relu.eq(nd["relu"]), cur_req.eq(nd["requantize"]),
                    bank_addr.eq(nd["bank_base"]), rq_addr.eq(nd["rq_base"]),
                    layer.eq(nxt_idx), g.eq(0), f.eq(0), cur_wait_next.eq(ns["wait_next"])]

        def reset_b():
            return [b_g.eq(0), bg1.eq(1), b_f.eq(0), b_own.eq(0), b_bank.eq(d0["bank_base"]), b_rq.eq(d0["rq_base"])]

        # f == folds - 1, g == groups - 1, b_f == f0 - 1: registers (see "zero flags" below)
        last_fold = Signal(name="last_fold")
        last_group = Signal(name="last_group")
        b_last_fold = Signal(name="b_last_fold")
        b_last_group = Signal(name="b_last_group")  # b_g == g0 - 1
        cur_F_m1 = Signal(signed(group_bits + 1), name="cur_folds_m1", init=-1)
        cur_G_m1 = Signal(signed(group_bits + 1), name="cur_groups_m1", init=-1)
        g1 = Signal(group_bits + 1, name="group_plus1", init=1)
        with m.If(~loaded):
            m.d.sync += load_cur() + reset_b() + [loaded.eq(1), wr_buf.eq(0)]
        with m.Elif(pick_a):
            with m.If(last_fold):
                m.d.sync += [f.eq(0), g.eq(g + 1), rq_addr.eq(rq_addr + 1)]
                with m.If(last_group):
                    m.d.sync += load_cur() + [wait_cur.eq(cur_wait_next), wr_buf.eq(~wr_buf)]
                    with m.If(cur_last):
                        # hand over to the next inference, continuing where B stopped
                        m.d.sync += reset_b() + [actx.eq(~actx), wr_buf.eq(0)]
                        with m.If(b_done):
                            m.d.sync += [wait_cur.eq(wait1), wr_buf.eq(1)]
                        with m.Elif(~bg_zero):
                            m.d.sync += [g.eq(b_g), bank_addr.eq(b_bank), rq_addr.eq(b_rq)]
            with m.Else():
                m.d.sync += f.eq(f + 1)
            with m.If(~(last_fold & last_group)):
                m.d.sync += bank_addr.eq(bank_addr + 1)
        with m.Elif(pick_b):
            m.d.sync += [b_bank.eq(b_bank + 1), b_own.eq(~b_last_fold)]
            with m.If(b_last_fold):
                m.d.sync += [b_f.eq(0), b_g.eq(bg1), bg1.eq(bg1 + 1), b_rq.eq(b_rq + 1)]
            with m.Else():
                m.d.sync += b_f.eq(b_f + 1)
        for c in range(2):
            a_here, b_here = actx == c, actx != c
            m.d.comb += [
                in_release[c].eq(pick_a & a_here & layer0 & last_fold & last_group
                              | pick_b & b_here & b_last_fold & b_last_group),
            ]

        # any program write may change the current descriptor or (vonneumann) the
        # prefetched weights: start over from layer 0; clearing counters changes neither
        with m.If(ld_fire & ~(ctl_word & ctl_clear)):
            m.d.sync += loaded.eq(0)
        # A's first step of the last layer claims its output slot.  The claim is applied a
        # cycle late (registered): it only has to be visible when this slot is next
        # checked, after the other context's inference, so two cycles later at the
        # earliest; and the decision then does not drive the slot's counters directly.
        claim = Signal(name="claim_out")
        claim_ctx = Signal(name="claim_ctx")
        m.d.sync += [claim.eq(pick_a & cur_last & first_step), claim_ctx.eq(actx)]

        if vn:
            wrp = wmem.read_port(transparent_for=())
            m.d.comb += wrp.addr.eq(bank_addr * K + phase)
            with m.If(~loaded | issue):
                m.d.sync += phase.eq(0)
            with m.Elif(phase != K - 1):
                m.d.sync += phase.eq(phase + 1)
            staged = [wrp.data]
            if K > 1:
                phase_d = Signal.like(phase, name="bus_phase_d", reset_less=True)
                m.d.sync += phase_d.eq(phase)
                staging = [Signal(vn_width, name=f"bus_word{j}", reset_less=True) for j in range(K - 1)]
                for j, reg in enumerate(staging):
                    with m.If(phase_d == j):
                        m.d.sync += reg.eq(wrp.data)
                staged = staging + [wrp.data]
            step_bits = Cat(*staged)

        # The decision is registered once before it reaches the memories and PEs: the
        # issue logic (counter compares, arbitration) and the fan-out to every bank
        # address and PE then sit in different clock cycles.
        s_last = Mux(pick_b, b_last_fold, last_fold)
        rd_f = Mux(pick_b, b_f, f)
        st = {
            "addr": Mux(pick_b, b_bank, bank_addr), "first": Mux(pick_b, b_f == 0, f_zero),
            "last": s_last, "rq": Mux(pick_b, b_rq, rq_addr),
            "relu": Mux(pick_b, d0["relu"], cur_relu), "requantize": Mux(pick_b, d0["requantize"], cur_req),
            # both candidates' addresses are computed beside the decision, not after it
            "in_addr": Mux(pick_b, (b_f >> _log2(R)) + Mux(actx, 0, AW), (f >> _log2(R)) + Mux(actx, AW, 0)),
            "act_addr": (f >> _log2(R)) + Mux(actx, 2 * AW, 0) + Mux(wr_buf, 0, AW),  # A only
            "from_input": pick_b | layer0, "blk": rd_f[:_log2(R)] if R > 1 else Const(0),
            "group": Mux(pick_b, b_g, g), "par": Mux(pick_b, 0, wr_buf), "ctx": actx ^ pick_b,
            "out": pick_a & cur_last,
        }
        step = {}
        for name, value in st.items():
            width = max(1, len(value))
            step[name] = Signal(width, name=f"step_{name}", reset_less=True)
            m.d.sync += step[name].eq(value)
        step_valid = Signal(name="step_valid")
        m.d.sync += step_valid.eq(issue)
        # further copies (sizing.issue_stages): the first stays beside the sequencer, the
        # last is placed toward the banks, buffers and PEs it drives, so no net of the
        # decision's cycle has to reach across the array
        for k in range(2, sizing.issue_stages() + 1):
            nxt = {}
            for name, sig in step.items():
                nxt[name] = Signal.like(sig, name=f"step{k}_{name}")
                m.d.sync += nxt[name].eq(sig)
            valid_k = Signal(name=f"step{k}_valid")
            m.d.sync += valid_k.eq(step_valid)
            step, step_valid = nxt, valid_k

        if vn:
            # the step's last bus word arrives with the first step register; as many
            # registers as the step has bring all of them to the PEs at their stage 1
            vn_step = step_bits
            for k in range(1, sizing.issue_stages() + 1):
                reg = Signal(len(step_bits), name=f"bus_step{k}", reset_less=True)
                m.d.sync += reg.eq(vn_step)
                vn_step = reg
            for p, pe in enumerate(pes):
                if vn_words == 1:
                    at = (p // vn_per) * vn_width + (p % vn_per) * SW
                else:
                    at = p * vn_words * vn_width
                m.d.comb += pe.weights.eq(vn_step[at:at + SW])

        for pe in pes:
            m.d.comb += [pe.step_valid.eq(step_valid), pe.step_addr.eq(step["addr"]),
                         pe.step_first.eq(step["first"]), pe.step_last.eq(step["last"]),
                         pe.step_rq.eq(step["rq"]), pe.step_relu.eq(step["relu"]),
                         pe.step_requantize.eq(step["requantize"])]
        m.d.comb += [in_rp.addr.eq(step["in_addr"]), act_rp.addr.eq(step["act_addr"]),
                     in_rp.en.eq(step_valid), act_rp.en.eq(step_valid)]
        # both buffers are read on every step; only the one the step takes is used
        m.d.comb += [
            self._collisions["inbuf"].eq(
                in_rp.en & step["from_input"] & in_wp.en.any() & (in_rp.addr == in_wp.addr)),
            self._collisions["actbuf"].eq(
                act_rp.en & ~step["from_input"] & act_wp.en.any() & (act_rp.addr == act_wp.addr))]
        # read data registered straight out of the RAMs (block-RAM clock-to-out is most
        # of a clock period), then the input/hidden and block selects
        in_data = Signal(len(in_rp.data), name="rd_in_data", reset_less=True)
        act_data = Signal(len(act_rp.data), name="rd_act_data", reset_less=True)
        m.d.sync += [in_data.eq(in_rp.data), act_data.eq(act_rp.data)]
        from_input = step["from_input"]
        rd_blk = step["blk"]
        for k in range(sizing.buffer_read_stages()):
            from_input_k = Signal(name=f"rd_from_input{k + 1}", reset_less=True)
            rd_blk_k = Signal(max(1, _log2(R)), name=f"rd_block{k + 1}", reset_less=True)
            m.d.sync += [from_input_k.eq(from_input), rd_blk_k.eq(rd_blk)]
            from_input, rd_blk = from_input_k, rd_blk_k
        act_word = Signal(S * cfg.a_bits, name="act_word")
        lanes_data = Mux(from_input, in_data, act_data)
        blocks = [lanes_data[blk * S * cfg.a_bits:(blk + 1) * S * cfg.a_bits] for blk in range(R)]
        m.d.comb += act_word.eq(Array(blocks)[rd_blk] if R > 1 else blocks[0])
        for pe in pes:
            m.d.comb += pe.act.eq(act_word)

        # ---- write-back: control delayed by the PE latency -----------------------------
        wb_fields = {"valid": 1, "group": group_bits, "par": 1, "ctx": 1, "out": 1}
        stage = {"valid": step_valid & step["last"], "group": step["group"], "par": step["par"],
                 "ctx": step["ctx"], "out": step["out"]}
        for k in range(1, W + 1):
            nxt = {}
            for name, width in wb_fields.items():
                sig = Signal(width, name=f"wb_{name}{k}", reset_less=name != "valid")
                m.d.sync += sig.eq(stage[name])
                nxt[name] = sig
            stage = nxt
        wb = stage
        act_write = Signal(name="act_write")
        out_write = Signal(name="out_write")
        m.d.comb += [act_write.eq(wb["valid"] & ~wb["out"]), out_write.eq(wb["valid"] & wb["out"])]
        wb_word = (wb["group"] >> _log2(Q)) + Mux(wb["ctx"], 2 * AW, 0) + Mux(wb["par"], AW, 0)
        wb_blk = wb["group"][:_log2(Q)] if Q > 1 else Const(0)
        m.d.comb += [act_wp.addr.eq(wb_word),
                     act_wp.data.eq(Cat(*[pes[l % P].result[:cfg.a_bits] for l in range(B)])),
                     act_wp.en.eq(Cat(*[act_write & (wb_blk == l // P) for l in range(B)]))]

        # ---- readiness: next-state values of the checks, one candidate per move --------
        # Candidates are compares of registers (and of this cycle's input beat, known
        # early).  Per cycle, neither context issues (this includes a restart, ~loaded),
        # B issues, A issues within its group, or A issues its group's last fold.  Each
        # move's candidate is registered on its own and the move itself is registered beside them
        # (move_made), so the decision selects among registers after the clock
        # edge instead of before it: no path runs from the decision into a readiness
        # compare.  The candidates follow the sequencer's update rules above; where a
        # check will not be read in the next state (layer 0 for the raw_* pair, a group
        # other than 0 for raw_full, g != 0 for raw_ok) its value does not matter.
        inc = [in_fire & (ws == c) for c in range(2)]
        # beats + this cycle's beat > x  is  beats > x | beat & beats == x

        def beats_gt(x):
            """beats[c] + inc[c] > x, per context."""
            return [(beats[c] > x) | inc[c] & (beats[c] == x) for c in range(2)]

        nz = [(beats[c] != 0) | inc[c] for c in range(2)]
        a_nz, b_nz = of_a(nz), of_b(nz)
        a_beat_in, b_beat_in = of_a(beats_gt(f)), of_b(beats_gt(b_f))  # the present folds' beats
        handover = last_fold & last_group & cur_last

        # a context's age next cycle if it does not issue in this one is its age now;
        # compared per context straight from the registers, then selected
        def age_reached(wait):
            """Per context: age >= wait (the age is 2 after a step in the last cycle)."""
            return [Mux(issued_r[c], wait <= 2, age_next[c] >= wait) for c in range(2)]
        age_ok, age_ok1 = age_reached(wait_cur), age_reached(wait1)
        age_full = [~issued_r[c] & (age_next[c] == full_age) if full_age > 2 else Const(1) for c in range(2)]

        def checks(in_ok_n, raw_n, layer0_n, g_zero_n):
            """(data_ok, a_calm) of A's position next cycle."""
            raw_ok_n, raw_full_n = raw_n
            return Mux(layer0_n, in_ok_n, ~g_zero_n | raw_ok_n), Mux(~layer0_n & g_zero_n, raw_full_n, 1)

        stay_raw = (~f_zero | of_a(age_ok), of_a(age_full))
        # neither issues (a restart resets A to layer 0, group 0)
        stay = checks(Mux(loaded, a_beat_in, a_nz), stay_raw, ~loaded | layer0, ~loaded | g_zero)
        stay_b = Mux(loaded, b_beat_in, b_nz)
        # A issues.  A releases its input slot on the last fold and group of its layer 0.
        to_next_group = checks(a_nz, (Const(1), Const(0)), layer0, Const(0))
        # where A issues now, its age next cycle is 1: a next layer may start at once if
        # its wait is at most 1, a later fold of the group never waits (f != 0), and
        # nothing is all written
        to_next_layer = checks(~layer0 & a_nz, (cur_wait_next <= 1, Const(0)), Const(0), Const(1))
        to_next_fold = checks(of_a(beats_gt(f1)), (Const(1), Const(0)), layer0, g_zero)
        # hand-over: the next vector becomes A, at layer 1 if B did all of layer 0 and
        # else at B's group of layer 0; the old context becomes B at fold 0
        to_next_vector = checks(b_nz, (of_b(age_ok1), of_b(age_full)), ~b_done, b_done | bg_zero)
        # A's move on its last fold is to the next group, layer or vector; a move within
        # the group has a candidate of its own, so that no candidate is a wide select
        a_bnd = [Mux(handover, nv, Mux(last_group, nl, ng))
                 for nv, nl, ng in zip(to_next_vector, to_next_layer, to_next_group)]
        a_bnd_b = Mux(handover, ~layer0 & a_nz, b_beat_in)
        # B issues: A's position is unchanged; B leaves its slot on its last fold and group
        b_moves = checks(a_beat_in, stay_raw, layer0, g_zero)
        b_moves_b = Mux(b_last_fold, ~b_last_group & b_nz, of_b(beats_gt(bf1)))
        cand = {"stay": (*stay, stay_b), "b": (*b_moves, b_moves_b),
                "a_fold": (*to_next_fold, b_beat_in), "a_last_fold": (*a_bnd, a_bnd_b)}
        for move, values in cand.items():
            m.d.sync += [reg.eq(v) for reg, v in zip(ready_if[move], values)]
        m.d.sync += move_made.eq(Mux(loaded & pick_a, Mux(last_fold, 3, 2), Mux(loaded & pick_b, 1, 0)))

        # ---- zero flags: layer == 0, g == 0, f == 0, b_g == 0 and b_done, next-state ----
        # B's flags compare against layer 0's step counts as registers (f0_m1, g0,
        # g0_m1), not as decoded from the descriptor memory in this cycle: those lag a
        # descriptor write by a cycle, which is the cycle `loaded` is low and B is reset
        # from the decoded values (reset_b)
        b_reset = ~loaded | pick_a & handover  # reset_b()
        b_advance = loaded & ~pick_a & pick_b & b_last_fold
        # ... and the last-fold/last-group flags
        with m.If(b_reset | b_advance):
            m.d.sync += b_last_fold.eq(d0_steps["one_fold"])
        with m.Elif(loaded & ~pick_a & pick_b):
            m.d.sync += b_last_fold.eq(bf1 == f0_m1)
        with m.Else():
            m.d.sync += b_last_fold.eq(b_f == f0_m1)
        b_continues = cur_last & ~b_done & ~bg_zero  # at a hand-over A continues at g = b_g
        with m.If(~loaded):
            m.d.sync += [last_fold.eq(F_nd_is1), last_group.eq(G_nd_is1), g1.eq(1)]
        with m.Elif(pick_a & last_fold & last_group):
            # continuing B's layer 0 at b_g: its last group is b_g == g0 - 1, B's own flag
            m.d.sync += [last_fold.eq(F_nd_is1),
                         last_group.eq(Mux(b_continues, b_last_group, G_nd_is1)),
                         g1.eq(Mux(b_continues, bg1, 1))]
        with m.Elif(pick_a & last_fold):
            m.d.sync += [last_fold.eq(cur_F_m1 == 0), last_group.eq(g1 == cur_G_m1), g1.eq(g1 + 1)]
        with m.Elif(pick_a):
            m.d.sync += last_fold.eq(f1 == cur_F_m1)
        with m.If(b_reset):
            m.d.sync += [bg_zero.eq(1), b_done.eq(g0_next == 0), b_last_group.eq(d0_steps["one_group"]), bf1.eq(1)]
        with m.Elif(b_advance):
            m.d.sync += [bg_zero.eq(0), b_done.eq(bg1 == g0), b_last_group.eq(bg1 == g0_m1),
                         bf1.eq(1)]
        with m.Else():
            m.d.sync += [b_done.eq(b_g == g0), b_last_group.eq(b_g == g0_m1)]
            with m.If(loaded & ~pick_a & pick_b):
                m.d.sync += bf1.eq(bf1 + 1)
        with m.If(~loaded):
            m.d.sync += [layer0.eq(1), g_zero.eq(1), f_zero.eq(1), f1.eq(1)]
        with m.Elif(pick_a):
            m.d.sync += [f_zero.eq(last_fold), f1.eq(Mux(last_fold, 1, f1 + 1))]
            with m.If(last_fold & last_group):  # load_cur(): layer = next_layer, g = 0
                m.d.sync += [layer0.eq(cur_last & ~b_done), g_zero.eq(1)]
                with m.If(cur_last & ~b_done & ~bg_zero):  # the next vector continues at b_g
                    m.d.sync += g_zero.eq(0)
            with m.Elif(last_fold):
                m.d.sync += g_zero.eq(0)
        for p in range(P):
            m.d.comb += [out_wps[p].en.eq(out_write), out_wps[p].addr.eq(wb["group"] + Mux(wb["ctx"], OW, 0)),
                         out_wps[p].data.eq(pes[p].result)]
        for c in range(2):
            with m.If(claim & (claim_ctx == c)):
                m.d.sync += [out_full[c].eq(1), out_pend[c].eq(1), out_wr[c].eq(0)]
            with m.Elif(out_write & (wb["ctx"] == c)):
                m.d.sync += out_wr[c].eq(out_wr[c] + 1)

        # ---- drain: output buffer -> FIFO -> o_stream ----------------------------------
        # the output-buffer RAM output is registered before the lane mux (block-RAM
        # clock-to-out is the slowest path on ECP5): read, register, FIFO
        m.submodules.ofifo = ofifo = fifo.SyncFIFO(width=cfg.acc_bits + 1, depth=4)
        ds = Signal(name="drain_slot")
        de = Signal(feat_bits, name="drain_elem")
        inflight = Signal(name="drain_inflight")
        d_lane = Signal(max(1, _log2(P)), name="drain_lane", reset_less=True)
        d_last = Signal(name="drain_last", reset_less=True)
        d_full = Mux(ds, out_pend[1], out_pend[0])
        de_last = Signal(name="drain_elem_last")
        drain = Signal(name="drain_read")
        inflight2 = Signal(name="drain_inflight2")
        # The drain reads an element when its slot is pending, its group is written
        # (out_groups > de // pe) and the FIFO has room for everything in flight.  The
        # last two are registers computed a cycle ahead, with the drain's own move
        # selecting among candidates last, so the drain decision is one LUT from
        # registers and no compare sits between it and the drain's next state.
        d_avail = Signal(name="drain_available")
        d_room = Signal(name="drain_room", init=1)
        m.d.comb += drain.eq(d_full & d_avail & d_room)
        # reads in flight plus results in the FIFO (= w_level + inflight + inflight2)
        d_occ = Signal(range(5), name="drain_occupancy")
        r_fire = ofifo.r_stream.valid & ofifo.r_stream.ready
        m.d.sync += [d_occ.eq(d_occ + drain - r_fire),
                     d_room.eq(Mux(drain, d_occ - r_fire < 3, d_occ - r_fire < 4))]
        # groups written per slot as they will be next cycle, compared against the
        # drain's group now (de // pe) and after its move (de // pe + 1, or group 0 of
        # the other slot)
        # (written as compares of the registers, not of their sum: x + inc > y is
        # x > y | inc & x == y; a claim empties the slot)
        claimed = [claim & (claim_ctx == c) for c in range(2)]
        winc = [out_write & (wb["ctx"] == c) for c in range(2)]
        de_g = de >> _log2(P)
        de_g1 = Signal(feat_bits + 1, name="drain_group_plus1", init=1)
        lane_last = de[:_log2(P)].all() if P > 1 else Const(1)

        def written_gt(x):
            return [~claimed[c] & ((out_wr[c] > x) | winc[c] & (out_wr[c] == x)) for c in range(2)]
        gt_stay, gt_next = written_gt(de_g), written_gt(de_g1)
        any_written = [~claimed[c] & ((out_wr[c] != 0) | winc[c]) for c in range(2)]
        avail_stay = Mux(ds, gt_stay[1], gt_stay[0])
        avail_next_group = Mux(ds, gt_next[1], gt_next[0])
        avail_next_slot = Mux(ds, any_written[0], any_written[1])
        m.d.sync += d_avail.eq(Mux(drain, Mux(de_last, avail_next_slot, Mux(lane_last, avail_next_group, avail_stay)),
                                   avail_stay))
        with m.If(drain):
            with m.If(de_last):
                m.d.sync += de_g1.eq(1)
            with m.Elif(lane_last):
                m.d.sync += de_g1.eq(de_g1 + 1)
        # the output-buffer reads are always enabled: the lane registers below take the
        # data the cycle after a drain read, before `de` moves, so nothing has to hold it,
        # and the drain decision does not fan out to every output-buffer RAM's enable
        for p in range(P):
            m.d.comb += out_rps[p].addr.eq((de >> _log2(P)) + Mux(ds, OW, 0))
            m.d.comb += self._collisions[f"outbuf{p}"].eq(
                drain & out_wps[p].en & (out_rps[p].addr == out_wps[p].addr))
        m.d.sync += [inflight.eq(drain), inflight2.eq(inflight)]
        # de == out_n - 1 as a register, updated with de: the compare is not between the
        # drain decision and the drain's next state.  out_n changes only with a program
        # write, which waits for the drain to finish (load.ready = ~busy), and the two
        # registers behind it settle long before a new inference's first result.
        out_n_m1 = Signal(feat_bits + 1, name="out_n_m1")
        out_n_m2 = Signal(feat_bits + 1, name="out_n_m2")
        m.d.sync += [out_n_m1.eq(out_n - 1), out_n_m2.eq(out_n - 2)]
        with m.If(~drain):
            m.d.sync += de_last.eq(de == out_n_m1)
        with m.Elif(de_last):
            m.d.sync += de_last.eq(out_n_m1 == 0)
        with m.Else():
            m.d.sync += de_last.eq(de == out_n_m2)
        with m.If(drain):
            m.d.sync += [d_lane.eq(de[:_log2(P)] if P > 1 else 0), d_last.eq(de_last)]
            with m.If(de_last):
                m.d.sync += [de.eq(0), ds.eq(~ds)]
                for c in range(2):
                    with m.If(ds == c):
                        m.d.sync += out_pend[c].eq(0)
            with m.Else():
                m.d.sync += de.eq(de + 1)
        lane_r = [Signal(signed(cfg.acc_bits), name=f"drain_lane_data{p}", reset_less=True)
                  for p in range(P)]
        d_lane2 = Signal.like(d_lane, name="drain_lane2", reset_less=True)
        d_last2 = Signal(name="drain_last2", reset_less=True)
        m.d.sync += [d_lane2.eq(d_lane), d_last2.eq(d_last)]
        m.d.sync += [reg.eq(rp.data) for reg, rp in zip(lane_r, out_rps)]
        rd_data = Signal(signed(cfg.acc_bits), name="drain_data")
        m.d.comb += rd_data.eq(Array(lane_r)[d_lane2] if P > 1 else lane_r[0])
        m.d.comb += [ofifo.w_stream.valid.eq(inflight2), ofifo.w_stream.payload.eq(Cat(rd_data, d_last2))]
        m.d.comb += [self.o_stream.valid.eq(ofifo.r_stream.valid),
                     self.o_stream.payload.eq(ofifo.r_stream.payload),
                     ofifo.r_stream.ready.eq(self.o_stream.ready)]
        out_fire = Signal(name="out_fire")
        m.d.comb += out_fire.eq(self.o_stream.valid & self.o_stream.ready)
        finished = Signal(name="finished")
        m.d.comb += [finished.eq(out_fire & self.o_stream.payload.last), self.done.eq(finished)]
        rel = Signal(name="release_slot")
        with m.If(finished):
            m.d.sync += rel.eq(~rel)
            for s in range(2):
                with m.If(rel == s):
                    m.d.sync += out_full[s].eq(0)

        # ---- busy: inferences in flight ------------------------------------------------
        # counted from registered events (a vector's first beat, its last result), so
        # that neither the input nor the output handshake reaches the count's adder; busy
        # is registered from the count's next value (it gates load.ready, and the load
        # behind that should start at a register).  It rises two cycles after a vector's
        # first beat and falls two cycles after its last result, so it is high as many
        # cycles as the inference took; load.ready also looks at vector_start_r.
        finished_r = Signal(name="finished_r")
        m.d.sync += [vector_start_r.eq(vector_start), finished_r.eq(finished)]
        inflight_n = Signal(3, name="in_flight")
        inflight_next = inflight_n + vector_start_r - finished_r
        m.d.sync += [inflight_n.eq(inflight_next), busy.eq(inflight_next != 0)]
        m.d.comb += self.busy.eq(busy)

        # ---- performance counters --------------------------------------------------------
        incs = {
            "busy": busy, "stall_input": stall_in, "stall_output": stall_out,
            "mac_ops": Mux(issue, P * S, 0), "bank_reads": Mux(issue, P, 0),
            "act_reads": issue, "act_writes": in_fire + act_write,
            "inferences": finished, "bus_bytes": Mux(issue, sizing.bus_bytes_per_step(cfg), 0) if vn else 0,
        }
        # increments are registered first: the 32-bit adders stay off the issue path
        # (a counter shows an event one cycle after it happened).  The clear is the
        # counter flip-flops' synchronous reset (free in an ECP5 slice; as a select in
        # front of the adder it cost 256 LUT4 at 8x8), taken in the write's own cycle:
        # the events of that cycle are still in the increment registers, so a counter
        # restarts from them, as if cleared before that cycle
        counters = []
        for name in sizing.COUNTERS:
            c = Signal(32, name=f"count_{name}")
            inc = incs[name]
            if not (isinstance(inc, int) and inc == 0):
                top = max(P * S, sizing.bus_bytes_per_step(cfg), 2)
                inc_r = Signal(range(top + 1), name=f"inc_{name}")
                m.d.sync += inc_r.eq(inc)
                with m.If(clear):
                    m.d.sync += c.eq(0)
                with m.Else():
                    m.d.sync += c.eq(c + inc_r)
            counters.append(c)
        with m.Switch(self.stat_addr):
            for i, c in enumerate(counters):
                with m.Case(i):
                    m.d.comb += self.stat_data.eq(c)
            with m.Default():
                m.d.comb += self.stat_data.eq(0)
        return m
