"""Technology factories: every memory and multiplier of the array is made here.

The array asks for "a synchronous-read RAM" or "a registered product"; this
module decides how they are built.  By default both are inferred (Yosys maps them to
block RAM and DSPs; on ECP5 the flow then moves registers into the primitives,
:mod:`pyhdl.fpga.regpack`).  Two vendor primitives sit behind options here, both iCE40
``SB_MAC16``s with their own registers on: the lane pair (:func:`ice40_pair_sum`,
``lane_dsp="ice40_pairs"``: two MAC lanes and their sum in one DSP) and the requant
product chunk (:func:`ice40_product`, ``requant_dsp="ice40"``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Signal, signed
from amaranth.lib.memory import Memory

__all__ = ["ram", "registered_product", "ice40_pair_sum", "ice40_product", "ice40_dsp_stub", "check_lane_dsp",
           "check_requant_dsp", "instantiates_primitives", "MUL_CHUNK", "ICE40_MUL_BITS", "RAM_STYLES",
           "LANE_DSP", "LANES_PER_DSP", "REQUANT_DSP", "REQUANT_CHUNK_BITS", "ICE40_DSP_CELL"]

#: Widest operand slice one DSP multiplies: 17 unsigned bits fit an 18x18 signed
#: multiplier (ECP5 MULT18X18D, iCE40 SB_MAC16 is 16x16: slices are still correct).
MUL_CHUNK = 17
#: Operand width of an iCE40 ``SB_MAC16`` in its 16x16 mode (signedness per operand)
ICE40_MUL_BITS = 16


#: Yosys ``ram_style`` values :func:`ram` passes on.
RAM_STYLES = ("auto", "block")

#: How the MAC lanes' products are built: ``"inferred"`` (a ``$mul`` per lane, mapped by
#: synthesis; the committed Verilog), ``"ice40_pairs"`` (two lanes per iCE40
#: ``SB_MAC16`` in its dual 8x8 mode, their sum inside it: :func:`ice40_pair_sum`).
LANE_DSP = ("inferred", "ice40_pairs")
#: MAC lanes one DSP primitive builds, per :data:`LANE_DSP` choice
LANES_PER_DSP = {"inferred": 1, "ice40_pairs": 2}

#: How the requant unit's partial products (accumulator chunk x ``m``) are built:
#: ``"inferred"`` (a registered ``$mul`` per 17-bit chunk behind fabric operand
#: registers; the committed Verilog), ``"ice40"`` (one ``SB_MAC16`` per 16-bit chunk
#: with its operand and product registers on: :func:`ice40_product`).
REQUANT_DSP = ("inferred", "ice40")
#: Bits of the accumulator one requant partial product takes, per :data:`REQUANT_DSP`
#: choice: 17 unsigned bits fit the ECP5's 18x18 signed multiplier, the ``SB_MAC16`` takes
#: 16 with the signedness set per operand.
REQUANT_CHUNK_BITS = {"inferred": MUL_CHUNK, "ice40": ICE40_MUL_BITS}

#: widest operands of an ``SB_MAC16`` 8x8 half
_ICE40_HALF_BITS = 8

#: The cell type :func:`ice40_pair_sum` and :func:`ice40_product` instantiate: an
#: ``SB_MAC16`` under another name until synthesis is done.  Yosys's ``ice40_dsp`` takes
#: every ``SB_MAC16`` for a 16x16 multiplier it mapped itself and rewrites its parameters
#: (8x8 mode, registers, output selects all lost); a black box of this name passes
#: through, and the flow renames it afterwards (``chtype -set SB_MAC16``).
ICE40_DSP_CELL = "nmc_sb_mac16"

#: ``SB_MAC16``'s one-bit control inputs besides ``CLK`` and ``CE`` (tied to 0 here)
_SB_MAC16_CONTROLS = ("AHOLD", "BHOLD", "CHOLD", "DHOLD", "IRSTTOP", "IRSTBOT", "ORSTTOP", "ORSTBOT",
                      "OLOADTOP", "OLOADBOT", "ADDSUBTOP", "ADDSUBBOT", "OHOLDTOP", "OHOLDBOT", "CI",
                      "ACCUMCI", "SIGNEXTIN")
#: ``SB_MAC16``'s parameters and their widths
_SB_MAC16_PARAMS = {
    **dict.fromkeys(("NEG_TRIGGER", "C_REG", "A_REG", "B_REG", "D_REG", "TOP_8x8_MULT_REG", "BOT_8x8_MULT_REG",
                     "PIPELINE_16x16_MULT_REG1", "PIPELINE_16x16_MULT_REG2", "TOPADDSUB_UPPERINPUT",
                     "BOTADDSUB_UPPERINPUT", "MODE_8x8", "A_SIGNED", "B_SIGNED"), 1),
    **dict.fromkeys(("TOPOUTPUT_SELECT", "TOPADDSUB_LOWERINPUT", "TOPADDSUB_CARRYSELECT", "BOTOUTPUT_SELECT",
                     "BOTADDSUB_LOWERINPUT", "BOTADDSUB_CARRYSELECT"), 2),
}


def ram(*, shape, depth: int, init=(), name: str | None = None, style: str = "auto",
        collision_free: bool = False) -> Memory:
    """A RAM of ``depth`` words of ``shape``; ``init`` (ints) preloads it.

    Callers add it as a submodule and take a synchronous read port with
    ``transparent_for=()`` (block-RAM style, read-before-write).  ``style="block"``
    asks synthesis for block RAM where Yosys would pick distributed (LUT) RAM by
    size: a small buffer in LUT RAM costs four LUT4 per 16x4 bits plus a read mux,
    in block RAM nothing.

    ``collision_free=True`` is the caller's promise that a read never meets a write
    to the same address in the same cycle where the read data is used (the array's
    schedule guarantees it; ``tests/test_hw_collisions.py`` checks it in
    simulation).  Synthesis then maps the read port as it is (Yosys ``no_rw_check``)
    instead of adding read-during-write logic around the block RAM: a registered
    copy of the write data, an address compare and a mux on every data bit, which
    also sits between the RAM and the register after it.
    """
    if style not in RAM_STYLES:
        raise ValueError(f"memory {name or ''} style must be one of {', '.join(RAM_STYLES)}, not {style!r}")
    init = list(init)
    if len(init) > depth:
        raise ValueError(f"memory {name or ''} init has {len(init)} words, depth is {depth}")
    if not isinstance(collision_free, bool):
        raise TypeError(f"memory {name or ''} collision_free must be a bool, not {collision_free!r}")
    attrs = {}
    if style != "auto":
        attrs["ram_style"] = style
    if collision_free:
        attrs["no_rw_check"] = 1
    return Memory(shape=shape, depth=depth, init=init, attrs=attrs or None)


def registered_product(m, a, b, *, name: str) -> Signal:
    """``a * b`` into a reset-less register (the DSP's output register).

    The register's wire carries Yosys ``keep``.  Without it Yosys 0.70's ``ice40_dsp``
    miscompiles the adder tree's first level, ``prod0 + prod1`` with both products
    registered: it takes ``prod0``'s register as the ``C``/``D`` input register of
    ``prod1``'s ``SB_MAC16`` (whose adder then does the sum) and, for ``prod0``'s own
    multiplier, as its pipeline register; the first claim is left reading a net that
    no longer exists (undefined, 0 on the device), so every other lane's product is
    lost.  The iCEBreaker netlist check (:mod:`pyhdl.fpga.boardcheck`) caught it, and
    ``tests/test_dsp_mapping.py`` keeps the two-product case simulated.  With the wire kept
    the register is claimed once; ECP5's ``MULT18X18D`` has no adder to absorb.
    """
    product = a * b
    p = Signal(product.shape(), name=name, reset_less=True, attrs={"keep": 1})
    m.d.sync += p.eq(product)
    return p


def check_lane_dsp(lane_dsp, cfg) -> str:
    """``lane_dsp`` checked against :data:`LANE_DSP` and ``cfg``; ValueError naming the limit."""
    if lane_dsp not in LANE_DSP:
        raise ValueError(f"lane_dsp must be one of {', '.join(LANE_DSP)}, not {lane_dsp!r}")
    if lane_dsp == "ice40_pairs":
        if cfg.w_bits > _ICE40_HALF_BITS or cfg.a_bits > _ICE40_HALF_BITS:
            raise ValueError(f"lane_dsp='ice40_pairs' needs w_bits and a_bits <= {_ICE40_HALF_BITS} "
                             f"(an SB_MAC16 half is 8x8), not w_bits={cfg.w_bits}, a_bits={cfg.a_bits}")
        if cfg.simd % LANES_PER_DSP[lane_dsp]:
            raise ValueError(f"lane_dsp='ice40_pairs' pairs the lanes: simd must be even, not {cfg.simd}")
    return lane_dsp


def check_requant_dsp(requant_dsp, *, m_bits: int) -> str:
    """``requant_dsp`` checked against :data:`REQUANT_DSP` and ``m_bits``; ValueError naming the limit."""
    if requant_dsp not in REQUANT_DSP:
        raise ValueError(f"requant_dsp must be one of {', '.join(REQUANT_DSP)}, not {requant_dsp!r}")
    if requant_dsp == "ice40" and m_bits > ICE40_MUL_BITS:
        raise ValueError(f"requant_dsp='ice40' needs m_bits <= {ICE40_MUL_BITS} (an SB_MAC16 operand), "
                         f"not {m_bits}")
    return requant_dsp


def instantiates_primitives(*, lane_dsp: str, requant_dsp: str) -> bool:
    """Whether an array built with these choices instantiates :data:`ICE40_DSP_CELL`: its
    Verilog then needs :func:`ice40_dsp_stub` beside it, and the committed (inferred)
    Verilog is not it."""
    return lane_dsp != "inferred" or requant_dsp != "inferred"


def ice40_pair_sum(m, w0, a0, w1, a1, *, name: str) -> Signal:
    """``w0*a0 + w1*a1`` (signed, at most 8 bits each) in one iCE40 ``SB_MAC16``.

    The DSP's 8x8 mode has two signed 8x8 multipliers, the upper on the operands' high
    bytes, the lower on their low bytes.  The upper product leaves on ``O[31:16]``
    (registered, ``TOP_8x8_MULT_REG``) and comes straight back in on ``D``; the lower
    adder adds it to the registered lower product and registers the sum
    (``BOTOUTPUT_SELECT = 1``): one DSP and no logic for two lanes and the adder
    tree's first level, where Yosys would use two DSPs.  The operands go into the DSP's
    own input registers (``A_REG``, ``B_REG``), so the sum has three register stages
    after the operands given here: operand register, product, sum, as a registered
    operand, :func:`registered_product` and one registered add.  The 16-bit sum is
    exact because two products of the contract's ranges (activations -128..127,
    weights -127..127) stay within -32512..32512.

    Verilog only (an ``Instance`` of :data:`ICE40_DSP_CELL`, declared by
    :func:`ice40_dsp_stub`): the Amaranth simulator cannot run it; the iCE40 netlist
    co-simulation (Yosys's ``SB_MAC16`` model) checks it.
    """
    bytes_ = {}
    for key, v in (("w0", w0), ("a0", a0), ("w1", w1), ("a1", a1)):
        bytes_[key] = Signal(signed(_ICE40_HALF_BITS), name=f"{name}_{key}")
        m.d.comb += bytes_[key].eq(v.as_signed())
    out = Signal(32, name=f"{name}_dsp")
    params = {"MODE_8x8": 1, "A_SIGNED": 1, "B_SIGNED": 1, "A_REG": 1, "B_REG": 1,
              "TOP_8x8_MULT_REG": 1, "BOT_8x8_MULT_REG": 1, "TOPOUTPUT_SELECT": 2,
              "BOTOUTPUT_SELECT": 1, "BOTADDSUB_LOWERINPUT": 1, "BOTADDSUB_UPPERINPUT": 1}
    m.submodules[name] = Instance(
        ICE40_DSP_CELL,
        **{f"p_{k}": Const(v, _SB_MAC16_PARAMS[k]) for k, v in params.items()},
        i_CLK=ClockSignal(), i_CE=Const(1, 1),
        i_A=Cat(bytes_["a0"], bytes_["a1"]), i_B=Cat(bytes_["w0"], bytes_["w1"]),
        i_C=Const(0, 16), i_D=out[16:],
        **{f"i_{k}": Const(0, 1) for k in _SB_MAC16_CONTROLS}, o_O=out)
    total = Signal(signed(2 * _ICE40_HALF_BITS + 1), name=name)
    m.d.comb += total.eq(out[:16].as_signed())
    return total


def ice40_product(m, a, b, *, name: str) -> Signal:
    """``a * b`` in one iCE40 ``SB_MAC16`` (16x16 mode), two cycles after ``a``, ``b``.

    ``a``: at most 16 bits, signed or unsigned (``A_SIGNED``); ``b``: unsigned, at most 16
    bits.  The operands go into the DSP's input registers (``A_REG``, ``B_REG``) and the
    product into its pipeline register (``PIPELINE_16x16_MULT_REG2``, read out on both
    output halves), so the result is what a registered operand and
    :func:`registered_product` give, with no fabric flip-flop and no path from the
    multiplier into the fabric.  Yosys infers the ``SB_MAC16`` around a ``$mul`` with its
    input registers but leaves the 16x16 product unregistered on its way out (and a 17-bit
    chunk's top bit in logic); that multiply into the fabric limited the UP5K's PEs.

    Verilog only, like :func:`ice40_pair_sum`; the iCE40 netlist co-simulation (Yosys's
    ``SB_MAC16`` model) checks it.
    """
    if len(a) > ICE40_MUL_BITS or len(b) > ICE40_MUL_BITS or b.shape().signed:
        raise ValueError(f"ice40_product {name}: needs a of at most {ICE40_MUL_BITS} bits and b unsigned of "
                         f"at most {ICE40_MUL_BITS}, not {a.shape()} and {b.shape()}")
    a_signed = a.shape().signed
    a16 = Signal(ICE40_MUL_BITS, name=f"{name}_a")
    b16 = Signal(ICE40_MUL_BITS, name=f"{name}_b")
    m.d.comb += [a16.eq(a), b16.eq(b)]  # a signed a is sign-extended
    out = Signal(2 * ICE40_MUL_BITS, name=f"{name}_dsp")
    params = {"A_SIGNED": int(a_signed), "A_REG": 1, "B_REG": 1, "PIPELINE_16x16_MULT_REG2": 1,
              "TOPOUTPUT_SELECT": 3, "BOTOUTPUT_SELECT": 3}
    m.submodules[name] = Instance(
        ICE40_DSP_CELL,
        **{f"p_{k}": Const(v, _SB_MAC16_PARAMS[k]) for k, v in params.items()},
        i_CLK=ClockSignal(), i_CE=Const(1, 1), i_A=a16, i_B=b16, i_C=Const(0, 16), i_D=Const(0, 16),
        **{f"i_{k}": Const(0, 1) for k in _SB_MAC16_CONTROLS}, o_O=out)
    width = len(a) + len(b)
    product = Signal(signed(width) if a_signed else width, name=name)
    m.d.comb += product.eq(out[:width])
    return product


def ice40_dsp_stub() -> str:
    """Verilog declaring :data:`ICE40_DSP_CELL` as a black box with ``SB_MAC16``'s ports
    and parameters, for synthesis to read beside a design that uses
    :func:`ice40_pair_sum` or :func:`ice40_product`."""
    ports = [f"input {p}" for p in ("CLK", "CE", *_SB_MAC16_CONTROLS)] + [f"input [15:0] {p}" for p in "ABCD"]
    ports += ["output [31:0] O", "output CO", "output ACCUMCO", "output SIGNEXTOUT"]
    lines = [f"  parameter [{w - 1}:0] {p} = 0;" for p, w in _SB_MAC16_PARAMS.items()]
    return ("// an SB_MAC16 until synthesis is done (pyhdl.tech.ICE40_DSP_CELL)\n(* blackbox *)\n"
            f"module {ICE40_DSP_CELL}({', '.join(ports)});\n" + "\n".join(lines) + "\nendmodule\n")
