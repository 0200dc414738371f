"""Build and run the co-simulation through ``cocotb_tools.runner``.

One build directory per configuration and simulator, ``build/sim/<tag>/``, built
once and reused (Verilator skips identical inputs; Icarus rebuilds only when a
source is newer; never ``always=True``).  A build directory is one process's at a
time (an advisory lock, ``<tag>.lock`` beside it): the simulator runs in it and reads
its stimulus files by fixed names, so two test workers or two ``nmc sim`` on one
configuration take turns instead of overwriting each other's files.  The array's
Verilog is the committed ``hdl/nmc_<cfg.name>.v`` when the configuration is one of
those, otherwise it is generated into the build directory.  ``WAVES=1`` builds a separate traced
binary and writes ``dump.vcd`` (Verilator) / ``.fst`` (Icarus) in that directory.

Run directly for a quick self-check of the default configuration::

    .venv/bin/python -m testbench.runner [--pe 2 --simd 4 ...] [--simulator icarus]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from nmc import toolenv
from pyhdl import config as config_mod
from pyhdl import sizing
from pyhdl.config import ArrayConfig

from . import harness as H
from .job import Job, results_path

__all__ = ["ROOT", "SIM_DIR", "SIMULATORS", "build_tag", "dut_source", "Simulation"]

ROOT = Path(__file__).resolve().parent.parent
SIM_DIR = ROOT / "build" / "sim"
SIMULATORS = ("verilator", "icarus")
TEST_MODULE = "testbench.cocotb_nmc"


def _waves() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


def _waves_env(waves: bool):
    """cocotb's runner lets ``WAVES`` override its argument: pin it for one call."""
    return toolenv.pinned_env("WAVES", "1" if waves else "0")


def _pythonpath() -> str:
    """The repository first, then whatever the caller had (the simulator embeds its own Python)."""
    return os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def _committed(cfg: ArrayConfig) -> Path | None:
    """The committed ``hdl/`` file when ``cfg`` is one of the configurations it was generated for."""
    if cfg in (config_mod.DEFAULT, config_mod.SMALL):
        path = ROOT / "hdl" / f"nmc_{cfg.name}.v"
        if path.exists():
            return path
    return None


def build_tag(cfg: ArrayConfig, simulator: str = "verilator", waves: bool = False, fast_sim: bool = True) -> str:
    """``<cfg.name>`` for the committed configurations, else ``<cfg.name>_<hash of all parameters>``;
    ``_icarus``, ``_waves`` and ``_quickbuild`` (C++ -O0) suffixes."""
    tag = cfg.name
    if _committed(cfg) is None:
        digest = hashlib.sha256(json.dumps(cfg.as_dict(), sort_keys=True).encode()).hexdigest()[:8]
        tag += f"_{digest}"
    if simulator != "verilator":
        tag += f"_{simulator}"
    if waves:
        tag += "_waves"
    if simulator == "verilator" and not fast_sim:
        tag += "_quickbuild"
    return tag


def dut_source(cfg: ArrayConfig, directory: Path) -> Path:
    """Path of the array's Verilog: committed, or generated into ``directory`` (only when it changed)."""
    committed = _committed(cfg)
    if committed is not None:
        return committed
    from pyhdl import verilog  # Amaranth only when a configuration must be generated
    path = directory / f"nmc_{cfg.name}.v"
    stamp = directory / "dut.stamp"
    sources = sorted((ROOT / "pyhdl").glob("*.py"))
    key = hashlib.sha256(json.dumps(cfg.as_dict(), sort_keys=True).encode()
                         + b"".join(p.read_bytes() for p in sources)).hexdigest()
    if not path.exists() or not stamp.exists() or stamp.read_text() != key:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(verilog.generate(cfg))
        stamp.write_text(key)
    return path


