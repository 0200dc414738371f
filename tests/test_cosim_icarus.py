"""The same cocotb testbench on Icarus Verilog (4-state: X/Z propagate instead of turning into 0).

Runs on the committed small configuration (hdl/nmc_pe2_simd4_w8a8.v).  Icarus is a
Debian package that .ci/run installs; under CI a missing iverilog is a failure, not a skip.
"""


import pytest

from pyhdl.config import SMALL
from testbench.runner import Simulation
from testbench.scenarios import add_resets, corner_job, random_job

pytestmark = pytest.mark.slow


def test_icarus_random_corner_and_reset_bit_exact(iverilog):
    job = random_job(SMALL, 8, seed=11, vectors=4, max_width=32)
    corner_job(SMALL, seed=12, job=job)
    add_resets(job, 2, seed=13)
    res = Simulation(SMALL, simulator="icarus").run(job, name="pytest")
    assert res["failures"] == [], res["failures"][0]
    checked = sum(len(sc.inputs) * job.models[sc.model].image.out_features for sc in job.scenarios)
    assert res["outputs_checked"] == checked
    assert all(sc["busy_at_reset"] for sc in res["scenarios"] if sc["kind"] == "reset")
