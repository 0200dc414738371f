"""Array efficiency: cycles per inference and utilisation against the ideal.

The ideal is ``sum ceil(out/PE) * ceil(in/SIMD)`` (``pyhdl.sizing.ideal_cycles``): every
PE busy with a full SIMD step on every cycle.  Measured, from the RTL counters of the
co-simulation (every output checked against the golden model):

* one inference: counter ``busy`` of an isolated inference (first input beat to last
  result accepted, full-rate input, no backpressure);
* back to back: ``(busy(N) - busy(1)) / (N - 1)`` over a batch of N inferences streamed
  with no gap, so the one-off pipeline fill and drain cancel.

The per-layer split (where the non-ideal cycles go) comes from ``pyhdl.sizing.schedule``,
the cycle-exact model of the sequencer that the co-simulation checks against the RTL's
result timing; the totals are cross-checked against the RTL here too.

Goals (issue 6, digits MLP at 8x8): one inference <= 1.05x the ideal, back to back
>= 97 % of the ideal throughput.
"""

from __future__ import annotations

from pyhdl import sizing

from .common import bench_models, format_table, rtl_run, write_json

__all__ = ["GOAL_SINGLE", "GOAL_STEADY", "layer_breakdown", "steady_breakdown", "batch_busy", "mean_period", "configs", "run"]

GOAL_SINGLE = 1.05   # cycles of one inference / ideal, at most
GOAL_STEADY = 0.97   # ideal / back-to-back cycles per inference, at least


def layer_breakdown(shapes, cfg) -> dict:
    """Where the cycles of one isolated inference go, per layer, from the exact schedule.

    A layer is charged its issue span (first to last step, including waits for the
    previous layer's results inside it) plus the cycles the sequencer waited before its
    first step.  Returns ``{"layers": [{in, out, ideal, wait, span, cycles, utilisation}],
    "tail", "total"}``; ``tail`` is the drain after the last step.  (Back to back the
    sequencer interleaves the next inference into those waits, so only totals are
    reported there.)
    """
    shapes = [(int(i), int(o)) for i, o in shapes]
    sched = sizing.schedule(shapes, cfg, 1)
    issue = sorted(sched["issue"])
    pos, prev = 0, 0  # busy starts in cycle 1: nothing lost before issue 1
    layers = []
    for fin, fout in shapes:
        steps = sizing.layer_steps(fin, fout, cfg)
        first, last = issue[pos], issue[pos + steps - 1]
        wait = first - prev - 1
        span = last - first + 1
        layers.append({"in": fin, "out": fout, "ideal": steps, "wait": wait, "span": span,
                       "cycles": wait + span, "utilisation": steps / (wait + span)})
        prev = last
        pos += steps
    total = sched["accept"][0]
    return {"layers": layers, "tail": total - prev, "total": total}


def steady_breakdown(shapes, cfg, vectors: int = 16) -> dict:
    """Per layer, back to back: issue cycles and idle cycles per inference in steady state.

    Steps of consecutive inferences interleave, so a layer is charged its own steps plus
    the idle cycles (no step issued) right before each of its steps, counted over the
    inferences in the middle of ``vectors`` (``"steps"`` of ``pyhdl.sizing.schedule``).
    Returns ``{"layers": [{in, out, ideal, idle, cycles, utilisation}], "total"}``
    with ``total`` the mean cycles per inference of that window.
    """
    shapes = [(int(i), int(o)) for i, o in shapes]
    steps = sorted(sizing.schedule(shapes, cfg, vectors)["steps"])
    lo, hi = vectors // 2, vectors - 2  # warm-up excluded; the last has no successor
    n = hi - lo + 1
    idle = [0] * len(shapes)
    count = [0] * len(shapes)
    prev = None
    for cycle, vector, layer, _group, _fold in steps:
        if lo <= vector <= hi:
            count[layer] += 1
            if prev is not None:
                idle[layer] += cycle - prev - 1
        prev = cycle
    layers = []
    for (fin, fout), c, i in zip(shapes, count, idle):
        layers.append({"in": fin, "out": fout, "ideal": c / n, "idle": i / n, "cycles": (c + i) / n,
                       "utilisation": c / (c + i)})
    return {"layers": layers, "total": sum(layer["cycles"] for layer in layers)}


def batch_busy(shapes, cfg, vectors: int) -> int:
    """Counter ``busy`` of ``vectors`` inferences back to back, from the cycle model."""
    return sizing.schedule(shapes, cfg, vectors)["accept"][-1]


def mean_period(shapes, cfg, vectors: int = 32) -> float:
    """Steady-state cycles per inference from the cycle model: mean spacing of the
    completions in the middle of ``vectors`` back-to-back inferences (the first half is
    warm-up; the last inference is left out, it has no successor to interleave with)."""
    acc = sizing.schedule(shapes, cfg, vectors)["accept"]
    k = vectors // 2
    return (acc[-2] - acc[k]) / (vectors - 2 - k)


def configs(quick: bool = False):
    from pyhdl.config import DEFAULT, SMALL
    if quick:
        return [DEFAULT]
    return [DEFAULT, SMALL, DEFAULT.replace(pe=4, simd=16)]


