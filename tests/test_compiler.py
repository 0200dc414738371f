"""The compiler's memory images against the model image, and every fit check's message."""

from __future__ import annotations

import dataclasses
import random

import pytest

from golden.image import ModelImage
from pyhdl import amsim, sizing
from pyhdl.compiler import compile_model
from pyhdl.config import ArrayConfig

CFG = ArrayConfig(pe=2, simd=4, bank_depth=64, max_features=32, max_layers=3)


def _image(sizes, seed=0, **kw):
    return ModelImage.from_dict(amsim.random_image_dict(random.Random(seed), sizes, **kw))


@pytest.mark.parametrize("cfg", [CFG, CFG.replace(pe=4, simd=2), CFG.replace(pe=1, simd=1, bank_depth=128)],
                         ids=lambda c: c.name)
def test_images_reproduce_the_model(cfg):
    image = _image([10, 7, 5], raw_last=True)
    prog = compile_model(image, cfg)
    assert prog.shapes == [(10, 7), (7, 5)]
    assert len(prog.descriptors) == 2
    for n, layer in enumerate(image.layers):
        d = sizing.unpack_descriptor(cfg, prog.descriptors[n])
        assert (d["in_features"], d["out_features"]) == (layer.in_features, layer.out_features)
        assert (d["relu"], d["requantize"]) == (int(layer.relu), int(layer.requantize))
        F, G = sizing.folds(layer.in_features, cfg), sizing.groups(layer.out_features, cfg)
        # every weight read back from the banks, padding zero
        for j in range(G * cfg.pe):
            g, p = divmod(j, cfg.pe)
            row = []
            for f in range(F):
                row += sizing.unpack_lanes(prog.banks[p][d["bank_base"] + g * F + f], cfg.w_bits, cfg.simd)
            want = list(layer.weight[j]) if j < layer.out_features else []
            assert row == want + [0] * (F * cfg.simd - len(want))
            entry = sizing.unpack_requant(cfg, prog.requant[p][d["rq_base"] + g])
            if j < layer.out_features:
                assert entry["bias"] == layer.bias[j]
                if layer.requantize:
                    assert (entry["m"], entry["s"]) == (layer.m[j], layer.s[j])
            else:
                assert entry == {"bias": 0, "m": 0, "s": 0}
    # the load stream writes exactly the images, between n_layers = 0 (input closed) and
    # the model's n_layers
    n_layers = sizing.load_address(sizing.REGION_CONTROL, 0, sizing.CONTROL_N_LAYERS)
    expect = {}
    for p in range(cfg.pe):
        for i, w in enumerate(prog.banks[p]):
            expect[sizing.load_address(sizing.REGION_BANK, p, i)] = w
        for i, w in enumerate(prog.requant[p]):
            expect[sizing.load_address(sizing.REGION_REQUANT, p, i)] = w
    for i, w in enumerate(prog.descriptors):
        expect[sizing.load_address(sizing.REGION_DESCRIPTOR, 0, i)] = w
    assert prog.load_words[0] == (n_layers, 0)
    assert dict(prog.load_words[1:-1]) == expect
    assert len(prog.load_words) == len(expect) + 2
    assert prog.load_words[-1] == (n_layers, 2)
    assert all(d < 2 ** sizing.load_data_bits(cfg) for _, d in prog.load_words)


def test_write_hex(tmp_path):
    prog = compile_model(_image([10, 7, 5]), CFG)
    files = prog.write_hex(tmp_path)
    assert sorted(f.name for f in files) == sorted(
        [f"bank{p}.hex" for p in range(2)] + [f"requant{p}.hex" for p in range(2)] + ["descriptors.hex"])
    for p in range(CFG.pe):
        assert [int(x, 16) for x in (tmp_path / f"bank{p}.hex").read_text().split()] == prog.banks[p]
        assert [int(x, 16) for x in (tmp_path / f"requant{p}.hex").read_text().split()] == prog.requant[p]
    assert [int(x, 16) for x in (tmp_path / "descriptors.hex").read_text().split()] == prog.descriptors


