"""Sizing and cycle math of the array: pure functions, the only place they live.

Folding (as in FINN's MVU): a layer with ``in_features = N`` and
``out_features = M`` on ``pe = P`` processing elements of ``simd = S`` lanes is
cut into ``G = ceil(M/P)`` neuron groups and ``F = ceil(N/S)`` input folds.
Neuron ``j = g*P + p`` lives on PE ``p``; each cycle every PE multiplies one
bank word (``S`` weights of row ``j``, inputs ``f*S .. f*S+S-1``) with the
same broadcast ``S`` activations.  A layer therefore issues ``G*F`` steps and
each PE's bank holds ``G*F`` words for it.

Hardware, compiler, testbench and tests all import these functions; nothing
else may restate them.
"""

from __future__ import annotations

from .config import ArrayConfig

__all__ = ["ceil_div", "folds", "groups", "layer_steps", "bank_words", "ideal_cycles"]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def folds(in_features: int, cfg: ArrayConfig) -> int:
    """Input folds ``F = ceil(in/SIMD)``: cycles one neuron group spends on one layer."""
    return ceil_div(in_features, cfg.simd)


def groups(out_features: int, cfg: ArrayConfig) -> int:
    """Neuron groups ``G = ceil(out/PE)``."""
    return ceil_div(out_features, cfg.pe)


def layer_steps(in_features: int, out_features: int, cfg: ArrayConfig) -> int:
    """Issue cycles of one layer in steady state: ``G*F``."""
    return groups(out_features, cfg) * folds(in_features, cfg)


def bank_words(in_features: int, out_features: int, cfg: ArrayConfig) -> int:
    """Words one layer occupies in every PE's bank (also ``G*F``)."""
    return layer_steps(in_features, out_features, cfg)


def ideal_cycles(shapes, cfg: ArrayConfig) -> int:
    """``sum ceil(out/PE)*ceil(in/SIMD)`` over ``shapes = [(in, out), ...]``: no fill, no stall."""
    return sum(layer_steps(i, o, cfg) for i, o in shapes)


# -- widths and table sizes ---------------------------------------------------
#
# Everything below is shared by the hardware (pyhdl/), the compiler, the
# testbench and the tests.  The cycle model at the end is the exact timing of
# ``pyhdl.top.NmcArray``: the performance counters must agree with it.

__all__ += [
    "index_bits", "lanes", "lane_ratio", "act_words", "out_words", "rq_depth", "rq_bits",
    "descriptor_fields", "descriptor_bits", "load_data_bits", "pack_descriptor",
    "unpack_descriptor", "descriptor_step_fields", "descriptor_steps", "pack_descriptor_steps",
    "pack_requant", "unpack_requant", "pack_lanes", "unpack_lanes", "input_beats",
    "tree_levels", "buffer_read_stages", "operand_stages", "pe_stages", "requant_stages", "finish_stages", "drain_pair_stages", "drain_latency", "drain_fifo_depth", "producer_group",
    "issue_stages", "beat_notice_stages", "load_stages", "load_to_input", "input_settle", "writeback_latency", "readable_after",
    "schedule", "countdown_wait", "countdown_distance", "countdown_distance_parts", "countdown_distance_clamp", "countdown_wait_from", "beats_left_init", "inference_cycles", "steady_cycles", "layer_fill", "single_latency_budget",
    "REGION_BANK", "REGION_REQUANT", "REGION_DESCRIPTOR", "REGION_CONTROL",
    "CONTROL_N_LAYERS", "CONTROL_CLEAR", "load_address", "COUNTERS",
    "vn_layout", "bus_words_per_step", "bus_bytes_per_step",
]

#: Load-address regions (``addr[31:28]``), see docs/hardware.md.
REGION_BANK, REGION_REQUANT, REGION_DESCRIPTOR, REGION_CONTROL = 0, 1, 2, 3
#: Control registers (region 3).
CONTROL_N_LAYERS, CONTROL_CLEAR = 0, 1
#: Performance counters in ``stat_addr`` order.
COUNTERS = ("busy", "stall_input", "stall_output", "mac_ops", "bank_reads",
            "act_reads", "act_writes", "inferences", "bus_bytes")


def index_bits(count: int) -> int:
    """Bits of an index ``0 .. count-1`` (at least 1)."""
    return max(1, (count - 1).bit_length())