#: cocotb builds with ``--public-flat-rw``, which keeps every signal of the array
#: observable and un-optimised (2.5x slower on the 8x8 array).  The testbench only
#: touches the harness's own ports and wires, so only depth 1 is public.
#: Not -CFLAGS -O2 (another 1.4x): together with --public-depth it produced a wrong
#: result on one deterministic model sequence that passes with -Os, with
#: --public-flat-rw, on Icarus and in the Amaranth simulator (see docs/verification.md).
SPEED_ARGS = ["--public-depth", "1", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
#: C++ optimisation: -O2 simulates 1.4-1.8x faster than cocotb's -Os but compiles up to 2x
#: longer.  The test suite (many configurations, short runs) builds for build time: the
#: design's C++ as one translation unit at -O0 (the 4x16 array in 9.5 s on one core,
#: against 24.7 s split at -Os with the precompiled header that splitting needs;
#: it then simulates 1.5x slower).
CXX_SPEED = {True: ["-CFLAGS", "-O2"], False: []}
MAKE_SPEED = {True: [], False: ["VM_PARALLEL_BUILDS=0", "OPT_FAST=-O0"]}

#: Verilator's runtime objects: the same for every design (they include no design header),
#: yet 10-20 s of C++ per build on two cores.  Compiled once, shared by all build directories.
VERILATED_OBJECTS = ("verilated.o", "verilated_vpi.o", "verilated_dpi.o", "verilated_threads.o")


def _verilated_cache(waves: bool) -> Path:
    root = toolenv.verilator_root()
    key = hashlib.sha256(f"{root}|{sorted(os.listdir(root / 'include'))}|{SPEED_ARGS}".encode()).hexdigest()[:12]
    return SIM_DIR / "_verilated" / f"{key}_trace{int(waves)}"


def _cached_verilator(waves: bool, fast_sim: bool):
    """cocotb's Verilator runner, reusing the shared runtime objects when they exist.

    The objects depend on the generated ``Vtop.mk`` in make's eyes, so they are copied in
    and touched after Verilator has written it (between the two build commands).
    """
    from cocotb_tools.runner import Verilator

    cache = _verilated_cache(waves)

    class CachedVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design big enough
            # to be split into several C++ files fails to compile ("Vtop__pch.h.fast: linker
            # input file not found"): give make the flag that includes the precompiled header.
            cmds[-1] = cmds[-1] + ["CFG_CXXFLAGS_PCH_I=-include", *MAKE_SPEED[fast_sim]]
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"] + SPEED_ARGS + CXX_SPEED[fast_sim]
            cached = [cache / o for o in VERILATED_OBJECTS]
            local = [self.build_dir / o for o in VERILATED_OBJECTS]
            if all(p.exists() for p in cached) and not all(p.exists() for p in local):
                cmds[1:1] = [["cp", *map(str, cached), str(self.build_dir)], ["touch", *map(str, local)]]
            return cmds

    return CachedVerilator()


def _remember_verilated(build_dir: Path, waves: bool) -> None:
    cache = _verilated_cache(waves)
    if all((cache / o).exists() for o in VERILATED_OBJECTS):
        return
    if all((build_dir / o).exists() for o in VERILATED_OBJECTS):
        tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for o in VERILATED_OBJECTS:
            shutil.copy2(build_dir / o, tmp / o)
        try:
            tmp.rename(cache)
        except OSError:  # another process got there first
            shutil.rmtree(tmp, ignore_errors=True)


class Simulation:
    """One built harness + array for one configuration and simulator.

    Parameters
    ----------
    cfg : ArrayConfig
    simulator : str
        ``"verilator"`` (default) or ``"icarus"``.
    waves : bool or None
        Record a waveform; ``None`` reads the ``WAVES`` environment variable.
    fast_sim : bool
        Compile the simulator's C++ for speed (-O2, default) or for build time (-O0: the
        test suite).  Each choice has its own build directory.
    netlist : dict or None
        Simulate a post-synthesis netlist of the array instead of its RTL:
        ``{"name": tag, "sources": [...]}``
        (:func:`pyhdl.fpga.netlist.ecp5_netlist`).  Icarus only.
    """

    def __init__(self, cfg: ArrayConfig, *, simulator: str = "verilator", waves: bool | None = None,
                 fast_sim: bool = True, netlist: dict | None = None):
        if simulator not in SIMULATORS:
            raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
        if netlist is not None and simulator != "icarus":
            raise ValueError(f"a netlist is simulated with icarus, not {simulator!r}")
        self.netlist = netlist
        self.cfg = cfg
        self.simulator = simulator
        self.waves = _waves() if waves is None else bool(waves)
        self.fast_sim = bool(fast_sim)
        self.build_dir = SIM_DIR / (build_tag(cfg, simulator, self.waves, self.fast_sim)
                                    + (f"_{netlist['name']}" if netlist else ""))
        self.layout = H.Layout(cfg, sizing.load_data_bits(cfg))
        self.build_seconds = None
        self._runner = None

    @contextlib.contextmanager
    def _exclusive(self):
        """Hold the build directory's lock (blocking) for a build or a run."""
        self.build_dir.parent.mkdir(parents=True, exist_ok=True)  # not always SIM_DIR (bench)
        with open(self.build_dir.with_name(self.build_dir.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def build(self):
        """Build (or confirm the cached build); returns the cocotb runner."""
        with self._exclusive():
            return self._build()

    def _build(self):
        if self._runner is not None:
            return self._runner
        toolenv.setup()
        from cocotb_tools.runner import get_runner
        t0 = time.perf_counter()
        src = self.build_dir / "src"
        harness = H.write_harness(self.layout, src / "nmc_harness.v")
        sources = [harness, *(self.netlist["sources"] if self.netlist else [dut_source(self.cfg, src)])]
        args = []
        if self.simulator == "verilator":
            from pyhdl.verilog import VERILATOR_WAIVERS
            args = list(VERILATOR_WAIVERS)
        runner = (_cached_verilator(self.waves, self.fast_sim) if self.simulator == "verilator"
                  else get_runner(self.simulator))
        self.build_dir.mkdir(parents=True, exist_ok=True)
        try:
            with _waves_env(self.waves):
                runner.build(sources=sources, hdl_toplevel=H.TOPLEVEL, build_dir=self.build_dir,
                             build_args=args, timescale=("1ns", "1ps"), waves=self.waves,
                             log_file=self.build_dir / "build.log")
        except (RuntimeError, SystemExit) as e:
            tail = (self.build_dir / "build.log").read_text().splitlines()[-15:]
            raise RuntimeError(f"{self.simulator} build of {self.cfg.name} failed ({e}); "
                               f"see {self.build_dir / 'build.log'}:\n" + "\n".join(tail)) from None
        if self.simulator == "verilator":
            _remember_verilated(self.build_dir, self.waves)
        self.build_seconds = time.perf_counter() - t0
        self._runner = runner
        return runner

    def run(self, job: Job, name: str = "job") -> dict:
        """Run every scenario of ``job`` in one simulator process; return the results file's content."""
        if job.cfg != self.cfg:
            raise ValueError(f"job is for {job.cfg.name}, this simulation is {self.cfg.name}")
        with self._exclusive():
            return self._run(job, name)

    def _run(self, job: Job, name: str) -> dict:
        runner = self._build()
        job_path = job.save(self.build_dir / f"{name}.json")
        res_path = results_path(job_path)
        res_path.unlink(missing_ok=True)
        log = self.build_dir / f"{name}.log"
        t0 = time.perf_counter()
        try:
            with _waves_env(self.waves):
                runner.test(test_module=TEST_MODULE, hdl_toplevel=H.TOPLEVEL, test_dir=self.build_dir,
                            extra_env={"NMC_JOB": str(job_path), "PYTHONPATH": _pythonpath(),
                                       # cocotb rewrites asserts of every module imported (torch
                                       # included: ~6 s per process); ours are enough
                                       "COCOTB_REWRITE_ASSERTION_FILES": "cocotb_nmc.py"},
                            waves=self.waves, timescale=("1ns", "1ps"), log_file=log,
                            results_xml=str(self.build_dir / f"{name}.results.xml"))
        except (RuntimeError, SystemExit):
            pass  # the results file (or its absence) says what happened
        wall = time.perf_counter() - t0
        if not res_path.exists():
            tail = log.read_text().splitlines()[-25:] if log.exists() else []
            raise RuntimeError(f"the {self.simulator} co-simulation of {self.cfg.name} ended without results; "
                               f"log {log}:\n" + "\n".join(tail))
        results = json.loads(res_path.read_text())
        results["process_s"] = wall
        results["log"] = str(log)
        return results


def replay(job: Job, names: list[str]) -> Job:
    """The part of ``job`` that concerns the models ``names``, in that order (to bisect a failure)."""
    out = Job(job.cfg)
    for name in names:
        matches = [i for i, m in enumerate(job.models) if m.name == name]
        if not matches:
            raise ValueError(f"the job has no model {name!r}")
        out.models.append(job.models[matches[0]])
        for sc in job.scenarios:
            if sc.model == matches[0]:
                out.scenarios.append(dataclasses.replace(sc, model=len(out.models) - 1))
    return out


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Co-simulate a few random models on one array configuration, "
                                            "or replay (part of) a job file.")
    p.add_argument("--pe", type=int, default=config_mod.DEFAULT.pe)
    p.add_argument("--simd", type=int, default=config_mod.DEFAULT.simd)
    p.add_argument("--simulator", choices=SIMULATORS, default="verilator")
    p.add_argument("--models", type=int, default=4, help="random models (without --replay)")
    p.add_argument("--replay", metavar="JOB", help="a job file from build/sim/*/ to run again")
    p.add_argument("--only", metavar="NAMES", help="with --replay: comma-separated model names, in order")
    args = p.parse_args(argv)
    from .scenarios import random_job
    if args.replay:
        job = Job.load(args.replay)
        if args.only:
            job = replay(job, args.only.split(","))
        cfg = job.cfg
    else:
        cfg = config_mod.DEFAULT.replace(pe=args.pe, simd=args.simd)
        job = random_job(cfg, args.models, seed=0)
    sim = Simulation(cfg, simulator=args.simulator)
    res = sim.run(job, name="replay" if args.replay else "selfcheck")
    print(f"{cfg.name} on {args.simulator}: {res['outputs_checked']} outputs checked, "
          f"{len(res['failures'])} failures, build {sim.build_seconds:.1f} s, run {res['process_s']:.1f} s")
    for f in res["failures"][:1]:
        print(f)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(_main())
