"""``nmc sim``: bad input is a one-line error (exit 2) before any simulator starts; a user's
model file runs bit-exact end to end."""

import json

import numpy as np
import pytest

import torch
from torch import nn

from golden import image as image_mod
from golden import randmodel
from nmc import cli

# The 2x4 configuration of test_cosim.py, so its (quick) build is reused.
SMALL_ARGS = ["--pe", "2", "--simd", "4", "--bank-depth", "8192", "--max-features", "128", "--max-layers", "4",
              "--quick-build"]


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulator would be built or started."""
    import testbench.runner as runner

    def refuse(*args, **kwargs):
        raise AssertionError("the simulation started although the input is bad")
    monkeypatch.setattr(runner.Simulation, "build", refuse)
    monkeypatch.setattr(runner.Simulation, "run", refuse)


def run_cli(argv, capsys):
    code = cli.main(["sim", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def saved_image(tmp_path, **kwargs):
    image = randmodel.random_image(5, depth=(2, 2), width=(3, 10), **kwargs)
    return image, image_mod.save(image, tmp_path / "model.json")


def test_image_for_another_config(tmp_path, capsys, no_simulation):
    image, path = saved_image(tmp_path, w_bits=4, a_bits=4, acc_bits=20, m_bits=12)
    code, _, err = run_cli(["--model", str(path)], capsys)
    assert code == 2
    assert err == f"nmc sim: error: model image '{image.name}' has w_bits=4, the array has w_bits=8\n"


def test_image_proven_at_the_arrays_accumulator(tmp_path, capsys, no_simulation):
    # the image's acc_bits=32 is not checked against the array's; its layers are, at 16 bits
    from golden import contract
    image, path = saved_image(tmp_path)
    layer = image.layers[0]
    bound = contract.accumulator_bound(layer.in_features, layer.max_abs_weight, 128, layer.max_abs_bias)
    assert image.acc_bits == 32 and bound > 2**15 - 1, "the model must need more than 16 bits"
    code, _, err = run_cli(["--model", str(path), "--acc-bits", "16"], capsys)
    assert code == 2
    assert err == (f"nmc sim: error: layer 0: accumulator may overflow acc_bits=16: "
                   f"in_features*max|w|*max|x| + max|b| = {layer.in_features}*{layer.max_abs_weight}*128 + "
                   f"{layer.max_abs_bias} = {bound} > 32767\n")


def test_truncated_and_corrupt_image(tmp_path, capsys, no_simulation):
    _, path = saved_image(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    code, _, err = run_cli(["--model", str(path)], capsys)
    assert code == 2
    assert err.startswith(f"nmc sim: error: model image {path} is truncated or corrupt: ")
    assert err.count("\n") == 1
    data = json.loads(text)
    data["layers"][0]["weight"][0][0] += 1
    path.write_text(json.dumps(data))
    code, _, err = run_cli(["--model", str(path)], capsys)
    assert code == 2
    assert "checksum mismatch" in err and err.count("\n") == 1


def test_inputs_of_wrong_length_or_out_of_range(tmp_path, capsys, no_simulation):
    image, path = saved_image(tmp_path)
    n = image.in_features
    bad_len = tmp_path / "short.npy"
    np.save(bad_len, np.zeros((3, n + 1), dtype=np.int64))
    code, _, err = run_cli(["--model", str(path), "--inputs", str(bad_len)], capsys)
    assert code == 2
    assert err == f"nmc sim: error: inputs file {bad_len}: inputs must have shape [batch, {n}], not [3, {n + 1}]\n"
    too_big = tmp_path / "big.json"
    too_big.write_text(json.dumps([[0] * (n - 1) + [128]]))
    code, _, err = run_cli(["--model", str(path), "--inputs", str(too_big)], capsys)
    assert code == 2
    assert err == f"nmc sim: error: inputs file {too_big}: input value 128 is outside the a_bits=8 range -128..127\n"
    garbage = tmp_path / "bad.csv"
    garbage.write_text("1,2,x\n")
    code, _, err = run_cli(["--model", str(path), "--inputs", str(garbage)], capsys)
    assert code == 2
    assert err.startswith(f"nmc sim: error: inputs file {garbage} is unreadable: ")


def test_model_that_does_not_fit(tmp_path, capsys, no_simulation):
    model = nn.Sequential(nn.Linear(300, 4))
    torch.save(model, tmp_path / "wide.pt")
    code, _, err = run_cli(["--model", str(tmp_path / "wide.pt")], capsys)
    assert code == 2
    assert err.startswith("nmc sim: error: ") and "300" in err and err.count("\n") == 1


def test_bad_array_parameter(capsys, no_simulation):
    code, _, err = run_cli(["--pe", "3"], capsys)
    assert code == 2
    assert err == "nmc sim: error: pe must be a power of two between 1 and 64, not 3\n"


@pytest.mark.slow
def test_user_torch_model_runs_bit_exact(tmp_path, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 3))
    torch.save(model, tmp_path / "user.pt")
    code, out, _ = run_cli(["--model", str(tmp_path / "user.pt"), "--vectors", "40", *SMALL_ARGS], capsys)
    assert code == 0, out
    assert "user: 40 vectors, bit-exact: yes" in out
    assert "MSE of the dequantized output vs float" in out