def lanes(cfg: ArrayConfig) -> int:
    """Lane memories of an activation buffer: ``B = max(pe, simd)``.

    Element ``i`` lives in lane ``i % B``, word ``i // B``: the ``pe`` results of
    one group land in distinct lanes of one word and the ``simd`` inputs of one
    fold are distinct lanes of one word.
    """
    return max(cfg.pe, cfg.simd)


def lane_ratio(cfg: ArrayConfig) -> int:
    """Folds per activation word, ``B // simd`` (the read mux is that wide)."""
    return lanes(cfg) // cfg.simd


def act_words(cfg: ArrayConfig) -> int:
    """Words of one activation buffer (one of the ping-pong pair, or one input slot)."""
    return cfg.max_features // lanes(cfg)


def out_words(cfg: ArrayConfig) -> int:
    """Words per PE lane of one output-buffer slot (``max_features // pe``)."""
    return cfg.max_features // cfg.pe


def rq_depth(cfg: ArrayConfig) -> int:
    """Requant-table entries per PE: enough for ``max_layers`` layers of ``max_features``."""
    return cfg.max_layers * (cfg.max_features // cfg.pe)


def rq_bits(cfg: ArrayConfig) -> int:
    """Bits of one requant entry: ``bias | m | s``."""
    from golden import contract
    return cfg.acc_bits + cfg.m_bits + contract.SHIFT_BITS


def descriptor_fields(cfg: ArrayConfig) -> list[tuple[str, int]]:
    """``[(name, width), ...]`` of a descriptor word, from bit 0 upward."""
    feat = cfg.max_features.bit_length()
    return [("in_features", feat), ("out_features", feat),
            ("bank_base", index_bits(cfg.bank_depth)), ("rq_base", index_bits(rq_depth(cfg))),
            ("relu", 1), ("requantize", 1)]


def descriptor_bits(cfg: ArrayConfig) -> int:
    return sum(w for _, w in descriptor_fields(cfg))


def load_data_bits(cfg: ArrayConfig) -> int:
    """Width ``D`` of ``load__payload.data``: the widest word any region takes."""
    return max(cfg.simd * cfg.w_bits, rq_bits(cfg), descriptor_bits(cfg))


def load_address(region: int, index: int, word: int) -> int:
    """``addr`` of a load word: ``region << 28 | index << 20 | word``."""
    if not 0 <= region < 16 or not 0 <= index < 256 or not 0 <= word < 2**20:
        raise ValueError(f"load address out of range: region {region}, index {index}, word {word}")
    return region << 28 | index << 20 | word


def _pack(fields, values: dict, what: str) -> int:
    word, shift = 0, 0
    for name, width in fields:
        v = int(values[name])
        if not 0 <= v < 2**width:
            raise ValueError(f"{what} field {name} = {v} does not fit {width} bits")
        word |= v << shift
        shift += width
    return word


def _unpack(fields, word: int) -> dict:
    out, shift = {}, 0
    for name, width in fields:
        out[name] = word >> shift & (2**width - 1)
        shift += width
    return out


def pack_descriptor(cfg: ArrayConfig, **values) -> int:
    """Descriptor word from ``in_features, out_features, bank_base, rq_base, relu, requantize``."""
    return _pack(descriptor_fields(cfg), values, "descriptor")


def unpack_descriptor(cfg: ArrayConfig, word: int) -> dict:
    return _unpack(descriptor_fields(cfg), word)


def descriptor_step_fields(cfg: ArrayConfig) -> list[tuple[str, int]]:
    """``[(name, width), ...]`` of a layer's step counts as the array stores them beside
    its descriptor: ``groups``, ``folds - 1`` and ``groups - 1`` (two's complement, -1
    for 0 features), the flags ``folds == 1``, ``groups == 1``, and ``wait_next``, the
    :func:`countdown_wait` of the layer that reads this one's outputs."""
    feat = cfg.max_features.bit_length()
    return [("groups", feat), ("folds_m1", feat + 1), ("groups_m1", feat + 1),
            ("one_fold", 1), ("one_group", 1), ("wait_next", readable_after(cfg).bit_length())]


def beats_left_init(cfg: ArrayConfig, in_features):
    """``ceil(in_features / simd) - 2`` (-2 for 0 features): what the input writer's
    down-counter of a vector's beats loads, whose sign turns as the last beat is taken.
    ``(n-1-k) >> log2(k)``, one subtract of a constant; ints or Amaranth values, as
    :func:`descriptor_steps`."""
    return (in_features - (1 + cfg.simd)) >> (cfg.simd - 1).bit_length()


def descriptor_steps(cfg: ArrayConfig, in_features, out_features) -> dict:
    """The step counts of :func:`descriptor_step_fields` from a layer's feature counts.

    One formula for both users: with ints it gives the memory init of a compiled
    program, with Amaranth values the logic that decodes a descriptor being loaded.
    The array stores them so that no adder or magnitude compare sits between its
    descriptor read and the sequencer's next-layer flags (the ECP5 critical path).
    """
    s_log, p_log = (cfg.simd - 1).bit_length(), (cfg.pe - 1).bit_length()  # powers of two
    return {
        "groups": (out_features + (cfg.pe - 1)) >> p_log,
        "folds_m1": (in_features - 1) >> s_log,  # (n-1) >> log2(k) = ceil(n/k) - 1, -1 for 0
        "groups_m1": (out_features - 1) >> p_log,
        "one_fold": (in_features != 0) & (in_features <= cfg.simd),
        "one_group": (out_features != 0) & (out_features <= cfg.pe),
        "wait_next": countdown_wait_from(cfg, countdown_distance(cfg, in_features, out_features)),
    }


def _select(cond, a, b):
    """``a if cond else b`` on ints, ``Mux(cond, a, b)`` on Amaranth values."""
    if isinstance(cond, bool):
        return a if cond else b
    from amaranth.hdl import Mux
    return Mux(cond, a, b)


def countdown_distance(cfg: ArrayConfig, in_features, out_features, *, writeback: int | None = None):
    """The least distance, in steps, from the last fold of a producer group of a layer
    of this shape to the read of it by the next layer's first group (relative to this
    layer's last step), ``min((G_p - 1) * F_p, f*)`` (see :func:`countdown_wait`),
    clamped to ``ceil(readable_after / bus_words_per_step)`` (beyond that nothing waits).

    On ints, or on Amaranth values as the logic that decodes a descriptor being loaded:
    no multiplier, every product is of a power of two or of a count clamped to a few
    bits.  The array decodes it over two cycles (:func:`countdown_distance_parts`, then
    :func:`countdown_distance_clamp`) and registers it before
    :func:`countdown_wait_from`, so that no part is a long path.  ``writeback``: as for :func:`schedule`.
    """
    return countdown_distance_clamp(cfg, *countdown_distance_parts(cfg, in_features, out_features),
                                    writeback=writeback)


def countdown_distance_parts(cfg: ArrayConfig, in_features, out_features):
    """:func:`countdown_distance` in two halves, for a decode over two cycles: this one
    gives ``(no_distance, least)``, :func:`countdown_distance_clamp` the distance."""
    s_log, p_log = (cfg.simd - 1).bit_length(), (cfg.pe - 1).bit_length()  # powers of two
    no_distance = (in_features == 0) | (out_features <= cfg.pe)  # G_p - 1 <= 0 or F_p = 0
    last = (out_features - 1) >> p_log  # G_p - 1, where no_distance is false
    if cfg.pe <= cfg.simd:
        # f* = floor(last * pe / simd) <= last <= last * F_p
        least = last >> (s_log - p_log)
    else:
        # f* = last * (pe / simd): the least is last * min(F_p, pe / simd)
        ratio = cfg.pe // cfg.simd
        f_p = ((in_features - 1) >> s_log) + 1
        times = _select(f_p < ratio, f_p, ratio)
        least = sum(_select(((times >> i) & 1) == 1, last << i, 0) for i in range(ratio.bit_length()))
    return no_distance, least


def countdown_distance_clamp(cfg: ArrayConfig, no_distance, least, *, writeback: int | None = None):
    """The second half of :func:`countdown_distance`: ``least`` clamped to the ceiling, 0
    where there is no distance."""
    ceiling = ceil_div(readable_after(cfg, writeback=writeback), bus_words_per_step(cfg))
    return _select(no_distance, 0, _select(least < ceiling, least, ceiling))


def countdown_wait_from(cfg: ArrayConfig, distance, *, writeback: int | None = None):
    """:func:`countdown_wait` from :func:`countdown_distance` (ints or Amaranth values)."""
    full, K = readable_after(cfg, writeback=writeback), bus_words_per_step(cfg)
    cycles = sum(distance << i for i in range(K.bit_length()) if K >> i & 1)  # K * distance
    return _select(cycles >= full, 0, full - cycles)


def pack_descriptor_steps(cfg: ArrayConfig, descriptor: int) -> int:
    """The stored step-count word of a descriptor word (memory init)."""
    d = unpack_descriptor(cfg, descriptor)
    steps = descriptor_steps(cfg, d["in_features"], d["out_features"])
    word, shift = 0, 0
    for name, width in descriptor_step_fields(cfg):
        word |= (int(steps[name]) & (2**width - 1)) << shift
        shift += width
    return word


def _requant_fields(cfg: ArrayConfig):
    from golden import contract
    return [("bias", cfg.acc_bits), ("m", cfg.m_bits), ("s", contract.SHIFT_BITS)]


def pack_requant(cfg: ArrayConfig, bias: int, m: int, s: int) -> int:
    """Requant word: two's-complement ``bias`` (acc_bits), ``m``, ``s``."""
    lo, hi = -(2 ** (cfg.acc_bits - 1)), 2 ** (cfg.acc_bits - 1) - 1
    if not lo <= bias <= hi:
        raise ValueError(f"bias {bias} does not fit acc_bits={cfg.acc_bits}")
    return _pack(_requant_fields(cfg), {"bias": bias % 2**cfg.acc_bits, "m": m, "s": s}, "requant")


def unpack_requant(cfg: ArrayConfig, word: int) -> dict:
    d = _unpack(_requant_fields(cfg), word)
    if d["bias"] >= 2 ** (cfg.acc_bits - 1):
        d["bias"] -= 2**cfg.acc_bits
    return d


def pack_lanes(values, bits: int) -> int:
    """Signed ``values`` into lanes of ``bits`` (lane ``s`` at ``[s*bits +: bits]``)."""
    word = 0
    for s, v in enumerate(values):
        if not -(2 ** (bits - 1)) <= v < 2 ** (bits - 1):
            raise ValueError(f"lane {s} value {v} does not fit {bits} signed bits")
        word |= (int(v) % 2**bits) << (s * bits)
    return word


def input_beats(values, cfg: ArrayConfig) -> list[int]:
    """One vector as ``i_stream`` beats: ``folds`` words of ``simd`` lanes, zero-padded."""
    F, S = folds(len(values), cfg), cfg.simd
    padded = list(values) + [0] * (F * S - len(values))
    return [pack_lanes(padded[f * S:(f + 1) * S], cfg.a_bits) for f in range(F)]


def unpack_lanes(word: int, bits: int, count: int) -> list[int]:
    out = []
    for s in range(count):
        v = word >> (s * bits) & (2**bits - 1)
        out.append(v - 2**bits if v >= 2 ** (bits - 1) else v)
    return out


# -- pipeline -------------------------------------------------------------------

def tree_levels(cfg: ArrayConfig) -> int:
    """Registered adder-tree levels, ``log2(simd)``."""
    return (cfg.simd - 1).bit_length()


def requant_stages() -> int:
    """Requantization: input registers (the multipliers' own), partial products,
    product, coarse window, fine window (and the overflow flag), rounding,
    clamp/select (one register each; see ``pyhdl.requant``)."""
    return 7


def buffer_read_stages() -> int:
    """Synchronous RAM read 1 + a register on the RAM's data output 1.

    Block-RAM clock-to-out (5.8 ns on ECP5 speed 6) is most of a clock period at the
    Fmax goal, so no logic follows a RAM read in the same cycle: the activation
    buffers and the weight banks are both read this way, and a step's activations
    reach the PEs' ``act`` input this many cycles after the step.
    """
    return 2


def operand_stages() -> int:
    """Registers between the buffer/bank read registers and the multipliers.

    The first takes the activations broadcast to every PE (a long route from the
    shared read select); the others have nothing to reach but the next one and the
    DSP, which leaves the placer room to put the last one beside its multiplier.  Yosys
    maps ``MULT18X18D`` without its own input register, so that route plus the 3.9 ns
    multiplier is a whole cycle: with one operand register it was the ECP5 critical
    path, with two it still was on placement seeds 3 and 4 (7.2-7.8 ns of routing,
    83.5 and 81.3 MHz); with three no seed of 1-4 is limited by a multiplier.
    """
    return 3


def pe_stages(cfg: ArrayConfig) -> int:
    """Cycles from issuing a step (bank address presented) to its result being written.

    bank read and its output register ``buffer_read_stages`` + operand registers
    ``operand_stages`` + product 1 + adder tree ``log2(simd)`` + accumulator 1 +
    :func:`finish_stages` + requantization ``requant_stages`` (whose first register
    is the finished sum's copy for the requant multipliers).  A read
    issued ``pe_stages + 1`` cycles after the step that completed a group sees that
    group's results.
    """
    return buffer_read_stages() + operand_stages() + 1 + tree_levels(cfg) + 1 + finish_stages(cfg) + requant_stages()


def issue_stages() -> int:
    """Registers between the sequencer's decision and the memories/PEs (fan-out, Fmax).

    One.  ``NmcArray`` and :func:`schedule` take any number: a second copy placed
    toward the banks and PEs was tried on ECP5 and bought nothing measurable
    (``docs/fpga.md``) for a cycle more per layer boundary.
    """
    return 1


def stat_read_stages() -> int:
    """Cycles from ``stat_addr`` to its counter on ``stat_data``.

    One: the counter select is registered, so the 32-bit 9:1 select does not join
    whatever drives ``stat_addr`` and reads ``stat_data`` in one path (at speed 8 and in
    a floorplanned ECP5 build it limited the whole design, ``docs/fpga.md``).
    """
    return 1


def beat_notice_stages() -> int:
    """Cycles from an input beat's handshake to the sequencer counting it.

    One: the sequencer's input-side flags ("beat f is in", "beat f + 1 is in") and its
    readiness step on a register of the handshake per input slot (``NmcArray``'s
    ``in_taken``), not on the handshake itself, which is ``i_stream.valid`` (driven from
    outside) AND ``i_stream.ready``.  That decode in front of every flag limited ECP5 on
    two seeds of ten and was a LUT level of the input side that limited every UP5K seed;
    the register bought ECP5 speed 6 +2.8 +- 2.5 MHz (docs/fpga.md).  A layer-0 step
    issues a cycle later after its beat; back to back nothing changes.
    """
    return 1


def load_stages() -> int:
    """Cycles from a load handshake to its write (and the sequencer restart, the clear).

    Three: the payload is registered as it is accepted, registered again, then
    decoded into a third register.  No decode runs from the port, whose driver may
    sit far away (on ECP5 that decode, fed by the synthesis harness, limited four
    speed-8 seeds), nor from the first register, which that far driver pulls away
    from the decode (with two stages the decode from the first limited five of ten
    speed-6 seeds); the countdown distance, the longest decode, takes two cycles.
    """
    return 3


def load_to_input() -> int:
    """Cycles from the last load handshake to the first cycle an input beat is taken.

    The write lands (``load_stages``), the sequencer restarts in the next cycle (it
    re-reads descriptor 0, ``i_stream.ready`` low) and takes a beat in the one after.
    """
    return load_stages() + 2


def input_settle(cfg: ArrayConfig) -> int:
    """Cycles from the last load handshake to the first cycle in which a taken input beat
    finds the first step's weights at hand, as ``schedule`` assumes.

    ``load_to_input()`` in ``near`` mode.  In ``vonneumann`` mode the weight prefetch
    restarts with the sequencer, a cycle before the first beat can be taken, and reads
    one bus word per cycle; the step issues with its last word, so a beat taken
    ``bus_words_per_step - 2 - beat_notice_stages`` cycles later issues its step
    ``1 + beat_notice_stages`` cycles after it.
    """
    return load_to_input() + max(0, bus_words_per_step(cfg) - 2 - beat_notice_stages())


def writeback_latency(cfg: ArrayConfig) -> int:
    """Cycles from the sequencer issuing a step to its result being written back."""
    return issue_stages() + pe_stages(cfg)


def readable_after(cfg: ArrayConfig, *, writeback: int | None = None) -> int:
    """Cycles from a step's issue to the first issue of a step that may read its result:
    ``pe_stages + 1``.  The reader's buffer address reaches the memory ``issue_stages``
    cycles after its issue, and it must come after the cycle of the write-back,
    ``writeback`` cycles after the producer's issue (the buffers are read-first).
    ``writeback``: as for :func:`schedule`."""
    W = writeback_latency(cfg) if writeback is None else _latency("writeback", writeback, issue_stages())
    return W - issue_stages() + 1


def _large(cfg: ArrayConfig) -> bool:
    """More than two PEs: the array whose memories and DSPs spread across an FPGA, so
    that a route from one to a register beside another takes most of a clock period.
    With one or two PEs (the 2x4 on the UP5K) those routes are short, and each
    register bought for them cost the full UP5K about 3 MHz (docs/fpga.md)."""
    return cfg.pe > 2


def finish_stages(cfg: ArrayConfig) -> int:
    """Registers between a PE's accumulators and its requant unit: one with more than
    two PEs, the finished context's sum selected into it; none with one or two (the
    select runs straight into the requant unit's input registers)."""
    return int(_large(cfg))


def drain_pair_stages(cfg: ArrayConfig) -> int:
    """Registers between the drain's lane registers and its FIFO: one with more than
    two PEs, after each pair of lanes is selected (their output buffers lie across the
    device); none with one or two."""
    return int(_large(cfg))


def drain_latency(cfg: ArrayConfig) -> int:
    """Cycles from an output-buffer read to its beat on ``o_stream``: read 1, lane
    register 1, :func:`drain_pair_stages`, FIFO 1."""
    return 3 + drain_pair_stages(cfg)


def drain_fifo_depth(cfg: ArrayConfig) -> int:
    """Entries of the drain's output FIFO, which the drain counts its reads against
    from the read to the beat: ``drain_latency + 1``, the least that lets it read
    every cycle while ``o_stream`` takes a beat every cycle."""
    return drain_latency(cfg) + 1


def producer_group(fold: int, prev_out: int, cfg: ArrayConfig) -> int:
    """Group of the previous layer that fold ``fold`` of the next one needs last."""
    last_elem = min((fold + 1) * cfg.simd, prev_out) - 1
    return last_elem // cfg.pe


def vn_layout(cfg: ArrayConfig) -> tuple[int, int, int]:
    """Shared weight memory of ``vonneumann`` mode: ``(width, pe_per_word, words_per_pe)``.

    One PE word (``simd*w_bits`` bits) never straddles a bus word: when it fits,
    ``pe_per_word`` of them share one bus word (``width = pe_per_word*simd*w_bits``
    <= ``bus_bits``); otherwise each takes ``words_per_pe`` whole bus words.
    """
    sw = cfg.simd * cfg.w_bits
    if sw <= cfg.bus_bits:
        per = min(cfg.bus_bits // sw, cfg.pe)
        return per * sw, per, 1
    return cfg.bus_bits, 1, ceil_div(sw, cfg.bus_bits)


def bus_words_per_step(cfg: ArrayConfig) -> int:
    """Bus cycles that deliver one step's ``pe*simd*w_bits`` weight bits (1 in ``near`` mode).

    Equals ``ceil(pe*simd*w_bits / bus_bits)`` whenever ``simd*w_bits`` and
    ``bus_bits`` divide one another (every power-of-two configuration).
    """
    if cfg.mode == "near":
        return 1
    _, per, words = vn_layout(cfg)
    return ceil_div(cfg.pe, per) * words


def bus_bytes_per_step(cfg: ArrayConfig) -> int:
    """Weight bytes moved over the shared bus per step (counter 8); 0 in ``near`` mode."""
    if cfg.mode == "near":
        return 0
    return bus_words_per_step(cfg) * cfg.bus_bits // 8


def layer_fill(cfg: ArrayConfig) -> int:
    """Pipeline fill a dependent layer may wait for: ``writeback_latency + 1``."""
    return writeback_latency(cfg) + 1


def countdown_wait(prev_shape, cfg: ArrayConfig, *, writeback: int | None = None) -> int:
    """Cycles after its context's last step of a layer of shape ``prev_shape`` before the
    first step of the layer that reads it may issue (the array's readiness rule).

    Fold ``f`` of the first group reads the previous layer's groups up to
    ``producer_group(f)``, whose last fold issued at least
    ``K * (G_p - 1 - producer_group(f)) * F_p`` cycles before that layer's last step
    (later steps only push it further back), and it issues at least ``K * f`` cycles
    after the group's first fold; it may issue :func:`readable_after` cycles after the
    producer's issue.  So the wait is ``readable_after`` less the least of those distances
    over ``f``, and that least is ``min((G_p - 1) * F_p, f*)``, ``f*`` the first fold
    that needs the previous layer's last group (``floor((G_p - 1) * pe / simd)``, from
    the previous layer alone; ``tests/test_hw_params.py`` holds it equal to the least
    over every fold for a chain of layers, and no larger for any next layer).  Never
    negative: 0 is no wait.  ``writeback``: as for :func:`schedule`.  The array decodes
    it from each descriptor as it is loaded (``descriptor_steps``, ``wait_next``).
    """
    prev_in, prev_out = (int(v) for v in prev_shape)
    return countdown_wait_from(cfg, countdown_distance(cfg, prev_in, prev_out, writeback=writeback),
                               writeback=writeback)


def schedule(shapes, cfg: ArrayConfig, vectors: int = 1, *, writeback: int | None = None,
             drain: int | None = None) -> dict:
    """Cycle-exact model of the array for ``vectors`` inferences streamed back to back.

    Input beats arrive at full rate from cycle 0 (the first beat of vector 0 is
    accepted in cycle 0, a later vector's beats as soon as its input slot is free),
    the output is never back-pressured, and (``vonneumann`` mode) the array has been
    idle for ``bus_words_per_step`` cycles since the last program write, so the first
    step's weights are already fetched.  Returns a dict: ``"issue"``, the cycle of
    every issued step in issue order; ``"steps"``, the same steps as
    ``(cycle, vector, layer, group, fold)`` (steps of consecutive vectors interleave);
    ``"accept"``, the cycle the last result of each vector is accepted.

    This is the sequencer of ``pyhdl.top.NmcArray`` register for register: two
    contexts (vector parity) each walk every layer of their own vectors; a context may
    issue in a cycle if it was found ready in the cycle before (for the step after its
    last one if it issued then, which is never a layer's first step); the context of
    the older vector goes first and the other takes the cycles it leaves (``near``
    mode; in ``vonneumann`` mode only the older one issues).  A later layer's first
    step waits :func:`countdown_wait` cycles after its context's last step.

    ``writeback`` and ``drain`` replace ``writeback_latency(cfg)`` and
    ``drain_latency(cfg)`` for what-if questions (the same sequencer with a shallower
    pipeline, see :func:`single_latency_budget`); the hardware is the default.
    """
    shapes = [(int(i), int(o)) for i, o in shapes]
    L = len(shapes)
    W = writeback_latency(cfg) if writeback is None else _latency("writeback", writeback, issue_stages())
    D = drain_latency(cfg) if drain is None else _latency("drain", drain, 0)
    P = cfg.pe
    K = bus_words_per_step(cfg)
    interleave = cfg.mode == "near"
    Fs = [folds(i, cfg) for i, _ in shapes]
    Gs = [groups(o, cfg) for _, o in shapes]
    F0 = Fs[0]
    waits = [None] + [countdown_wait(shapes[l - 1], cfg, writeback=W) for l in range(1, L)]
    # input writer: slot s holds context s's vector
    ws, full, beats, sent = 0, [False, False], [0, 0], 0
    released = [[False, False] for _ in range(issue_stages())]  # full clears after these
    restart = [False, False]       # the beat count restarts a cycle after the release
    # sequencer: per context its vector, layer, group, fold and last step's cycle
    vec, layer, g, f = [0, 1], [0, 0], [0, 0], [0, 0]
    last_step = [None, None]
    want, oldest = [False, False], 0
    phase = K - 1
    # output slots and drain
    out_full, out_pend, out_wr = [False, False], [False, False], [0, 0]
    claim_r = None                 # the claim register: the context that claimed last cycle
    ds = de = 0
    out_n = shapes[-1][1]
    pending = {}                  # cycle -> write-backs (context, to the output)
    accept_at = {}
    issue_times, steps, accept = [], [], []
    limit = 10_000 + vectors * (ideal_cycles(shapes, cfg) * K + (W + 8) * (L + 2) + F0 + out_n) * 4
    c = 0
    while len(accept) < vectors:
        if c > limit:
            raise RuntimeError("sizing.schedule did not converge (model bug)")
        # ---- combinational view of cycle c
        if interleave:
            iss = [want[0] and (oldest == 0 or not want[1]), want[1] and (oldest == 1 or not want[0])]
        else:
            iss = [want[0] and oldest == 0, want[1] and oldest == 1]
        issue = iss[0] or iss[1]
        in_fire = sent < vectors * F0 and not full[ws]
        # the sequencer counts a beat beat_notice_stages() = 1 cycle after its
        # handshake: it sees the writer's count, every beat taken before this cycle
        drain = out_pend[ds] and out_wr[ds] > de // P
        phase_next = 0 if issue else min(phase + 1, K - 1)
        # per context: last fold, last group, first step of its layer
        flags = [(f[x] == Fs[layer[x]] - 1, g[x] == Gs[layer[x]] - 1, g[x] == 0 and f[x] == 0)
                 for x in range(2)]
        nxt_want = [False, False]
        for x in range(2):
            lf, lg, first = flags[x]
            if iss[x]:  # the step after this one: same layer
                ok = not (lf and lg) and (layer[x] != 0 or lf or beats[x] > f[x] + 1)
            else:
                if layer[x] == 0:
                    data_ok = beats[x] > f[x]
                else:
                    data_ok = not first or c + 1 - last_step[x] >= waits[layer[x]]
                ofull = out_full[x] or claim_r == x
                ok = data_ok and not (layer[x] == L - 1 and first and ofull)
            nxt_want[x] = ok and phase_next == K - 1
        # ---- register updates at the end of cycle c
        release = [False, False]
        claim = None
        for x in range(2):
            if not iss[x]:
                continue
            l = layer[x]
            issue_times.append(c)
            steps.append((c, vec[x], l, g[x], f[x]))
            last_step[x] = c
            (lf, lg, first), last = flags[x], l == L - 1
            if last and first:
                claim = x
            if lf:
                pending.setdefault(c + W, []).append((x, last))
                if l == 0 and lg:
                    release[x] = True
                f[x], g[x] = 0, g[x] + 1
                if lg:
                    g[x] = 0
                    if last:
                        layer[x], vec[x] = 0, vec[x] + 2
                        if oldest == x:
                            oldest = 1 - x
                    else:
                        layer[x] = l + 1
            else:
                f[x] += 1
        want = nxt_want
        phase = phase_next
        # (the array's claim wins over a write-back in its cycle; with the hardware's
        # pipeline none comes then, and a what-if write-back one cycle deep keeps it)
        if claim_r is not None:
            out_full[claim_r], out_pend[claim_r], out_wr[claim_r] = True, True, 0
        claim_r = claim
        for x, out in pending.pop(c, ()):
            if out:
                out_wr[x] += 1
        if drain:
            if de == out_n - 1:
                accept_at[c + D] = ds
                out_pend[ds] = False
                de, ds = 0, 1 - ds
            else:
                de += 1
        if c in accept_at:
            accept.append(c)
            out_full[accept_at.pop(c)] = False
        if in_fire:
            beats[ws] += 1
            sent += 1
            if beats[ws] == F0:
                full[ws] = True
                ws = 1 - ws
        for x in range(2):
            if released[0][x]:  # issue_stages cycles after the release (NmcArray: in_release_r)
                full[x] = False
            if restart[x]:
                beats[x] = 0
        released = released[1:] + [release]
        restart = release
        c += 1
    return {"issue": issue_times, "steps": steps, "accept": accept}


def _latency(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} latency must be an int, not {value!r}")
    if value < lo:
        raise ValueError(f"{name} latency must be at least {lo}, not {value}")
    return value


def inference_cycles(shapes, cfg: ArrayConfig, *, writeback: int | None = None,
                     drain: int | None = None) -> int:
    """Busy cycles of one isolated inference (counter 0): first input beat accepted
    in cycle 0, full-rate input, no backpressure; the cycle its last result is
    accepted, which is how many cycles ``busy`` is high (from cycle 2 to the cycle
    after that: it is counted from registered events).  ``writeback``/``drain``: as for :func:`schedule`."""
    return schedule(shapes, cfg, 1, writeback=writeback, drain=drain)["accept"][0]


def single_latency_budget(shapes, cfg: ArrayConfig, ratio: float) -> int | None:
    """The deepest write-back pipeline (issue to result written, in cycles) with which
    this sequencer, with a zero-latency drain, would finish one isolated inference in
    at most ``ratio`` times the ideal cycles; ``None`` if not even the shallowest
    (``issue_stages()``: the decision register, no PE pipeline at all) would.  Compare with ``writeback_latency(cfg)``: a dependent layer waits
    for its producer's write-back, so every layer boundary costs the full depth.
    """
    limit = ratio * ideal_cycles(shapes, cfg)
    best = None
    for w in range(issue_stages(), writeback_latency(cfg) + 1):
        if inference_cycles(shapes, cfg, writeback=w, drain=0) > limit:
            break
        best = w
    return best


def steady_cycles(shapes, cfg: ArrayConfig, vectors: int = 8) -> int:
    """Cycles between consecutive inferences' last results in back-to-back steady state."""
    acc = schedule(shapes, cfg, vectors)["accept"]
    return acc[-1] - acc[-2]