def run(*, quick: bool = False, log=print, out_dir=None) -> dict:
    rows, layer_rows, records = [], [], []
    for cfg in configs(quick):
        rtl = rtl_run(cfg, bench_models(cfg, quick=quick), log=log)
        for name, why in rtl.skipped.items():
            log(f"  [{cfg.name}] {name} skipped: {why}")
        for name, m in rtl.models.items():
            ideal = sizing.ideal_cycles(m.shapes, cfg)
            f_single = sizing.inference_cycles(m.shapes, cfg)
            # the same two readings as the RTL figure, from the cycle model
            f_steady = (batch_busy(m.shapes, cfg, m.batch_vectors) - f_single) / (m.batch_vectors - 1)
            single, steady = m.single_cycles, m.steady_cycles
            rec = {"config": cfg.name, "pe": cfg.pe, "simd": cfg.simd, "model": name, "shapes": m.shapes,
                   "vectors": m.vectors, "bit_exact": m.bit_exact, "errors": m.errors, "ideal": ideal,
                   "single_rtl": single, "single_formula": f_single, "single_over_ideal": single / ideal,
                   "steady_rtl": steady, "steady_formula": f_steady, "steady_utilisation": ideal / steady,
                   "batch_vectors": m.batch_vectors, "batch_busy": m.batch["busy"],
                   "batch_utilisation": ideal * m.batch_vectors / m.batch["busy"],
                   "rtl_matches_formula": single == f_single and steady == f_steady,
                   "single_breakdown": layer_breakdown(m.shapes, cfg),
                   "steady_breakdown": steady_breakdown(m.shapes, cfg)}
            records.append(rec)
            rows.append([cfg.name, name, m.vectors, m.bit_exact, ideal, single, f"{single / ideal:.2f}x",
                         steady, f"{100 * ideal / steady:.1f} %", rec["rtl_matches_formula"]])
            if cfg.pe == cfg.simd == 8 and name == "digits":
                b = rec["single_breakdown"]
                for n, layer in enumerate(b["layers"]):
                    layer_rows.append(["one inference", n, f"{layer['in']}->{layer['out']}", layer["ideal"],
                                       layer["wait"] + layer["span"] - layer["ideal"], layer["cycles"],
                                       f"{100 * layer['utilisation']:.1f} %"])
                layer_rows.append(["one inference", "drain", "", 0, b["tail"], b["tail"], ""])
                for n, layer in enumerate(rec["steady_breakdown"]["layers"]):
                    layer_rows.append(["back to back", n, f"{layer['in']}->{layer['out']}", layer["ideal"],
                                       layer["idle"], layer["cycles"], f"{100 * layer['utilisation']:.1f} %"])
    table = format_table(["config", "model", "vectors", "bit-exact", "ideal", "1 inf", "1 inf/ideal",
                          "b2b", "b2b util", "RTL = formula"], rows,
                         "Cycles per inference (RTL counters): one isolated inference and back to back")
    log(table)
    if layer_rows:
        log(format_table(["case", "layer", "shape", "ideal", "idle", "cycles", "util"], layer_rows,
                         "\ndigits at 8x8, per layer (pyhdl.sizing.schedule, checked against the RTL totals)"))
    goals = {}
    digits = next((r for r in records if r["pe"] == r["simd"] == 8 and r["model"] == "digits"), None)
    if digits:
        cfg8 = next(c for c in configs(quick) if c.pe == c.simd == 8)
        shallowest = sizing.inference_cycles(digits["shapes"], cfg8, writeback=sizing.issue_stages(), drain=0)
        goals = {"single_over_ideal": digits["single_over_ideal"], "single_goal": GOAL_SINGLE,
                 "single_met": digits["single_over_ideal"] <= GOAL_SINGLE,
                 # what the goal asks of the pipeline (pyhdl.sizing.single_latency_budget)
                 "writeback_latency": sizing.writeback_latency(cfg8),
                 "single_budget_writeback": sizing.single_latency_budget(digits["shapes"], cfg8, GOAL_SINGLE),
                 "single_shallowest": shallowest,
                 "single_shallowest_over_ideal": shallowest / digits["ideal"],
                 "steady_utilisation": digits["steady_utilisation"], "steady_goal": GOAL_STEADY,
                 "steady_met": digits["steady_utilisation"] >= GOAL_STEADY}
        log(f"\ngoals (digits, 8x8): one inference {goals['single_over_ideal']:.2f}x ideal (goal <= {GOAL_SINGLE}x: "
            f"{'met' if goals['single_met'] else 'NOT met'}); back to back {100 * goals['steady_utilisation']:.1f} % "
            f"of ideal (goal >= {100 * GOAL_STEADY:.0f} %: {'met' if goals['steady_met'] else 'NOT met'})")
        budget = goals["single_budget_writeback"]
        log(f"one inference within {GOAL_SINGLE}x needs a write-back pipeline of "
            + (f"at most {budget} cycles" if budget is not None else "less than the decision register alone")
            + f" (this array: {goals['writeback_latency']}); with the shallowest one ({sizing.issue_stages()} cycle, "
            f"no drain latency) the same sequencer takes {shallowest} cycles = {goals['single_shallowest_over_ideal']:.2f}x")
    path = write_json("efficiency", {"results": records, "goals": goals}, out_dir)
    log(f"wrote {path}")
    return {"results": records, "goals": goals, "ok": all(r["bit_exact"] for r in records)}
