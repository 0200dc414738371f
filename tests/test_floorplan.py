"""The ECP5 hard-block floorplan (pyhdl.fpga.floorplan) on hand-built netlists; a real
placement of it is checked by the flow itself (nextpnr must report every pinned cell
placed from its constraint)."""

import re

import pytest

from pyhdl.fpga import floorplan, targets

LEAVES = {"MULT18X18D": {"attributes": {"blackbox": "00000000000000000000000000000001"}, "cells": {}},
          "DP16KD": {"attributes": {"blackbox": "00000000000000000000000000000001"}, "cells": {}}}


def _netlist(pes=4, mults=10, pe_rams=4, shared=("actbuf.0.0", "inbuf.0.0", "outbuf0.0.0", "outbuf1.0.0")):
    """A harness top around an array of ``pes`` PE modules, each with ``mults``
    multipliers and ``pe_rams`` block RAMs, and the top's ``shared`` block RAMs."""
    modules = dict(LEAVES)
    array = {f"pe{p}": {"type": f"arr.pe{p}"} for p in range(pes)}
    array.update({name: {"type": "DP16KD"} for name in shared})
    array["ctl_TRELLIS_FF_Q"] = {"type": "TRELLIS_FF"}
    modules["arr"] = {"cells": array}
    for p in range(pes):
        cells = {f"$m{i}_MULT18X18D": {"type": "MULT18X18D"} for i in range(mults)}
        cells.update({f"bank{p}.0.{i}": {"type": "DP16KD"} for i in range(pe_rams)})
        modules[f"arr.pe{p}"] = {"cells": cells}
    modules["harness"] = {"attributes": {"top": "00000000000000000000000000000001"},
                          "cells": {"dut": {"type": "arr"}, "in_sr": {"type": "TRELLIS_FF"}}}
    return {"modules": modules}


def _x(bel):
    return int(re.match(r"^X(\d+)/Y\d+/", bel).group(1))


def test_every_hard_block_gets_its_own_site_in_the_middle_rows():
    netlist = _netlist()
    pins = floorplan.plan(netlist)
    assert sorted(pins) == sorted(floorplan.hard_blocks(netlist))
    assert len(pins) == 4 * 10 + 4 * 4 + 4
    assert len(set(pins.values())) == len(pins)
    for name, bel in pins.items():
        kind = "MULT18_" if "MULT18X18D" in name else "EBR"
        rows = floorplan.DSP_ROWS if kind == "MULT18_" else (floorplan.EBR_ROW,)
        assert re.match(rf"^X\d+/Y({'|'.join(map(str, rows))})/{kind}\d$", bel), (name, bel)


def test_each_pe_keeps_its_multipliers_together_and_its_rams_beside_them():
    pins = floorplan.plan(_netlist())
    row_of = {}
    for p in range(4):
        mults = [bel for name, bel in pins.items() if name.startswith(f"dut.pe{p}.") and "MULT" in name]
        rows = {bel.split("/")[1] for bel in mults}
        assert len(rows) == 1, (p, rows)
        row_of[p] = rows.pop()
        xs = sorted(map(_x, mults))
        others = [_x(bel) for name, bel in pins.items()
                  if "MULT" in name and not name.startswith(f"dut.pe{p}.") and bel.split("/")[1] == row_of[p]]
        assert not [x for x in others if xs[0] <= x <= xs[-1]], f"PE {p}'s multipliers are not contiguous"
        rams = [_x(bel) for name, bel in pins.items() if name.startswith(f"dut.pe{p}.") and "bank" in name]
        assert xs[0] - 12 <= min(rams) and max(rams) <= xs[-1] + 12, (p, xs, rams)
    assert sorted(row_of.values()) == sorted(f"Y{row}" for row in floorplan.DSP_ROWS for _ in range(2))
    # the shared buffers sit in the middle of the row, the PEs' RAMs around them
    shared = [_x(bel) for name, bel in pins.items() if not name.startswith("dut.pe")]
    middle = (floorplan.BLOCK_X[0] + floorplan.BLOCK_X[-1] + 6) / 2
    pe_rams = [_x(bel) for name, bel in pins.items() if name.startswith("dut.pe") and "bank" in name]
    assert max(abs(x - middle) for x in shared) < min(abs(x - middle) for x in pe_rams) + 1


def test_apply_writes_bel_attributes_into_the_modules():
    netlist = _netlist(pes=2, mults=6, pe_rams=2)
    pins = floorplan.plan(netlist)
    assert floorplan.apply(netlist) == len(pins) == 2 * 6 + 2 * 2 + 4
    assert netlist["modules"]["arr.pe1"]["cells"]["$m0_MULT18X18D"]["attributes"]["BEL"] == pins["dut.pe1.$m0_MULT18X18D"]
    assert netlist["modules"]["arr"]["cells"]["actbuf.0.0"]["attributes"]["BEL"] == pins["dut.actbuf.0.0"]
    assert "BEL" not in netlist["modules"]["arr"]["cells"]["ctl_TRELLIS_FF_Q"].get("attributes", {})


def test_a_module_used_twice_cannot_be_pinned():
    netlist = _netlist(pes=2)
    netlist["modules"]["arr"]["cells"]["pe1"]["type"] = "arr.pe0"
    with pytest.raises(ValueError, match=r"^module arr\.pe0 is instantiated 2 times; "
                                         r"its cells cannot be pinned one instance at a time$"):
        floorplan.apply(netlist)


def test_what_does_not_fit_is_named():
    with pytest.raises(ValueError, match=r"^8 PEs of up to 12 multipliers need 48 sites per DSP row; "
                                         r"the floorplan's rows have 44$"):
        floorplan.plan(_netlist(pes=8, mults=12))
    with pytest.raises(ValueError, match=r"^the array has 54 block RAMs; the floorplan's row has 44$"):
        floorplan.plan(_netlist(pes=2, mults=2, pe_rams=25))
    netlist = _netlist(pes=1)
    netlist["modules"]["arr"]["cells"]["stray_MULT18X18D"] = {"type": "MULT18X18D"}
    with pytest.raises(ValueError, match=r"^multiplier dut\.stray_MULT18X18D is outside every PE; "
                                         r"the floorplan places PEs' only$"):
        floorplan.plan(netlist)
    with pytest.raises(ValueError, match=r"^netlist must have one top module, not 0$"):
        floorplan.plan({"modules": LEAVES})
    with pytest.raises(ValueError, match=r"^netlist has no 'modules' object$"):
        floorplan.plan({})


def test_the_target_option_is_checked_and_named():
    assert targets.ecp5(6, floorplan=True).floorplan and not targets.ecp5(6).floorplan
    assert targets.ecp5(6, floorplan=True).name == "ecp5-85f-s6-fp"
    with pytest.raises(TypeError, match=r"^floorplan must be a bool, not 1$"):
        targets.ecp5(6, floorplan=1)
