"""Model image files: round trip, and every corrupt, truncated or edited file refused."""

import json

import pytest

from golden import image as image_mod
from golden import randmodel
from golden.image import ModelImage


@pytest.fixture
def img():
    return randmodel.random_image(7, depth=2, width=(2, 5), bias=True, requantize_last=False)


def _write(tmp_path, data, name="m.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_round_trip(tmp_path, img):
    path = image_mod.save(img, tmp_path / "m.json")
    assert image_mod.load(path) == img
    assert ModelImage.from_dict(img.to_dict()) == img


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=rf"^cannot read model image {tmp_path}/none\.json: No such file or directory$"):
        image_mod.load(tmp_path / "none.json")


def test_truncated(tmp_path, img):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(img.to_dict())[:-40])
    with pytest.raises(ValueError, match=rf"^model image {path} is truncated or corrupt: .+ at line 1 column \d+$"):
        image_mod.load(path)


def test_edited_without_fixing_checksum(tmp_path, img):
    data = img.to_dict()
    data["layers"][0]["weight"][0][0] ^= 1
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=rf"^model image {path}: checksum mismatch: the file is corrupt or was "
                                         r"edited by hand \(remove the 'sha256' field to accept hand edits\)$"):
        image_mod.load(path)


def _edited(img, edit):
    data = img.to_dict()
    del data["sha256"]
    edit(data)
    return data


@pytest.mark.parametrize("edit, msg", [
    (lambda d: d.update(format="onnx"), r"not an nmc model image \(format is 'onnx', expected 'nmc-model-image'\)"),
    (lambda d: d.update(version=2), r"unsupported version 2 \(this nmc reads version 1\)"),
    (lambda d: d.update(w_bits=9), r"w_bits must be between 2 and 8, not 9"),
    (lambda d: d.update(a_bits="8"), r"a_bits must be an integer, not '8'"),
    (lambda d: d.update(acc_bits=49), r"acc_bits must be between 8 and 48, not 49"),
    (lambda d: d.update(input_scale=float("nan")), r"input_scale must be a finite number > 0, not nan"),
    (lambda d: d.update(layers=[]), r"'layers' must be a non-empty list"),
    (lambda d: d["layers"][0].update(in_features=0), r"layer 0: in_features must be an integer >= 1, not 0"),
    (lambda d: d["layers"][0]["weight"][1].append(0), r"layer 0: weight\[1\] has \d+ entries, expected \d+"),
    (lambda d: d["layers"][0]["weight"][0].__setitem__(0, 128), r"layer 0: weight\[0\]\[0\] = 128 is outside -127\.\.127"),
    (lambda d: d["layers"][0]["weight"][0].__setitem__(0, 1.5), r"layer 0: weight\[0\]\[0\] must be an integer, not 1\.5"),
    (lambda d: d["layers"][0]["m"].__setitem__(0, 2**16), r"layer 0: m\[0\] = 65536 is outside 0\.\.65535"),
    (lambda d: d["layers"][0]["s"].__setitem__(0, 0), r"layer 0: s\[0\] = 0 is outside 1\.\.63"),
    (lambda d: d["layers"][1].update(in_features=99), r"layer 1: in_features=99 does not match out_features=\d+ of layer 0"),
    (lambda d: d["layers"][0].update(requantize=False, relu=False), r"layer 0 outputs a raw accumulator but feeds layer 1; only the last layer may be raw"),
    (lambda d: d["layers"][1].update(relu=True), r"layer 1: a ReLU needs requantization \(relu=true, requantize=false\)"),
    (lambda d: d["layers"][0]["bias"].__setitem__(0, 2**31 - 1),
     r"layer 0: accumulator may overflow acc_bits=32: in_features\*max\|w\|\*max\|x\| \+ max\|b\| = "
     r"\d+\*\d+\*128 \+ 2147483647 = \d+ > 2147483647"),
])
def test_edited_fields_rejected(tmp_path, img, edit, msg):
    path = _write(tmp_path, _edited(img, edit))
    with pytest.raises(ValueError, match=rf"^model image {path}: {msg}$"):
        image_mod.load(path)


def test_not_an_object(tmp_path):
    path = _write(tmp_path, [1, 2])
    with pytest.raises(ValueError, match=rf"^model image {path}: expected a JSON object, found list$"):
        image_mod.load(path)


def test_hand_edit_without_checksum_is_accepted(tmp_path, img):
    data = _edited(img, lambda d: d["layers"][0]["weight"][0].__setitem__(0, 5))
    loaded = image_mod.load(_write(tmp_path, data))
    assert loaded.layers[0].weight[0][0] == 5
