"""LUT levels between registers in an iCE40 netlist, before place and route.

On the UP5K a LUT level with its routing costs about 3.6 ns (nextpnr's reports of
this design: 0.87 ns of LUT, 3-4 ns of routing per hop at ~90 % of the logic cells),
so 65 MHz (15.4 ns, less clock-to-out and setup) holds about three levels between
two flip-flops.  Place and route names one limiting path per seed, and fixing it
only shows the next; this counts every flip-flop input's deepest path in the
synthesized netlist (``netlist.json`` of a build directory) in a second or two,
so a change can be checked against the whole budget before a 5-minute placement.

The depth of a net is the most ``SB_LUT4`` cells on any path to it from a start
point (a flip-flop's Q, a block RAM or DSP output, a module input).  ``SB_CARRY``
adds no level: its chain is dedicated wiring, and the LUT that reads its carry is
counted.  So a long chain is not seen here (a 32-bit accumulator's is about 10 ns
of logic on the UP5K): nextpnr's timing report is.  Each flip-flop's D, E (enable),
R and S inputs are end points.

Run ``python -m pyhdl.fpga.depth NETLIST [--module M] [--over N]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

__all__ = ["levels", "histogram", "over", "main"]

#: Flip-flop inputs that end a path.
ENDPOINT_PINS = ("D", "E", "R", "S")


def _module(netlist: dict, module: str | None) -> tuple[str, dict]:
    mods = {name: mod for name, mod in netlist.get("modules", {}).items() if mod.get("cells")}
    if module is None:
        # the array is the module that is neither the harness nor a cell wrapper
        arrays = [name for name in mods if name.startswith("nmc_") and name != "nmc_fpga_harness"
                  and not name.startswith("nmc_sb_")]
        if len(arrays) != 1:
            raise ValueError(f"netlist has {len(arrays)} array modules {sorted(arrays)}; name one with module=")
        module = arrays[0]
    if module not in mods:
        raise ValueError(f"netlist has no module {module!r} with cells; it has {sorted(mods)}")
    return module, mods[module]


def levels(netlist: dict, module: str | None = None) -> list[tuple[int, str, str]]:
    """``[(levels, register, pin), ...]`` for every flip-flop input of ``module``
    (default: the one ``nmc_*`` array module), deepest first.  ``register`` is the
    name of the net the flip-flop drives."""
    name, mod = _module(netlist, module)
    names: dict[int, str] = {}
    for net, info in sorted(mod["netnames"].items(), key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0]))):
        for i, bit in enumerate(info["bits"]):
            names.setdefault(bit, net + (f"[{i}]" if len(info["bits"]) > 1 else ""))
    driver = {}
    for cell in mod["cells"].values():
        for pin, direction in cell.get("port_directions", {}).items():
            if direction == "output":
                for bit in cell["connections"][pin]:
                    driver[bit] = cell
    depth: dict[int, int] = {}

    def net_depth(bit) -> int:
        """Memoized; a combinational loop (never in a synthesized design) reads as 0."""
        if isinstance(bit, str) or bit not in driver or driver[bit]["type"] not in ("SB_LUT4", "SB_CARRY"):
            return 0
        if bit not in depth:
            depth[bit] = 0
            cell = driver[bit]
            ins = [cell["connections"][pin][0] for pin, direction in cell["port_directions"].items()
                   if direction == "input" and cell["connections"][pin]]
            depth[bit] = max(map(net_depth, ins), default=0) + (cell["type"] == "SB_LUT4")
        return depth[bit]

    ends = []
    flops = [cell for cell in mod["cells"].values() if cell["type"].startswith("SB_DFF")]
    if not flops:
        kinds = sorted({cell["type"] for cell in mod["cells"].values()})
        raise ValueError(f"module {name!r} has no iCE40 flip-flops (SB_DFF*), only {', '.join(kinds[:6])}"
                         f"{' ...' if len(kinds) > 6 else ''}: this counts iCE40 netlists")
    for cell in flops:
        register = names.get(cell["connections"]["Q"][0], "?")
        for pin in ENDPOINT_PINS:
            if cell["connections"].get(pin):
                try:
                    ends.append((net_depth(cell["connections"][pin][0]), register, pin))
                except RecursionError:
                    raise ValueError(f"the path into {register}.{pin} runs through more LUT and carry "
                                     f"cells than {sys.getrecursionlimit()}") from None
    return sorted(ends, key=lambda e: (-e[0], e[1], e[2]))


def histogram(ends) -> dict[int, int]:
    """Flip-flop inputs per LUT level count, ``{levels: inputs}``."""
    return dict(sorted(collections.Counter(n for n, _, _ in ends).items()))


def over(ends, limit: int) -> dict[str, int]:
    """Flip-flop inputs deeper than ``limit`` levels per register (bit index and
    Yosys's suffixes dropped), most first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be an integer >= 0, not {limit!r}")
    count = collections.Counter(re.sub(r"(_SB_\w*|\[\d+\])+$", "", reg) for n, reg, _ in ends if n > limit)
    return dict(count.most_common())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyhdl.fpga.depth", description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist", type=Path, help="Yosys JSON netlist (netlist.json of an iCE40 build)")
    parser.add_argument("--module", help="module to count (default: the nmc_* array)")
    parser.add_argument("--over", type=int, default=3, help="list the registers deeper than this (default 3)")
    args = parser.parse_args(argv)
    try:
        netlist = json.loads(args.netlist.read_text())
        ends = levels(netlist, args.module)
        deep = over(ends, args.over)
    except (OSError, ValueError) as exc:
        print(f"depth: {exc}", file=sys.stderr)
        return 2
    print("flip-flop inputs by LUT levels:", ", ".join(f"{n}: {k}" for n, k in histogram(ends).items()))
    print(f"deeper than {args.over}: {sum(deep.values())} inputs of {len(deep)} registers")
    for register, count in deep.items():
        print(f"  {count:4d}  {register}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