@pytest.mark.parametrize("sizes,kw,cfg,msg", [
    ([10, 5], {"w_bits": 4}, CFG,
     r"^model image 'random' has w_bits=4, the array has w_bits=8$"),
    ([10, 5], {"a_bits": 6}, CFG, r"^model image 'random' has a_bits=6, the array has a_bits=8$"),
    ([10, 5], {"m_bits": 8}, CFG, r"^model image 'random' has m_bits=8, the array has m_bits=16$"),
    ([4, 4, 4, 4, 4], {}, CFG, r"^model image 'random' has 4 layers, the array holds max_layers=3$"),
    ([10, 33], {}, CFG, r"^layer 0: out_features=33 exceeds max_features=32$"),
    ([8, 4, 40, 2], {}, CFG, r"^layer 1: out_features=40 exceeds max_features=32$"),
    ([32, 32, 32], {}, CFG.replace(bank_depth=128),
     r"^layer 1: weights need 256 words per PE bank up to this layer, bank_depth=128$"),
])
def test_misfits_name_layer_and_limit(sizes, kw, cfg, msg):
    with pytest.raises(ValueError, match=msg):
        compile_model(_image(sizes, **kw), cfg)


def test_accumulator_is_proven_at_the_arrays_width_not_the_images():
    # an image records the accumulator it was quantized for; the array's own width decides
    image = _image([8, 3], acc_bits=32)
    bound = max(8 * layer.max_abs_weight * 128 + layer.max_abs_bias for layer in image.layers)
    narrow = bound.bit_length() + 1  # the narrowest signed accumulator that holds the bound
    wide_prog = compile_model(image, CFG)
    narrow_cfg = CFG.replace(acc_bits=narrow)
    narrow_prog = compile_model(image, narrow_cfg)
    assert narrow_prog.banks == wide_prog.banks and narrow_prog.descriptors == wide_prog.descriptors
    for p in range(CFG.pe):
        assert [sizing.unpack_requant(narrow_cfg, w) for w in narrow_prog.requant[p]] == \
            [sizing.unpack_requant(CFG, w) for w in wide_prog.requant[p]]
    layer = image.layers[0]
    msg = (rf"^layer 0: accumulator may overflow acc_bits={narrow - 1}: in_features\*max\|w\|\*max\|x\| \+ "
           rf"max\|b\| = 8\*{layer.max_abs_weight}\*128 \+ {layer.max_abs_bias} = {bound} > {2 ** (narrow - 2) - 1}$")
    with pytest.raises(ValueError, match=msg):
        compile_model(image, CFG.replace(acc_bits=narrow - 1))
    # and an image proven for fewer bits runs on a wider array
    assert compile_model(_image([8, 3], acc_bits=narrow), CFG).banks == wide_prog.banks


def test_accumulator_bound_is_checked_against_the_array():
    image = _image([8, 3], acc_bits=32)
    # an image built around from_dict's own check (e.g. by hand) is still caught
    layer = dataclasses.replace(image.layers[0], bias=(2**31 - 1,) * 3)
    bad = dataclasses.replace(image, layers=(layer,))
    bound = 8 * layer.max_abs_weight * 128 + 2**31 - 1
    msg = (rf"^layer 0: accumulator may overflow acc_bits=32: in_features\*max\|w\|\*max\|x\| \+ max\|b\| = "
           rf"8\*{layer.max_abs_weight}\*128 \+ 2147483647 = {bound} > 2147483647$")
    with pytest.raises(ValueError, match=msg):
        compile_model(bad, CFG)


def test_compile_rejects_wrong_types():
    with pytest.raises(TypeError, match=r"^image must be a golden\.image\.ModelImage, not dict$"):
        compile_model({}, CFG)
    with pytest.raises(TypeError, match=r"^cfg must be an ArrayConfig, not str$"):
        compile_model(_image([4, 2]), "8x8")
