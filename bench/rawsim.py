"""Raw Verilator C++ harness: the speed baseline the cocotb co-simulation is measured against.

``run_raw(verilog, top, cfg, program, x_q)`` builds ``bench/raw/harness.cpp``
against the array Verilog once per config (``build/raw/<top>/``), streams
every input vector through it and returns the results and the time spent in
the streaming phase.  Results are compared with the golden model by the caller,
so even the baseline is verified.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import time
from pathlib import Path

from nmc import toolenv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclasses.dataclass
class RawRun:
    outputs: list[int]      # signed results in stream order
    lasts: list[int]
    cycles: int
    seconds: float          # streaming phase only, measured inside the C++ harness
    build_seconds: float    # 0 when the build was cached


def build(verilog: Path, top: str, waivers: list[str]) -> tuple[Path, float]:
    build_dir = ROOT / "build" / "raw" / top
    exe = build_dir / "Vtop"
    sources = [verilog, HERE / "raw" / "harness.cpp"]
    stamp = build_dir / "sources.stamp"
    key = "\n".join(f"{p}:{p.stat().st_mtime_ns}" for p in sources) + "\n" + " ".join(waivers)
    if exe.exists() and stamp.exists() and stamp.read_text() == key:
        return exe, 0.0
    build_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cmd = ["verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast",
           "--top-module", top, "--prefix", "Vtop", "-Mdir", str(build_dir), "-o", "Vtop",
           "-CFLAGS", "-O2", "-j", str(os.cpu_count() or 1),
           # the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so once the model
           # is split into several files g++ gets the precompiled header as a bare file name
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",
           *waivers, *map(str, sources)]
    proc = subprocess.run(cmd, env=toolenv.environment(), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"raw Verilator build of {top} failed:\n{proc.stderr[-4000:]}")
    stamp.write_text(key)
    return exe, time.perf_counter() - t0


def run_raw(verilog: Path, top: str, cfg, program, beats: list[int], n_results: int,
            waivers: list[str]) -> RawRun:
    """Stream ``beats`` (packed input-stream payloads) and collect ``n_results`` results."""
    exe, build_seconds = build(Path(verilog), top, waivers)
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.txt"
        res = Path(tmp) / "results.txt"
        with job.open("w") as f:
            f.write(f"L {len(program.load_words)}\n")
            f.writelines(f"{a:x} {d:x}\n" for a, d in program.load_words)
            f.write(f"I {len(beats)}\n")
            f.writelines(f"{b:x}\n" for b in beats)
            f.write(f"O {n_results}\n")
        proc = subprocess.run([str(exe), str(job), str(res)], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"raw harness failed: {proc.stderr.strip()}")
        lines = res.read_text().split("\n")
    tail = lines[n_results].split()
    mask = (1 << cfg.acc_bits) - 1
    outputs, lasts = [], []
    for line in lines[:n_results]:
        payload = int(line, 16)
        data = payload & mask
        outputs.append(data - (1 << cfg.acc_bits) if data >> (cfg.acc_bits - 1) else data)
        lasts.append((payload >> cfg.acc_bits) & 1)
    return RawRun(outputs, lasts, int(tail[1]), float(tail[3]), build_seconds)
