"""Host-side job builders: random and corner models, traffic patterns, mid-inference resets.

Used by the pytest co-simulation suite and ``python -m testbench.runner``.  All
randomness comes from explicit seeds, so a failing job is reproduced exactly.
"""

from __future__ import annotations

import numpy as np

from golden import randmodel
from pyhdl import compiler, sizing
from pyhdl.config import ArrayConfig

from .harness import StallSpec
from .job import Job

__all__ = ["TRAFFIC", "CORNER_RUNS", "traffic", "add_model", "random_job", "corner_job", "add_resets"]

#: Traffic kinds, cycled over the random models: back to back, random and
#: patterned idle/backpressure (30-50 % stall) on every stream, and a mix.
TRAFFIC = ("none", "random", "pattern", "mixed")

# Periodic stall masks (period, stalled cycles per period): 33 %, 50 %, 40 %, 37.5 %, 50 % in bursts.
_PERIODS = ((3, 1), (2, 1), (5, 2), (8, 3), (4, 2))


def _pattern(rng: np.random.Generator) -> int:
    period, stalled = _PERIODS[rng.integers(len(_PERIODS))]
    one = sum(1 << i for i in range(stalled)) << int(rng.integers(period - stalled + 1))
    word = 0
    for start in range(0, 32, period):
        word |= one << start
    return (word & 0xFFFF_FFFF) or 1


def _random(rng: np.random.Generator) -> StallSpec:
    return StallSpec("random", prob=float(rng.uniform(0.3, 0.5)), seed=int(rng.integers(1, 2**32)))


def traffic(kind: str, rng: np.random.Generator) -> dict:
    """Stall specs for the three streams."""
    if kind == "none":
        return {}
    if kind == "random":
        return {s: _random(rng) for s in ("load", "input", "output")}
    if kind == "pattern":
        return {s: StallSpec("pattern", pattern=_pattern(rng)) for s in ("load", "input", "output")}
    if kind == "mixed":
        return {"load": StallSpec("pattern", pattern=_pattern(rng)), "input": _random(rng),
                "output": StallSpec("pattern", pattern=_pattern(rng))}
    raise ValueError(f"traffic kind must be one of {', '.join(TRAFFIC)}, not {kind!r}")


def add_model(job: Job, name: str, image) -> int:
    return job.add_model(name, image, compiler.compile_model(image, job.cfg))


def random_job(cfg: ArrayConfig, n_models: int, seed: int, *, vectors: int = 6, max_width: int = 128,
               max_depth: int = 4, isolated: bool = True, job: Job | None = None) -> Job:
    """``n_models`` random MLPs that fit ``cfg`` (drawn until that many compile), each with
    ``vectors`` random inputs under cycled traffic, plus (``isolated``) one isolated
    inference each."""
    job = job or Job(cfg)
    rng = np.random.default_rng(seed)
    found, draws = 0, 0
    while found < n_models:
        draws += 1
        if draws > 20 * n_models + 100:
            raise RuntimeError(f"only {found} of {n_models} random models fit {cfg.name} after {draws} draws")
        model_seed = int(rng.integers(2**31))
        image = randmodel.random_image(model_seed, w_bits=cfg.w_bits, a_bits=cfg.a_bits, acc_bits=cfg.acc_bits,
                                       m_bits=cfg.m_bits, depth=(1, max_depth),
                                       width=(1, min(max_width, cfg.max_features)))
        try:
            m = add_model(job, f"random{model_seed}", image)
        except ValueError:
            continue  # does not fit this array (bank depth, ...): draw another
        x = randmodel.random_inputs(image, vectors, model_seed).numpy()
        kind = TRAFFIC[found % len(TRAFFIC)]
        job.add(m, x, "stream", stalls=traffic(kind, rng), tag=f"random{model_seed}/{kind}")
        if isolated:
            job.add(m, x[:1], "isolated", tag=f"random{model_seed}/isolated")
        found += 1
    return job


#: How :func:`corner_job` runs each corner model's vectors.
CORNER_RUNS = ("back-to-back", "random", "isolated")


def corner_job(cfg: ArrayConfig, seed: int, *, runs: tuple[str, ...] = CORNER_RUNS, job: Job | None = None) -> Job:
    """Corner models (extreme weights, rounding ties, the longest accumulation) with corner
    vectors (all-maximum, all-minimum, ...), run as ``runs`` says: back to back, under
    random traffic, one vector alone (the one-output chain has no isolated run)."""
    unknown = [r for r in runs if r not in CORNER_RUNS]
    if unknown or not runs:
        raise ValueError(f"runs must be some of {', '.join(CORNER_RUNS)}, not {runs!r}")
    job = job or Job(cfg)
    rng = np.random.default_rng(seed)
    corners = randmodel.corner_images(w_bits=cfg.w_bits, a_bits=cfg.a_bits, acc_bits=cfg.acc_bits,
                                      m_bits=cfg.m_bits, max_features=cfg.max_features,
                                      out_features=2 * cfg.pe + 1, seed=seed)
    for tag, image in corners:
        m = add_model(job, f"corner:{tag}", image)
        x = randmodel.corner_inputs(image).numpy()
        _corner_runs(job, m, x, f"corner:{tag}", runs, rng)
    # One-output chains drain a result slot in a cycle, so the next inference's slot is
    # reached while the previous one's last beat is still on its way out: the case in
    # which the drain once read a slot twice (vectors 2, 3 repeating 0, 1).
    image = randmodel.random_image(seed, w_bits=cfg.w_bits, a_bits=cfg.a_bits, acc_bits=cfg.acc_bits,
                                   m_bits=cfg.m_bits, depth=(2, 2), width=(1, 1), requantize_last=False)
    m = add_model(job, "corner:one_output", image)
    x = randmodel.random_inputs(image, 16, seed).numpy()
    _corner_runs(job, m, x, "corner:one_output", tuple(r for r in runs if r != "isolated") or ("random",), rng)
    return job


def _corner_runs(job: Job, model: int, x, tag: str, runs: tuple[str, ...], rng: np.random.Generator) -> None:
    # the random stalls are drawn whether or not that run is kept, so a corner's traffic
    # does not depend on which runs were asked for
    stalls = traffic("random", rng)
    if "back-to-back" in runs:
        job.add(model, x, "stream", tag=f"{tag}/back-to-back")
    if "random" in runs:
        job.add(model, x, "stream", stalls=stalls, tag=f"{tag}/random")
    if "isolated" in runs:
        job.add(model, x[:1], "isolated", tag=f"{tag}/isolated")


def add_resets(job: Job, count: int, seed: int, *, vectors: int = 4) -> Job:
    """``count`` mid-inference resets on the job's models: reset at a random cycle while a
    batch is in flight, then run fresh vectors bit-exact, alternately after reloading the
    program and relying on it surviving the reset."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        index = int(rng.integers(len(job.models)))
        model = job.models[index]
        x = randmodel.random_inputs(model.image, vectors, int(rng.integers(2**31))).numpy()
        load_cycles = len(model.load_words) + 1  # program + counter clear, no load stalls
        # busy is high from the cycle after the first input beat (about load_cycles + 2)
        # until the last result; stay well inside that window
        window = sizing.inference_cycles(model.shapes, job.cfg) + (vectors - 1) * sizing.ideal_cycles(model.shapes, job.cfg)
        reset_at = load_cycles + 8 + int(rng.integers(max(1, window - 12)))
        reload = k % 2 == 0
        job.add(index, x, "reset", reset_at=reset_at, reload=reload,
                tag=f"reset{k}/{model.name}@{reset_at}/{'reload' if reload else 'kept'}")
    return job
