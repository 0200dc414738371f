"""Cheap smoke tests of the benchmark plumbing (no simulator, no timing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common, datamove, efficiency, energy, placer, plots  # noqa: E402
from nmc import cli, cmd_bench  # noqa: E402
from pyhdl import sizing  # noqa: E402
from pyhdl.config import ArrayConfig  # noqa: E402

TINY = ArrayConfig(pe=2, simd=4, max_features=16, bank_depth=64, max_layers=4)


# -- energy table and model ---------------------------------------------------------

def test_default_table_holds_the_cited_values():
    table = energy.load_table()
    assert table == {"add8_pj": 0.03, "mul8_pj": 0.2, "add32_pj": 0.1,
                     "sram_8kb_64bit_access_pj": 10.0, "dram_32bit_access_pj": 640.0}


def _write(tmp_path, body) -> Path:
    path = tmp_path / "table.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def test_table_missing_key(tmp_path):
    body = json.loads(energy.DEFAULT_TABLE.read_text())
    del body["dram_32bit_access_pj"]
    path = _write(tmp_path, body)
    with pytest.raises(ValueError, match=rf"^energy table {path} has no 'dram_32bit_access_pj'; it needs add8_pj, "
                                         r"mul8_pj, add32_pj, sram_8kb_64bit_access_pj, dram_32bit_access_pj$"):
        energy.load_table(path)


def test_table_bad_value(tmp_path):
    body = json.loads(energy.DEFAULT_TABLE.read_text())
    body["mul8_pj"] = {"value": -1}
    path = _write(tmp_path, body)
    with pytest.raises(ValueError, match=rf"^energy table {path}: mul8_pj must be a finite number >= 0 of "
                                         r"picojoules, not -1$"):
        energy.load_table(path)


def test_table_not_json(tmp_path):
    path = _write(tmp_path, "{oops")
    with pytest.raises(ValueError, match=rf"^energy table {path} is not JSON: .* at line 1$"):
        energy.load_table(path)


def test_table_bare_numbers(tmp_path):
    path = _write(tmp_path, {k: 1 for k in energy.KEYS})
    assert energy.load_table(path) == {k: 1.0 for k in energy.KEYS}


COUNTS = {"mac_ops": 8, "bank_reads": 2, "act_reads": 1, "act_writes": 1, "bus_bytes": 16}
UNIT = {"add8_pj": 0.0, "mul8_pj": 2.0, "add32_pj": 1.0, "sram_8kb_64bit_access_pj": 64.0,
        "dram_32bit_access_pj": 100.0}


def test_estimate_by_hand():
    # 2 PE x 4 SIMD, 8-bit: a 64-bit SRAM access costs 64 pJ, i.e. 1 pJ per bit.
    local = energy.estimate(COUNTS, TINY, UNIT, "local")
    assert local == {"mac": 8 * 3.0,                    # 8 lane-steps x (mul 2 + add 1)
                     "activations": (4 + 4) * 8 * 1.0,  # a 4-lane read and a 4-lane write of 8 bits
                     "weights": 2 * 32 * 1.0,           # two 32-bit bank words
                     "total": 24.0 + 64.0 + 64.0}
    sram = energy.estimate(COUNTS, TINY, UNIT, "sram")
    assert sram["weights"] == 16 * 8 * 1.0
    dram = energy.estimate(COUNTS, TINY, UNIT, "dram")
    assert dram["weights"] == 4 * 100.0                 # 16 bytes = four 32-bit accesses
    assert dram["total"] == dram["mac"] + dram["activations"] + dram["weights"]


def test_shared_sram_cost_is_optional(tmp_path):
    body = json.loads(energy.DEFAULT_TABLE.read_text())
    body["shared_sram_64bit_access_pj"] = {"value": 128.0}
    table = energy.load_table(_write(tmp_path, body))
    assert table["shared_sram_64bit_access_pj"] == 128.0
    sram = energy.estimate(COUNTS, TINY, dict(UNIT, shared_sram_64bit_access_pj=128.0), "sram")
    assert sram["weights"] == 16 * 8 * 2.0              # 2 pJ per bit now
    assert energy.estimate(COUNTS, TINY, dict(UNIT, shared_sram_64bit_access_pj=128.0), "local")["weights"] == 64.0


def test_estimate_refuses_unknown_memory_and_missing_counter():
    with pytest.raises(ValueError, match=r"^weights must be one of local, sram, dram, not 'hbm'$"):
        energy.estimate(COUNTS, TINY, UNIT, "hbm")
    with pytest.raises(ValueError, match=r"^counters lack 'bus_bytes'$"):
        energy.estimate({k: v for k, v in COUNTS.items() if k != "bus_bytes"}, TINY, UNIT)


# -- tables, formulas, CLI ----------------------------------------------------------

def test_format_table_aligns():
    text = common.format_table(["name", "n"], [["a", 1], ["bbb", 22.5]], "T")
    assert text.split("\n") == ["T", "name      n", "----  -----", "a         1", "bbb   22.50"]


def test_format_table_row_length():
    with pytest.raises(ValueError, match=r"^table row 1 has 1 cells, the header has 2$"):
        common.format_table(["a", "b"], [[1, 2], [3]])


def test_padded_weight_bytes_by_hand():
    # 10 -> 5 on 2 PE x 4 SIMD: 3 groups x 3 folds, 8 lanes of one byte each per step
    assert datamove.padded_weight_bytes([(10, 5)], TINY) == 3 * 3 * 8


@pytest.mark.parametrize("shapes", [[(10, 5), (5, 1)], [(16, 16), (16, 3)], [(7, 9)]])
def test_layer_breakdown_adds_up(shapes):
    single = efficiency.layer_breakdown(shapes, TINY)
    assert single["total"] == sizing.inference_cycles(shapes, TINY)
    assert sum(layer["cycles"] for layer in single["layers"]) + single["tail"] == single["total"]
    assert sizing.ideal_cycles(shapes, TINY) <= efficiency.mean_period(shapes, TINY) <= single["total"]
    steady = efficiency.steady_breakdown(shapes, TINY)
    assert [layer["ideal"] for layer in steady["layers"]] == [sizing.layer_steps(i, o, TINY) for i, o in shapes]
    assert all(0 < layer["utilisation"] <= 1 for layer in steady["layers"])
    assert [layer["ideal"] for layer in single["layers"]] == [sizing.layer_steps(i, o, TINY) for i, o in shapes]


def test_sweep_utilisation_bounded():
    for row in plots.sweep([(10, 5), (5, 1)], corners=((1, 1), (2, 4))):
        assert 0 < row["single_util"] <= row["steady_util"] <= 1
        assert row["ideal"] == sizing.ideal_cycles([(10, 5), (5, 1)], ArrayConfig(pe=row["pe"], simd=row["simd"]))


def test_selected_keeps_run_order():
    assert cmd_bench.selected("plots,efficiency") == ["efficiency", "plots"]


def test_placer_runs_only_when_named():
    assert "placer" not in cmd_bench.selected(",".join(cmd_bench.BENCHMARKS))
    assert cmd_bench.selected("placer,efficiency") == ["efficiency", "placer"]


# -- placer comparison (the place and route itself runs only in the benchmark) -------

def test_placer_comparison_pairs_by_seed_and_skips_runs_that_were_stopped():
    default = {1: 131.3, 2: 123.6, 3: 122.1, 4: None}
    candidate = {1: 129.9, 2: 121.6, 3: 132.7, 4: 136.7}
    got = placer.compare(default, candidate)
    assert got["default"] == {"placed": 3, "median": 123.6, "mean": pytest.approx((131.3 + 123.6 + 122.1) / 3),
                              "min": 122.1, "max": 131.3}
    assert got["candidate"]["placed"] == 4 and got["candidate"]["median"] == pytest.approx((129.9 + 132.7) / 2)
    assert got["pairs"] == 3 and got["gained"] == 1
    assert got["paired_mean_mhz"] == pytest.approx(((129.9 - 131.3) + (121.6 - 123.6) + (132.7 - 122.1)) / 3)
    assert got["median_ratio"] == pytest.approx(got["candidate"]["median"] / 123.6)


@pytest.mark.parametrize("candidate", [(), ("--placer-heap-timingweight", ""), [30]])
def test_placer_candidate_must_be_options(candidate, tmp_path):
    with pytest.raises(ValueError, match=r"^candidate placer options must be non-empty strings, not .*$"):
        placer.run(quick=True, out_dir=tmp_path, candidate=candidate)


def test_placer_comparison_needs_the_same_seeds():
    with pytest.raises(ValueError, match=r"^the variants were placed at different seeds: \[1, 2\] and \[1\]$"):
        placer.compare({1: 100.0, 2: 101.0}, {1: 102.0})


@pytest.mark.parametrize("argv, message", [
    (["bench", "--only", "nope"], "nmc bench: error: unknown benchmark 'nope'; choose from efficiency, "
                                  "near-vs-vonneumann, sim-speed, plots, build-time, placer"),
    (["bench", "--only", ","], "nmc bench: error: --only names no benchmark; choose from efficiency, "
                               "near-vs-vonneumann, sim-speed, plots, build-time, placer"),
])
def test_cli_bad_selection(argv, message, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def test_cli_bad_energy_table_fails_before_running(tmp_path, capsys):
    path = _write(tmp_path, {"add8_pj": 1})
    assert cli.main(["bench", "--energy", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"nmc bench: error: energy table {path} has no 'mul8_pj'; it needs {', '.join(energy.KEYS)}\n"
    assert not list(tmp_path.glob("*.json.*")) and sorted(p.name for p in tmp_path.iterdir()) == ["table.json"]
