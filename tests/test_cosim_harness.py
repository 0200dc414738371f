"""The co-simulation plumbing without a simulator: beat packing, files, stall specs, scoreboard."""

import numpy as np
import pytest

from pyhdl.config import ArrayConfig
from testbench import harness as H
from testbench.components import Beats, Expected, Scoreboard, check_counters
from testbench.job import Job, Scenario
from testbench.scenarios import TRAFFIC, traffic


def reference_beats(x, simd, a_bits):
    """Independent packing, written from docs/hardware.md: beat f lane s = element f*simd+s."""
    out = []
    for row in x:
        row = list(row) + [0] * (-len(row) % simd)
        for f in range(len(row) // simd):
            word = 0
            for s in range(simd):
                word |= (row[f * simd + s] % (1 << a_bits)) << (s * a_bits)
            out.append(word)
    return out


@pytest.mark.parametrize("simd,a_bits,n", [(1, 8, 1), (4, 8, 10), (8, 8, 64), (16, 4, 37), (4, 3, 5), (2, 5, 7)])
def test_pack_inputs_matches_reference(simd, a_bits, n):
    cfg = ArrayConfig(pe=1, simd=simd, w_bits=a_bits, a_bits=a_bits, max_features=max(64, simd))
    rng = np.random.default_rng(n)
    x = rng.integers(-(2 ** (a_bits - 1)), 2 ** (a_bits - 1), size=(3, n))
    x[0, :] = -(2 ** (a_bits - 1))
    x[1, :] = 2 ** (a_bits - 1) - 1
    assert [int(h, 16) for h in H.pack_inputs(x, cfg)] == reference_beats(x.tolist(), simd, a_bits)


def test_load_file_and_response_roundtrip(tmp_path):
    words = [(0x0000_0003, 0x1234), (0x3000_0000, 2), (0x1001_0000, (1 << 53) | 5)]
    assert H.write_load_file(tmp_path / "l.hex", words, 54) == 3
    lines = (tmp_path / "l.hex").read_text().split()
    assert [int(v, 16) for v in lines] == [a | d << 32 for a, d in words]
    acc = 32
    beats = [(-5, 0, 7), (2**31 - 1, 1, 8), (-(2**31), 1, 2**32 - 1)]
    text = "// 0x00000000\n" + "\n".join(format((c << (acc + 1)) | (l << acc) | (d % 2**acc), "x") for d, l, c in beats)
    (tmp_path / "r.hex").write_text(text + "\n")
    data, last, cycle, unknown = H.read_responses(tmp_path / "r.hex", 3, acc)
    assert not unknown.any()
    assert data.tolist() == [b[0] for b in beats]
    assert last.tolist() == [bool(b[1]) for b in beats]
    assert cycle.tolist() == [b[2] for b in beats]
    with pytest.raises(RuntimeError, match=r"^response dump .* holds 3 beats, expected 4$"):
        H.read_responses(tmp_path / "r.hex", 4, acc)
    (tmp_path / "x.hex").write_text("0000000010000000x\n00000000100000005\n")
    data, last, cycle, unknown = H.read_responses(tmp_path / "x.hex", 2, acc)
    assert unknown.tolist() == [True, False] and data.tolist() == [0, 5]


def test_stall_spec_errors():
    with pytest.raises(ValueError, match=r"^stall mode must be one of off, random, pattern, not 'sometimes'$"):
        H.StallSpec("sometimes")
    with pytest.raises(ValueError, match=r"^stall probability must be in \[0, 1\), not 1.0$"):
        H.StallSpec("random", prob=1.0)
    assert H.StallSpec("random", prob=0.5).threshold == 128


def test_traffic_stalls_between_30_and_50_percent():
    rng = np.random.default_rng(1)
    for kind in TRAFFIC:
        for spec in traffic(kind, rng).values():
            if spec.mode == "random":
                assert 0.3 <= spec.threshold / 256 <= 0.5
            else:
                duty = bin(spec.pattern).count("1") / 32
                assert 0.28 <= duty <= 0.5, hex(spec.pattern)


def test_harness_text_names_the_array_and_widths():
    cfg = ArrayConfig(pe=2, simd=4, max_features=128)
    text = H.harness_verilog(H.Layout(cfg, 54))
    assert "nmc_pe2_simd4_w8a8 dut" in text
    assert "localparam LW = 86, IW = 32, OW = 33, RW = 65;" in text


def make_expected(n=3, out=4):
    x = np.arange(n * 2).reshape(n, 2)
    hidden = np.arange(n * 5).reshape(n, 5)
    final = np.arange(n * out).reshape(n, out) - 3
    return Expected("m", 10, x, [hidden, final])


def beats_for(final, cycles=None):
    n, out = final.shape
    last = np.tile(np.arange(out) == out - 1, n)
    return Beats(final.reshape(-1).copy(), last, np.arange(n * out) + 100 if cycles is None else cycles)


def test_scoreboard_accepts_exact_and_reports_first_mismatch():
    sb = Scoreboard(pe=2)
    exp = make_expected()
    sb.expect(exp)
    sb.receive(beats_for(exp.final), 12)
    sb.assert_empty()
    assert sb.ok and sb.checked == 12

    sb = Scoreboard(pe=2)
    sb.expect(exp)
    beats = beats_for(exp.final)
    beats.data[7] += 1  # input 1, neuron 3
    beats.data[9] += 1
    sb.receive(beats, 12)
    assert len(sb.errors) == 1
    assert sb.errors[0].splitlines() == [
        "MISMATCH: model 'm' input 11 layer 1 neuron 3 PE 1 cycle 107: RTL 5 (last=1), golden 4 (last=1)",
        "  input 11: [2, 3]",
        "  golden layer 0: [5, 6, 7, 8, 9]",
        "  golden layer 1: [1, 2, 3, 4]"]


def test_scoreboard_flags_x_even_when_the_value_matches():
    exp = make_expected()
    beats = beats_for(exp.final)
    beats.unknown = np.zeros(12, dtype=bool)
    beats.unknown[5] = True
    sb = Scoreboard(pe=2)
    sb.expect(exp)
    sb.receive(beats, 12)
    assert sb.errors[0].startswith("X/Z: model 'm' input 11 layer 1 neuron 1 PE 1 cycle 105:")


def test_scoreboard_lost_duplicated_reordered_and_left_over():
    exp = make_expected()
    sb = Scoreboard(pe=4)
    sb.expect(exp)
    beats = beats_for(exp.final)
    sb.receive(Beats(beats.data[:10], beats.last[:10], beats.cycle[:10]), 10)
    assert sb.errors[0].startswith("LOST: only 10 of 12 output beats arrived; first missing: model 'm' input 12 layer 1 neuron 2 PE 2")

    sb = Scoreboard(pe=4)
    sb.expect(exp)
    extra = Beats(np.append(beats.data, 99), np.append(beats.last, True), np.append(beats.cycle, 500))
    sb.receive(extra, 13)
    assert sb.errors == ["UNEXPECTED: model 'm': 1 output beats after the 12 expected, first at cycle 500: [99]"]

    sb = Scoreboard(pe=4)
    sb.expect(exp)
    swapped = beats_for(exp.final)
    swapped.data[[0, 1]] = swapped.data[[1, 0]]
    sb.receive(swapped, 12)
    assert sb.errors[0].startswith("MISMATCH: model 'm' input 10 layer 1 neuron 0 PE 0 cycle 100: RTL -2")

    sb = Scoreboard(pe=4)
    sb.expect(exp)
    wrong_last = beats_for(exp.final)
    wrong_last.last[3] = False
    sb.receive(wrong_last, 12)
    assert "(last=0), golden 0 (last=1)" in sb.errors[0]

    sb = Scoreboard(pe=4)
    sb.expect(exp)
    sb.assert_empty()
    assert sb.errors == ["LEFT OVER: 1 expected batches never received"]


def test_check_counters_names_counter_and_numbers():
    stats = [0] * 16
    stats[3] = 10
    assert check_counters(stats, {"mac_ops": 10}) == []
    assert check_counters(stats, {"mac_ops": 12, "inferences": 0}) == [
        "counter mac_ops (stat_addr 3): RTL 10, expected 12"]


def test_job_rejects_bad_scenarios():
    with pytest.raises(ValueError, match=r"^scenario kind must be one of stream, isolated, reset, not 'burst'$"):
        Scenario(0, [[1]], "burst")
    job = Job(ArrayConfig())
    with pytest.raises(ValueError, match=r"^scenario names model 0, but the job has 0$"):
        job.add(0, [[1]])


def test_a_build_directory_is_used_by_one_simulation_at_a_time(tmp_path, monkeypatch):
    # test workers and concurrent `nmc sim` runs share build/sim/<tag>/, whose stimulus
    # files have fixed names: a second build or run of one configuration must wait
    import threading

    from pyhdl.config import SMALL
    from testbench import runner
    monkeypatch.setattr(runner, "SIM_DIR", tmp_path)
    built = threading.Event()
    monkeypatch.setattr(runner.Simulation, "_build", lambda self: built.set() or "runner")
    holder, waiter = runner.Simulation(SMALL), runner.Simulation(SMALL)
    with holder._exclusive():
        second = threading.Thread(target=waiter.build)
        second.start()
        assert not built.wait(0.5), "the second simulation built while the first held the directory"
    second.join(5)
    assert built.is_set() and not second.is_alive()


def test_a_build_directory_elsewhere_gets_its_parent_made(tmp_path, monkeypatch):
    # the benchmarks build under build/bench/sim/, not build/sim/: on a fresh clone
    # its lock file's directory does not exist yet
    from pyhdl.config import SMALL
    from testbench import runner
    monkeypatch.setattr(runner, "SIM_DIR", tmp_path / "sim")
    sim = runner.Simulation(SMALL)
    sim.build_dir = tmp_path / "bench" / "sim" / runner.build_tag(SMALL)
    with sim._exclusive():
        assert sim.build_dir.with_name(sim.build_dir.name + ".lock").exists()
