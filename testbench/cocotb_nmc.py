"""The cocotb test: runs every scenario of a job file against one simulator process.

Started by ``testbench.runner`` with ``NMC_JOB`` naming the job file; writes the
results file next to it (``testbench.job.results_path``) and fails if any
scenario found a mismatch, a lost or unexpected beat, a counter off its formula
or a timeout.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from pyhdl import sizing

from . import expect
from . import harness as H
from .components import (CLEAR_COUNTERS, COUNTERS, GoldenModel, Harness, InputDriver, LoadDriver,
                         OutputMonitor, Scoreboard, check_counters)
from .job import Job, results_path

#: Cycles the sink keeps listening after the last expected beat (catches extra beats).
DRAIN_CYCLES = 64


class Testbench:
    def __init__(self, dut, job: Job):
        self.cfg = job.cfg
        self.job = job
        self.layout = H.Layout(job.cfg, sizing.load_data_bits(job.cfg))
        self.harness = Harness(dut, self.layout)
        self.loader = LoadDriver(self.harness, self.layout.load_data_bits)
        self.inputs = InputDriver(self.harness, job.cfg)
        self.scoreboard = Scoreboard(job.cfg.pe)
        self.monitor = OutputMonitor(self.harness, job.cfg.acc_bits)
        self.inputs.callbacks.append(GoldenModel(self.scoreboard))
        self.monitor.callbacks.append(self.scoreboard.receive)
        self.loaded = None  # index of the model whose program is in the array

    def chunks(self, model, x: np.ndarray):
        """Split a batch where the harness input or response memory would overflow."""
        beats = sizing.ceil_div(model.image.in_features, self.cfg.simd)
        per = max(1, min(self.layout.input_depth // beats, self.layout.resp_depth // model.image.out_features))
        for start in range(0, len(x), per):
            yield start, x[start:start + per]

    async def prepare(self, index: int, x: np.ndarray, base: int, stalls: dict) -> int:
        """Load (program if needed, then the counter clear) and the input batch; configure a run."""
        model = self.job.models[index]
        words = ([] if self.loaded == index else list(model.load_words)) + [CLEAR_COUNTERS]
        await self.loader.load(words)
        self.loaded = index
        await self.inputs.send(model, x, base)
        self.harness.configure(
            n_load=len(words), n_beats=self.inputs.pending_beats, n_expect=len(x) * model.image.out_features,
            drain=DRAIN_CYCLES, max_cycles=expect.max_cycles(model.shapes, self.cfg, len(x), len(words)),
            stalls=stalls)
        return len(words)

    async def run_batch(self, index: int, x: np.ndarray, base: int, stalls: dict, *, isolated: bool) -> dict:
        model = self.job.models[index]
        t0 = time.perf_counter()
        await self.prepare(index, x, base, stalls)
        t1 = time.perf_counter()
        await self.harness.command(H.OP_RUN)
        t2 = time.perf_counter()
        status = self.harness.status()
        errors_before = len(self.scoreboard.errors)
        beats, stats = await self.monitor.collect(status["n_resp"])
        t3 = time.perf_counter()
        exact = len(self.scoreboard.errors) == errors_before
        errors = []
        if status["timeout"]:
            errors.append(f"TIMEOUT: model {model.name!r} inputs {base}..{base + len(x) - 1}: "
                          f"{status['n_resp']} of {len(x) * model.image.out_features} beats after {status['cycles']} cycles")
        stall_free = all(s.mode == "off" for s in stalls.values())
        want = expect.counter_expectations(model.shapes, self.cfg, len(x), isolated=isolated,
                                           stall_free=stall_free)
        if not status["timeout"]:
            errors += check_counters(stats, want)
            if stall_free and exact:
                errors += self.check_timing(model, beats, status["first_in"], base)
            if status["n_done"] != len(x):
                errors.append(f"done pulsed {status['n_done']} times for {len(x)} inferences")
            if status["n_busy"] != stats[COUNTERS.index("busy")]:
                errors.append(f"counter busy: RTL {stats[0]}, but busy was high {status['n_busy']} cycles")
        t4 = time.perf_counter()
        return {"status": status, "stats": stats[:len(COUNTERS)], "errors": errors, "data": beats.data,
                "seconds": {"stimulus_and_golden": t1 - t0, "simulation": t2 - t1, "collect_and_compare": t3 - t2,
                            "counters_and_timing": t4 - t3}}

    def check_timing(self, model, beats, first_in: int, base: int) -> list[str]:
        """Without stalls, each vector's last result must come exactly when the schedule says."""
        got = (beats.cycle[beats.last] - first_in).tolist()
        # a vector's completion also depends on the ones after it (they interleave into its
        # write-back waits): model a few more than are compared
        want = expect.completion_cycles(model.shapes, self.cfg, min(len(got), expect.TIMING_VECTORS + 8))
        got = got[:expect.TIMING_VECTORS]
        for v, (g, w) in enumerate(zip(got, want)):
            if g != w:
                return [f"TIMING: model {model.name!r} input {base + v}: last result accepted {g} cycles after "
                        f"the first input beat, pyhdl.sizing.schedule says {w}"]
        return []

    async def reset_mid_inference(self, index: int, x: np.ndarray, reset_at: int, reload: bool) -> bool:
        """Start a batch, assert reset ``reset_at`` cycles in; return whether busy was high then."""
        await self.prepare(index, x, 0, {})
        self.harness.start(H.OP_RUN)
        await ClockCycles(self.harness.dut.clk, reset_at)
        busy = bool(int(self.harness.dut.busy.value))
        await self.harness.reset()
        self.scoreboard.discard()
        if reload:
            self.loaded = None
        return busy

    async def run_scenario(self, sc) -> dict:
        model = self.job.models[sc.model]
        t0 = time.perf_counter()
        checked0 = self.scoreboard.checked
        errors0 = len(self.scoreboard.errors)
        result = {"tag": sc.tag, "model": model.name, "kind": sc.kind, "vectors": len(sc.inputs),
                  "runs": [], "errors": []}
        if sc.kind == "reset":
            result["busy_at_reset"] = await self.reset_mid_inference(sc.model, sc.inputs, sc.reset_at, sc.reload)
            if not result["busy_at_reset"]:
                result["errors"].append(f"reset at cycle {sc.reset_at} did not hit an inference in flight")
        if sc.kind == "isolated":
            batches = [(i, sc.inputs[i:i + 1]) for i in range(len(sc.inputs))]
        else:
            batches = list(self.chunks(model, sc.inputs))
        outputs = []
        for base, x in batches:
            run = await self.run_batch(sc.model, x, base, sc.stalls, isolated=sc.kind == "isolated")
            outputs.append(run.pop("data"))
            result["runs"].append(run)
            result["errors"] += [f"{e} (scenario {sc.tag or model.name})" for e in run["errors"]]
            if len(self.scoreboard.errors) > errors0 or run["status"]["timeout"]:
                break
        self.scoreboard.assert_empty()
        result["errors"] = self.scoreboard.errors[errors0:] + result["errors"]
        result["outputs_checked"] = self.scoreboard.checked - checked0
        result["cycles"] = sum(r["status"]["cycles"] for r in result["runs"])
        result["busy_cycles"] = sum(r["stats"][0] for r in result["runs"])
        if sc.keep_outputs:
            result["outputs"] = np.concatenate(outputs).tolist() if outputs else []
        result["wall_s"] = time.perf_counter() - t0
        if result["errors"]:
            # a failed scenario may leave the array mid-inference: start the next one clean
            await self.harness.reset()
            self.scoreboard.discard()
            self.loaded = None
        return result


@cocotb.test()
async def run_job(dut):
    """Every scenario of the job file ``$NMC_JOB``, bit-exact against the golden model."""
    job_path = os.environ["NMC_JOB"]
    t0 = time.perf_counter()
    job = Job.load(job_path)
    tb = Testbench(dut, job)
    Clock(dut.clk, 10, unit="ns").start()
    await tb.harness.reset()
    t1 = time.perf_counter()
    results = [await tb.run_scenario(sc) for sc in job.scenarios]
    summary = {"config": job.cfg.name, "scenarios": results, "setup_s": t1 - t0,
               "run_s": time.perf_counter() - t1,
               "outputs_checked": sum(r["outputs_checked"] for r in results),
               "failures": [e for r in results for e in r["errors"]]}
    results_path(job_path).write_text(json.dumps(summary))
    assert not summary["failures"], summary["failures"][0]
