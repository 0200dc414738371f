"""``nmc verilog``: write the array's Verilog (module ``nmc_<config>``) to hdl/ or a directory."""

from __future__ import annotations

from pathlib import Path

HELP = "generate the array's Verilog (default: the committed configs into hdl/)"

# option -> ArrayConfig field
_FIELDS = ("pe", "simd", "w_bits", "a_bits", "acc_bits", "m_bits", "bank_depth",
           "max_layers", "max_features", "mode", "bus_bits")


def add_arguments(parser):
    from pyhdl.config import DEFAULT
    parser.add_argument("--all", action="store_true",
                        help="write every committed configuration (what `make verilog` runs)")
    for field in _FIELDS:
        kind = str if field == "mode" else int
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=None,
                            help=f"(default {getattr(DEFAULT, field)})")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output directory (default: hdl/ of this checkout)")


def run(args) -> int:
    from pyhdl import verilog
    from pyhdl.config import DEFAULT
    out = args.output or verilog.HDL_DIR
    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f) is not None}
    if args.all:
        if given:
            first = next(iter(given)).replace("_", "-")
            raise ValueError(f"--all writes the committed configurations; drop --{first}")
        paths = verilog.write_all(out)
    else:
        paths = [verilog.write(DEFAULT.replace(**given), out)]
    for p in paths:
        print(p)
    return 0
