"""Regression: under output backpressure the drain must not re-read a slot it already drained.

The drain used to treat an output slot as readable until its last beat was *accepted*;
with the FIFO holding that beat, it drained the same slot again as the next inference
(vectors 2, 3, 6, 7 of the article model repeated 0, 1, 4, 5).
"""

import pytest

from golden.integer import infer
from golden.zoo import default_models
from pyhdl.amsim import run_array
from pyhdl.compiler import compile_model
from pyhdl.config import DEFAULT


@pytest.fixture(scope="module")
def simple():
    return next(e for e in default_models() if e.name == "simple")


@pytest.mark.parametrize("out_stall", [0.4, 0.8])
def test_short_outputs_under_backpressure(simple, out_stall):
    x = simple.x_q[:24]
    run = run_array(compile_model(simple.image, DEFAULT), x.tolist(), out_stall=out_stall, in_stall=0.2, seed=0)
    assert run.outputs == infer(simple.image, x)[-1].tolist()

