"""The synthesis report: cell counts from Yosys ``stat -json``, timing from nextpnr ``--report``.

Both tools write JSON, so nothing here parses log text.  The report counts the
design (the array) apart from the measurement harness around it, and states
whether the weight banks and multipliers landed in block RAM and DSPs.
"""

from __future__ import annotations

from .targets import Target

__all__ = ["module_cells", "lut4_parts", "count", "critical_path", "summarize", "check_mapping", "format_table"]


def _module(stat: dict, name: str) -> dict | None:
    """Module ``name`` of a Yosys ``stat -json`` document (with or without the leading
    backslash of a public name), or None."""
    if not isinstance(stat, dict) or not isinstance(stat.get("modules"), dict):
        raise ValueError("Yosys stat JSON has no 'modules' object")
    modules = stat["modules"]
    for key in (name, "\\" + name, name.lstrip("\\")):
        if key in modules:
            return modules[key]
    return None


def _require_module(stat: dict, name: str) -> dict:
    found = _module(stat, name)
    if found is None:
        raise ValueError(f"Yosys stat JSON has no module {name} (it has: {', '.join(sorted(stat['modules']))})")
    return found


def module_cells(stat: dict, module: str) -> dict[str, int]:
    """``{cell type: count}`` of ``module`` in a Yosys ``stat -json`` document, with the
    cells of the submodules it instantiates (kept as hierarchy levels) counted in."""
    _require_module(stat, module)

    def cells_of(name, depth):
        if depth > len(stat["modules"]):
            raise ValueError(f"Yosys stat JSON: module {name} instantiates itself")
        total = {}
        for kind, n in _module(stat, name).get("num_cells_by_type", {}).items():
            kind, n = str(kind), int(n)
            for k, v in (cells_of(kind, depth + 1) if _module(stat, kind) is not None else {kind: 1}).items():
                total[k] = total.get(k, 0) + v * n
        return total

    return cells_of(module, 0)


def lut4_parts(stat: dict, top: str, lut_cells: dict[str, int]) -> dict[str, int]:
    """LUT4 of ``top`` split by what it keeps as hierarchy levels: ``{"top": its own
    logic, "<kind>": all instances of one kind of submodule}``, where instances whose
    names differ only in a trailing number (``top.pe0``, ``top.pe1``) are one kind."""
    parts = {"top": 0}
    for kind, n in _require_module(stat, top).get("num_cells_by_type", {}).items():
        kind, n = str(kind), int(n)
        if _module(stat, kind) is not None:
            name = kind.lstrip("\\")
            part = name.removeprefix(top + ".").rstrip("0123456789") or name
            parts[part] = parts.get(part, 0) + n * count(module_cells(stat, kind), lut_cells)
        else:
            parts["top"] += n * lut_cells.get(kind, 0)
    return parts


def count(cells: dict[str, int], weights: dict[str, int]) -> int:
    """Sum of ``cells[type] * weight`` over the cell types in ``weights``."""
    return sum(cells.get(kind, 0) * w for kind, w in weights.items())


def _is_clock(event) -> bool:
    return isinstance(event, str) and event.startswith(("posedge", "negedge"))


def critical_path(pnr: dict) -> dict | None:
    """The longest register-to-register path of a nextpnr report, summarised.

    Returns ``{"from", "to", "ns", "by_type": {clk-to-q/logic/routing/setup: ns},
    "steps": [(type, cell, port, ns), ...]}`` or None when the report has none.
    """
    best = None
    for cp in pnr.get("critical_paths", []):
        if not (_is_clock(cp.get("from")) and _is_clock(cp.get("to"))):
            continue
        total = sum(float(s.get("delay", 0.0)) for s in cp.get("path", []))
        if best is None or total > best[0]:
            best = (total, cp)
    if best is None:
        return None
    total, cp = best
    by_type: dict[str, float] = {}
    steps = []
    for s in cp["path"]:
        kind = s.get("type", "?")
        ns = float(s.get("delay", 0.0))
        by_type[kind] = round(by_type.get(kind, 0.0) + ns, 3)
        if kind != "routing":
            steps.append((kind, s.get("to", {}).get("cell", "?"), s.get("to", {}).get("port", "?"), round(ns, 3)))
    first, last = cp["path"][0], cp["path"][-1]
    return {"from": first.get("from", {}).get("cell", "?"), "to": last.get("to", {}).get("cell", "?"),
            "ns": round(total, 3), "by_type": by_type, "steps": steps}


