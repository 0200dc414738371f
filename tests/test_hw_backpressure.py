"""Regression: the drain must not read an output slot again before a new inference claims it.

The drain used to treat an output slot as readable until its last beat was *accepted*.
When that beat still sat in the output FIFO (backpressure) or the other slot drained in
a cycle or two (one-output models, 4x16 without any stall), it drained the old slot
again as the next inference: vectors 2, 3, 6, 7 of the article model repeated 0, 1, 4, 5.
The cycle model (``sizing.schedule``) had the same rule, so timing checks agreed with it.
"""

import pytest

from golden.integer import infer
from golden.zoo import default_models
from pyhdl import sizing
from pyhdl.amsim import run_array
from pyhdl.compiler import compile_model
from pyhdl.config import DEFAULT


@pytest.fixture(scope="module")
def simple():
    return next(e for e in default_models() if e.name == "simple")


@pytest.mark.parametrize("pe, simd, out_stall", [(8, 8, 0.4), (8, 8, 0.8), (4, 16, 0.0)])
def test_one_output_model_back_to_back(simple, pe, simd, out_stall):
    cfg = DEFAULT.replace(pe=pe, simd=simd)
    x = simple.x_q[:24]
    program = compile_model(simple.image, cfg)
    run = run_array(program, x.tolist(), out_stall=out_stall, in_stall=out_stall / 2, seed=0)
    assert run.outputs == infer(simple.image, x)[-1].tolist()
    if out_stall == 0:
        expected = sizing.schedule(program.shapes, cfg, len(x) + 2)["accept"][:len(x)]
        assert [c - run.first_beat for c in run.last_accept] == expected
