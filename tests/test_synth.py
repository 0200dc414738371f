"""The FPGA flow: harness, log checks, report parsing, resource mapping on real tools (tiny design), CLI."""

from __future__ import annotations

import dataclasses
import signal
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyhdl.fpga import flow, harness, report, synth, targets

# A sync-read weight memory feeding a registered 8x8 signed multiply and an accumulator:
# what one MAC lane of the array asks of the FPGA (block RAM + DSP).
TINY = """
module tiny(input clk, input rst, input we, input [8:0] waddr, input [15:0] wdata,
            input [8:0] raddr, input signed [7:0] act, output reg signed [23:0] acc);
  {ram_style}reg [15:0] mem [0:{depth}];
  reg [15:0] word;
  reg signed [7:0] w, a;
  reg signed [15:0] p;
  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    word <= mem[raddr];
    w <= word[7:0] ^ word[15:8];
    a <= act;
    p <= w * a;
    if (rst) acc <= 0; else acc <= acc + p;
  end
endmodule
"""


def _tiny(tmp_path: Path, ram_style: str = "", depth: int = 512) -> Path:
    path = tmp_path / "tiny.v"
    path.write_text(TINY.format(ram_style=ram_style, depth=depth - 1))
    return path


# -- harness ---------------------------------------------------------------------

def test_harness_requires_the_clock_port():
    with pytest.raises(ValueError, match=r"^module dut has no clock port 'clk'$"):
        harness.verilog("dut", [("a", "input", 1), ("y", "output", 1)])


# -- logs and tools --------------------------------------------------------------

def test_yosys_log_without_end_of_script_is_a_failure(tmp_path):
    log = tmp_path / "yosys.log"
    log.write_text("3.50. Executing ABC pass.\nABC: + &st\n")
    with pytest.raises(flow.FlowError, match=r"^yosys stopped before the end of its script \(no 'End of script' in .*yosys\.log\)$"):
        flow.check_yosys_log(log)
    log.write_text(log.read_text() + "End of script. Logfile hash: 0123456789, time: 1.00s\n")
    flow.check_yosys_log(log)


