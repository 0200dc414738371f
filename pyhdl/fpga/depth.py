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
counted.  So a long chain is not seen in the level count (a 32-bit accumulator's is
about 10 ns of logic on the UP5K).  Each flip-flop's D, E (enable), R and S inputs are
end points.

:func:`estimate` weighs the chains too: each input's arrival time with nextpnr's UP5K
cell delays (:data:`UP5K`) and every route as short as nextpnr makes one, the hop to a
neighbouring tile.  Placement only adds to that, so an input estimated past the clock
period cannot meet it on any seed (:func:`ceiling`; ``nmc synth`` prints it for iCE40
builds).  The small config's two PEs alone (``docs/fpga-pe-bound.py``), with the 32-bit
accumulator it had until 2026-12-08, estimated at 17.29 ns into the accumulator's top
bit and placed at 18.25 (54.8 MHz) on three seeds of five, limited there.  The bound is
one-sided: the whole small array estimates at the 65 MHz goal and places 15-25 MHz
under it (docs/fpga.md, "What is missing").  Fan-out is not modelled, so a net
with many loads places later than this; only flip-flop inputs are end points (a path
into a block RAM or DSP input is not estimated, so the ceiling is an upper bound).

Run ``python -m pyhdl.fpga.depth NETLIST [--module M] [--over N] [--period NS]``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

__all__ = ["levels", "histogram", "over", "Delays", "UP5K", "estimate", "past", "ceiling", "main"]

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


def _walk(netlist: dict, module: str | None):
    """``(names, driver, flops)`` of the module: a name per net bit, the cell driving
    each bit, the flip-flop cells (ValueError when there are none)."""
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
    flops = [cell for cell in mod["cells"].values() if cell["type"].startswith("SB_DFF")]
    if not flops:
        kinds = sorted({cell["type"] for cell in mod["cells"].values()})
        raise ValueError(f"module {name!r} has no iCE40 flip-flops (SB_DFF*), only {', '.join(kinds[:6])}"
                         f"{' ...' if len(kinds) > 6 else ''}: this counts iCE40 netlists")
    return names, driver, flops


def _kind(driver, bit) -> str | None:
    """The type of the cell driving ``bit`` (None for a constant or a module input)."""
    return None if isinstance(bit, str) or bit not in driver else driver[bit]["type"]


def _endpoints(flops, names, value) -> list:
    """``[(value(flop, pin), register, pin), ...]`` for every connected D/E/R/S input."""
    ends = []
    for cell in flops:
        register = names.get(cell["connections"]["Q"][0], "?")
        for pin in ENDPOINT_PINS:
            if cell["connections"].get(pin):
                try:
                    ends.append((value(cell, pin), register, pin))
                except RecursionError:
                    raise ValueError(f"the path into {register}.{pin} runs through more LUT and carry "
                                     f"cells than {sys.getrecursionlimit()}") from None
    return sorted(ends, key=lambda e: (-e[0], e[1], e[2]))


def _inputs(cell) -> list[tuple[str, object]]:
    return [(pin, cell["connections"][pin][0]) for pin, direction in cell["port_directions"].items()
            if direction == "input" and cell["connections"][pin]]


def levels(netlist: dict, module: str | None = None) -> list[tuple[int, str, str]]:
    """``[(levels, register, pin), ...]`` for every flip-flop input of ``module``
    (default: the one ``nmc_*`` array module), deepest first.  ``register`` is the
    name of the net the flip-flop drives."""
    names, driver, flops = _walk(netlist, module)
    depth: dict[int, int] = {}

    def net_depth(bit) -> int:
        """Memoized; a combinational loop (never in a synthesized design) reads as 0."""
        if _kind(driver, bit) not in ("SB_LUT4", "SB_CARRY"):
            return 0
        if bit not in depth:
            depth[bit] = 0
            cell = driver[bit]
            depth[bit] = max((net_depth(b) for _, b in _inputs(cell)), default=0) + (cell["type"] == "SB_LUT4")
        return depth[bit]

    return _endpoints(flops, names, lambda cell, pin: net_depth(cell["connections"][pin][0]))


