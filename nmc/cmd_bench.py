"""``nmc bench``: the benchmarks of ``bench/`` (``make bench`` runs them all).

Each benchmark prints a table and writes ``build/bench/<name>.json``; ``plots`` writes
PNGs into ``docs/bench/``.  ``--only`` picks some, ``--quick`` shrinks them to a
smoke run.  Exit status 1 if any RTL run was not bit-exact; goals that are missed
are reported, not failed (these are measurements, not tests).
"""

from __future__ import annotations

import time
from pathlib import Path

HELP = "benchmarks: array efficiency, simulation speed, near-memory vs von-Neumann, build times, plots"

#: Benchmark names in run order (plots read the JSON of the ones before them).
BENCHMARKS = ("efficiency", "near-vs-vonneumann", "sim-speed", "plots", "build-time")
#: Benchmarks that run only when ``--only`` names them (``placer``: ~35 min of place and route).
OPT_IN = ("placer",)


def add_arguments(parser) -> None:
    parser.add_argument("--only", metavar="NAMES", default=",".join(BENCHMARKS),
                        help=f"comma-separated benchmarks to run, from {', '.join(BENCHMARKS + OPT_IN)} "
                             f"(default: all but {', '.join(OPT_IN)})")
    parser.add_argument("--quick", action="store_true", help="small smoke run (default config, fewer models)")
    parser.add_argument("--energy", metavar="FILE", help="per-access energy table (default bench/energy_pj.json)")
    parser.add_argument("--out", metavar="DIR", help="directory for the JSON results (default build/bench)")
    parser.add_argument("--no-make-sim", action="store_true", help="build-time: skip timing 'make sim'")


def selected(only: str) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--only names no benchmark; choose from {', '.join(BENCHMARKS + OPT_IN)}")
    unknown = [n for n in names if n not in BENCHMARKS + OPT_IN]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS + OPT_IN)}")
    return [n for n in BENCHMARKS + OPT_IN if n in names]


def run(args) -> int:
    names = selected(args.only)
    from bench import energy
    energy.load_table(args.energy)  # a bad table is an error before anything runs
    from nmc import toolenv
    toolenv.setup()
    from bench import buildtime, datamove, efficiency, placer, plots, simspeed
    out = Path(args.out) if args.out else None
    ok = True
    for name in names:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        if name == "efficiency":
            r = efficiency.run(quick=args.quick, out_dir=out)
        elif name == "near-vs-vonneumann":
            r = datamove.run(quick=args.quick, out_dir=out, energy_table=args.energy)
        elif name == "sim-speed":
            r = simspeed.run(quick=args.quick, out_dir=out)
        elif name == "plots":
            r = plots.run(quick=args.quick, out_dir=out)
        elif name == "placer":
            r = placer.run(quick=args.quick, out_dir=out)
        else:  # build-time
            r = buildtime.run(quick=args.quick, out_dir=out, with_make_sim=not args.no_make_sim)
        ok &= bool(r["ok"])
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    if not ok:
        print("nmc bench: an RTL run was not bit-exact or a command failed (see above)")
        return 1
    return 0