def test_yosys_stopping_silently_with_exit_0_fails_loudly(tmp_path, monkeypatch):
    # YoWASP/yosys #29: synth_ice40 ended after ABC with status 0 and no error
    fake = tmp_path / "fake-yosys"
    fake.write_text('#!/bin/sh\n# args: -q -l LOG -s SCRIPT\necho "ABC: + &st" > "$3"\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(flow, "YOSYS", str(fake))
    with pytest.raises(flow.FlowError, match=r"^yosys stopped before the end of its script \(no 'End of script' in .*ports\.log\)$"):
        flow.implement(_tiny(tmp_path), "tiny", targets.ice40(), tmp_path / "build")


def test_missing_tool_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(flow, "YOSYS", "no-such-yosys-tool")
    with pytest.raises(flow.FlowError, match=r"^no-such-yosys-tool is not installed; run 'make synth' to set up \.venv$"):
        flow.implement(_tiny(tmp_path), "tiny", targets.ice40(), tmp_path / "build")


def test_a_tool_past_its_time_limit_is_stopped_and_named(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(flow.FlowTimeout, match=r"^.*python.* did not finish within 0\.5 s and was stopped; see .*sleep\.out$"):
        flow.run_tool(sleeper, cwd=tmp_path, log=tmp_path / "sleep.out", timeout=0.5)


def test_a_stopped_tool_takes_the_processes_it_started_with_it(tmp_path, ended, stuck_tool):
    # a build script is a shell running the tools: stopping the shell alone would leave
    # them running
    script, pid_file = stuck_tool("build.sh")
    with pytest.raises(flow.FlowTimeout, match=r"^sh did not finish within 1 s and was stopped; see .*build\.log$"):
        flow.run_tool(["sh", str(script)], cwd=tmp_path, log=tmp_path / "build.log", timeout=1)
    child = int(pid_file.read_text())
    assert ended(child), f"the script's child {child} outlived the stopped script"


def test_a_runaway_nextpnr_is_stopped_with_the_seed_named(tmp_path):
    # what a router that keeps ripping up the same arcs looks like from outside
    fake = tmp_path / "fake-nextpnr"
    fake.write_text("#!/bin/sh\necho 'Info: Routing..'\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    target = dataclasses.replace(targets.ice40(), nextpnr=str(fake))
    with pytest.raises(flow.FlowTimeout, match=r"^.*fake-nextpnr did not finish within 1 s at seed 7 and was stopped "
                                               r"\(its router can run away on one placement: try another seed or a "
                                               r"longer limit\); see .*nextpnr\.log$"):
        flow.implement(_tiny(tmp_path), "tiny", target, tmp_path / "build", seed=7, pnr_timeout=1)


@pytest.mark.parametrize("timeout, error, message", [
    (0, ValueError, r"^pnr_timeout must be > 0 seconds \(None: no limit\), not 0$"),
    (-5.5, ValueError, r"^pnr_timeout must be > 0 seconds \(None: no limit\), not -5\.5$"),
    ("60", TypeError, r"^pnr_timeout must be a number of seconds or None, not '60'$"),
    (True, TypeError, r"^pnr_timeout must be a number of seconds or None, not True$"),
])
def test_bad_pnr_timeout(tmp_path, timeout, error, message):
    with pytest.raises(error, match=message):
        flow.implement(_tiny(tmp_path), "tiny", targets.ice40(), tmp_path / "build", pnr_timeout=timeout)


def test_placing_without_a_netlist_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^no netlist to place: {re.escape(str(tmp_path))}/netlist\.json "
                                                r"does not exist$"):
        flow.place(tmp_path, "nmc_x", targets.ice40())


def test_missing_verilog_and_module_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^Verilog file .*nope\.v does not exist$"):
        flow.implement(tmp_path / "nope.v", "tiny", targets.ice40(), tmp_path / "build")
    with pytest.raises(flow.FlowError, match=r"^module other not found in design\.v \(it has: tiny\)$"):
        flow.implement(_tiny(tmp_path), "other", targets.ice40(), tmp_path / "build")


def test_bad_speed_grade():
    with pytest.raises(ValueError, match=r"^ECP5 speed grade must be one of 6, 7, 8, not 5$"):
        targets.ecp5(5)


# -- report parsing (documents built here, numbers chosen by the test) --------------

def _stat(design: dict, wrapper: dict) -> dict:
    return {"modules": {"\\dut": {"num_cells_by_type": design},
                        "\\" + harness.TOP: {"num_cells_by_type": {**wrapper, "dut": 1}}}}


def _pnr(paths, fmax) -> dict:
    return {"fmax": fmax, "utilization": {"TRELLIS_COMB": {"used": 1, "available": 2}}, "critical_paths": paths}


def _path(src, dst, delays):
    return {"from": src, "to": dst, "path": [
        {"type": kind, "delay": d, "from": {"cell": f"c{i}", "port": "A"}, "to": {"cell": f"c{i + 1}", "port": "Z"}}
        for i, (kind, d) in enumerate(delays)]}


def test_summary_counts_the_design_apart_from_the_harness():
    design = {"LUT4": 100, "CCU2C": 10, "TRELLIS_DPR16X4": 3, "TRELLIS_FF": 70, "MULT18X18D": 4, "DP16KD": 2}
    wrapper = {"LUT4": 7, "TRELLIS_FF": 9}
    slow = _path("posedge clk", "posedge clk", [("clk-to-q", 0.5), ("routing", 2.0), ("logic", 1.0), ("setup", 0.25)])
    fast = _path("posedge clk", "posedge clk", [("clk-to-q", 0.5), ("setup", 0.25)])
    io = _path("<async>", "posedge clk", [("routing", 50.0)])
    raw = {"stat": _stat(design, wrapper), "top": "dut", "harness": harness.TOP,
           "pnr": _pnr([fast, io, slow], {"a": {"achieved": 150.0, "constraint": 145}, "b": {"achieved": 120.0, "constraint": 145}})}
    r = report.summarize(raw, targets.ecp5(6), pe=2, simd=2)
    assert r["design"] == {"lut4": 100 + 2 * 10 + 4 * 3, "ff": 70, "dsp": 4, "bram": 2}
    assert r["total"] == {"lut4": 107 + 2 * 10 + 4 * 3, "ff": 79, "dsp": 4, "bram": 2}
    assert r["fmax_mhz"] == 120.0 and r["meets_goal"] is False
    assert r["gmacs"] == pytest.approx(4 * 120.0 / 1000)
    assert r["lut4_per_mac"] == pytest.approx((100 + 20 + 12) / 4)
    cp = r["critical_path"]
    assert cp["ns"] == pytest.approx(3.75) and cp["by_type"] == {"clk-to-q": 0.5, "routing": 2.0, "logic": 1.0, "setup": 0.25}
    assert (cp["from"], cp["to"]) == ("c0", "c4")
    table = report.format_table([r])
    assert "145 MISSED" in table and "120.0" in table


def test_lut4_per_lane_is_split_by_the_kept_hierarchy_levels():
    stat = {"modules": {
        "\\dut": {"num_cells_by_type": {"LUT4": 30, "CCU2C": 5, "TRELLIS_FF": 9, "dut.pe0": 1, "dut.pe1": 1, "\\dut.fifo": 1}},
        "\\dut.pe0": {"num_cells_by_type": {"LUT4": 20, "CCU2C": 3}},
        "\\dut.pe1": {"num_cells_by_type": {"LUT4": 20, "CCU2C": 3}},
        "\\dut.fifo": {"num_cells_by_type": {"LUT4": 2, "TRELLIS_DPR16X4": 1}},
        "\\" + harness.TOP: {"num_cells_by_type": {"LUT4": 7, "dut": 1}}}}
    lut = targets.ecp5(6).lut_cells
    assert report.lut4_parts(stat, "dut", lut) == {"top": 30 + 2 * 5, "pe": 2 * (20 + 2 * 3), "fifo": 2 + 4}
    raw = {"stat": stat, "top": "dut", "harness": harness.TOP, "pnr": _pnr([], {"clk": {"achieved": 100.0}})}
    r = report.summarize(raw, targets.ecp5(6), pe=2, simd=2)
    assert r["lut4_per_mac_by_part"] == {"top": 10.0, "pe": 13.0, "fifo": 1.5}
    assert sum(r["lut4_per_mac_by_part"].values()) == pytest.approx(r["lut4_per_mac"])
    with pytest.raises(ValueError, match=r"^Yosys stat JSON has no module other \(it has: "):
        report.lut4_parts(stat, "other", lut)


def test_mapping_check_flags_logic_fallbacks():
    r = {"target": "ice40-up5k", "design": {"lut4": 9, "ff": 9, "dsp": 0, "bram": 3}}
    assert report.check_mapping(r, min_dsp=8, min_bram=3) == [
        "ice40-up5k: 0 DSP cells, expected at least 8 (multipliers fell back to logic)"]
    r["design"]["dsp"] = 8
    assert report.check_mapping(r, min_dsp=8, min_bram=4) == [
        "ice40-up5k: 3 block RAM cells, expected at least 4 (weight banks fell back to logic)"]
    assert report.check_mapping(r, min_dsp=8, min_bram=3) == []


def test_cells_of_kept_submodules_are_counted_in():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"LUT4": 3, "top.pe0": 1, "top.pe1": 1}},
        "\\top.pe0": {"num_cells_by_type": {"LUT4": 5, "MULT18X18D": 2, "top.pe0.rq": 1}},
        "\\top.pe1": {"num_cells_by_type": {"LUT4": 5, "MULT18X18D": 2}},
        "\\top.pe0.rq": {"num_cells_by_type": {"CCU2C": 4}}}}
    assert report.module_cells(stat, "top") == {"LUT4": 13, "MULT18X18D": 4, "CCU2C": 4}
    assert report.module_cells(stat, "top.pe1") == {"LUT4": 5, "MULT18X18D": 2}


