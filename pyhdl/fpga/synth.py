"""``nmc synth``: synthesize, place and route an array configuration for a target.

The default jobs are the issue's: the default 8x8 int8 array on the ECP5-85F
(speed 6) and the small 2x4 array on the iCE40 UP5K.  Each job writes
``<build>/<target>/report.json`` and the caller prints :func:`report.format_table`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from .. import tech
from ..config import ArrayConfig, DEFAULT, SMALL
from ..sizing import ceil_div
from . import flow, report, targets
from .targets import Target

__all__ = ["CONFIGS", "default_config", "design_verilog", "expected_mapping", "Netlists", "run"]

#: ``--config`` names.
CONFIGS = {"default": DEFAULT, "small": SMALL}
HDL_DIR = Path(__file__).resolve().parents[2] / "hdl"


def default_config(target: Target) -> str:
    """The config a target is built with unless asked otherwise."""
    return "small" if target.family == "ice40" else "default"


def top_name(cfg: ArrayConfig) -> str:
    return f"nmc_{cfg.name}"


def design_verilog(cfg: ArrayConfig, build_dir: Path, *, regenerate: bool = False,
                   lane_dsp: str = "inferred", requant_dsp: str = "inferred") -> Path:
    """The Verilog of ``cfg``: the committed ``hdl/nmc_<name>.v`` if present, else generated.
    With a ``lane_dsp`` or ``requant_dsp`` other than ``"inferred"`` (a target's
    primitives, :data:`pyhdl.tech.LANE_DSP`, :data:`pyhdl.tech.REQUANT_DSP`) it is always
    generated, into ``build_dir``."""
    committed = HDL_DIR / f"{top_name(cfg)}.v"
    if (committed.is_file() and not regenerate
            and not tech.instantiates_primitives(lane_dsp=lane_dsp, requant_dsp=requant_dsp)):
        return committed
    from .. import verilog
    out = Path(build_dir) / f"{top_name(cfg)}.v"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(verilog.generate(cfg, lane_dsp=lane_dsp, requant_dsp=requant_dsp))
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


class Netlists:
    """Synthesis shared by the runs of one command: runs of the same Verilog, top and
    target (several placement seeds) synthesize once.  The first run to ask synthesizes
    in its own build directory; the others wait for it and place a copy of its netlist
    (Yosys and the register packing are deterministic, and took ~45 s of the ~4 min of
    an 8x8 ECP5 run)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = {}

    def directory(self, source: Path, top: str, target: Target, build: Path) -> Path:
        """Where the netlist of ``source``/``top`` for ``target`` is: synthesized into
        ``build`` now if no run has done it, else the directory of the run that did."""
        key = (hashlib.sha256(flow.verilog_file(source).read_bytes()).hexdigest(), top, target.name)
        with self._lock:
            entry = self._entries.get(key)
            first = entry is None
            if first:
                entry = self._entries[key] = {"done": threading.Event(), "dir": None}
        if first:
            try:
                flow.synthesize(source, top, target, build)
                entry["dir"] = build
            finally:
                entry["done"].set()
        entry["done"].wait()
        if entry["dir"] is None:
            raise flow.FlowError(f"the synthesis of {top} for {target.name} that this run shares failed")
        return entry["dir"]


def run(cfg: ArrayConfig, target: Target, build_root, *, config_name: str | None = None,
        verilog=None, seed: int = 1, pnr_timeout: float | None = flow.PNR_TIMEOUT_S,
        netlists: Netlists | None = None) -> dict:
    """One job: returns the report (also written to ``<build_root>/<target>/report.json``).
    nextpnr is stopped after ``pnr_timeout`` seconds (None: no limit) with
    :class:`pyhdl.fpga.flow.FlowTimeout`.  With ``netlists``, runs of the same design
    and target share one synthesis (``report["synthesis"]`` says where it ran).

    ``report["mapping_problems"]`` lists DSP/block-RAM fall-backs (empty when fine).
    """
    build = Path(build_root) / target.name
    source = Path(verilog) if verilog is not None else design_verilog(cfg, build, lane_dsp=target.lane_dsp,
                                                                          requant_dsp=target.requant_dsp)
    synthesized = None if netlists is None else netlists.directory(source, top_name(cfg), target, build)
    raw = flow.implement(source, top_name(cfg), target, build, seed=seed, pnr_timeout=pnr_timeout,
                         synthesized=synthesized)
    rep = report.summarize(raw, target, pe=cfg.pe, simd=cfg.simd, config=config_name or cfg.name)
    rep["synthesis"] = raw.get("reused", str(build.resolve()))
    rep["array"] = cfg.as_dict()
    rep["verilog"] = str(source)
    rep["seed"] = seed
    rep["nextpnr_command"] = raw["nextpnr_command"]  # to place the netlist again by hand
    rep["expected_min"] = expected_mapping(cfg, target)
    rep["mapping_problems"] = report.check_mapping(rep, min_dsp=rep["expected_min"]["dsp"],
                                                   min_bram=rep["expected_min"]["bram"])
    (build / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    return rep
