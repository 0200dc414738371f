"""Technology factories: every memory and multiplier of the array is made here.

The array asks for "a synchronous-read RAM" or "a registered product"; this
module decides how they are built.  Today both are inferred (Yosys maps them to
block RAM and DSPs); an FPGA flow can swap in vendor primitives (ECP5 DP16KD
with its output register, MULT18X18D with its pipeline registers) behind an
option here without touching the array.
"""

from __future__ import annotations

from amaranth.hdl import Signal
from amaranth.lib.memory import Memory

__all__ = ["ram", "registered_product", "MUL_CHUNK", "RAM_STYLES"]

#: Widest operand slice one DSP multiplies: 17 unsigned bits fit an 18x18 signed
#: multiplier (ECP5 MULT18X18D, iCE40 SB_MAC16 is 16x16: slices are still correct).
MUL_CHUNK = 17


#: Yosys ``ram_style`` values :func:`ram` passes on.
RAM_STYLES = ("auto", "block")


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