def test_unknown_module_and_clockless_report():
    with pytest.raises(ValueError, match=r"^Yosys stat JSON has no module top \(it has: \\a, \\b\)$"):
        report.module_cells({"modules": {"\\a": {}, "\\b": {}}}, "top")
    raw = {"stat": _stat({}, {}), "top": "dut", "harness": harness.TOP, "pnr": _pnr([], {})}
    with pytest.raises(ValueError, match=r"^nextpnr report has no clock in 'fmax'; is the design clocked\?$"):
        report.summarize(raw, targets.ice40(), pe=1, simd=1)


# -- the real tools on a one-lane design --------------------------------------------

@pytest.mark.slow(seconds=20)
def test_one_mac_lane_maps_to_dsp_and_block_ram_and_fallback_is_caught(tmp_path):
    target = targets.ice40()
    raw = flow.implement(_tiny(tmp_path), "tiny", target, tmp_path / "mapped")
    r = report.summarize(raw, target, pe=1, simd=1)
    assert report.check_mapping(r, min_dsp=1, min_bram=1) == []
    assert r["fmax_mhz"] > 0 and r["critical_path"] is not None
    assert "End of script" in Path(raw["logs"]["yosys"]).read_text()
    assert raw["pnr"]["utilization"]["ICESTORM_DSP"]["used"] >= 1
    # the estimate with every route the shortest is a bound nextpnr's placement cannot beat
    assert r["fmax_mhz"] <= r["ceiling"]["mhz"]

    # the same lane with the memory forced into logic and no DSP inference: both flagged
    no_dsp = dataclasses.replace(target, synth="synth_ice40")
    raw = flow.implement(_tiny(tmp_path, '(* ram_style = "logic" *) ', depth=32), "tiny", no_dsp, tmp_path / "logic")
    r = report.summarize(raw, no_dsp, pe=1, simd=1)
    assert report.check_mapping(r, min_dsp=1, min_bram=1) == [
        "ice40-up5k: 0 DSP cells, expected at least 1 (multipliers fell back to logic)",
        "ice40-up5k: 0 block RAM cells, expected at least 1 (weight banks fell back to logic)"]


