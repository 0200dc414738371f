"""``NmcArray``: the near-memory MAC array top level (ports: docs/hardware.md).

Folding: a layer of ``N`` inputs and ``M`` outputs runs as ``G = ceil(M/pe)``
neuron groups of ``F = ceil(N/simd)`` input folds; one step per cycle issues
fold ``f`` of group ``g`` to every PE at once (PE ``p`` computes neuron
``g*pe + p`` from its own bank word ``bank_base + g*F + f``).  A layer costs
``G*F`` issue cycles; an inference's next layer (or next vector) starts no sooner
than the cycle after next (the other context may take the cycle between), and
otherwise only waits where data is really missing:

* layer 0 fold ``f`` waits for input beat ``f`` (input and compute overlap);
* the first fold of a later layer waits until enough cycles have passed since its
  inference's last step that every group of the previous layer that the first group
  reads is written back by the time it reads it (``pyhdl.sizing.countdown_wait``,
  decoded from each descriptor as it is loaded);
* the last layer's first step waits for a free output-buffer slot.

Two inference contexts (by vector parity) share the pipeline, each walking every
layer of its own vectors: the older vector's context issues when it can, and the
other takes every cycle it leaves, so where one waits for a previous layer's
write-back the other runs its steps and back to back the array issues a step every
cycle.  Each context's readiness is a register computed a cycle ahead, and every
decision is registered once more before it drives the memories and PEs
(``pyhdl.sizing.issue_stages``).

Activation storage uses ``B = max(pe, simd)`` lane memories: element ``i`` is in
lane ``i % B``, word ``i // B``.  The input buffer has two slots (the next vector
streams in while the current one is used), the hidden activations ping-pong
between two buffers per context, and the output buffer has two slots drained to
``o_stream`` one result per beat while the next inference computes.

The exact cycle behaviour is ``pyhdl.sizing.schedule``; the counters agree with it.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
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
    requant_dsp : str
        How the requant units' partial products are built
        (:data:`pyhdl.tech.REQUANT_DSP`): ``"inferred"`` or ``"ice40"`` (an iCE40
        ``SB_MAC16`` per 16-bit accumulator chunk with its registers on,
        :func:`pyhdl.tech.ice40_product`; Verilog only, the same cycles, refused by the
        Amaranth simulator likewise).

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
        Performance counter ``stat_addr`` as it was :func:`pyhdl.sizing.stat_read_stages`
        cycles ago (a registered read).
    busy, done : Out(1)
    """

    def __init__(self, cfg: ArrayConfig, *, program=None, lane_dsp: str = "inferred",
                 requant_dsp: str = "inferred"):
        self._MustUse__silence = True  # a rejected instance is not an unused design
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        if program is not None and getattr(program, "cfg", None) != cfg:
            raise ValueError("program was compiled for a different ArrayConfig")
        self._lane_dsp = tech.check_lane_dsp(lane_dsp, cfg)
        self._requant_dsp = tech.check_requant_dsp(requant_dsp, m_bits=cfg.m_bits)
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
                                       lane_dsp=lane_dsp, requant_dsp=requant_dsp)
                     for p in range(cfg.pe)]
        for pe in self._pes:
            pe._MustUse__silence = True  # the array's own must-use warning covers them
        self._issued = Signal(name="issued")
        self._retimed = {name: Signal(name=f"{name}_retimed_wrong") for name in ("in_open",)}
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
    def requant_dsp(self) -> str:
        """How the requant units' partial products are built (:data:`pyhdl.tech.REQUANT_DSP`)."""
        return self._requant_dsp

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
    def retimed(self) -> dict:
        """Register name -> signal high in a cycle where that register, set a cycle
        ahead from the next values of its terms so that no LUTs sit between those terms
        and its readers, differs from the expression it stands for.  Every
        ``pyhdl.amsim.run_array`` checks that none is ever high.  Nothing reads them, so
        synthesis removes them."""
        return dict(self._retimed)

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
        # The load is registered as it is accepted (payload and handshake) and passes
        # sizing.load_stages() registers; every write, the sequencer restart and the
        # counter clear act from the last: no path runs from the load handshake into the
        # memories or the sequencer.  The control words are decoded into the last
        # register from the one before (the countdown distance, the longest decode,
        # over the two before), never from the port or the first register, which its
        # far driver pulls away (docs/fpga.md, "Critical path").
        busy = Signal(name="busy_r")
        loaded = Signal(name="loaded")  # the sequencer's state is valid (else reloaded this cycle)
        vector_start_r = Signal(name="vector_start_r")
        stages = []  # (payload, handshake) registers, the last one's write lands now
        for k in range(sizing.load_stages()):
            last_stage = k == sizing.load_stages() - 1
            stages.append((Signal.like(self.load.payload, reset_less=True,
                                       name="load_r" if last_stage else f"load_in_r{k}"),
                           Signal(name="load_write" if last_stage else f"load_in_valid{k}")))
        ld, ld_fire = stages[-1]  # ld is written in this cycle
        in_flight = Cat(*[fire for _, fire in stages]).any()  # a load not yet written
        region, index, word = ld.addr[28:32], ld.addr[20:28], ld.addr[0:20]
        clear = Signal(name="clear_counters")
        load_hold = Signal(name="load_hold")  # a multi-cycle weight write in progress
        # an input beat and a program write never land in one cycle: the beat would be
        # counted against the program being replaced.  An offered beat goes first (a
        # held load cannot starve a vector that has started; busy then closes the port,
        # and vector_start_r covers the cycle before busy rises); a beat waits while a
        # load is on its way to its write (i_stream.ready below)
        m.d.comb += self.load.ready.eq(~busy & ~vector_start_r & ~load_hold & ~(self.i_stream.valid & has_layers))
        before = (self.load.payload, self.load.valid & self.load.ready)
        for payload, fire in stages:
            m.d.sync += [payload.eq(before[0]), fire.eq(before[1])]
            before = (payload, fire)
        arriving = stages[-2][0] if len(stages) > 1 else self.load.payload
        decoded = load_decode(m, cfg, arriving, last_layer)
        ctl_word, ctl_n_layers, ctl_clear = decoded["control"], decoded["n_layers"], decoded["clear"]
        desc_word, desc_word0 = decoded["descriptor"], decoded["descriptor0"]
        n_any, n_last = decoded["has_layers"], decoded["last_layer"]
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
                m.d.comb += load_hold.eq((part != 0) | Cat(*[
                    fire & (payload.addr[28:32] == sizing.REGION_BANK) & (payload.addr[20:28] < P)
                    for payload, fire in stages]).any())
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
        # the countdown wait is decoded over three cycles: the distance's subtract and
        # compares on the feature counts from the first load register, its clamp from
        # those into the last, then the wait from that register as a table of its few
        # values (one LUT level per bit).  In one cycle, the subtract and clamp limited
        # three of four ECP5 seeds; the distance in one cycle, six of ten.
        distances = sizing.ceil_div(sizing.readable_after(cfg), K) + 1
        ld_distance = Signal(range(distances), name="load_r_countdown_distance", reset_less=True)
        early_desc = fields(stages[-3][0].data)  # sizing.load_stages() >= 3
        parts = sizing.countdown_distance_parts(cfg, early_desc["in_features"], early_desc["out_features"])
        no_distance = Signal(name="load_in_no_distance", reset_less=True)
        least = Signal(Value.cast(parts[1]).shape(), name="load_in_least_distance", reset_less=True)
        m.d.sync += [no_distance.eq(parts[0]), least.eq(parts[1]),
                     ld_distance.eq(sizing.countdown_distance_clamp(cfg, no_distance, least))]
        ld_steps["wait_next"] = Signal(wait_bits, name="load_r_countdown_wait")
        with m.Switch(ld_distance):
            for distance in range(distances):
                # the distance is clamped: the last value stands for any beyond it
                with m.Case(distance) if distance < distances - 1 else m.Default():
                    m.d.comb += ld_steps["wait_next"].eq(sizing.countdown_wait_from(cfg, distance))
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
        # layer 0's step counts: the state a context reloads
        d0_steps = sizing.descriptor_steps(cfg, d0["in_features"], d0["out_features"])
        # the input side only asks "is this the vector's last beat": the load of its
        # down-counters of the beats left (f0_m2 = folds - 2, sizing.beats_left_init)
        # is taken from the load data when descriptor 0 is written, so that a beat
        # accepted in the next cycle already sees the new layer 0, and it survives reset
        # (like the program), so that a beat right after reset sees it too
        # the wait of layer 1 (pyhdl.sizing.countdown_wait after layer 0), for a hand-over
        # straight into layer 1, is kept the same way (it is read long after any load)
        first = sizing.unpack_descriptor(cfg, prog.descriptors[0] if prog and prog.descriptors else 0)
        first_steps = sizing.descriptor_steps(cfg, first["in_features"], first["out_features"])
        f0_m2 = Signal(signed(feat_bits + 1), name="in_folds_m2", init=sizing.beats_left_init(cfg, first["in_features"]), reset_less=True)
        wait1 = Signal(wait_bits, name="wait1", init=first_steps["wait_next"], reset_less=True)
        with m.If(ld_fire & desc_word0):
            m.d.sync += [f0_m2.eq(sizing.beats_left_init(cfg, ld_desc["in_features"])), wait1.eq(ld_steps["wait_next"])]
        with m.Else():
            m.d.sync += f0_m2.eq(sizing.beats_left_init(cfg, d0["in_features"]))
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
        # i_stream.ready = ~wfull & has_layers & ~in_flight & loaded: not in the cycle the
        # sequencer reloads its state (after reset or a program write), whose readiness
        # for the next cycle is computed from the reloaded state.  It is a register
        # (in_open, set below from the next values of its terms), so in_fire is one LUT
        # from flip-flops: in_fire drives the writer and its beat counts (the
        # sequencer's beat flags read a register of it, below), and as a chain of LUTs
        # behind the handshake it limited the UP5K.
        in_open = Signal(name="in_open")
        m.d.comb += [self.i_stream.ready.eq(in_open), in_fire.eq(self.i_stream.valid & in_open)]
        m.d.comb += self._retimed["in_open"].eq(in_open != (~wfull & has_layers & ~in_flight & loaded))
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
        # folds - 2 - beats of layer 0 per slot, counted down with the beats: negative
        # exactly when the next beat is the vector's last, so "last beat" is the
        # counter's sign bit, not the writer's count compared with the layer's (five LUT
        # levels from i_stream.ready into in_full on the UP5K).  It is set from the
        # layer's count when the count restarts and in each cycle the sequencer reloads
        # (after reset or a program write): no vector has started then (a program write
        # waits for `busy` to fall) and no beat is taken in that cycle.
        left = [Signal(signed(feat_bits + 2), name=f"in_beats_left{s}") for s in range(2)]
        for c in range(2):
            with m.If(in_fire & (ws == c)):
                m.d.sync += [beats[c].eq(beats[c] + 1), left[c].eq(left[c] - 1)]
                with m.If(left[c][-1]):
                    m.d.sync += full[c].eq(1)
            with m.If(beats_restart[c]):
                m.d.sync += beats[c].eq(0)
            with m.If(beats_restart[c] | ~loaded):
                m.d.sync += left[c].eq(f0_m2)
            with m.If(in_release_r[c]):
                m.d.sync += full[c].eq(0)
        ws_turns = in_fire & Mux(ws, left[1][-1], left[0][-1])
        with m.If(ws_turns):
            m.d.sync += ws.eq(~ws)
        full_next = [~in_release_r[c] & (full[c] | ws_turns & (ws == c)) for c in range(2)]
        wfull_next = Mux(ws ^ ws_turns, full_next[1], full_next[0])

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
        finished = Signal(name="finished")
        rel = Signal(name="release_slot")

        # ---- sequencer ---------------------------------------------------------------
        # Two inference contexts, numbered by vector parity, each with its own input slot,
        # output slot and act buffer pair, and each walking every layer of its own
        # vectors.  want[c] is a register: context c can issue a step in this cycle.  The
        # context of the older vector (`oldest`) issues when it wants; the other takes
        # every cycle it leaves (near mode; vonneumann mode fetches the oldest context's
        # weights only, so only it issues).  Each context's want for the next cycle is
        # computed from its state now and its own issue now: for the step after this one
        # if it issues (a later step of the same layer; a layer's first step never follows
        # the previous layer's last at once), else for this one.  Every flag this reads is
        # a register kept with the state, so the loop of issue, next state and readiness
        # is a few LUT levels from flip-flops (docs/fpga.md, "Critical path").
        oldest = Signal(name="oldest")
        C = range(2)
        layer = [Signal(layer_bits, name=f"layer{c}") for c in C]
        g = [Signal(group_bits, name=f"group{c}") for c in C]
        f = [Signal(group_bits, name=f"fold{c}") for c in C]
        bank_addr = [Signal(bank_bits, name=f"bank_addr{c}") for c in C]
        rq_addr = [Signal(rq_bits, name=f"rq_addr{c}") for c in C]
        wr_buf = [Signal(name=f"wr_buf{c}") for c in C]  # act buffer of the pair this layer writes
        cur_last = [Signal(name=f"cur_is_last{c}") for c in C]
        cur_relu = [Signal(name=f"cur_relu{c}") for c in C]
        cur_req = [Signal(name=f"cur_requantize{c}") for c in C]
        cur_F_m1 = [Signal(signed(group_bits + 1), name=f"cur_folds_m1_{c}", init=-1) for c in C]
        cur_G_m1 = [Signal(signed(group_bits + 1), name=f"cur_groups_m1_{c}", init=-1) for c in C]
        cur_one_fold = [Signal(name=f"cur_one_fold{c}") for c in C]
        cur_wait_next = [Signal(wait_bits, name=f"cur_wait_next{c}") for c in C]
        # f + 1, f + 2 and g + 1 as registers, so no flag has an adder before its compare
        f1 = [Signal(group_bits + 1, name=f"fold_plus1_{c}", init=1) for c in C]
        f2 = [Signal(group_bits + 2, name=f"fold_plus2_{c}", init=2) for c in C]
        g1 = [Signal(group_bits + 1, name=f"group_plus1_{c}", init=1) for c in C]
        # flags of the state, updated with it: f == folds - 1, g == groups - 1, f == 0,
        # f == g == 0, layer == 0
        last_fold = [Signal(name=f"last_fold{c}") for c in C]
        last_group = [Signal(name=f"last_group{c}") for c in C]
        f_zero = [Signal(name=f"fold_is_0_{c}", init=1) for c in C]
        first = [Signal(name=f"first_step{c}", init=1) for c in C]
        layer0 = [Signal(name=f"layer_is_0_{c}", init=1) for c in C]
        # the countdown (pyhdl.sizing.countdown_wait) as a down-counter per context,
        # loaded at each of its steps with the wait of the layer after this one less the
        # two cycles to its earliest next step; wait_ok: a step may issue next cycle.
        # Only a later layer's first step reads it, and only the previous layer's last
        # step comes before it, so the loads at other steps do not matter.
        wait_m2 = [Signal(wait_bits, name=f"wait_next_m2_{c}") for c in C]
        wait_le2 = [Signal(name=f"wait_next_le2_{c}") for c in C]
        remain = [Signal(wait_bits, name=f"wait_remain{c}") for c in C]
        wait_ok = [Signal(name=f"wait_ok{c}") for c in C]

        want = [Signal(name=f"want{c}") for c in C]
        iss = [Signal(name=f"issue{c}") for c in C]
        ictx = Signal(name="issue_ctx")
        issue = Signal(name="issue")
        if vn:
            m.d.comb += [iss[c].eq(want[c] & (oldest == c)) for c in C]
            m.d.comb += [ictx.eq(oldest), issue.eq(Mux(oldest, want[1], want[0]))]
        else:
            m.d.comb += [iss[0].eq(want[0] & (~oldest | ~want[1])), iss[1].eq(want[1] & (oldest | ~want[0])),
                         ictx.eq(Mux(oldest, want[1], ~want[0])), issue.eq(want[0] | want[1])]
        m.d.comb += self._issued.eq(issue)

        def sel(pair):
            """The issuing context's element of a per-context pair."""
            return Mux(ictx, pair[1], pair[0])

        # every cycle, per context: the descriptor of the layer after its own, registered
        # (read only at a layer's last step, never the cycle after the layer changed)
        nxt_idx = [Signal(layer_bits, name=f"next_layer{c}") for c in C]
        nd, ns, nsel = [], [], []
        for c in C:
            m.d.comb += nxt_idx[c].eq(Mux(cur_last[c], 0, layer[c] + 1))
            nxt_rp = desc_mem.read_port(domain="comb")
            nxt_steps_rp = steps_mem.read_port(domain="comb")
            m.d.comb += [nxt_rp.addr.eq(nxt_idx[c]), nxt_steps_rp.addr.eq(nxt_idx[c])]
            nd_r = Signal(len(nxt_rp.data), name=f"next_descriptor{c}", reset_less=True)
            ns_r = Signal(len(nxt_steps_rp.data), name=f"next_steps{c}", reset_less=True)
            nsel_r = Signal(layer_bits, name=f"next_layer_r{c}", reset_less=True)
            m.d.sync += [nd_r.eq(nxt_rp.data), ns_r.eq(nxt_steps_rp.data), nsel_r.eq(nxt_idx[c])]
            nd.append(fields(nd_r))
            ns.append(fields(ns_r, step_fields))
            nsel.append(nsel_r)

        def enter(c, d, s, wait_next, idx):
            """Context c's state at the first step of layer ``idx`` (descriptor d, steps s)."""
            return [cur_F_m1[c].eq(s["folds_m1"]), cur_G_m1[c].eq(s["groups_m1"]),
                    cur_one_fold[c].eq(s["one_fold"]), cur_wait_next[c].eq(wait_next),
                    cur_last[c].eq(idx == last_layer), cur_relu[c].eq(d["relu"]),
                    cur_req[c].eq(d["requantize"]), bank_addr[c].eq(d["bank_base"]),
                    rq_addr[c].eq(d["rq_base"]), layer[c].eq(idx),
                    g[c].eq(0), f[c].eq(0), g1[c].eq(1), f1[c].eq(1), f2[c].eq(2),
                    last_fold[c].eq(s["one_fold"]), last_group[c].eq(s["one_group"]),
                    f_zero[c].eq(1), first[c].eq(1)]

        active = Signal(name="active")
        m.d.comb += active.eq(loaded & has_layers)
        with m.If(~loaded):
            # the next vector goes to the input slot being written
            m.d.sync += [loaded.eq(1), oldest.eq(ws)]
        for c in C:
            with m.If(~loaded):
                m.d.sync += enter(c, d0, d0_steps, wait1, 0) + [wr_buf[c].eq(0), layer0[c].eq(1)]
            with m.Elif(iss[c]):
                with m.If(last_fold[c]):
                    m.d.sync += [f[c].eq(0), f1[c].eq(1), f2[c].eq(2), g[c].eq(g1[c]), g1[c].eq(g1[c] + 1),
                                 rq_addr[c].eq(rq_addr[c] + 1), f_zero[c].eq(1), first[c].eq(0),
                                 last_fold[c].eq(cur_one_fold[c]), last_group[c].eq(g1[c] == cur_G_m1[c])]
                    with m.If(last_group[c]):
                        m.d.sync += enter(c, nd[c], ns[c], ns[c]["wait_next"], nsel[c]) + [
                            wr_buf[c].eq(~wr_buf[c] & ~cur_last[c]), layer0[c].eq(cur_last[c])]
                        with m.If(cur_last[c] & (oldest == c)):
                            m.d.sync += oldest.eq(1 - c)
                with m.Else():
                    m.d.sync += [f[c].eq(f1[c]), f1[c].eq(f2[c]), f2[c].eq(f2[c] + 1), f_zero[c].eq(0),
                                 first[c].eq(0), last_fold[c].eq(f1[c] == cur_F_m1[c])]
                with m.If(~(last_fold[c] & last_group[c])):
                    m.d.sync += bank_addr[c].eq(bank_addr[c] + 1)
            short = cur_wait_next[c] <= 2
            m.d.sync += [wait_le2[c].eq(short), wait_m2[c].eq(Mux(short, 0, cur_wait_next[c] - 2))]
            with m.If(iss[c]):
                m.d.sync += [remain[c].eq(wait_m2[c]), wait_ok[c].eq(wait_le2[c])]
            with m.Else():
                m.d.sync += wait_ok[c].eq(remain[c] <= 1)
                with m.If(remain[c] != 0):
                    m.d.sync += remain[c].eq(remain[c] - 1)
            m.d.comb += in_release[c].eq(iss[c] & layer0[c] & last_fold[c] & last_group[c])
        # any program write may change the current descriptor or (vonneumann) the
        # prefetched weights: start over from layer 0; clearing counters changes neither
        with m.If(ld_fire & ~(ctl_word & ctl_clear)):
            m.d.sync += loaded.eq(0)
        # the first step of the last layer claims the context's output slot, a cycle
        # late (registered): the claiming context's readiness sees it through ofull below
        claim = Signal(name="claim_out")
        claim_ctx = Signal(name="claim_ctx")
        m.d.sync += [claim.eq(issue & sel(cur_last) & sel(first)), claim_ctx.eq(ictx)]

        # whether the context's input slot holds beat f (beats > f) and beat f + 1, kept
        # as registers.  At layer 0 beats >= f, and the flags are read only there, so
        # they are "ahead >= 1" and "ahead >= 2" of ahead = beats - f, which each cycle
        # moves by -1, 0 or +1 (a fold advances, a beat arrives) or is reloaded from the
        # beat count when the context enters layer 0 (its fold wraps to 0).  Both are kept
        # as thermometer registers (ahead >= 1, 2, 3; beats >= 1, 2, 3) that step by
        # shifting, so each flag is one or two LUT levels from registers of its own; only
        # ahead >= 3 reads the ahead counter (ahead >= 4 on a step down).  A magnitude
        # compare of the beat count against the fold, in a carry chain between registers
        # that the writer and the step decode also load, was a limiting path on ECP5
        # and on the UP5K (+4.1 MHz there without it, docs/fpga.md).  Outside layer 0 the ahead registers hold nothing meaningful.
        # the beat the sequencer counts in this cycle is the handshake of the cycle
        # before, registered per slot (sizing.beat_notice_stages), so that
        # i_stream.valid reaches the writer alone; the writer's count already holds
        # that beat, so a reload takes the count as it is
        inc = [Signal(name=f"in_taken{c}") for c in C]
        m.d.sync += [inc[c].eq(in_fire & (ws == c)) for c in C]
        beat_gt0, beat_gt1 = [], []
        beats_ge1 = []
        for c in C:
            ahead = Signal(feat_bits, name=f"in_ahead{c}")
            a_ge = [Const(1)] + [Signal(name=f"in_ahead_ge{k}_{c}") for k in (1, 2, 3)]
            b_ge = [Const(1)] + [Signal(name=f"in_beats_ge{k}_{c}") for k in (1, 2, 3)]
            a_ge4 = ahead[2:].any()
            with m.If(beats_restart[c]):
                m.d.sync += [ahead.eq(0)] + [b.eq(0) for b in b_ge[1:]] + [a.eq(0) for a in a_ge[1:]]
            with m.Else():
                m.d.sync += [b_ge[k].eq(b_ge[k] | inc[c] & b_ge[k - 1]) for k in (1, 2, 3)]
                with m.If(loaded & ~iss[c]):  # the fold stays
                    with m.If(inc[c]):
                        m.d.sync += [ahead.eq(ahead + 1)] + [a_ge[k].eq(a_ge[k - 1]) for k in (1, 2, 3)]
                with m.Elif(loaded & ~last_fold[c]):  # the fold advances
                    with m.If(~inc[c]):
                        m.d.sync += [ahead.eq(ahead - 1)] + [
                            a_ge[k].eq(a_ge[k + 1] if k < 3 else a_ge4) for k in (1, 2, 3)]
                with m.Else():  # the state is reloaded, or the fold wraps to 0
                    m.d.sync += [ahead.eq(beats[c])] + [
                        a_ge[k].eq(b_ge[k] | inc[c] & b_ge[k - 1]) for k in (1, 2, 3)]
            beat_gt0.append(a_ge[1])
            beat_gt1.append(a_ge[2])
            beats_ge1.append(b_ge[1])
        # the output slot as it will be next cycle (a release is seen a cycle later)
        ofull = [claim & (claim_ctx == c) | out_full[c] for c in C]
        has_layers_n = Mux(ld_fire & ctl_word & ctl_n_layers, n_any, has_layers)
        loaded_n = ~(ld_fire & ~(ctl_word & ctl_clear))
        able = loaded & loaded_n & has_layers_n
        # the load stages' handshakes shift by one each cycle
        in_flight_n = Cat(self.load.valid & self.load.ready, *[fire for _, fire in stages[:-1]]).any()
        m.d.sync += in_open.eq(~wfull_next & has_layers_n & ~in_flight_n & loaded_n)
        weights_next = Const(1)
        if vn:
            # the next step's K bus words are fetched one per cycle; it issues with the last
            phase = Signal(range(max(2, K)), name="bus_phase")
            restart = ~loaded | issue
            weights_next = Mux(restart, K == 1, phase >= K - 2)
            wrp = wmem.read_port(transparent_for=())
            m.d.comb += wrp.addr.eq(Mux(oldest, bank_addr[1], bank_addr[0]) * K + phase)
            with m.If(restart):
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
        stall_ins, stall_outs = [], []
        for c in C:
            data_ok = Mux(layer0[c], beat_gt0[c] | inc[c], ~first[c] | wait_ok[c])
            out_ok = ~(cur_last[c] & first[c] & ofull[c])
            after_ok = ~(last_fold[c] & last_group[c]) & (
                ~layer0[c] | last_fold[c] | beat_gt1[c] | inc[c] & beat_gt0[c])
            m.d.sync += want[c].eq(able & weights_next & Mux(iss[c], after_ok, data_ok & out_ok))
            stall_ins.append(layer0[c] & ~beat_gt0[c] & beats_ge1[c])
            stall_outs.append(cur_last[c] & first[c] & out_full[c])
        # counted where nothing issues and a context waits for a beat of a vector that has
        # started, or for its output slot at the last layer's first step
        stall_in = Signal(name="stall_input")
        stall_out = Signal(name="stall_output")
        m.d.comb += [stall_in.eq(~issue & active & (stall_ins[0] | stall_ins[1])),
                     stall_out.eq(~issue & active & (stall_outs[0] | stall_outs[1]))]

        # The decision is registered once before it reaches the memories and PEs: the
        # issue logic and the fan-out to every bank address and PE then sit in different
        # clock cycles.
        fs = sel(f)
        st = {
            "addr": sel(bank_addr), "first": sel(f_zero), "last": sel(last_fold), "rq": sel(rq_addr),
            "relu": sel(cur_relu), "requantize": sel(cur_req),
            "in_addr": (fs >> _log2(R)) + Mux(ictx, AW, 0),
            "act_addr": (fs >> _log2(R)) + Mux(ictx, 2 * AW, 0) + Mux(sel(wr_buf), 0, AW),
            "from_input": sel(layer0), "blk": fs[:_log2(R)] if R > 1 else Const(0),
            "group": sel(g), "par": sel(wr_buf), "ctx": ictx, "out": sel(cur_last),
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
                         pe.step_first.eq(step["first"]), pe.step_last.eq(step["last"]), pe.step_ctx.eq(step["ctx"]),
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
        wb_stages = [stage]
        for k in range(1, W + 1):
            nxt = {}
            for name, width in wb_fields.items():
                sig = Signal(width, name=f"wb_{name}{k}", reset_less=name != "valid")
                m.d.sync += sig.eq(wb_stages[-1][name])
                nxt[name] = sig
            wb_stages.append(nxt)
        before_wb, wb = wb_stages[-2:]  # the stage before the write-back's, and the write-back's
        act_write = Signal(name="act_write")
        out_write = Signal(name="out_write")
        m.d.comb += [act_write.eq(wb["valid"] & ~wb["out"]), out_write.eq(wb["valid"] & wb["out"])]
        wb_word = (wb["group"] >> _log2(Q)) + Mux(wb["ctx"], 2 * AW, 0) + Mux(wb["par"], AW, 0)
        wb_blk = wb["group"][:_log2(Q)] if Q > 1 else Const(0)
        m.d.comb += [act_wp.addr.eq(wb_word),
                     act_wp.data.eq(Cat(*[pes[l % P].result[:cfg.a_bits] for l in range(B)])),
                     act_wp.en.eq(Cat(*[act_write & (wb_blk == l // P) for l in range(B)]))]

        for p in range(P):
            m.d.comb += [out_wps[p].en.eq(out_write), out_wps[p].addr.eq(wb["group"] + Mux(wb["ctx"], OW, 0)),
                         out_wps[p].data.eq(pes[p].result)]
        for c in range(2):
            with m.If(claim & (claim_ctx == c)):
                m.d.sync += [out_full[c].eq(1), out_pend[c].eq(1), out_wr[c].eq(0)]
            with m.Elif(out_write & (wb["ctx"] == c)):
                m.d.sync += out_wr[c].eq(out_wr[c] + 1)

        # ---- drain: output buffer -> FIFO -> o_stream ----------------------------------
        # the output-buffer RAM output is registered before the lane select (block-RAM
        # clock-to-out is the slowest path on ECP5): read, register, the pairs' register
        # (more than two PEs), FIFO
        fifo_depth = sizing.drain_fifo_depth(cfg)
        m.submodules.ofifo = ofifo = fifo.SyncFIFO(width=cfg.acc_bits + 1, depth=fifo_depth)
        ds = Signal(name="drain_slot")
        de = Signal(feat_bits, name="drain_elem")
        d_lane = Signal(max(1, _log2(P)), name="drain_lane", reset_less=True)
        d_last = Signal(name="drain_last", reset_less=True)
        de_last = Signal(name="drain_elem_last")
        drain = Signal(name="drain_read")
        # The drain reads an element when its slot is pending, its group is written and
        # the FIFO has room for everything in flight.  "Written" is a count per slot of
        # the groups written and not yet drained (out_groups - de // pe for the drain's
        # slot, out_groups for the other), with "at least one" kept as a register:
        # its next value is a compare of the count against constants,
        # selected by what the cycle brings (a write-back, the drain finishing a group,
        # a claim or the end of the slot), so the drain decision is one LUT from
        # registers and no magnitude compare sits in its loop.
        d_room = Signal(name="drain_room", init=1)
        undrained = [Signal(feat_bits + 1, name=f"drain_undrained{s}") for s in range(2)]
        ready1 = [Signal(name=f"drain_ready{s}") for s in range(2)]
        # the read from each slot, each one LUT from registers (a shared select of the
        # slot before the per-slot counts took two levels more on the UP5K)
        drain_from = [(ds == s) & out_pend[s] & ready1[s] & d_room for s in range(2)]
        m.d.comb += drain.eq(drain_from[0] | drain_from[1])
        # reads in flight plus results in the FIFO (= w_level + the reads in `inflight`)
        d_occ = Signal(range(fifo_depth + 1), name="drain_occupancy")
        r_fire = ofifo.r_stream.valid & ofifo.r_stream.ready
        m.d.sync += [d_occ.eq(d_occ + drain - r_fire),
                     d_room.eq(Mux(drain, d_occ - r_fire < fifo_depth - 1, d_occ - r_fire < fifo_depth))]
        lane_last = de[:_log2(P)].all() if P > 1 else Const(1)
        for s in range(2):
            # the write-back into this slot, registered from the stage before: the
            # write-back registers fan out to every output buffer, and their route into
            # the counts limited three of ten ECP5 seeds
            winc = Signal(name=f"drain_written{s}")
            m.d.sync += winc.eq(before_wb["valid"] & before_wb["out"] & (before_wb["ctx"] == s))
            here = drain_from[s]
            cleared = claim & (claim_ctx == s) | here & de_last
            done_group = here & lane_last
            n = undrained[s]
            with m.If(cleared):
                m.d.sync += [n.eq(0), ready1[s].eq(0)]
            with m.Elif(winc & ~done_group):
                m.d.sync += [n.eq(n + 1), ready1[s].eq(1)]
            with m.Elif(done_group & ~winc):
                m.d.sync += [n.eq(n - 1), ready1[s].eq(n >= 2)]
        # the output-buffer reads are always enabled: the lane registers below take the
        # data the cycle after a drain read, before `de` moves, so nothing has to hold it,
        # and the drain decision does not fan out to every output-buffer RAM's enable
        for p in range(P):
            m.d.comb += out_rps[p].addr.eq((de >> _log2(P)) + Mux(ds, OW, 0))
            m.d.comb += self._collisions[f"outbuf{p}"].eq(
                drain & out_wps[p].en & (out_rps[p].addr == out_wps[p].addr))
        # a read's way to its FIFO write: the RAM read, its output register, the pairs
        inflight = [drain]
        for k in range(1, sizing.drain_latency(cfg)):
            inflight.append(Signal(name="drain_inflight" if k == 1 else f"drain_inflight{k}"))
            m.d.sync += inflight[-1].eq(inflight[-2])
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
        # The lane is picked by a one-hot select register per lane and an AND-OR.  With
        # more than two lanes, in two steps with a register between
        # (`sizing.drain_pair_stages`): each pair of lanes into a pair register (one
        # LUT, placed between its two block RAMs), then the OR of the pair registers
        # into the FIFO (one LUT up to 8 lanes).  The output buffers sit in block-RAM
        # rows across the device and the FIFO in one place: one select from the RAMs'
        # output registers to the FIFO spent 4.9-6.3 ns routing one LUT and limited
        # ECP5 on half the placements.  Two lanes are one LUT either way, and the
        # register cost the full UP5K 3 MHz.  (Zeroing the lane registers instead of
        # selecting would give them a reset and keep them out of the block RAMs'
        # output registers.)
        lane_r = [Signal(signed(cfg.acc_bits), name=f"drain_lane_data{p}", reset_less=True)
                  for p in range(P)]
        lane_sel = [Signal(name=f"drain_lane_sel{p}", reset_less=True) for p in range(P)]
        pair_r = [Signal(signed(cfg.acc_bits), name=f"drain_pair_data{q}", reset_less=True)
                  for q in range(P // 2 if sizing.drain_pair_stages(cfg) else 0)]
        # the last flag rides beside the data, from the read's output register on
        last = [d_last] + [Signal(name=f"drain_last{k}", reset_less=True)
                           for k in range(2, sizing.drain_latency(cfg))]
        m.d.sync += [sel.eq(d_lane == p) for p, sel in enumerate(lane_sel)]
        m.d.sync += [later.eq(earlier) for earlier, later in zip(last, last[1:])]
        m.d.sync += [reg.eq(rp.data) for reg, rp in zip(lane_r, out_rps)]

        def any_of(selected):
            picked = Const(0, signed(cfg.acc_bits))
            for value in selected:
                picked = picked | value
            return picked
        selected = [Mux(sel, reg, 0) for sel, reg in zip(lane_sel, lane_r)]
        for q, pair in enumerate(pair_r):
            m.d.sync += pair.eq(any_of(selected[2 * q:2 * q + 2]))
        rd_data = Signal(signed(cfg.acc_bits), name="drain_data")
        m.d.comb += rd_data.eq(any_of(pair_r or selected))
        m.d.comb += [ofifo.w_stream.valid.eq(inflight[-1]), ofifo.w_stream.payload.eq(Cat(rd_data, last[-1]))]
        m.d.comb += [self.o_stream.valid.eq(ofifo.r_stream.valid),
                     self.o_stream.payload.eq(ofifo.r_stream.payload),
                     ofifo.r_stream.ready.eq(self.o_stream.ready)]
        out_fire = Signal(name="out_fire")
        m.d.comb += out_fire.eq(self.o_stream.valid & self.o_stream.ready)
        m.d.comb += [finished.eq(out_fire & self.o_stream.payload.last), self.done.eq(finished)]
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
        # read through sizing.stat_read_stages() registers
        stat_sel = self.stat_addr
        for k in range(sizing.stat_read_stages() - 1):
            stat_sel_r = Signal.like(self.stat_addr, name=f"stat_addr_r{k}", reset_less=True)
            m.d.sync += stat_sel_r.eq(stat_sel)
            stat_sel = stat_sel_r
        stat_r = Signal(32, name="stat_data_r", reset_less=True)
        with m.Switch(stat_sel):
            for i, c in enumerate(counters):
                with m.Case(i):
                    m.d.sync += stat_r.eq(c)
            with m.Default():
                m.d.sync += stat_r.eq(0)
        m.d.comb += self.stat_data.eq(stat_r)
        return m


def load_decode(m: Module, cfg: ArrayConfig, arriving, last_layer) -> dict:
    """The load port's control decodes of ``arriving`` (a load register with ``addr``
    and ``data``), registered: ``{"control", "n_layers", "clear", "descriptor",
    "descriptor0", "has_layers", "last_layer"}`` say whether the word is in the control
    region, is its ``n_layers`` or ``clear`` word, is a descriptor below ``max_layers``
    or descriptor 0, and, for an ``n_layers`` word, ``data != 0`` and ``min(data,
    max_layers) - 1`` (a register like ``last_layer``, the sequencer's)."""
    layer_bits = len(last_layer) - 1  # a layer index, and a sign for "no layers"
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
    return {"control": ctl_word, "n_layers": ctl_n_layers, "clear": ctl_clear, "descriptor": desc_word,
            "descriptor0": desc_word0, "has_layers": n_any, "last_layer": n_last}
