"""Build times: Verilator per configuration (cold), and ``make sim`` with a warm and a cold cache.

* **Verilator build, cold**: the configuration's directory in the bench build root
  (``build/bench/sim/<tag>``) is removed first, then ``Simulation.build()`` is timed:
  Verilog generation (when the configuration is not committed in ``hdl/``), the cocotb
  harness, Verilator and the C++ compile.  Verilator's design-independent runtime objects
  stay cached (``build/sim/_verilated``: built once per machine).  A second, warm
  ``build()`` of the same directory is timed too.
* **raw harness, cold**: ``build/raw/<top>`` removed, then the raw C++ harness of the
  default configuration is built (Verilator ``-O3``, C++ ``-O2``).
* **``make sim``**: wall time of the whole command (venv check, training the zoo models,
  build, co-simulation of all three models).  Cold: the default configuration's directory
  of the test suite's build root is moved aside first and the fresh build replaces it;
  warm: run again straight after.

Everything here shares two cores with other work: expect +-30 % between runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from .common import ROOT, SIM_ROOT, bench_simulation, format_table, write_json

__all__ = ["configs", "verilator_build", "make_sim", "run"]


def configs(quick: bool = False):
    from pyhdl.config import DEFAULT, SMALL
    if quick:
        return [SMALL]
    return [SMALL, DEFAULT, DEFAULT.replace(pe=4, simd=16), DEFAULT.replace(mode="vonneumann", bus_bits=64)]


def verilator_build(cfg) -> dict:
    sim = bench_simulation(cfg)
    shutil.rmtree(sim.build_dir, ignore_errors=True)
    t0 = time.perf_counter()
    sim.build()
    cold = time.perf_counter() - t0
    warm_sim = bench_simulation(cfg)
    t0 = time.perf_counter()
    warm_sim.build()
    warm = time.perf_counter() - t0
    return {"config": cfg.name, "cold_s": cold, "warm_s": warm, "build_dir": str(sim.build_dir)}


def raw_build(cfg) -> dict:
    """Cold build of the raw C++ harness (``bench/raw``) for ``cfg``."""
    from bench import rawsim
    from pyhdl.verilog import VERILATOR_WAIVERS
    from testbench import runner
    top = f"nmc_{cfg.name}"
    shutil.rmtree(ROOT / "build" / "raw" / top, ignore_errors=True)
    verilog = runner.dut_source(cfg, bench_simulation(cfg).build_dir / "src")
    t0 = time.perf_counter()
    rawsim.build(verilog, top, list(VERILATOR_WAIVERS))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    rawsim.build(verilog, top, list(VERILATOR_WAIVERS))  # cached: the stamp check only
    return {"config": f"{cfg.name} (raw C++ harness)", "cold_s": cold, "warm_s": time.perf_counter() - t0}


def _make_sim() -> tuple[float, int, float | None, str]:
    """Wall time, exit status, the build time ``nmc sim`` printed ("build 12.3 s") and,
    on failure, the last line it printed."""
    from nmc import toolenv
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "sim"], cwd=ROOT, env=toolenv.environment(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    found = re.search(r"; build ([0-9.]+) s", proc.stdout)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    why = lines[-1] if proc.returncode and lines else ""
    return wall, proc.returncode, float(found.group(1)) if found else None, why


def make_sim(log=print) -> dict:
    from pyhdl.config import DEFAULT
    from testbench import runner
    build_dir = runner.SIM_DIR / runner.build_tag(DEFAULT)
    aside = build_dir.with_name(build_dir.name + ".bench-aside")
    shutil.rmtree(aside, ignore_errors=True)
    if build_dir.exists():
        build_dir.rename(aside)
    try:
        cold, rc_cold, build_cold, why_cold = _make_sim()
    except BaseException:
        if aside.exists() and not build_dir.exists():
            aside.rename(build_dir)  # leave the test suite's cache as it was
        raise
    if rc_cold and aside.exists():
        shutil.rmtree(build_dir, ignore_errors=True)
        aside.rename(build_dir)
    shutil.rmtree(aside, ignore_errors=True)
    warm, rc_warm, build_warm, why_warm = _make_sim()
    for why in {why_cold, why_warm} - {""}:
        log(f"  make sim failed: {why}")
    log(f"  make sim: cold {cold:.1f} s (exit {rc_cold}, of which build {build_cold} s), "
        f"warm {warm:.1f} s (exit {rc_warm}, build {build_warm} s)")
    return {"cold_s": cold, "cold_exit": rc_cold, "cold_build_s": build_cold,
            "warm_s": warm, "warm_exit": rc_warm, "warm_build_s": build_warm,
            "failure": why_cold or why_warm}


def run(*, quick: bool = False, log=print, out_dir=None, with_make_sim: bool = True) -> dict:
    builds = []
    for cfg in configs(quick):
        b = verilator_build(cfg)
        log(f"  [{cfg.name}] Verilator build cold {b['cold_s']:.1f} s, warm {b['warm_s']:.2f} s")
        builds.append(b)
    from pyhdl.config import DEFAULT
    raw = raw_build(DEFAULT)
    log(f"  [{raw['config']}] cold {raw['cold_s']:.1f} s")
    builds.append(raw)
    rows = [[b["config"], b["cold_s"], b["warm_s"]] for b in builds]
    make = make_sim(log) if with_make_sim and not quick else None
    if make:
        rows.append(["make sim (whole command)", make["cold_s"], make["warm_s"]])
    log(format_table(["what", "cold s", "warm s"], rows,
                     f"Build times (cocotb harness + array; bench build root {SIM_ROOT.relative_to(ROOT)})"))
    path = write_json("build_time", {"verilator": builds, "make_sim": make}, out_dir)
    log(f"wrote {path}")
    return {"verilator": builds, "make_sim": make,
            "ok": make is None or (make["cold_exit"] == 0 and make["warm_exit"] == 0)}
