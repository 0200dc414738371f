"""Shared plumbing of the benchmarks: output files, tables, the model set, RTL runs.

RTL runs go through the real co-simulation (``testbench.runner.Simulation``), but in
their own build root ``build/bench/sim/`` so a cold-build measurement never wipes the
test suite's cache in ``build/sim/``.  One simulator process per configuration runs
every model of the benchmark (one isolated inference and one back-to-back batch
each); all benchmarks of one ``nmc bench`` call share those runs.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "build" / "bench"
SIM_ROOT = OUT_DIR / "sim"
DOC_DIR = ROOT / "docs" / "bench"

__all__ = ["ROOT", "OUT_DIR", "SIM_ROOT", "DOC_DIR", "format_table", "write_json", "machine",
           "BenchModel", "bench_models", "RtlRun", "ModelRun", "rtl_run", "counters_of"]


def format_table(headers: list[str], rows: list[list], title: str = "") -> str:
    """A plain-text table: numbers right-aligned, text left-aligned, floats as given."""
    if not headers:
        raise ValueError("a table needs at least one column")
    for n, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"table row {n} has {len(row)} cells, the header has {len(headers)}")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows) and bool(rows)
               for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [title] if title else []
    out += [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _cell(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if v != v:
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return "-" if v is None else str(v)


def machine() -> dict:
    import os
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_json(name: str, data: dict, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or OUT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=1, default=_jsonable))
    return path


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if dataclasses.is_dataclass(v):
        return dataclasses.asdict(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


# -- models -----------------------------------------------------------------------

@dataclasses.dataclass
class BenchModel:
    name: str
    image: object          # golden.image.ModelImage
    x_q: np.ndarray        # int64 [N, in_features]

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [(layer.in_features, layer.out_features) for layer in self.image.layers]

    @property
    def weights(self) -> int:
        return sum(i * o for i, o in self.shapes)


_ZOO = {}


def bench_models(cfg, *, quick: bool = False) -> list[BenchModel]:
    """The benchmark's models for ``cfg``: the zoo (digits on all 1797 images, the
    article's two models) plus two fixed random MLPs of other shapes (``wide``:
    128-128-128, ``deep``: 4 layers of 48).  ``quick`` keeps digits only, 200 images."""
    from golden import randmodel, zoo
    key = (cfg.w_bits, cfg.a_bits, cfg.m_bits)
    if "zoo" not in _ZOO:
        _ZOO["zoo"] = {e.name: e for e in zoo.default_models(0)}
    entries = _ZOO["zoo"]
    models = []
    # the zoo is quantized for the default widths; the compiler proves its accumulators at
    # the array's acc_bits (the small config's 24 bits hold them)
    if key == (8, 8, 16):
        d = entries["digits"]
        models.append(BenchModel("digits", d.image, d.x_q[:200 if quick else None].numpy()))
        if not quick:
            for name in ("simple", "accelerated"):
                models.append(BenchModel(name, entries[name].image, entries[name].x_q.numpy()))
    if not quick:
        widths = dict(w_bits=cfg.w_bits, a_bits=cfg.a_bits, acc_bits=cfg.acc_bits, m_bits=cfg.m_bits)
        for name, seed, depth, width in (("wide", 6001, 2, 128), ("deep", 6002, 4, 48)):
            image = randmodel.random_image(seed, depth=(depth, depth), width=(width, width), **widths)
            x = randmodel.random_inputs(image, 256, seed)
            models.append(BenchModel(name, image, x.numpy().astype(np.int64)))
    return models


# -- RTL runs ---------------------------------------------------------------------

def counters_of(stats: list[int]) -> dict[str, int]:
    from pyhdl import sizing
    return dict(zip(sizing.COUNTERS, stats))


@dataclasses.dataclass
class ModelRun:
    """One model on one configuration, from the RTL performance counters."""

    name: str
    shapes: list
    vectors: int
    bit_exact: bool
    errors: list
    isolated: dict          # counters of one isolated inference
    batch: dict             # counters of the back-to-back batch (one harness run)
    batch_vectors: int
    wall_s: float           # verified simulation wall time of the batch scenario

    @property
    def single_cycles(self) -> int:
        return self.isolated["busy"]

    @property
    def steady_cycles(self) -> float:
        """Cycles per inference back to back, from two counter readings:
        ``(busy(N) - busy(1)) / (N - 1)`` (the fill cancels)."""
        if self.batch_vectors < 2:
            return float("nan")
        return (self.batch["busy"] - self.isolated["busy"]) / (self.batch_vectors - 1)

    def per_inference(self, counter: str) -> float:
        return self.batch[counter] / self.batch_vectors


@dataclasses.dataclass
class RtlRun:
    cfg: object
    build_seconds: float
    process_s: float
    setup_s: float
    models: dict            # name -> ModelRun
    build_dir: str
    skipped: dict           # name -> why the model does not fit the configuration


_RUNS: dict = {}

#: Scoreboard / harness error kinds that mean a wrong, lost or missing output.
OUTPUT_ERRORS = ("MISMATCH", "X/Z", "LOST", "UNEXPECTED", "TIMEOUT", "LEFT OVER", "done pulsed")


def bench_simulation(cfg):
    """A ``Simulation`` whose build directory lives in the bench build root."""
    from testbench import runner
    sim = runner.Simulation(cfg)
    sim.build_dir = SIM_ROOT / runner.build_tag(cfg)
    return sim


def rtl_run(cfg, models: list[BenchModel], *, log=print) -> RtlRun:
    """Co-simulate ``models`` on ``cfg`` (cached per process): one isolated inference and the
    whole batch back to back per model, every output checked against the golden model."""
    key = (cfg, tuple(m.name for m in models), tuple(len(m.x_q) for m in models))
    if key in _RUNS:
        return _RUNS[key]
    from pyhdl import compiler
    from testbench.job import Job
    job = Job(cfg)
    skipped = {}
    for m in models:
        try:
            program = compiler.compile_model(m.image, cfg)
        except ValueError as e:  # does not fit this array: say so in the report
            skipped[m.name] = str(e)
            continue
        idx = job.add_model(m.name, m.image, program)
        job.add(idx, m.x_q[:1], "isolated", tag=f"{m.name}/isolated")
        job.add(idx, m.x_q, "stream", tag=f"{m.name}/batch")
    if not job.scenarios:
        out = _RUNS[key] = RtlRun(cfg, 0.0, 0.0, 0.0, {}, "", skipped)
        return out
    sim = bench_simulation(cfg)
    t0 = time.perf_counter()
    sim.build()
    log(f"  [{cfg.name}] Verilator build {time.perf_counter() - t0:.1f} s ({sim.build_dir})")
    res = sim.run(job, name="bench")
    scen = {s["tag"]: s for s in res["scenarios"]}
    runs = {}
    for m in models:
        if m.name in skipped:
            continue
        iso, bat = scen[f"{m.name}/isolated"], scen[f"{m.name}/batch"]
        errors = iso["errors"] + bat["errors"]
        out = m.image.out_features
        # bit-exact is about the outputs; a counter or timing off its formula is reported
        # (in ``errors``) but is a cycle-model question, not a wrong result
        wrong = [e for e in errors if any(k in e for k in OUTPUT_ERRORS)]
        exact = (not wrong and bat["outputs_checked"] == len(m.x_q) * out and iso["outputs_checked"] == out)
        first = bat["runs"][0]
        # the first harness run of the batch is one counter reading; the harness splits only
        # where its memories end, which the benchmark's batches never reach
        n_first = len(m.x_q) if len(bat["runs"]) == 1 else first["stats"][7]
        runs[m.name] = ModelRun(m.name, m.shapes, len(m.x_q), exact, errors[:3],
                                counters_of(iso["runs"][0]["stats"]), counters_of(first["stats"]),
                                n_first, bat["wall_s"])
    out = RtlRun(cfg, sim.build_seconds, res["process_s"], res["setup_s"], runs, str(sim.build_dir), skipped)
    _RUNS[key] = out
    return out
