"""Markdown tables of the latest benchmark JSON (``build/bench/``), for docs/bench.md.

    .venv/bin/python -m bench.mdreport [DIR]            # print them
    .venv/bin/python -m bench.mdreport --write-doc      # refresh docs/bench.md in place

``--write-doc`` replaces what lies between ``<!-- BEGIN name -->`` and ``<!-- END name -->``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import OUT_DIR, ROOT

__all__ = ["markdown_table", "sections", "write_doc"]

DOC = ROOT / "docs" / "bench.md"


def markdown_table(headers, rows) -> str:
    def cell(v):
        if isinstance(v, bool):
            return "yes" if v else "**NO**"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(directory: Path, name: str):
    p = directory / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def sections(directory: Path = OUT_DIR) -> dict[str, str]:
    out = {}
    eff = _load(directory, "efficiency")
    if eff:
        rows = [[r["config"], r["model"], r["vectors"], r["bit_exact"], r["ideal"], r["single_rtl"],
                 f"{r['single_over_ideal']:.2f}×", f"{r['steady_rtl']:.2f}".rstrip("0").rstrip("."), f"{100 * r['steady_utilisation']:.1f} %",
                 r["rtl_matches_formula"]] for r in eff["results"]]
        out["efficiency"] = markdown_table(["config", "model", "vectors", "bit-exact", "ideal", "1 inference",
                                            "÷ ideal", "back to back", "utilisation", "RTL = formula"], rows)
        lrows = []
        for r in eff["results"]:
            if r["model"] != "digits" or "steady_breakdown" not in r:
                continue
            b = r["single_breakdown"]
            for n, layer in enumerate(b["layers"]):
                lrows.append([r["config"], "one inference", n, f"{layer['in']}→{layer['out']}", layer["ideal"],
                              layer["cycles"] - layer["ideal"], layer["cycles"],
                              f"{100 * layer['utilisation']:.1f} %"])
            lrows.append([r["config"], "one inference", "drain", "", 0, b["tail"], b["tail"], ""])
            for n, layer in enumerate(r["steady_breakdown"]["layers"]):
                lrows.append([r["config"], "back to back", n, f"{layer['in']}→{layer['out']}",
                              f"{layer['ideal']:g}", f"{layer['idle']:.2f}", f"{layer['cycles']:.2f}",
                              f"{100 * layer['utilisation']:.1f} %"])
        out["layers"] = markdown_table(["config", "case", "layer", "shape", "ideal", "idle / waiting", "cycles",
                                        "utilisation"], lrows)
    dm = _load(directory, "near_vs_vonneumann")
    if dm:
        rows = []
        for r in dm["results"]:
            mode = "near" if r["mode"] == "near" else f"von Neumann {r['bus_bits']} b"
            rows.append([mode, r["model"], r["bit_exact"], r["single_cycles"],
                         f"{r['steady_cycles']:.2f}".rstrip("0").rstrip("."),
                         f"{100 * r['steady_utilisation']:.1f} %", f"{r['local_weight_bytes']:.0f}",
                         f"{r['bus_bytes']:.0f}", r["weight_bytes_needed"],
                         "yes" if r.get("cycles_match_formula") and r.get("bus_bytes_match_formula") else
                         "bytes yes, cycles NO" if r.get("bus_bytes_match_formula") else "NO"])
        text = markdown_table(["mode", "model", "bit-exact", "1 inference cycles", "back-to-back cycles",
                               "utilisation", "weight bytes into the PEs", "bus bytes", "weight bytes (formula)",
                               "RTL = formula"], rows)
        erows = []
        for r in dm["results"]:
            mode = "near" if r["mode"] == "near" else f"von Neumann {r['bus_bits']} b"
            for where, e in r["energy_pj"].items():
                erows.append([mode, r["model"], {"local": "local banks", "sram": "shared SRAM", "dram": "DRAM"}[where],
                              f"{e['mac'] / 1e3:.2f}", f"{e['activations'] / 1e3:.2f}", f"{e['weights'] / 1e3:.2f}",
                              f"{e['total'] / 1e3:.2f}"])
        text += "\n\nEnergy per inference (nJ):\n\n" + markdown_table(
            ["mode", "model", "weights from", "MAC", "activations", "weights", "total"], erows)
        if dm.get("ratios"):
            text += "\n\nBaseline ÷ near memory:\n\n" + markdown_table(
                ["model", "bus", "cycles (back to back)", "cycles (one inference)", "energy, shared SRAM",
                 "energy, DRAM"],
                [[r["model"], f"{r['bus_bits']} b", f"{r['cycles_ratio']:.2f}×", f"{r['single_ratio']:.2f}×",
                  f"{r['energy_ratio_sram']:.2f}×", f"{r['energy_ratio_dram']:.1f}×"] for r in dm["ratios"]])
        out["datamove"] = text
    sp = _load(directory, "sim_speed")
    if sp:
        c, r, g = sp["cocotb"], sp["raw"], sp["golden"]
        out["simspeed"] = markdown_table(
            ["simulator", "inferences", "checked", "seconds", "inferences/s", "cycles/s", "÷ cocotb"],
            [["cocotb + Verilator (every output checked)", c["inferences"], c["bit_exact"], f"{c['seconds']:.3f}",
              c["rate"], c["cycles_per_s"], "1"],
             ["  same, whole simulator process", c["inferences"], c["bit_exact"], f"{c['process_s']:.2f}",
              c["process_rate"], "", ""],
             *([[f"cocotb, {c['larger_batch']['inferences']} inferences", c["larger_batch"]["inferences"],
                 c["larger_batch"]["bit_exact"], f"{c['larger_batch']['seconds']:.3f}", c["larger_batch"]["rate"], "",
                 f"{c['larger_batch']['rate'] / c['rate']:.2f}"]] if "larger_batch" in c else []),
             ["raw Verilator C++ harness", r["inferences"], r["bit_exact"], f"{r['seconds']:.3f}", r["rate"],
              r["cycles_per_s"], f"{r['rate'] / c['rate']:.2f}"],
             ["golden.integer.infer, batched", g["inferences"], True, f"{g['seconds']:.2f}", g["rate"], "",
              f"{g['rate'] / c['rate']:.1f}"]])
        if "marginal_rate" in c:
            fixed = (f"fixed cost per batch about {c['fixed_s']:.3f} s" if c["fixed_s"] >= 0 else
                     "the fixed cost per batch is below this run's noise")
            out["simspeed"] += (f"\n\ncocotb marginal rate (from the two batch sizes): {c['marginal_rate']:,.0f} "
                                f"inferences/s; {fixed}.  Best of {len(c.get('all_seconds', [])) or 1} batches; "
                                f"spread {min(c.get('all_seconds', [c['seconds']])):.3f}–"
                                f"{max(c.get('all_seconds', [c['seconds']])):.3f} s (cocotb), "
                                f"{min(r.get('all_seconds', [r['seconds']])):.3f}–"
                                f"{max(r.get('all_seconds', [r['seconds']])):.3f} s (raw).")
    bt = _load(directory, "build_time")
    if bt:
        rows = [[b["config"], f"{b['cold_s']:.1f}", f"{b['warm_s']:.2f}"] for b in bt["verilator"]]
        if bt.get("make_sim"):
            m = bt["make_sim"]
            rows.append([f"`make sim`, whole command (exit status {m['cold_exit']} / {m['warm_exit']})",
                         f"{m['cold_s']:.1f}", f"{m['warm_s']:.1f}"])
            if m.get("cold_build_s") is not None:
                rows.append(["  of which the build, as `nmc sim` reports it", f"{m['cold_build_s']:.1f}",
                             f"{m['warm_build_s']:.1f}"])
        out["build"] = markdown_table(["what", "cold (s)", "warm (s)"], rows)
    return out


def write_doc(directory: Path = OUT_DIR, doc: Path = DOC) -> list[str]:
    """Replace the marked result regions of ``doc``; return the names replaced."""
    text = doc.read_text()
    done = []
    for name, body in sections(directory).items():
        begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{begin}\n{body}\n{end}{tail}"
            done.append(name)
    doc.write_text(text)
    return done


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--write-doc"]
    d = Path(args[0]) if args else OUT_DIR
    if "--write-doc" in sys.argv:
        print("replaced:", ", ".join(write_doc(d)) or "nothing")
    else:
        for name, text in sections(d).items():
            print(f"<!-- {name} -->\n{text}\n")
