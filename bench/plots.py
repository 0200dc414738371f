"""Plots of the benchmark results (matplotlib, Agg, PNG) into ``docs/bench/``.

* ``utilisation_sweep.png``: utilisation of one inference and back to back across a
  PE x SIMD sweep (corners, not a cross product), for the digits MLP and the ``wide``
  128-128-128 MLP.  Values from the exact cycle model ``pyhdl.sizing.schedule``; the
  configurations co-simulated by ``efficiency`` are marked where the RTL matched it.
* ``energy_breakdown.png``: energy per digits inference by part, near memory against the
  von-Neumann baseline with its weights in shared SRAM and in DRAM (RTL counters).
* ``cycles_vs_size.png``: cycles per inference (back to back) against the number of
  weights, near memory and baseline: RTL points, cycle-model lines.

Reads ``build/bench/efficiency.json`` and ``near_vs_vonneumann.json`` when they exist.
A ``--quick`` run or one with ``--out DIR`` writes its PNGs to ``<out>/plots/`` instead.
"""

from __future__ import annotations

import json

from pyhdl import sizing

from .common import DOC_DIR, OUT_DIR, write_json
from .efficiency import mean_period

__all__ = ["SWEEP", "sweep", "run"]

#: PE x SIMD corners of the sweep.
SWEEP = ((1, 1), (2, 4), (4, 4), (8, 8), (4, 16), (16, 4), (16, 16), (8, 32), (32, 8))


def sweep(shapes, corners=SWEEP) -> list[dict]:
    """Utilisation of one inference and back to back for each (pe, simd), from the cycle model."""
    from pyhdl.config import DEFAULT
    out = []
    for pe, simd in corners:
        cfg = DEFAULT.replace(pe=pe, simd=simd)
        ideal = sizing.ideal_cycles(shapes, cfg)
        single = sizing.inference_cycles(shapes, cfg)
        steady = mean_period(shapes, cfg)
        out.append({"pe": pe, "simd": simd, "ideal": ideal, "single": single, "steady": steady,
                    "single_util": ideal / single, "steady_util": ideal / steady})
    return out


def _load(name, out_dir=None):
    path = (out_dir or OUT_DIR) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_sweep(out_dir, eff) -> dict:
    from .common import bench_models
    from pyhdl.config import DEFAULT
    plt = _plt()
    models = {m.name: m.shapes for m in bench_models(DEFAULT) if m.name in ("digits", "wide")}
    validated = set()
    if eff:
        validated = {(r["pe"], r["simd"], r["model"]) for r in eff["results"] if r["rtl_matches_formula"]}
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.2), sharey=True)
    data = {}
    for ax, (name, shapes) in zip(axes, models.items()):
        rows = sweep(shapes)
        data[name] = rows
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [100 * r["single_util"] for r in rows], 0.4, label="one inference")
        ax.bar([x + 0.2 for x in xs], [100 * r["steady_util"] for r in rows], 0.4, label="back to back")
        ax.set_xticks(list(xs), [f"{r['pe']}x{r['simd']}" + ("*" if (r["pe"], r["simd"], name) in validated else "")
                                 for r in rows])
        ax.set_xlabel("PE x SIMD   (* = RTL co-simulated, matched the model)")
        ax.set_title(f"{name}: " + "-".join([str(shapes[0][0])] + [str(o) for _, o in shapes]))
        ax.axhline(97, color="grey", lw=0.8, ls="--", label="97 % goal")
        ax.set_ylim(0, 122)
        ax.set_yticks(range(0, 101, 20))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("utilisation: ideal / actual cycles (%)")
    axes[0].legend(loc="upper right", ncol=3, fontsize=8)
    fig.suptitle("Utilisation across array shapes (ideal = sum ceil(out/PE) * ceil(in/SIMD))")
    fig.tight_layout()
    path = out_dir / "utilisation_sweep.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return data