@dataclasses.dataclass(frozen=True)
class Delays:
    """Cell and route delays (ns) of an iCE40 part, as nextpnr's timing reports give them.

    ``lut`` is a LUT's fastest input to its output and ``lut_setup`` that input through
    the LUT into the flip-flop packed with it: nextpnr permutes LUT inputs, so any
    signal may end up on the fastest.  ``carry_block`` is added each time a carry chain
    enters the next logic block of ``carry_per_block`` cells; ``route`` is every other
    hop."""
    clk_to_q: float
    dsp_clk_to_out: float
    route: float
    lut: float
    lut_setup: float
    carry_in: float
    carry_operand: float
    carry_block: float
    carry_per_block: int
    setup_ctrl: float


#: The UP5K in nextpnr 0.11.1 (every value read off this design's timing reports: the
#: LUT's I3 is its fastest input, 0.87 ns against 1.21-1.23 for I0-I2; block RAM
#: outputs are taken as flip-flops).
UP5K = Delays(clk_to_q=1.39, dsp_clk_to_out=0.10, route=1.76, lut=0.87, lut_setup=0.82,
              carry_in=0.28, carry_operand=0.61, carry_block=0.56, carry_per_block=8, setup_ctrl=0.10)


def estimate(netlist: dict, module: str | None = None, delays: Delays = UP5K) -> list[tuple[float, str, str]]:
    """``[(ns, register, pin), ...]`` for every flip-flop input of ``module``, latest
    first: the arrival time of its slowest path with ``delays``' cells and every route
    ``delays.route`` (a carry chain's own links and its carry into the sum LUT's ``I3``
    take none).  A D input driven by a LUT takes ``lut_setup`` instead of that LUT's
    delay (nextpnr packs the two in one logic cell); any other input a route and
    ``setup_ctrl`` (E, R, S) or ``lut_setup`` of a pass-through LUT (D)."""
    names, driver, flops = _walk(netlist, module)
    arrival: dict[int, float] = {}
    position: dict[int, int] = {}

    def chain_position(bit) -> int:
        """1 for a chain's first carry cell, counting along CI -> CO."""
        if bit not in position:
            position[bit] = 1
            ci = driver[bit]["connections"]["CI"][0]
            if _kind(driver, ci) == "SB_CARRY":
                position[bit] = chain_position(ci) + 1
        return position[bit]

    def at(bit) -> float:
        """When ``bit`` settles at its driver's output; memoized (a loop reads as 0)."""
        kind = _kind(driver, bit)
        if kind is None:
            return 0.0
        if bit not in arrival:
            arrival[bit] = 0.0
            cell = driver[bit]
            if kind == "SB_LUT4":
                arrival[bit] = max((hop(b, pin) for pin, b in _inputs(cell)), default=0.0) + delays.lut
            elif kind == "SB_CARRY":
                through = at(cell["connections"]["CI"][0]) + delays.carry_in
                if chain_position(bit) % delays.carry_per_block == 1 and chain_position(bit) > 1:
                    through += delays.carry_block
                operands = max((at(b) + delays.route + delays.carry_operand
                                for pin, b in _inputs(cell) if pin != "CI"), default=0.0)
                arrival[bit] = max(through, operands)
            elif kind == "SB_MAC16":  # its outputs registered, as this design builds it
                arrival[bit] = delays.dsp_clk_to_out
            else:  # a flip-flop, block RAM or other start point
                arrival[bit] = delays.clk_to_q
        return arrival[bit]

    def hop(bit, pin) -> float:
        """Arrival at a LUT input: a carry into I3 is dedicated wiring."""
        dedicated = pin == "I3" and _kind(driver, bit) == "SB_CARRY"
        return at(bit) + (0.0 if dedicated else delays.route)

    def end(cell, pin) -> float:
        bit = cell["connections"][pin][0]
        if pin == "D" and _kind(driver, bit) == "SB_LUT4":
            return max((hop(b, p) for p, b in _inputs(driver[bit])), default=0.0) + delays.lut_setup
        return at(bit) + delays.route + (delays.lut_setup if pin == "D" else delays.setup_ctrl)

    return _endpoints(flops, names, lambda cell, pin: round(end(cell, pin), 3))


