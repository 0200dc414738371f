"""Hard-block floorplan of the array on the LFE5U-85F (nextpnr ``BEL`` attributes).

nextpnr's analytical placer spreads the 80 ``MULT18X18D`` and 44 ``DP16KD`` of the 8x8
array over the whole device and differently on every seed; the control that reaches
all of them (the drain's lane select, the step fan-out, the input side) then gets a
long route on some seed or other (docs/fpga.md, "Critical path").  This module pins
every multiplier and block RAM of the array before place and route, the same way on
every seed:

* the multipliers in the two DSP rows next to the device's middle (``DSP_ROWS``), each
  PE's in consecutive sites, PEs ``0 .. n/2-1`` in the lower row and the rest in the
  upper row, the whole arrangement centred;
* the block RAMs in the block-RAM row between them (``EBR_ROW``): the top level's
  (input, activation and output buffers, read or written by the shared control) in
  the middle, each PE's beside its multipliers.

Only the hard blocks are pinned; the fabric is placed by nextpnr as before.  The site
names are nextpnr-ecp5's (``X<col>/Y<row>/MULT18_<k>`` and ``X<col>/Y<row>/EBR<k>``);
nextpnr reports "Placed N cells based on constraints", which the flow checks.
"""

from __future__ import annotations

import re

#: X of the first multiplier (``MULT18_0``) and block RAM (``EBR0``) of each 9-column
#: DSP / block-RAM group of the LFE5U-85F, left to right (the clock spine sits between
#: 58 and 69).
BLOCK_X = (13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105)
#: DSP rows used, lower first; the 85F's third DSP row (Y 10) is not used.
DSP_ROWS = (34, 58)
#: The block-RAM row between them.
EBR_ROW = 46

_PE = re.compile(r"^dut\.pe(\d+)\.")
_HARD = ("MULT18X18D", "DP16KD")


def _is_level(modules: dict, cell_type: str) -> bool:
    """Whether a cell of ``cell_type`` is a hierarchy level (not a primitive or black box)."""
    mod = modules.get(cell_type)
    return (cell_type not in _HARD and isinstance(mod, dict) and bool(mod.get("cells"))
            and not mod.get("attributes", {}).get("blackbox"))


def _mult_sites(row: int) -> list[tuple[int, str]]:
    """``(x, bel)`` of every multiplier site in DSP row ``row``, left to right."""
    sites = []
    for i, x in enumerate(BLOCK_X):
        # each group holds MULT18_4/5 a few columns left of MULT18_0/1 (one column
        # closer where the group follows the clock spine)
        left = 62 if x == 69 else x - 5
        sites += [(left, "MULT18_4"), (left + 1, "MULT18_5"), (x, "MULT18_0"), (x + 1, "MULT18_1")]
    return [(x, f"X{x}/Y{row}/{bel}") for x, bel in sorted(sites)]


def _ebr_sites() -> list[tuple[int, str]]:
    """``(x, bel)`` of every block-RAM site in :data:`EBR_ROW`, left to right."""
    return [(x + 2 * k, f"X{x + 2 * k}/Y{EBR_ROW}/EBR{k}") for x in BLOCK_X for k in range(4)]


def hard_blocks(netlist: dict) -> dict[str, str]:
    """Every ``MULT18X18D`` and ``DP16KD`` of the placed design: flattened name -> type.

    Names are as nextpnr flattens the hierarchy (``dut.pe3.<cell>``): the top module's
    cells, then each instance's with its instance name and a dot."""
    if not isinstance(netlist, dict) or not isinstance(netlist.get("modules"), dict):
        raise ValueError("netlist has no 'modules' object")
    modules = netlist["modules"]
    tops = [name for name, mod in modules.items() if mod.get("attributes", {}).get("top")]
    if len(tops) != 1:
        raise ValueError(f"netlist must have one top module, not {len(tops)}")
    found = {}

    def walk(module, prefix):
        for name, cell in modules[module].get("cells", {}).items():
            if cell["type"] in _HARD:
                found[prefix + name] = cell["type"]
            elif _is_level(modules, cell["type"]):
                walk(cell["type"], f"{prefix}{name}.")

    walk(tops[0], "")
    return found


