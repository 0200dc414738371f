"""Bound, not a build of the array: the small config's PEs alone on the UP5K (docs/fpga.md,
"What is missing").

The PEs (bank, lanes in ``SB_MAC16`` pairs, the two contexts' accumulators, the
requant table and unit) are wrapped in a component whose every PE port is a top-level
port, so in the measurement harness each control input comes from a flip-flop of the
input shift chain and nothing of the sequencer, load port, drain or counters is built.
Whatever limits this design limits the whole array on the UP5K too: it is the ceiling the
datapath sets, whatever the control.

    python docs/fpga-pe-bound.py BUILD_DIR [--seeds 5]

synthesizes once and places seeds 1..N, printing per seed the Fmax, the cell counts and
the limiting path.  To measure a datapath change, edit ``pyhdl/pe.py`` in a worktree
and run this there (``docs/fpga-split-accumulator.diff`` is the accumulator split in
two halves measured this way).
"""

import argparse
import sys
from pathlib import Path

# the checkout this file is in, not whichever one the environment installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amaranth.hdl import Module
from amaranth.lib import wiring

from pyhdl import tech
from pyhdl.config import SMALL
from pyhdl.fpga import flow, report, targets
from pyhdl.pe import ProcessingElement
from pyhdl.verilog import convert

TOP = "nmc_pes"


class PEsAlone(wiring.Component):
    """Every PE of ``cfg`` with its ports as ``p<index>_<port>``."""

    def __init__(self, cfg, target):
        self._pes = [ProcessingElement(cfg=cfg, index=p, lane_dsp=target.lane_dsp, requant_dsp=target.requant_dsp)
                     for p in range(cfg.pe)]
        super().__init__({f"p{p}_{name}": member for p, pe in enumerate(self._pes)
                          for name, member in pe.signature.members.items()})

    def elaborate(self, platform):
        m = Module()
        for p, pe in enumerate(self._pes):
            m.submodules[f"pe{p}"] = pe
            for name, member in pe.signature.members.items():
                outer, inner = getattr(self, f"p{p}_{name}"), getattr(pe, name)
                m.d.comb += inner.eq(outer) if member.flow == wiring.In else outer.eq(inner)
        return m


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    target = targets.ice40()
    text = convert(PEsAlone(SMALL, target), name=TOP)
    args.build_dir.mkdir(parents=True, exist_ok=True)
    source = args.build_dir / f"{TOP}.v"
    source.write_text(text + "\n" + tech.ice40_dsp_stub())
    synthesized = args.build_dir / "synthesis"
    flow.synthesize(source, TOP, target, synthesized)
    for seed in range(1, args.seeds + 1):
        raw = flow.implement(source, TOP, target, args.build_dir / f"seed{seed}", seed=seed,
                             synthesized=synthesized)
        rep = report.summarize(raw, target, pe=SMALL.pe, simd=SMALL.simd, config="PEs alone")
        path = rep["critical_path"] or {}
        print(f"seed {seed}: {rep['fmax_mhz']:.1f} MHz, {rep['design']}, "
              f"{path.get('from')} -> {path.get('to')} {path.get('by_type')}", flush=True)


if __name__ == "__main__":
    main()
