"""Placer options: nextpnr's defaults (the flow's) against candidate options.

Fmax moves by 20 MHz and more between placement seeds of one netlist, and a changed
netlist moves it by several MHz more (docs/fpga.md), so the comparison holds the netlist
fixed and pairs by seed: each target's config is synthesized once, then every seed
places and routes that same netlist twice, with nextpnr's default placer and with the
candidate options.  Reported per seed and as medians, means and the paired difference;
a run past the time limit (its router ran away) counts as missing, not as zero.

Opt-in (``nmc bench --only placer``): the ECP5 8x8 over seeds 1-10 and the UP5K small
config over seeds 1-5 take about 35 minutes on two cores; ``--quick`` places the UP5K
at seeds 1 and 2 only.  ``python -m bench.placer --candidate "OPTIONS"`` tries others.
"""

from __future__ import annotations

import json
import shutil
import statistics
from concurrent import futures
from pathlib import Path

from pyhdl.fpga import flow

from .common import OUT_DIR, format_table, write_json

__all__ = ["CANDIDATE", "plans", "compare", "run"]

#: The options measured last (docs/fpga.md, "Placer timing weight"): not adopted, the
#: gain at speed 6 is within the seeds' spread and speed 8 did not gain.
CANDIDATE = ("--placer-heap-timingweight", "30")


def plans(quick: bool = False):
    """``(target, config name, seeds)`` per target to compare."""
    from pyhdl.fpga import targets
    if quick:
        return [(targets.ice40(), "small", (1, 2))]
    return [(targets.ecp5(6), "default", tuple(range(1, 11))), (targets.ice40(), "small", tuple(range(1, 6)))]


def _stats(values):
    placed = [v for v in values if v is not None]
    if not placed:
        return {"placed": 0, "median": None, "mean": None, "min": None, "max": None}
    return {"placed": len(placed), "median": statistics.median(placed), "mean": statistics.fmean(placed),
            "min": min(placed), "max": max(placed)}


def compare(default: dict, candidate: dict) -> dict:
    """Summary of Fmax by seed (``{seed: MHz or None}``) of the two variants."""
    if set(default) != set(candidate):
        raise ValueError(f"the variants were placed at different seeds: {sorted(default)} and {sorted(candidate)}")
    seeds = sorted(default)
    paired = [candidate[s] - default[s] for s in seeds if default[s] is not None and candidate[s] is not None]
    d, f = _stats([default[s] for s in seeds]), _stats([candidate[s] for s in seeds])
    return {"seeds": seeds, "default": d, "candidate": f,
            "median_ratio": f["median"] / d["median"] if d["median"] and f["median"] else None,
            "paired_mean_mhz": statistics.fmean(paired) if paired else None,
            "paired_sd_mhz": statistics.stdev(paired) if len(paired) > 1 else None,
            "gained": sum(x > 0 for x in paired), "pairs": len(paired)}


def _place_all(target, config_name, seeds, variants: dict, root: Path, jobs: int, pnr_timeout, log) -> dict:
    from pyhdl.fpga import synth
    cfg = synth.CONFIGS[config_name]
    base = root / target.name
    shutil.rmtree(base, ignore_errors=True)
    log(f"{target.name}: synthesizing {config_name} once (and placing it at seed {seeds[0]}) ...")
    synth.run(cfg, target, base / "synth", config_name=config_name, seed=seeds[0], pnr_timeout=pnr_timeout)
    netlist = base / "synth" / target.name / "netlist.json"
    # the synthesis run's own placement is the default placer at the first seed
    first = next(iter(json.loads((netlist.parent / "nextpnr-report.json").read_text())["fmax"].values()))["achieved"]
    log(f"{target.name} default seed {seeds[0]}: {first:.1f} MHz (the synthesis run's)")

    def one(variant, seed):
        build = base / f"{variant}-seed{seed}"
        build.mkdir(parents=True)
        shutil.copyfile(netlist, build / "netlist.json")
        try:
            pnr, _, seconds = flow.place(build, synth.top_name(cfg), target, seed=seed, pnr_timeout=pnr_timeout,
                                         placer_args=variants[variant])
        except flow.FlowTimeout:
            log(f"{target.name} {variant} seed {seed}: stopped after {pnr_timeout} s")
            return None
        mhz = next(iter(pnr["fmax"].values()))["achieved"]
        log(f"{target.name} {variant} seed {seed}: {mhz:.1f} MHz ({seconds:.0f} s)")
        return mhz

    with futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = {(v, s): pool.submit(one, v, s) for s in seeds for v in variants if (v, s) != ("default", seeds[0])}
        fmax = {v: {s: runs[v, s].result() for s in seeds if (v, s) in runs} for v in variants}
    fmax["default"] = {seeds[0]: first, **fmax["default"]}
    return fmax


def run(*, quick: bool = False, log=print, out_dir=None, candidate=CANDIDATE, jobs: int = 2,
        pnr_timeout: float | None = flow.PNR_TIMEOUT_S) -> dict:
    candidate = tuple(candidate)
    if not candidate or not all(isinstance(a, str) and a for a in candidate):
        raise ValueError(f"candidate placer options must be non-empty strings, not {candidate!r}")
    variants = {"default": (), "candidate": candidate}
    results, rows = {}, []
    for target, config_name, seeds in plans(quick):
        fmax = _place_all(target, config_name, seeds, variants, Path(out_dir or OUT_DIR) / "placer", jobs,
                          pnr_timeout, log)
        summary = compare(fmax["default"], fmax["candidate"])
        results[target.name] = {"config": config_name, "fmax": fmax, **summary}
        for s in seeds:
            d, f = fmax["default"][s], fmax["candidate"][s]
            rows.append([target.name, s, "-" if d is None else round(d, 1), "-" if f is None else round(f, 1),
                         "-" if d is None or f is None else f"{f - d:+.1f}"])
        if summary["pairs"]:
            rows.append([target.name, "median", round(summary["default"]["median"], 1),
                         round(summary["candidate"]["median"], 1), f"x{summary['median_ratio']:.3f}"])
            rows.append([target.name, "paired", "", "", f"{summary['paired_mean_mhz']:+.1f} mean, "
                         f"{summary['gained']} of {summary['pairs']} gained"])
    print(format_table(["target", "seed", "default MHz", f"{' '.join(candidate)} MHz", "difference"], rows,
                       title="Fmax of one netlist per target and seed: nextpnr's default placer against the candidate"))
    path = write_json("placer", {"candidate": list(candidate), "targets": results}, out_dir)
    log(f"-> {path}")
    return {"ok": True, "targets": results}


if __name__ == "__main__":
    import argparse
    import shlex
    parser = argparse.ArgumentParser(prog="python -m bench.placer", description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default=" ".join(CANDIDATE), help="nextpnr options (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the UP5K at seeds 1 and 2 only")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="place and routes at once (default 2)")
    args = parser.parse_args()
    try:
        run(quick=args.quick, candidate=shlex.split(args.candidate), jobs=args.jobs)
    except ValueError as e:
        parser.error(str(e))