def summarize(raw: dict, target: Target, *, pe: int, simd: int, config: str | None = None) -> dict:
    """The JSON report of one run of :func:`pyhdl.fpga.flow.implement`.

    ``pe * simd`` MAC lanes give GMAC/s at Fmax and LUT4 per lane; LUT4, FF, DSP
    and block RAM count the design alone (``design``) and with the harness (``total``).
    """
    design = module_cells(raw["stat"], raw["top"])
    # the harness instantiates the design: its recursive count is the total
    total = module_cells(raw["stat"], raw["harness"]) if raw.get("harness") else design

    def resources(cells):
        return {"lut4": count(cells, target.lut_cells), "ff": count(cells, target.ff_cells),
                "dsp": count(cells, target.dsp_cells), "bram": count(cells, target.bram_cells)}

    pnr = raw["pnr"]
    clocks = {name: v for name, v in pnr.get("fmax", {}).items()}
    if not clocks:
        raise ValueError("nextpnr report has no clock in 'fmax'; is the design clocked?")
    fmax = min(float(v["achieved"]) for v in clocks.values())
    lanes = pe * simd
    res, tot = resources(design), resources(total)
    # flip-flops that pyhdl.fpga.regpack moved into block RAMs and multipliers (all
    # in the design) are no longer fabric flip-flops
    packed = raw.get("packed") or {}
    moved = sum(packed.get(k, 0) for k in ("bram_ffs", "operand_ffs", "product_ffs"))
    res["ff"] -= moved
    tot["ff"] -= moved
    return {
        "target": target.name, "device": target.device, "config": config, "top": raw["top"],
        "pe": pe, "simd": simd, "mac_lanes": lanes,
        "design": res, "total": tot, "packed": packed or None, "ceiling": raw.get("ceiling"),
        "design_cells": dict(sorted(design.items())),
        "utilization": pnr.get("utilization", {}),
        "fmax_mhz": round(fmax, 2), "goal_mhz": target.goal_mhz, "meets_goal": fmax >= target.goal_mhz,
        "gmacs": round(lanes * fmax / 1000.0, 3),
        "lut4_per_mac": round(res["lut4"] / lanes, 2),
        # the same split by the hierarchy levels the flow keeps (on ECP5 each PE with its
        # requant unit): what is per lane and what the lanes share
        "lut4_per_mac_by_part": {k: round(v / lanes, 2)
                                 for k, v in lut4_parts(raw["stat"], raw["top"], target.lut_cells).items()},
        "critical_path": critical_path(pnr),
        "seconds": {k: round(v, 1) for k, v in raw.get("seconds", {}).items()},
        "logs": raw.get("logs", {}),
    }


def check_mapping(report: dict, *, min_dsp: int, min_bram: int) -> list[str]:
    """Problems (empty when fine): DSP or block RAM counts of the design below the expected minimum.

    A multiplier or weight bank that Yosys built from logic shows up here as a
    DSP or block-RAM count below what the configuration needs.
    """
    problems = []
    d = report["design"]
    if d["dsp"] < min_dsp:
        problems.append(f"{report['target']}: {d['dsp']} DSP cells, expected at least {min_dsp} "
                        f"(multipliers fell back to logic)")
    if d["bram"] < min_bram:
        problems.append(f"{report['target']}: {d['bram']} block RAM cells, expected at least {min_bram} "
                        f"(weight banks fell back to logic)")
    return problems


COLUMNS = ("target", "config", "LUT4", "FF", "DSP", "BRAM", "Fmax MHz", "goal", "GMAC/s", "LUT4/MAC")


def format_table(reports: list[dict]) -> str:
    """A plain-text table, one row per report."""
    rows = [COLUMNS]
    for r in reports:
        d = r["design"]
        rows.append((r["target"], r.get("config") or r["top"], str(d["lut4"]), str(d["ff"]), str(d["dsp"]),
                     str(d["bram"]), f"{r['fmax_mhz']:.1f}",
                     f"{r['goal_mhz']:g} {'ok' if r['meets_goal'] else 'MISSED'}",
                     f"{r['gmacs']:.2f}", f"{r['lut4_per_mac']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
