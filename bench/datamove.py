"""Near-memory vs von-Neumann: cycles, utilisation, bytes moved and energy, measured in RTL.

The same generator builds both: ``mode="near"`` keeps every weight in the bank of the PE
that uses it; ``mode="vonneumann"`` has the same PEs and MAC lanes but streams the
weights every inference from one shared memory over a ``bus_bits`` bus.  Each mode runs
the same models bit-exact against the same golden model (the co-simulation checks every
output integer).  Per inference, from the RTL performance counters:

* cycles: counter ``busy`` (one isolated inference; back to back as in ``efficiency``),
* weight traffic: ``bank_reads`` x bank word (near: local reads, nothing on a bus) and
  ``bus_bytes`` (von Neumann: bytes over the shared bus),
* energy: ``bench.energy.estimate`` with the table in ``bench/energy_pj.json``; the
  baseline's shared memory is costed both as on-chip SRAM and as DRAM.

The counted bytes are cross-checked against the weights the array needs per inference,
``sum ceil(out/PE)*PE * ceil(in/SIMD)*SIMD * w_bits / 8`` (padding included), and against
``pyhdl.sizing.bus_bytes_per_step``; the cycles against ``pyhdl.sizing.schedule``.
"""

from __future__ import annotations

from pyhdl import sizing

from . import energy
from .efficiency import batch_busy
from .common import bench_models, format_table, rtl_run, write_json

__all__ = ["configs", "padded_weight_bytes", "run"]


def configs(quick: bool = False):
    from pyhdl.config import DEFAULT
    buses = (64,) if quick else (64, 32)
    return [DEFAULT] + [DEFAULT.replace(mode="vonneumann", bus_bits=b) for b in buses]


def padded_weight_bytes(shapes, cfg) -> int:
    """Weight bytes the PEs consume per inference: every lane of every issued step."""
    return sizing.ideal_cycles(shapes, cfg) * cfg.pe * cfg.simd * cfg.w_bits // 8


def _label(cfg) -> str:
    return "near" if cfg.mode == "near" else f"vonneumann/{cfg.bus_bits}b"


def run(*, quick: bool = False, log=print, out_dir=None, energy_table=None) -> dict:
    table = energy.load_table(energy_table)
    records, rows, erows = [], [], []
    ok = True
    for cfg in configs(quick):
        rtl = rtl_run(cfg, bench_models(cfg, quick=quick), log=log)
        for name, why in rtl.skipped.items():
            log(f"  [{cfg.name}] {name} skipped: {why}")
        for name, m in rtl.models.items():
            per = {c: m.per_inference(c) for c in ("mac_ops", "bank_reads", "act_reads", "act_writes", "bus_bytes")}
            ideal = sizing.ideal_cycles(m.shapes, cfg)
            local_bytes = per["bank_reads"] * cfg.simd * cfg.w_bits / 8
            moved = per["bus_bytes"]
            need = padded_weight_bytes(m.shapes, cfg)
            counted = moved if cfg.mode != "near" else local_bytes
            formula_bus = sizing.ideal_cycles(m.shapes, cfg) * sizing.bus_bytes_per_step(cfg)
            f_single = sizing.inference_cycles(m.shapes, cfg)
            formula_cycles = (f_single, (batch_busy(m.shapes, cfg, m.batch_vectors) - f_single) / (m.batch_vectors - 1))
            ok &= m.bit_exact
            kinds = ("local",) if cfg.mode == "near" else ("sram", "dram")
            est = {k: energy.estimate(per, cfg, table, k) for k in kinds}
            rec = {"mode": cfg.mode, "bus_bits": cfg.bus_bits if cfg.mode != "near" else None, "config": cfg.name,
                   "model": name, "shapes": m.shapes, "weights": sum(i * o for i, o in m.shapes),
                   "vectors": m.vectors, "bit_exact": m.bit_exact, "errors": m.errors, "ideal": ideal,
                   "single_cycles": m.single_cycles, "steady_cycles": m.steady_cycles,
                   "steady_utilisation": ideal / m.steady_cycles, "counters_per_inference": per,
                   "local_weight_bytes": local_bytes, "bus_bytes": moved, "weight_bytes_needed": need,
                   "counted_matches_needed": counted == need, "bus_bytes_formula": formula_bus,
                   "bus_bytes_match_formula": moved == formula_bus,
                   "cycles_match_formula": (m.single_cycles, m.steady_cycles) == formula_cycles,
                   "energy_pj": est}
            records.append(rec)
            rows.append([_label(cfg), name, m.bit_exact, m.single_cycles, m.steady_cycles,
                         f"{100 * ideal / m.steady_cycles:.1f} %", local_bytes, moved, need,
                         rec["cycles_match_formula"] and rec["bus_bytes_match_formula"]])
            for k, e in est.items():
                where = {"local": "near: local banks", "sram": "baseline: shared SRAM", "dram": "baseline: DRAM"}[k]
                erows.append([_label(cfg), name, where, e["mac"] / 1e3, e["activations"] / 1e3, e["weights"] / 1e3,
                              e["total"] / 1e3])
    log(format_table(["mode", "model", "bit-exact", "1 inf cyc", "b2b cyc", "b2b util", "local weight B",
                      "bus B", "weights B (formula)", "RTL = formula"], rows,
                     "Near-memory vs von-Neumann, per inference (RTL counters)"))
    log(format_table(["mode", "model", "weights from", "MAC nJ", "act nJ", "weights nJ", "total nJ"], erows,
                     "\nEnergy per inference (bench/energy_pj.json: Horowitz 2014 45 nm, DRAM Han 2015)"))
    ratios = _ratios(records)
    for r in ratios:
        log(f"{r['model']}: von Neumann {r['bus_bits']} b is {r['cycles_ratio']:.2f}x the cycles of near memory "
            f"back to back; energy {r['energy_ratio_sram']:.2f}x (shared SRAM) / {r['energy_ratio_dram']:.1f}x (DRAM)")
    path = write_json("near_vs_vonneumann", {"energy_table": table, "results": records, "ratios": ratios}, out_dir)
    log(f"wrote {path}")
    return {"results": records, "ratios": ratios, "ok": ok}


def _ratios(records) -> list[dict]:
    near = {r["model"]: r for r in records if r["mode"] == "near"}
    out = []
    for r in records:
        n = near.get(r["model"])
        if r["mode"] == "near" or n is None:
            continue
        out.append({"model": r["model"], "bus_bits": r["bus_bits"],
                    "cycles_ratio": r["steady_cycles"] / n["steady_cycles"],
                    "single_ratio": r["single_cycles"] / n["single_cycles"],
                    "energy_ratio_sram": r["energy_pj"]["sram"]["total"] / n["energy_pj"]["local"]["total"],
                    "energy_ratio_dram": r["energy_pj"]["dram"]["total"] / n["energy_pj"]["local"]["total"]})
    return out
