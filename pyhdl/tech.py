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


def ram(*, shape, depth: int, init=(), name: str | None = None, style: str = "auto") -> Memory:
    """A RAM of ``depth`` words of ``shape``; ``init`` (ints) preloads it.

    Callers add it as a submodule and take a synchronous read port with
    ``transparent_for=()`` (block-RAM style, read-before-write).  ``style="block"``
    asks synthesis for block RAM where Yosys would pick distributed (LUT) RAM by
    size: a small buffer in LUT RAM costs four LUT4 per 16x4 bits plus a read mux,
    in block RAM nothing.
    """
    if style not in RAM_STYLES:
        raise ValueError(f"memory {name or ''} style must be one of {', '.join(RAM_STYLES)}, not {style!r}")
    init = list(init)
    if len(init) > depth:
        raise ValueError(f"memory {name or ''} init has {len(init)} words, depth is {depth}")
    attrs = {"ram_style": style} if style != "auto" else None
    return Memory(shape=shape, depth=depth, init=init, attrs=attrs)


def registered_product(m, a, b, *, name: str) -> Signal:
    """``a * b`` into a reset-less register (the DSP's output register)."""
    product = a * b
    p = Signal(product.shape(), name=name, reset_less=True)
    m.d.sync += p.eq(product)
    return p
