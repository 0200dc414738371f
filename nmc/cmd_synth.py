"""``nmc synth``: synthesis, place and route of the array with YoWASP Yosys + nextpnr."""

from __future__ import annotations

import math
import statistics
import sys

HELP = "synthesize, place and route the array (ECP5-85F default 8x8, iCE40 UP5K small 2x4) and report resources and Fmax"


def add_arguments(parser) -> None:
    parser.add_argument("--target", choices=("all", "ecp5", "ice40"), default="all",
                        help="device: ecp5 (LFE5U-85F CABGA381), ice40 (UP5K SG48) or all (default)")
    parser.add_argument("--config", choices=("default", "small"),
                        help="array config (default: 'default' on ecp5, 'small' on ice40)")
    parser.add_argument("--speed", type=int, action="append",
                        help="ECP5 speed grade 6, 7 or 8 (default 6); repeat to run several")
    parser.add_argument("--verilog", metavar="FILE",
                        help="synthesize this Verilog (module nmc_<config name>) instead of hdl/")
    parser.add_argument("--build-dir", metavar="DIR", default="build/synth",
                        help="where each target's files and report.json go (default build/synth)")
    parser.add_argument("--seed", type=int, action="append",
                        help="nextpnr placement seed (default 1); repeat to place and route once per seed "
                             "(Fmax moves by several MHz between seeds) into <build-dir>/seed<N>")
    from pyhdl.fpga import flow
    parser.add_argument("--pnr-timeout", type=float, metavar="SECONDS",
                        help=f"stop a nextpnr run after this long (default {flow.PNR_TIMEOUT_S}; 0: no limit): its "
                             "router can run away on one placement; the other seeds and targets still run.  With "
                             "--board: the limit of the whole board build (Yosys, nextpnr, packer)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="place and route up to N seeds/targets at once (default 1; each nextpnr uses one "
                             "core and 1-2 GB)")
    parser.add_argument("--board", choices=("icebreaker", "ulx3s"),
                        help="instead: build the digits demo bitstream for this board (iCEBreaker: small config, "
                             "ULX3S-85F: default config) into <build-dir>/board-<name>")
    parser.add_argument("--images", type=int,
                        help="with --board: digit images in the board demo's ROM (1..64, default 4)")
    parser.add_argument("--no-netlist-check", action="store_true",
                        help="with --board: skip simulating the placed netlist (Icarus Verilog) through the "
                             "ROM images")
    parser.add_argument("--full-baud", action="store_true",
                        help="with --board: the netlist check receives every serial byte at the board's baud "
                             "rate, not just the first (iCEBreaker ~35 s, ULX3S minutes)")
    parser.add_argument("--require-goals", action="store_true",
                        help="exit 1 when a target misses its Fmax goal (mapping fall-backs always do)")


def _ignored(args, options: tuple[str, ...]) -> list[str]:
    """The options of ``options`` given on the command line (their value is not the default)."""
    given = {"--speed": args.speed, "--seed": args.seed, "--jobs": args.jobs != 1 or None,
             "--require-goals": args.require_goals or None, "--images": args.images,
             "--no-netlist-check": args.no_netlist_check or None, "--full-baud": args.full_baud or None}
    return [o for o in options if given[o] is not None]


def _jobs(args):
    from pyhdl.fpga import synth, targets
    if args.target == "ice40" and args.speed:
        raise ValueError("--speed picks an ECP5 speed grade; --target ice40 has none")
    extra = _ignored(args, ("--images", "--no-netlist-check", "--full-baud"))
    if extra:
        raise ValueError(f"{' and '.join(extra)} only appl{'y' if len(extra) > 1 else 'ies'} to --board builds")
    speeds = args.speed or [6]
    for s in speeds:
        if s not in targets.SPEEDS:
            raise ValueError(f"--speed must be one of {', '.join(map(str, targets.SPEEDS))}, not {s}")
    for seed in _seeds(args):
        if seed < 0:
            raise ValueError(f"--seed must be >= 0, not {seed}")
    families = ("ecp5", "ice40") if args.target == "all" else (args.target,)
    jobs = []
    for family in families:
        for target in ([targets.ecp5(s) for s in speeds] if family == "ecp5" else [targets.ice40()]):
            name = args.config or synth.default_config(target)
            jobs.append((synth.CONFIGS[name], name, target))
    return jobs


def _seeds(args) -> list[int]:
    return list(dict.fromkeys(args.seed or [1]))


def _pnr_timeout(args) -> float | None:
    """nextpnr's (with --board: the board build's) wall-time limit in seconds, None for none."""
    from pyhdl.fpga import flow
    if args.pnr_timeout is None:
        return flow.PNR_TIMEOUT_S
    if not args.pnr_timeout >= 0:
        raise ValueError(f"--pnr-timeout must be >= 0 seconds (0: no limit), not {args.pnr_timeout:g}")
    return None if args.pnr_timeout in (0, math.inf) else args.pnr_timeout


def _board(args, timeout: float | None) -> int:
    from pathlib import Path

    from pyhdl.fpga import boards, flow, report
    if args.verilog is not None or args.config is not None or args.target != "all":
        raise ValueError("--board picks its own target and config; drop --target/--config/--verilog")
    extra = _ignored(args, ("--speed", "--seed", "--jobs", "--require-goals"))
    if extra:
        raise ValueError(f"--board builds once with the board's own part and nextpnr options; "
                         f"drop {'/'.join(extra)}")
    if args.no_netlist_check and args.full_baud:
        raise ValueError("--full-baud sets how the netlist check runs; --no-netlist-check skips it")
    images = {} if args.images is None else {"n_images": args.images}
    print(f"nmc synth: digits demo bitstream for {args.board} ...", flush=True)
    try:
        rep = boards.build(args.board, Path(args.build_dir) / f"board-{args.board}", **images,
                           timeout=timeout, check=not args.no_netlist_check, full_baud=args.full_baud)
    except flow.FlowError as e:
        print(f"nmc synth: error: {e}", file=sys.stderr)
        return 1
    print(report.format_table([rep]))
    print(f"bitstream: {rep['bitstream']} ({rep['bitstream_bytes']} bytes); ROM images' golden classes "
          f"{rep['expected']} (labels {rep['labels']})")
    if "netlist_check" in rep:
        got = rep["netlist_check"]
        print(f"netlist check: the placed netlist showed classes {', '.join(map(str, got['classes']))} "
              f"for ROM images 0..{len(got['classes']) - 1}, the button pressed between them (golden "
              f"{', '.join(map(str, got['expected']))}, match LED on each); the last after {got['cycles'][-1]} cycles")
        print(f"serial line: {' | '.join(line.rstrip() for line in got['lines'])}")
    return 0


def _run_all(one, runs: list, jobs: int) -> list:
    """``one(run)`` for every run, ``jobs`` at a time; the results in the order of
    ``runs``, a RunFailed (timed out, does not fit) in place of such a run's report.  Any other FlowError
    (or Ctrl-C) stops the other runs, their tools included, and is raised."""
    from concurrent import futures

    from pyhdl.fpga import flow
    results = [None] * len(runs)
    pool = futures.ThreadPoolExecutor(max_workers=jobs)
    index = {pool.submit(one, run): i for i, run in enumerate(runs)}
    try:
        for done in futures.as_completed(index):
            try:
                results[index[done]] = done.result()
            except flow.RunFailed as e:
                results[index[done]] = e
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        # a worker between two tools may start the next one: stop until all are done
        while not all(f.done() for f in index):
            flow.stop_all()
            futures.wait(index, timeout=0.2)
        raise
    pool.shutdown()
    return results


def run(args) -> int:
    from pyhdl.fpga import flow, report, synth
    timeout = _pnr_timeout(args)
    if args.board is not None:
        return _board(args, timeout)
    jobs = _jobs(args)
    if args.verilog is not None and len({name for _, name, _ in jobs}) > 1:
        raise ValueError("--verilog holds one config: pick it with --config")
    seeds = _seeds(args)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, not {args.jobs}")
    runs = [(cfg, name, target, seed) for cfg, name, target in jobs for seed in seeds]
    netlists = synth.Netlists()  # the seeds of one target place one synthesis

    def one(run):
        cfg, name, target, seed = run
        where = args.build_dir if len(seeds) == 1 else f"{args.build_dir}/seed{seed}"
        print(f"nmc synth: {name} ({cfg.name}) on {target.device}, seed {seed} ...", flush=True)
        return synth.run(cfg, target, where, config_name=name, verilog=args.verilog, seed=seed,
                         pnr_timeout=timeout, netlists=netlists)
    try:
        results = _run_all(one, runs, args.jobs)
    except flow.FlowError as e:
        print(f"nmc synth: error: {e}", file=sys.stderr)
        return 1
    reports, status = [], 0
    for rep in results:
        if isinstance(rep, flow.RunFailed):
            # one placement's runaway router, or a device too small, says nothing about
            # the next seed or target
            print(f"nmc synth: error: {rep}", file=sys.stderr)
            status = 1
            continue
        reports.append(rep)
        for problem in rep["mapping_problems"]:
            print(f"nmc synth: {problem}", file=sys.stderr)
            status = 1
        if args.require_goals and not rep["meets_goal"]:
            status = 1
    if not reports:
        return status
    shown = reports if len(seeds) == 1 else [{**r, "target": f"{r['target']}/seed{r['seed']}"} for r in reports]
    print(report.format_table(shown))
    if len(seeds) > 1:
        by_target = {}
        for r in reports:
            by_target.setdefault(r["target"], []).append(r["fmax_mhz"])
        for target_name, fmax in by_target.items():
            fmax.sort()
            of = f"{len(fmax)} seeds" if len(fmax) == len(seeds) else f"{len(fmax)} of {len(seeds)} seeds"
            print(f"{target_name}: Fmax over {of} {fmax[0]:.1f} .. {fmax[-1]:.1f} MHz, "
                  f"median {statistics.median(fmax):.1f}")
    for rep, label in zip(reports, shown):
        cp = rep["critical_path"]
        if cp:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in cp["by_type"].items())
            print(f"{label['target']}: critical path {cp['ns']:.2f} ns ({parts}): {cp['from']} -> {cp['to']}")
        ceiling = rep.get("ceiling")
        if ceiling:
            print(f"{label['target']}: no placement of this netlist passes {ceiling['mhz']:.1f} MHz "
                  f"({ceiling['end']} at {ceiling['ns']:.2f} ns with every route the shortest; "
                  f"{ceiling['inputs_past_goal']} inputs of {ceiling['registers_past_goal']} registers "
                  f"past the goal's {1000 / rep['goal_mhz']:.2f} ns)")
        by_part = rep.get("lut4_per_mac_by_part") or {}
        if len(by_part) > 1:
            split = " + ".join(f"{part} {v:.1f}" for part, v in by_part.items())
            print(f"{label['target']}: LUT4 per MAC lane {rep['lut4_per_mac']:.1f} = {split} (kept hierarchy levels)")
    print(f"reports: {args.build_dir}/{'' if len(seeds) == 1 else 'seed<N>/'}<target>/report.json")
    return status