def test_seeds_of_one_design_place_one_synthesis(tmp_path):
    target, source = targets.ice40(), _tiny(tmp_path)
    netlists = synth.Netlists()
    shared = [netlists.directory(source, "tiny", target, tmp_path / f"seed{s}") for s in (1, 2)]
    assert shared == [tmp_path / "seed1"] * 2
    first, second = (flow.implement(source, "tiny", target, tmp_path / f"seed{s}", seed=s, synthesized=d)
                     for s, d in zip((1, 2), shared))
    assert first["seconds"]["yosys"] > 0 and "reused" not in first
    assert second["seconds"]["yosys"] == 0 and second["reused"] == str((tmp_path / "seed1").resolve())
    assert second["stat"] == first["stat"]
    assert not (tmp_path / "seed2" / "yosys.log").exists()
    assert (tmp_path / "seed2" / "netlist.json").read_bytes() == (tmp_path / "seed1" / "netlist.json").read_bytes()
    assert first["pnr"]["fmax"] and second["pnr"]["fmax"]
    with pytest.raises(FileNotFoundError, match=r"^no synthesis to reuse: .*/seed3/synthesis\.json does not exist$"):
        flow.reuse(tmp_path / "seed3", tmp_path / "seed4")


def test_runs_at_once_wait_for_the_one_synthesis_and_share_its_failure(monkeypatch, tmp_path):
    from concurrent import futures
    source, target = _tiny(tmp_path), targets.ice40()
    started = []

    def slow_synthesis(verilog, top, target, build, **kw):
        started.append(build)
        time.sleep(0.5)
        if top == "broken":
            raise flow.FlowError("fake-yosys stopped before the end of its script")

    monkeypatch.setattr(flow, "synthesize", slow_synthesis)
    netlists = synth.Netlists()
    with futures.ThreadPoolExecutor(3) as pool:
        shared = list(pool.map(lambda s: netlists.directory(source, "tiny", target, tmp_path / f"s{s}"), (1, 2, 3)))
    assert len(started) == 1 and shared == [started[0]] * 3
    with futures.ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(netlists.directory, source, "broken", target, tmp_path / f"b{s}") for s in (1, 2)]
        errors = sorted(str(r.exception()) for r in runs)
    assert errors == ["fake-yosys stopped before the end of its script",
                      "the synthesis of broken for ice40-up5k that this run shares failed"]


# -- CLI -------------------------------------------------------------------------------

