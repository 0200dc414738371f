"""The built-in models (what ``make sim`` runs) on the committed default array, bit-exact,
plus the `make sim` accuracy chain: RTL outputs give the golden's accuracy exactly."""

import numpy as np
import pytest

from golden import integer, zoo
from golden.quantize import predict_classes
from pyhdl.config import DEFAULT
from testbench.job import Job
from testbench.runner import Simulation
from testbench.scenarios import add_model, traffic

pytestmark = pytest.mark.slow


def test_zoo_models_bit_exact_under_traffic():
    entries = zoo.default_models(0)
    job = Job(DEFAULT)
    rng = np.random.default_rng(7)
    for entry in entries:
        m = add_model(job, entry.name, entry.image)
        x = entry.x_q.numpy()
        job.add(m, x, "stream", tag=f"{entry.name}/back-to-back", keep_outputs=True)
        job.add(m, x[:100], "stream", stalls=traffic("random", rng), tag=f"{entry.name}/random")
        job.add(m, x[:100], "stream", stalls=traffic("pattern", rng), tag=f"{entry.name}/pattern")
        job.add(m, x[:2], "isolated", tag=f"{entry.name}/isolated")
    res = Simulation(DEFAULT, fast_sim=False).run(job, name="pytest_zoo")
    assert res["failures"] == [], res["failures"][0]
    by_tag = {sc["tag"]: sc for sc in res["scenarios"]}
    for entry in entries:
        sc = by_tag[f"{entry.name}/back-to-back"]
        assert sc["outputs_checked"] == entry.x_q.numel() // entry.image.in_features * entry.image.out_features
        rtl = np.array(sc["outputs"]).reshape(len(entry.x_q), -1)
        golden = integer.infer(entry.image, entry.x_q)[-1].numpy()
        assert np.array_equal(rtl, golden)
        if entry.kind == "classification":
            assert np.array_equal(predict_classes(entry.image, rtl).numpy(),
                                  predict_classes(entry.image, golden).numpy())
