"""cocotb + Verilator co-simulation of the array, bit-exact against the golden model.

One Verilator build per configuration (cached in ``build/sim/``) and one
simulator process per configuration running every scenario: NMC_RANDOM_MODELS
random MLPs (default 50) under back-to-back, random and patterned traffic, the
corner models with corner vectors, and resets at random cycles mid-inference.
"""

import functools
import time

import pytest

from pyhdl.config import DEFAULT, ArrayConfig
from testbench.runner import Simulation
from testbench.scenarios import add_resets, corner_job, random_job

pytestmark = pytest.mark.slow

#: Corners of the parameter space (not a cross-product), with memories kept small
#: so the Verilator builds stay quick.  The 1x1 array takes widths up to 64 so a
#: 4-layer model stays a few thousand cycles.
CONFIGS = {
    "1x1": ArrayConfig(pe=1, simd=1, bank_depth=16384, max_features=64, max_layers=4),
    "2x4": ArrayConfig(pe=2, simd=4, bank_depth=8192, max_features=128, max_layers=4),
    "8x8": DEFAULT,
    "4x16": ArrayConfig(pe=4, simd=16, bank_depth=1024, max_features=128, max_layers=4),
    "w4a4": ArrayConfig(pe=4, simd=4, w_bits=4, a_bits=4, acc_bits=20, m_bits=12, bank_depth=2048,
                        max_features=64, max_layers=4),
}
RESETS = 3


@functools.cache
def _cosim(key: str, n_random: int):
    """The results, or the exception: a broken build fails each test once, not four builds."""
    try:
        return _run(key, n_random)
    except Exception as e:  # noqa: BLE001 - re-raised by cosim() in every test that needs it
        return e


def cosim(key: str, n_random: int) -> dict:
    res = _cosim(key, n_random)
    if isinstance(res, Exception):
        raise res
    return res


def _run(key: str, n_random: int) -> dict:
    cfg = CONFIGS[key]
    job = random_job(cfg, n_random, seed=1)
    corner_job(cfg, seed=2, job=job)
    add_resets(job, RESETS, seed=3)
    sim = Simulation(cfg, fast_sim=False)
    t0 = time.perf_counter()
    sim.build()
    build_s = time.perf_counter() - t0
    res = sim.run(job, name="pytest")
    res["build_s"] = build_s
    res["job"] = job
    print(f"\n{key} ({cfg.name}): build {build_s:.1f} s, simulator process {res['process_s']:.1f} s, "
          f"{res['outputs_checked']} outputs checked")
    return res


def scenarios(res, prefix):
    found = [sc for sc in res["scenarios"] if sc["tag"].startswith(prefix)]
    assert found, f"no scenario tagged {prefix}*"
    return found


def first_error(found):
    return next((e for sc in found for e in sc["errors"]), None)


def expected_outputs(res, found):
    job = res["job"]
    by_tag = {sc.tag: sc for sc in job.scenarios}
    return sum(len(by_tag[sc["tag"]].inputs) * job.models[by_tag[sc["tag"]].model].image.out_features
               for sc in found)


# the first test of each configuration builds and runs it (cached for the others)
@pytest.mark.slow(seconds=35)
@pytest.mark.parametrize("key", CONFIGS)
def test_random_models_bit_exact(key, random_models):
    res = cosim(key, random_models)
    found = scenarios(res, "random")
    assert first_error(found) is None, first_error(found)
    assert len({sc["model"] for sc in found}) == random_models
    assert sum(sc["outputs_checked"] for sc in found) == expected_outputs(res, found)
    kinds = {sc["tag"].rsplit("/", 1)[1] for sc in found}
    assert kinds >= {"none", "random", "pattern", "mixed", "isolated"} or random_models < 4


@pytest.mark.parametrize("key", CONFIGS)
def test_corner_models_bit_exact(key, random_models):
    res = cosim(key, random_models)
    found = scenarios(res, "corner:")
    assert first_error(found) is None, first_error(found)
    assert sum(sc["outputs_checked"] for sc in found) == expected_outputs(res, found)


@pytest.mark.parametrize("key", CONFIGS)
def test_reset_mid_inference_then_bit_exact(key, random_models):
    res = cosim(key, random_models)
    found = scenarios(res, "reset")
    assert first_error(found) is None, first_error(found)
    assert len(found) == RESETS
    assert all(sc["busy_at_reset"] for sc in found)
    assert sum(sc["outputs_checked"] for sc in found) == expected_outputs(res, found)


@pytest.mark.parametrize("key", CONFIGS)
def test_nothing_left_over(key, random_models):
    """No scenario leaves an expected batch unreceived or a beat unexpected, and every run ends."""
    res = cosim(key, random_models)
    assert res["failures"] == [], res["failures"][0]
    for sc in res["scenarios"]:
        for run in sc["runs"]:
            assert not run["status"]["timeout"], sc["tag"]


def test_checker_catches_a_corrupted_weight_and_recovers():
    """The checker is not vacuous: one flipped weight bit is reported at the right neuron
    and PE, and the next model in the same simulator process still runs bit-exact."""
    from golden import randmodel
    from testbench.job import Job
    from testbench.scenarios import add_model

    cfg = CONFIGS["2x4"]
    job = Job(cfg)
    image = randmodel.random_image(21, depth=(1, 1), width=(8, 8), requantize_last=False)
    good = randmodel.random_image(22, depth=(2, 2), width=(5, 20))
    bad = add_model(job, "sabotaged", image)
    # bank word 0 of PE 1 holds neuron 1's weights for inputs 0..3: flip lane 0's low bit
    words = job.models[bad].load_words
    k = words.index(next(w for w in words if w[0] == 1 << 20))
    words[k] = (words[k][0], words[k][1] ^ 1)
    x = randmodel.random_inputs(image, 3, 5).numpy()
    x[:, 0] = 77
    job.add(bad, x, tag="sabotaged")
    ok = add_model(job, "clean", good)
    job.add(ok, randmodel.random_inputs(good, 4, 6).numpy(), tag="clean")
    res = Simulation(cfg, fast_sim=False).run(job, name="pytest_sabotage")
    sabotaged, clean = res["scenarios"]
    assert len(sabotaged["errors"]) == 1
    head = sabotaged["errors"][0].splitlines()[0]
    assert head.startswith("MISMATCH: model 'sabotaged' input 0 layer 0 neuron 1 PE 1 cycle ")
    golden, rtl = int(head.split("golden ")[1].split()[0]), int(head.split("RTL ")[1].split()[0])
    assert abs(rtl - golden) == 77
    assert clean["errors"] == [] and clean["outputs_checked"] == 4 * good.out_features