def _nmc(*args):
    return subprocess.run([sys.executable, "-m", "nmc.cli", "synth", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["--speed", "9"], r"--speed must be one of 6, 7, 8, not 9"),
    (["--seed", "-1"], r"--seed must be >= 0, not -1"),
    (["--seed", "1", "--seed", "-2"], r"--seed must be >= 0, not -2"),
    (["--pnr-timeout", "-1"], r"--pnr-timeout must be >= 0 seconds \(0: no limit\), not -1"),
    (["--board", "icebreaker", "--pnr-timeout", "-60"], r"--pnr-timeout must be >= 0 seconds \(0: no limit\), not -60"),
    (["--verilog", "x.v"], r"--verilog holds one config: pick it with --config"),
    (["--jobs", "0"], r"--jobs must be >= 1, not 0"),
    (["--target", "ice40", "--speed", "8"], r"--speed picks an ECP5 speed grade; --target ice40 has none"),
    (["--images", "8", "--no-netlist-check"], r"--images and --no-netlist-check only apply to --board builds"),
    (["--full-baud"], r"--full-baud only applies to --board builds"),
    (["--board", "icebreaker", "--full-baud", "--no-netlist-check"],
     r"--full-baud sets how the netlist check runs; --no-netlist-check skips it"),
    (["--board", "ulx3s", "--seed", "2", "--jobs", "2"],
     r"--board builds once with the board's own part and nextpnr options; drop --seed/--jobs"),
    (["--board", "icebreaker", "--speed", "8", "--require-goals"],
     r"--board builds once with the board's own part and nextpnr options; drop --speed/--require-goals"),
    (["--target", "ice40", "--verilog", "does/not/exist.v"], r"Verilog file .*does/not/exist\.v does not exist"),
])
def test_cli_bad_input_is_one_line(args, message):
    proc = _nmc(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert __import__("re").match(rf"^nmc synth: error: {message}$", lines[0]), lines[0]


def _synth_cli(monkeypatch, fmax: dict, *, timed_out=(), too_big=(), by_part=None, work=None, ceiling=None):
    """``nmc synth`` with ``synth.run`` faked: seed -> Fmax from ``fmax``, the seeds in
    ``timed_out`` raise FlowTimeout, ``work(seed)`` (if given) runs first.  Returns
    (run(argv) -> status, calls), each call ``(target, build_root, seed, pnr_timeout)``."""
    from pyhdl.fpga import synth

    design = {"LUT4": 10, "TRELLIS_FF": 5, "MULT18X18D": 64, "DP16KD": 40}
    calls = []

    def fake_run(cfg, target, build_root, *, config_name=None, verilog=None, seed=1, pnr_timeout=None,
                 netlists=None):
        calls.append((target.name, str(build_root), seed, pnr_timeout))
        if work is not None:
            work(seed)
        if seed in timed_out:
            raise flow.FlowTimeout(f"fake-nextpnr did not finish within {pnr_timeout:g} s at seed {seed}")
        if seed in too_big:
            raise flow.DoesNotFit(f"dut does not fit the {target.device}: 5331 ICESTORM_LC of 5280")
        raw = {"stat": _stat(design, {}), "top": "dut", "harness": harness.TOP, "ceiling": ceiling,
               "pnr": _pnr([], {"clk": {"achieved": fmax[seed], "constraint": target.goal_mhz}})}
        rep = report.summarize(raw, target, pe=cfg.pe, simd=cfg.simd, config=config_name)
        split = {} if by_part is None else {"lut4_per_mac": sum(by_part.values()), "lut4_per_mac_by_part": by_part}
        return {**rep, "seed": seed, "mapping_problems": [], **split}

    monkeypatch.setattr(synth, "run", fake_run)
    return _synth_main(), calls


def _synth_main():
    """``nmc synth``'s ``run`` on a command line (a list), in this process."""
    import argparse

    from nmc import cmd_synth
    parser = argparse.ArgumentParser()
    cmd_synth.add_arguments(parser)
    return lambda argv: cmd_synth.run(parser.parse_args(argv))


def test_repeated_seed_places_once_per_seed_and_reports_the_spread(monkeypatch, tmp_path, capsys):
    run, calls = _synth_cli(monkeypatch, {1: 100.0, 2: 120.0, 5: 110.0})
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path),
                "--seed", "2", "--seed", "1", "--seed", "5", "--seed", "2"]) == 0
    assert [c[:3] for c in calls] == [("ecp5-85f-s6", f"{tmp_path}/seed{s}", s) for s in (2, 1, 5)]
    out = capsys.readouterr().out
    assert "ecp5-85f-s6/seed5" in out
    assert "ecp5-85f-s6: Fmax over 3 seeds 100.0 .. 120.0 MHz, median 110.0\n" in out


