"""LUT levels between registers of an iCE40 netlist (pyhdl.fpga.depth)."""

from __future__ import annotations

import json
import re

import pytest

from pyhdl.fpga import depth, flow, targets

from test_synth import _tiny


def _cell(kind, **pins):
    outputs = {"O", "Q", "CO"}
    return {"type": kind, "port_directions": {p: "output" if p in outputs else "input" for p in pins},
            "connections": {p: [bit] if bit is not None else [] for p, bit in pins.items()}}


def _netlist(cells, nets, name="nmc_tiny"):
    harness = {"cells": {"dut": {"type": name, "port_directions": {}, "connections": {}}}, "netnames": {}}
    return {"modules": {"nmc_fpga_harness": harness,
                        name: {"cells": cells, "netnames": {n: {"bits": b} for n, b in nets.items()}}}}


# a -> LUT -> carry -> LUT (reading the carry) -> b.D; the first LUT also drives b's
# enable; c loads a directly; a loads a module input
CHAIN = _netlist(
    {"a": _cell("SB_DFF", C=1, D=9, Q=2), "lut1": _cell("SB_LUT4", I0=2, I1="0", I2="0", I3="0", O=3),
     "carry": _cell("SB_CARRY", I0=3, I1=2, CI="0", CO=4),
     "lut2": _cell("SB_LUT4", I0=3, I1="0", I2="0", I3=4, O=5),
     "b": _cell("SB_DFFE", C=1, D=5, E=3, Q=6), "c": _cell("SB_DFFSR", C=1, D=2, R=None, Q=7)},
    {"clk": [1], "a": [2], "x": [3], "y": [5], "b_reg": [6], "c": [7], "in_port": [9]})


def test_levels_count_luts_and_not_carries():
    assert depth.levels(CHAIN) == [(2, "b_reg", "D"), (1, "b_reg", "E"), (0, "a", "D"), (0, "c", "D")]
    assert depth.histogram(depth.levels(CHAIN)) == {0: 2, 1: 1, 2: 1}
    assert depth.over(depth.levels(CHAIN), 1) == {"b_reg": 1}
    assert depth.over(depth.levels(CHAIN), 0) == {"b_reg": 2}


def test_registers_group_by_name_without_bit_or_yosys_suffix():
    ends = [(5, "in_ahead0[3]", "D"), (4, "in_ahead0[7]", "E"), (4, "want0_SB_DFFSR_Q", "D"), (2, "x", "D")]
    assert depth.over(ends, 3) == {"in_ahead0": 2, "want0": 1}


@pytest.mark.parametrize("module, message", [
    ("nmc_other", r"^netlist has no module 'nmc_other' with cells; it has \['nmc_fpga_harness', 'nmc_tiny'\]$"),
])
def test_unknown_module_is_named(module, message):
    with pytest.raises(ValueError, match=message):
        depth.levels(CHAIN, module)


def test_the_array_module_must_be_unambiguous():
    two = json.loads(json.dumps(CHAIN))
    two["modules"]["nmc_second"] = two["modules"]["nmc_tiny"]
    with pytest.raises(ValueError, match=r"^netlist has 2 array modules \['nmc_second', 'nmc_tiny'\]; "
                                         r"name one with module=$"):
        depth.levels(two)


def test_a_netlist_without_ice40_flip_flops_is_refused():
    ecp5 = _netlist({"l": _cell("LUT4", A=1, Z=2), "f": _cell("TRELLIS_FF", DI=2, Q=3)}, {"q": [3]})
    with pytest.raises(ValueError, match=r"^module 'nmc_tiny' has no iCE40 flip-flops \(SB_DFF\*\), "
                                         r"only LUT4, TRELLIS_FF: this counts iCE40 netlists$"):
        depth.levels(ecp5)


@pytest.mark.parametrize("check, value, message", [
    *((depth.over, limit, r"^limit must be an integer >= 0, not ") for limit in (-1, 1.5, True, "3")),
    *((depth.past, period, r"^period must be a number of ns > 0, not ") for period in (0, -1.0, True, "15.4", None)),
])
def test_bad_limit_or_period(check, value, message):
    with pytest.raises(ValueError, match=message + re.escape(repr(value)) + "$"):
        check([], value)


@pytest.fixture
def chain_file(tmp_path):
    path = tmp_path / "netlist.json"
    path.write_text(json.dumps(CHAIN))
    return path


