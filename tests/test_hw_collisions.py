"""The memories built ``collision_free`` never see a used read meet a write to the same address.

``pyhdl.tech.ram(collision_free=True)`` lets synthesis map a memory without
read-during-write logic (Yosys ``no_rw_check``): on ECP5 that removed ~1500 LUT4
and put each block RAM's output straight into its register.  The promise rests
on the array's schedule; these runs check it cycle by cycle through the array's
``collisions`` flags, on corner configurations, back to back and under stalls,
with every output compared.  The input buffer with several beats per word is the
control: it does collide, which is why it keeps the read-during-write logic, and
it shows that the flags see a collision when there is one.
"""

import collections

import pytest

from golden.integer import infer
from golden.zoo import default_models
from pyhdl import sizing, tech
from pyhdl.amsim import run_array
from pyhdl.compiler import compile_model
from pyhdl.config import DEFAULT
from pyhdl.top import NmcArray


@pytest.fixture(scope="module")
def models():
    return {e.name: e for e in default_models()}


def _run(entry, cfg, stall, n=6):
    x = entry.x_q[:n]
    dut = NmcArray(cfg)
    run = run_array(compile_model(entry.image, cfg), x.tolist(), in_stall=stall, out_stall=stall,
                    seed=3, dut=dut, watch_collisions=True)
    assert run.outputs == infer(entry.image, x)[-1].tolist()
    return dut, collections.Counter(name for _, name in run.collisions)


@pytest.mark.parametrize("model", ["digits", "simple"])
@pytest.mark.parametrize("pe, simd, stall", [(8, 8, 0.0), (8, 8, 0.4), (2, 4, 0.3), (4, 16, 0.0), (8, 4, 0.3)])
def test_collision_free_memories_never_collide(models, model, pe, simd, stall):
    cfg = DEFAULT.replace(pe=pe, simd=simd)
    dut, hits = _run(models[model], cfg, stall)
    assert set(dut.collisions) >= dut.collision_free
    assert {name: hits[name] for name in dut.collision_free if hits[name]} == {}


def test_input_buffer_with_several_beats_per_word_collides(models):
    cfg = DEFAULT.replace(pe=8, simd=2)
    assert sizing.lane_ratio(cfg) > 1
    dut, hits = _run(models["digits"], cfg, 0.0)
    assert "inbuf" not in dut.collision_free
    assert hits["inbuf"] > 0


def _unused(elaboratable):
    elaboratable._MustUse__silence = True  # inspected, not elaborated
    return elaboratable


def test_collision_free_memories_by_config():
    assert _unused(NmcArray(DEFAULT)).collision_free >= {"inbuf", "actbuf", "outbuf0", "bank7", "rq_bias7", "rq_ms7"}
    assert "inbuf" not in _unused(NmcArray(DEFAULT.replace(pe=8, simd=4))).collision_free


def test_ram_collision_free_must_be_bool():
    with pytest.raises(TypeError, match=r"^memory bank collision_free must be a bool, not 1$"):
        tech.ram(shape=8, depth=4, name="bank", collision_free=1)
    assert _unused(tech.ram(shape=8, depth=4, collision_free=True)).attrs == {"no_rw_check": 1}
    assert _unused(tech.ram(shape=8, depth=4)).attrs == {}