def plot_energy(out_dir, dm) -> bool:
    if not dm:
        return False
    plt = _plt()
    bars = []
    for r in dm["results"]:
        if r["model"] != "digits":
            continue
        for where, e in r["energy_pj"].items():
            label = {"local": "near memory\n(local banks)", "sram": f"von Neumann {r['bus_bits']} b\nshared SRAM",
                     "dram": f"von Neumann {r['bus_bits']} b\nDRAM"}[where]
            bars.append((label, e))
    if not bars:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    on_chip = [(lab, e) for lab, e in bars if "DRAM" not in lab]
    parts = (("mac", "MAC (mul8 + add32)"), ("activations", "activation buffers"), ("weights", "weight fetch"))
    bottom = [0.0] * len(on_chip)
    for key, label in parts:
        vals = [e[key] / 1e3 for _, e in on_chip]
        ax1.bar(range(len(on_chip)), vals, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax1.set_xticks(range(len(on_chip)), [lab for lab, _ in on_chip], fontsize=8)
    ax1.set_ylabel("energy per inference (nJ)")
    ax1.set_title("digits MLP, on-chip weights")
    ax1.set_ylim(0, max(bottom) * 1.35)
    ax1.legend(fontsize=8, ncol=3, loc="upper center")
    ax1.grid(axis="y", alpha=0.3)
    totals = [e["total"] / 1e3 for _, e in bars]
    ax2.bar(range(len(bars)), totals, color=["tab:red" if "DRAM" in lab else "tab:blue" for lab, _ in bars])
    ax2.set_yscale("log")
    ax2.set_ylim(min(totals) / 3, max(totals) * 4)
    for x, t in enumerate(totals):
        ax2.annotate(f"{t:.3g} nJ", (x, t), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax2.set_xticks(range(len(bars)), [lab for lab, _ in bars], fontsize=7, rotation=30, ha="right")
    ax2.set_ylabel("total per inference (nJ, log)")
    ax2.set_title("incl. baseline weights in DRAM")
    ax2.grid(axis="y", alpha=0.3, which="both")
    fig.suptitle("Energy per inference from RTL counters x Horowitz 2014 (45 nm) / Han 2015 DRAM")
    fig.tight_layout()
    fig.savefig(out_dir / "energy_breakdown.png", dpi=90)
    plt.close(fig)
    return True


def plot_cycles(out_dir, dm) -> dict:
    from pyhdl.config import DEFAULT
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    widths = (8, 16, 32, 48, 64, 96, 128)
    line = []
    for w in widths:
        shapes = [(w, w), (w, w)]
        line.append((2 * w * w, mean_period(shapes, DEFAULT), sizing.ideal_cycles(shapes, DEFAULT),
                     sizing.inference_cycles(shapes, DEFAULT)))
    xs = [p[0] for p in line]
    ax.plot(xs, [p[3] for p in line], "--", color="tab:blue", alpha=0.6,
            label="near memory 8x8, one inference (cycle model, two square layers)")
    ax.plot(xs, [p[1] for p in line], "-", color="tab:blue", label="near memory 8x8, back to back (cycle model)")
    ax.plot(xs, [p[2] for p in line], ":", color="grey", label="ideal 8x8")
    for bus, col in ((64, "tab:red"), (32, "tab:orange")):
        vn = DEFAULT.replace(mode="vonneumann", bus_bits=bus)
        ax.plot(xs, [mean_period([(w, w), (w, w)], vn) for w in widths], "-", color=col, alpha=0.7,
                label=f"von Neumann {bus} b bus, back to back (cycle model)")
    points = {}
    if dm:
        for r in dm["results"]:
            key = "near" if r["mode"] == "near" else f"von Neumann {r['bus_bits']} b"
            points.setdefault(key, []).append((r["weights"], r["steady_cycles"], r["model"]))
    markers = {"near": ("o", "tab:blue")}
    others = iter((("s", "tab:red"), ("^", "tab:orange"), ("D", "tab:green")))
    for key, pts in points.items():
        mk, col = markers.get(key) or next(others)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=mk, color=col, label=f"{key}, RTL", zorder=3)
        if key == "near":
            names = {}
            for x, y, name in pts:  # simple and accelerated share a point
                names.setdefault((x, y), []).append(name)
            for (x, y), group in names.items():
                ax.annotate(" / ".join(group), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weights in the model")
    ax.set_ylabel("cycles per inference")
    ax.set_title("Cycles against model size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out_dir / "cycles_vs_size.png", dpi=90)
    plt.close(fig)
    return {"line": line, "points": points}


def run(*, quick: bool = False, log=print, out_dir=None, doc_dir=None) -> dict:
    if doc_dir is None:
        # the committed PNGs come from full runs only; --quick / --out keep theirs aside
        doc_dir = DOC_DIR if out_dir is None and not quick else (out_dir or OUT_DIR) / "plots"
    doc_dir.mkdir(parents=True, exist_ok=True)
    eff, dm = _load("efficiency", out_dir), _load("near_vs_vonneumann", out_dir)
    data = {"sweep": plot_sweep(doc_dir, eff), "energy": plot_energy(doc_dir, dm), "cycles": plot_cycles(doc_dir, dm)}
    for name, rows in data["sweep"].items():
        log(f"  sweep {name}: " + ", ".join(f"{r['pe']}x{r['simd']} {100 * r['single_util']:.0f}/"
                                            f"{100 * r['steady_util']:.0f} %" for r in rows))
    if not dm:
        log("  (no near_vs_vonneumann.json yet: energy plot skipped, cycles plot without RTL points)")
    path = write_json("plots", data, out_dir)
    log(f"wrote PNGs to {doc_dir} and {path}")
    return {"ok": True}