def test_cli_prints_the_histogram_and_the_deep_registers(chain_file, capsys):
    assert depth.main([str(chain_file), "--over", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "flip-flop inputs by LUT levels: 0: 2, 1: 1, 2: 1", "deeper than 1: 1 inputs of 1 registers",
        "     1  b_reg"]


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert depth.main([str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("depth: ") and "none.json" in err[0]


def test_a_yosys_netlist_has_every_flip_flop_input_counted(tmp_path):
    # one MAC lane through the flow's own iCE40 synthesis (its multiply-accumulate sits
    # in the DSP; the logic left around the block RAM has some depth)
    flow.synthesize(_tiny(tmp_path), "tiny", targets.ice40(), tmp_path / "build")
    netlist = json.loads((tmp_path / "build" / "netlist.json").read_text())
    cells = netlist["modules"]["tiny"]["cells"].values()
    pins = sum(1 for c in cells if c["type"].startswith("SB_DFF")
               for p in depth.ENDPOINT_PINS if c["connections"].get(p))
    ends = depth.levels(netlist, "tiny")
    assert len(ends) == pins > 0
    assert sum(depth.histogram(ends).values()) == pins and ends[0][0] >= 1
    late = depth.estimate(netlist, "tiny")
    assert len(late) == pins and all(ns >= depth.UP5K.route for ns, _, _ in late)


def test_a_path_longer_than_the_recursion_limit_is_refused(monkeypatch):
    monkeypatch.setattr("sys.getrecursionlimit", lambda: 3)  # only the message reads it
    cells = {"a": _cell("SB_DFF", C=1, D=9, Q=2), "b": _cell("SB_DFF", C=1, D=100, Q=3)}
    for k in range(2000):  # a 2000-cell carry chain into b
        cells[f"c{k}"] = _cell("SB_CARRY", I0=2, I1=2, CI=100 + k + 1 if k < 1999 else 2, CO=100 + k)
    with pytest.raises(ValueError, match=r"^the path into b_reg\.D runs through more LUT and carry cells than 3$"):
        depth.levels(_netlist(cells, {"clk": [1], "a": [2], "b_reg": [3]}))


# -- estimate: arrival times with the UP5K's delays and the shortest routes ---------

D = depth.UP5K


def test_estimate_adds_cells_and_shortest_routes():
    lut1 = D.clk_to_q + D.route + D.lut             # a -> lut1.I0
    carry = lut1 + D.route + D.carry_operand               # lut1 -> carry.I0 (CI is a constant)
    b_d = max(carry + D.lut_setup,                   # carry -> lut2.I3 is dedicated wiring
              lut1 + D.route + D.lut_setup)          # lut2 packs with b: its setup, no route
    expected = sorted([(b_d, "b_reg", "D"), (lut1 + D.route + D.setup_ctrl, "b_reg", "E"),
                       (D.route + D.lut_setup, "a", "D"),                 # a module input
                       (D.clk_to_q + D.route + D.lut_setup, "c", "D")],  # a pass-through LUT
                      key=lambda e: (-e[0], e[1], e[2]))
    got = depth.estimate(CHAIN)
    assert [(r, p) for _, r, p in got] == [(r, p) for _, r, p in expected]
    assert [ns for ns, _, _ in got] == pytest.approx([ns for ns, _, _ in expected], abs=1e-3)


@pytest.mark.parametrize("length", [8, 9, 17])
def test_a_carry_chain_pays_its_links_and_each_logic_block_it_enters(length):
    cells = {"a": _cell("SB_DFF", C=1, D=9, Q=2)}
    for k in range(length):  # operands from a, CI from the cell before
        cells[f"c{k}"] = _cell("SB_CARRY", I0=2, I1=2, CI=100 + k - 1 if k else "0", CO=100 + k)
    cells["sum"] = _cell("SB_LUT4", I0="0", I1="0", I2="0", I3=100 + length - 1, O=5)
    cells["b"] = _cell("SB_DFF", C=1, D=5, Q=6)
    blocks = (length - 1) // D.carry_per_block
    expected = (D.clk_to_q + D.route + D.carry_operand + (length - 1) * D.carry_in
                + blocks * D.carry_block + D.lut_setup)
    got = dict(((r, p), ns) for ns, r, p in depth.estimate(_netlist(cells, {"a": [2], "b_reg": [6]})))
    assert got[("b_reg", "D")] == pytest.approx(expected, abs=1e-3)


def test_past_groups_the_late_inputs_by_register():
    ends = [(16.2, "in_ahead0[3]", "D"), (15.9, "in_ahead0[7]", "E"), (15.4, "want0_SB_DFFSR_Q", "D"),
            (17.0, "acc[31]", "D")]
    assert depth.past(ends, 15.4) == {"in_ahead0": 2, "acc": 1}


def test_cli_with_a_period_lists_the_late_registers(chain_file, capsys):
    latest = depth.estimate(CHAIN)[0][0]
    assert depth.main([str(chain_file), "--over", "1", "--period", "5"]) == 0
    assert capsys.readouterr().out.splitlines()[3:] == [
        f"estimated arrival, every route {D.route} ns: latest {latest:.2f} ns (b_reg.D); "
        f"later than 5 ns: 2 inputs of 1 registers", "     2  b_reg"]


def test_ceiling_is_the_latest_input_against_the_goal():
    ns, register, pin = depth.estimate(CHAIN)[0]
    # a 5 ns period (200 MHz): b_reg's D and E inputs both estimate later
    assert depth.ceiling(CHAIN, None, 200.0) == {
        "ns": ns, "mhz": round(1000 / ns, 2), "end": f"{register}.{pin}",
        "inputs_past_goal": 2, "registers_past_goal": 1}
    assert depth.ceiling(CHAIN, None, 1.0)["inputs_past_goal"] == 0


@pytest.mark.parametrize("goal", [0, -65, True, "65"])
def test_bad_goal(goal):
    with pytest.raises(ValueError, match=r"^goal_mhz must be a number > 0, not " + re.escape(repr(goal)) + "$"):
        depth.ceiling(CHAIN, None, goal)