def test_a_seed_past_the_time_limit_is_reported_and_the_others_still_run(monkeypatch, tmp_path, capsys):
    run, calls = _synth_cli(monkeypatch, {1: 101.0, 4: 104.0}, timed_out={3}, by_part={"top": 1.25, "pe": 2.25})
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--pnr-timeout", "90",
                "--seed", "1", "--seed", "3", "--seed", "4"]) == 1
    assert [c[3] for c in calls] == [90, 90, 90]
    captured = capsys.readouterr()
    assert captured.err == "nmc synth: error: fake-nextpnr did not finish within 90 s at seed 3\n"
    assert "ecp5-85f-s6: Fmax over 2 of 3 seeds 101.0 .. 104.0 MHz, median 102.5\n" in captured.out
    assert "ecp5-85f-s6/seed3" not in captured.out
    assert "ecp5-85f-s6/seed4: LUT4 per MAC lane 3.5 = top 1.2 + pe 2.2 (kept hierarchy levels)\n" in captured.out

    calls.clear()
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--seed", "1"]) == 0
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--seed", "1", "--pnr-timeout", "0"]) == 0
    assert [c[3] for c in calls] == [flow.PNR_TIMEOUT_S, None]


def test_a_run_that_does_not_fit_is_reported_and_the_others_still_run(monkeypatch, tmp_path, capsys):
    run, calls = _synth_cli(monkeypatch, {1: 101.0}, too_big={2})
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--seed", "1", "--seed", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "nmc synth: error: dut does not fit the LFE5U-85F-6CABGA381: 5331 ICESTORM_LC of 5280\n"
    assert "ecp5-85f-s6/seed1" in captured.out


def test_nextpnr_utilisation_over_capacity_is_found():
    log = ("Info: Device utilisation:\n"
           "Info: \t         ICESTORM_LC:    5331/   5280   100%\n"
           "Info: \t        ICESTORM_RAM:      24/     30    80%\n"
           "Info: \t        ICESTORM_DSP:       8/      8   100%\n")
    assert flow.overfull(log) == [("ICESTORM_LC", 5331, 5280)]
    assert flow.overfull(log.replace("5331", "5280")) == []


def test_board_build_runs_under_the_time_limit(monkeypatch, tmp_path, capsys):
    from pyhdl.fpga import boards

    calls = []

    def fake_build(board_name, build_dir, *, n_images=4, seed=0, timeout=None, check=True, full_baud=False):
        calls.append((board_name, timeout, check))
        if timeout is None:
            raise flow.FlowError(f"the {board_name} build failed")
        raise flow.FlowTimeout(f"the {board_name} build did not finish within {timeout:g} s and was stopped")

    monkeypatch.setattr(boards, "build", fake_build)
    run = _synth_main()
    for argv, limit, check in (([], flow.PNR_TIMEOUT_S, True), (["--pnr-timeout", "60"], 60, True),
                               (["--pnr-timeout", "0", "--no-netlist-check"], None, False)):
        calls.clear()
        status = run(["--board", "ulx3s", "--build-dir", str(tmp_path), *argv])
        assert (status, calls) == (1, [("ulx3s", limit, check)])
    assert capsys.readouterr().err.splitlines() == [
        f"nmc synth: error: the ulx3s build did not finish within {flow.PNR_TIMEOUT_S:g} s and was stopped",
        "nmc synth: error: the ulx3s build did not finish within 60 s and was stopped",
        "nmc synth: error: the ulx3s build failed"]


