"""Which multiplies get DSPs on a device with too few of them.

Yosys maps every multiply it can to a DSP (``synth_ice40 -dsp``), and nextpnr then
fails when the device has fewer: the iCE40 UP5K has 8 ``SB_MAC16``, and the small
array has 8 MAC-lane multiplies (8x8) plus two requant multiplies per PE (17x16 and
15x17 chunks of the 32x16 product).  :func:`plan` keeps the multiplies that would
cost the most logic on the DSPs (the requant chunks: ~500 LUT4 each in logic, a
lane ~60) and :func:`booth_commands` build the rest in logic with Yosys ``booth``
before synthesis, so that a design whose lanes are inferred (the committed Verilog)
fits: 4 requant chunks and 4 lanes on DSPs, 4 lanes in logic.  DSPs the design instantiates itself (the iCE40 flow's lane pairs,
:func:`pyhdl.tech.ice40_pair_sum`) come off the budget first (:func:`instantiated`): with
them the small array needs 4 for its 8 lanes and keeps the requant chunks on the other 4,
and nothing is left to logic.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .regpack import param_int

__all__ = ["Multiply", "multiplies", "instantiated", "dsps_needed", "plan", "booth_commands", "list_command",
           "read_list"]

#: the file :func:`list_command` writes
LIST_FILE = "multiplies.json"


@dataclasses.dataclass(frozen=True)
class Multiply:
    """One Yosys ``$mul`` cell: where it is and its operand widths."""

    module: str
    cell: str
    a_bits: int
    b_bits: int

    @property
    def selection(self) -> str:
        """The Yosys selection of this cell."""
        return f"{self.module.removeprefix(chr(92))}/{self.cell}"


#: Yosys commands (after reading and ``hierarchy``) that bring every ``$mul`` to the
#: operand widths it really has (Verilog sign-extends operands to the result width)
PREPARE = ("proc", "opt_expr", "wreduce")


def list_command(dsp_cells=()) -> str:
    """Yosys commands (after reading and ``hierarchy``) that write every ``$mul`` cell, and
    every instance of the ``dsp_cells`` types, to :data:`LIST_FILE`, after :data:`PREPARE`."""
    cells = " ".join(["t:$mul", *(f"t:{c}" for c in dsp_cells)])
    return "\n".join([*PREPARE, f"select {cells}", f"write_json -selected {LIST_FILE}", "select -clear"])


def multiplies(netlist: dict) -> list[Multiply]:
    """The ``$mul`` cells of a Yosys JSON document, in module and cell order."""
    found = []
    for module, mod in netlist.get("modules", {}).items():
        for cell, c in mod.get("cells", {}).items():
            if c.get("type") == "$mul":
                p = c["parameters"]
                found.append(Multiply(module, cell, param_int(p["A_WIDTH"]), param_int(p["B_WIDTH"])))
    return found


def instantiated(netlist: dict, dsp_cells) -> int:
    """DSP primitives (cells of the ``dsp_cells`` types) the design instantiates itself."""
    types = set(dsp_cells)
    return sum(1 for mod in netlist.get("modules", {}).values()
               for c in mod.get("cells", {}).values() if c.get("type") in types)


def dsps_needed(mul: Multiply, dsp_bits: int) -> int:
    """DSPs of ``dsp_bits`` x ``dsp_bits`` Yosys uses for ``mul``: one per operand slice,
    where a slice narrower than 2 bits goes to logic (``mul2dsp``'s minimum width)."""
    def slices(bits):
        return max(1, bits // dsp_bits + (1 if bits % dsp_bits >= 2 else 0))
    return slices(mul.a_bits) * slices(mul.b_bits)


def plan(muls: list[Multiply], budget: int, dsp_bits: int) -> list[Multiply]:
    """The multiplies to build in logic so that the rest need at most ``budget`` DSPs:
    the ones that save the most logic per DSP (operand bits a*b per DSP) keep theirs,
    ties in netlist order."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ValueError(f"DSP budget must be an int >= 0, not {budget!r}")
    ranked = sorted(muls, key=lambda m: -m.a_bits * m.b_bits / dsps_needed(m, dsp_bits))
    soft, used = [], 0
    for mul in ranked:
        need = dsps_needed(mul, dsp_bits)
        if used + need <= budget:
            used += need
        else:
            soft.append(mul)
    return [m for m in muls if m in soft]


def booth_commands(soft: list[Multiply]) -> list[str]:
    """Yosys commands building the ``soft`` multiplies in logic (none when there are
    none): :data:`PREPARE`, so that the cells are the ones :func:`list_command` saw,
    then ``booth`` on them."""
    return [*PREPARE, f"booth {' '.join(m.selection for m in soft)}"] if soft else []


def read_list(build_dir, dsp_cells=()) -> tuple[list[Multiply], int]:
    """The multiplies :func:`list_command` wrote in ``build_dir`` and how many DSPs of the
    ``dsp_cells`` types it instantiates."""
    netlist = json.loads((Path(build_dir) / LIST_FILE).read_text())
    return multiplies(netlist), instantiated(netlist, dsp_cells)