def plan(netlist: dict) -> dict[str, str]:
    """The floorplan of ``netlist`` (:func:`hard_blocks` of the harnessed array):
    flattened cell name -> nextpnr BEL name.  ValueError if the array's multipliers or
    block RAMs do not fit the rows used."""
    blocks = hard_blocks(netlist)
    by_pe: dict[int, dict[str, list[str]]] = {}
    shared = []
    for name in sorted(blocks):
        m = _PE.match(name)
        if m:
            by_pe.setdefault(int(m.group(1)), {"MULT18X18D": [], "DP16KD": []})[blocks[name]].append(name)
        elif blocks[name] == "DP16KD":
            shared.append(name)
        else:
            raise ValueError(f"multiplier {name} is outside every PE; the floorplan places PEs' only")
    pes = sorted(by_pe)
    per_row = (len(pes) + 1) // 2
    rows = [pes[:per_row], pes[per_row:]]
    sites = _mult_sites(DSP_ROWS[0])
    widest = max((len(by_pe[p]["MULT18X18D"]) for p in pes), default=0)
    need = widest * per_row
    if need > len(sites):
        raise ValueError(f"{len(pes)} PEs of up to {widest} multipliers need {need} sites per DSP row; "
                         f"the floorplan's rows have {len(sites)}")
    first = (len(sites) - need) // 2
    pins, centre_x = {}, {}
    for row, members in zip(DSP_ROWS, rows):
        row_sites = _mult_sites(row)
        for col, p in enumerate(members):
            span = row_sites[first + col * widest:first + (col + 1) * widest]
            for name, (_, bel) in zip(by_pe[p]["MULT18X18D"], span):
                pins[name] = bel
            centre_x[p] = (span[0][0] + span[-1][0]) / 2 if span else 0

    ebr = _ebr_sites()
    n_ebr = len(shared) + sum(len(by_pe[p]["DP16KD"]) for p in pes)
    if n_ebr > len(ebr):
        raise ValueError(f"the array has {n_ebr} block RAMs; the floorplan's row has {len(ebr)}")
    middle = (ebr[0][0] + ebr[-1][0]) / 2
    free = sorted(ebr, key=lambda site: (abs(site[0] - middle), site[0]))
    taken = set()

    def nearest(x):
        site = min((s for s in free if s[1] not in taken), key=lambda s: (abs(s[0] - x), s[0]))
        taken.add(site[1])
        return site[1]

    for name in shared:
        pins[name] = nearest(middle)
    # PEs from the outside in, so that the outer columns are not pushed further out
    for p in sorted(pes, key=lambda p: -abs(centre_x[p] - middle)):
        for name in by_pe[p]["DP16KD"]:
            pins[name] = nearest(centre_x[p])
    return pins


def apply(netlist: dict) -> int:
    """Write :func:`plan`'s sites into ``netlist`` as ``BEL`` cell attributes (in place);
    returns how many cells were pinned."""
    pins = plan(netlist)
    modules = netlist["modules"]
    top = next(name for name, mod in modules.items() if mod.get("attributes", {}).get("top"))
    # a BEL on a module's cell pins every instance of that module to the same site
    uses: dict[str, int] = {}
    for mod in modules.values():
        for cell in mod.get("cells", {}).values():
            if _is_level(modules, cell["type"]):
                uses[cell["type"]] = uses.get(cell["type"], 0) + 1
    shared = sorted(name for name, n in uses.items() if n > 1)
    if shared:
        raise ValueError(f"module {shared[0]} is instantiated {uses[shared[0]]} times; "
                         "its cells cannot be pinned one instance at a time")
    done = 0

    def walk(module, prefix):
        nonlocal done
        for name, cell in modules[module].get("cells", {}).items():
            full = prefix + name
            if full in pins:
                cell.setdefault("attributes", {})["BEL"] = pins[full]
                done += 1
            elif _is_level(modules, cell["type"]):
                walk(cell["type"], f"{full}.")

    walk(top, "")
    return done