def test_an_ice40_run_prints_the_netlists_ceiling(monkeypatch, tmp_path, capsys):
    ceiling = {"ns": 20.11, "mhz": 49.73, "end": "pe0.requant0.rq_flag4.D",
               "inputs_past_goal": 57, "registers_past_goal": 15}
    run, _ = _synth_cli(monkeypatch, {1: 46.2}, ceiling=ceiling)
    assert run(["--target", "ice40", "--build-dir", str(tmp_path)]) == 0
    assert ("ice40-up5k: no placement of this netlist passes 49.7 MHz (pe0.requant0.rq_flag4.D at "
            "20.11 ns with every route the shortest; 57 inputs of 15 registers past the goal's "
            "15.38 ns)\n") in capsys.readouterr().out


def test_jobs_place_seeds_at_once_and_report_them_in_order(monkeypatch, tmp_path, capsys):
    import threading
    together = threading.Barrier(2, timeout=10)  # breaks unless two runs are in flight at once
    run, calls = _synth_cli(monkeypatch, {1: 101.0, 2: 102.0, 3: 103.0, 4: 104.0},
                            work=lambda seed: together.wait())
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--jobs", "2",
                "--seed", "4", "--seed", "2", "--seed", "1", "--seed", "3"]) == 0
    assert sorted(c[2] for c in calls) == [1, 2, 3, 4]
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("ecp5-85f-s6/seed")]
    assert rows[:4] == [f"ecp5-85f-s6/seed{s}" for s in (4, 2, 1, 3)]
    assert "ecp5-85f-s6: Fmax over 4 seeds 101.0 .. 104.0 MHz, median 102.5\n" in out


def test_a_failing_run_stops_the_others_and_their_tools(monkeypatch, tmp_path, capsys, ended, stuck_tool):
    script, pid_file = stuck_tool("slow-tool.sh")

    def work(seed):
        if seed == 1:  # a long place and route
            flow.run_tool(["sh", str(script)], cwd=tmp_path, log=tmp_path / "slow.log")
        else:          # fails while seed 1 runs
            deadline = time.monotonic() + 10
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            raise flow.FlowError("fake-yosys stopped before the end of its script")
    run, calls = _synth_cli(monkeypatch, {1: 101.0, 2: 102.0, 3: 103.0}, work=work)
    started = time.monotonic()
    assert run(["--target", "ecp5", "--build-dir", str(tmp_path), "--jobs", "2",
                "--seed", "1", "--seed", "2", "--seed", "3"]) == 1
    assert time.monotonic() - started < 30
    assert capsys.readouterr().err == "nmc synth: error: fake-yosys stopped before the end of its script\n"
    assert ended(int(pid_file.read_text())), "seed 1's tool outlived the failed command"
    assert sorted(c[2] for c in calls) in ([1, 2], [1, 2, 3])


# what `nmc synth` runs, its place and route replaced by a tool that starts a child and
# waits for it (as nextpnr under a build script); argv: tool, build dir, nmc synth's options
_SIGNALLED_SYNTH = """
import sys
from nmc import cli
from pyhdl.fpga import flow, synth
tool, build = sys.argv[1], sys.argv[2]
def run(cfg, target, build_root, **kw):
    flow.run_tool(["sh", tool], cwd=build, log=f"{build}/{kw['seed']}.log")
synth.run = run
sys.exit(cli.main(["synth", "--target", "ecp5", "--build-dir", build, *sys.argv[3:]]))
"""


@pytest.mark.parametrize("signum, jobs", [(signal.SIGTERM, ["--jobs", "2", "--seed", "1", "--seed", "2"]),
                                          (signal.SIGHUP, [])])
def test_a_signal_to_nmc_synth_stops_its_tools(tmp_path, ended, stuck_tool, signum, jobs):
    # the tools lead their own process groups, out of reach of a signal sent to nmc
    tool, pid_file = stuck_tool("pnr.sh")
    proc = subprocess.Popen([sys.executable, "-c", _SIGNALLED_SYNTH, str(tool), str(tmp_path), *jobs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert pid_file.exists(), f"the fake tool never started: {proc.communicate()}"
    child = int(pid_file.read_text())
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (128 + signum, f"nmc synth: stopped by {signal.Signals(signum).name}\n")
    assert ended(child), f"the tool's child {child} outlived nmc synth"
