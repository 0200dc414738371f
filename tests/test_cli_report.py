"""``nmc report`` through the CLI entry point."""

import json

import pytest

from golden import report
from nmc.cli import main


def test_report_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["report", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = {r["name"]: r for r in data["models"]}
    assert list(rows) == ["simple", "accelerated", "digits"]
    for name in ("simple", "accelerated"):
        assert rows[name]["vectors"] == 200 and rows[name]["shape"] == [10, 5, 1]
        assert rows[name]["mse"] >= 0.0
        assert rows[name]["mse"] < rows[name]["float_output_variance"]
    d = rows["digits"]
    assert d["vectors"] == 1797 and d["shape"] == [64, 32, 10] and d["ok"] is True
    assert d["float_accuracy"] >= report.DIGITS_MIN_FLOAT_ACCURACY
    assert d["float_accuracy"] - d["int_accuracy"] <= report.MAX_ACCURACY_DROP
    for name in rows:
        assert any(line.startswith(name + " ") for line in table.splitlines())


@pytest.mark.parametrize("argv, msg", [
    (["report", "--model", "/nonexistent/m.pt"], "nmc report: error: model file /nonexistent/m.pt does not exist\n"),
    (["report", "--seed", "-1"], "nmc report: error: --seed must be >= 0, not -1\n"),
])
def test_bad_argument_is_one_line_and_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == msg


def test_unparsable_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "--seed", "x"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "nmc report: error: argument --seed: invalid int value: 'x' (see 'nmc report --help')"]