def histogram(ends) -> dict[int, int]:
    """Flip-flop inputs per LUT level count, ``{levels: inputs}``."""
    return dict(sorted(collections.Counter(n for n, _, _ in ends).items()))


def _by_register(ends, keep) -> dict[str, int]:
    count = collections.Counter(re.sub(r"(_SB_\w*|\[\d+\])+$", "", reg) for n, reg, _ in ends if keep(n))
    return dict(count.most_common())


def over(ends, limit: int) -> dict[str, int]:
    """Flip-flop inputs deeper than ``limit`` levels per register (bit index and
    Yosys's suffixes dropped), most first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be an integer >= 0, not {limit!r}")
    return _by_register(ends, lambda n: n > limit)


def past(ends, period: float) -> dict[str, int]:
    """Flip-flop inputs of :func:`estimate` later than ``period`` ns per register, most
    first: with every route as short as it gets they already miss that clock period."""
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > 0:
        raise ValueError(f"period must be a number of ns > 0, not {period!r}")
    return _by_register(ends, lambda ns: ns > period)


def ceiling(netlist: dict, module: str | None, goal_mhz: float, delays: Delays = UP5K) -> dict:
    """What :func:`estimate` says of ``module`` against a clock goal: ``{"ns", "mhz",
    "end", "inputs_past_goal", "registers_past_goal"}``.  ``mhz`` is the most any
    placement of this netlist can reach (its latest input, ``end``, with every route the
    shortest); the counts are the inputs (and their registers) estimated past the
    goal's period already."""
    if isinstance(goal_mhz, bool) or not isinstance(goal_mhz, (int, float)) or not goal_mhz > 0:
        raise ValueError(f"goal_mhz must be a number > 0, not {goal_mhz!r}")
    late = estimate(netlist, module, delays)
    ns, register, pin = late[0]
    missed = past(late, 1000.0 / goal_mhz)
    return {"ns": ns, "mhz": round(1000.0 / ns, 2), "end": f"{register}.{pin}",
            "inputs_past_goal": sum(missed.values()), "registers_past_goal": len(missed)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyhdl.fpga.depth", description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist", type=Path, help="Yosys JSON netlist (netlist.json of an iCE40 build)")
    parser.add_argument("--module", help="module to count (default: the nmc_* array)")
    parser.add_argument("--over", type=int, default=3, help="list the registers deeper than this (default 3)")
    parser.add_argument("--period", type=float, help="also estimate arrival times (UP5K delays, every route "
                                                     "the shortest) and list the registers later than this, in ns")
    args = parser.parse_args(argv)
    try:
        netlist = json.loads(args.netlist.read_text())
        ends = levels(netlist, args.module)
        deep = over(ends, args.over)
        late = None if args.period is None else estimate(netlist, args.module)
        missed = None if late is None else past(late, args.period)
    except (OSError, ValueError) as exc:
        print(f"depth: {exc}", file=sys.stderr)
        return 2
    print("flip-flop inputs by LUT levels:", ", ".join(f"{n}: {k}" for n, k in histogram(ends).items()))
    print(f"deeper than {args.over}: {sum(deep.values())} inputs of {len(deep)} registers")
    for register, count in deep.items():
        print(f"  {count:4d}  {register}")
    if late is not None:
        print(f"estimated arrival, every route {UP5K.route} ns: latest {late[0][0]:.2f} ns "
              f"({late[0][1]}.{late[0][2]}); later than {args.period:g} ns: "
              f"{sum(missed.values())} inputs of {len(missed)} registers")
        for register, count in missed.items():
            print(f"  {count:4d}  {register}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into e.g. head, which has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
