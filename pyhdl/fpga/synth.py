"""``nmc synth``: synthesize, place and route an array configuration for a target.

The default jobs are the issue's: the default 8x8 int8 array on the ECP5-85F
(speed 6) and the small 2x4 array on the iCE40 UP5K.  Each job writes
``<build>/<target>/report.json`` and the caller prints :func:`report.format_table`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import tech
from ..config import ArrayConfig, DEFAULT, SMALL
from ..sizing import ceil_div
from . import flow, report, targets
from .targets import Target

__all__ = ["CONFIGS", "default_config", "design_verilog", "expected_mapping", "run"]

#: ``--config`` names.
CONFIGS = {"default": DEFAULT, "small": SMALL}
HDL_DIR = Path(__file__).resolve().parents[2] / "hdl"


def default_config(target: Target) -> str:
    """The config a target is built with unless asked otherwise."""
    return "small" if target.family == "ice40" else "default"


def top_name(cfg: ArrayConfig) -> str:
    return f"nmc_{cfg.name}"


def design_verilog(cfg: ArrayConfig, build_dir: Path, *, regenerate: bool = False,
                   lane_dsp: str = "inferred") -> Path:
    """The Verilog of ``cfg``: the committed ``hdl/nmc_<name>.v`` if present, else generated.
    With a ``lane_dsp`` other than ``"inferred"`` (a target's primitives,
    :data:`pyhdl.tech.LANE_DSP`) it is always generated, into ``build_dir``."""
    committed = HDL_DIR / f"{top_name(cfg)}.v"
    if committed.is_file() and not regenerate and lane_dsp == "inferred":
        return committed
    from .. import verilog
    out = Path(build_dir) / f"{top_name(cfg)}.v"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(verilog.generate(cfg, lane_dsp=lane_dsp))
    return out


def expected_mapping(cfg: ArrayConfig, target: Target) -> dict:
    """Lower bounds a correct mapping reaches: ``{"dsp": .., "bram": ..}``.

    One DSP per MAC lane (``pe*simd``), or per two with the target's ``ice40_pairs``
    lanes; in ``near`` mode each PE's weight bank (``bank_depth * simd * w_bits`` bits)
    needs at least that many bits of block RAM.
    """
    bank_bits = cfg.bank_depth * cfg.simd * cfg.w_bits
    bram = cfg.pe * ceil_div(bank_bits, target.bram_bits) if cfg.mode == "near" else 0
    return {"dsp": cfg.pe * cfg.simd // tech.LANES_PER_DSP[target.lane_dsp], "bram": bram}


def run(cfg: ArrayConfig, target: Target, build_root, *, config_name: str | None = None,
        verilog=None, seed: int = 1, pnr_timeout: float | None = flow.PNR_TIMEOUT_S) -> dict:
    """One job: returns the report (also written to ``<build_root>/<target>/report.json``).
    nextpnr is stopped after ``pnr_timeout`` seconds (None: no limit) with
    :class:`pyhdl.fpga.flow.FlowTimeout`.

    ``report["mapping_problems"]`` lists DSP/block-RAM fall-backs (empty when fine).
    """
    build = Path(build_root) / target.name
    source = Path(verilog) if verilog is not None else design_verilog(cfg, build, lane_dsp=target.lane_dsp)
    raw = flow.implement(source, top_name(cfg), target, build, seed=seed, pnr_timeout=pnr_timeout)
    rep = report.summarize(raw, target, pe=cfg.pe, simd=cfg.simd, config=config_name or cfg.name)
    rep["array"] = cfg.as_dict()
    rep["verilog"] = str(source)
    rep["seed"] = seed
    rep["nextpnr_command"] = raw["nextpnr_command"]  # to place the netlist again by hand
    rep["expected_min"] = expected_mapping(cfg, target)
    rep["mapping_problems"] = report.check_mapping(rep, min_dsp=rep["expected_min"]["dsp"],
                                                   min_bram=rep["expected_min"]["bram"])
    (build / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    return rep
