"""``nmc lint``: ``verilator --lint-only -Wall`` on the committed Verilog (waivers: pyhdl.verilog)."""

from __future__ import annotations

import subprocess
from pathlib import Path

HELP = "lint the generated Verilog with verilator -Wall (documented waivers only)"


def add_arguments(parser):
    parser.add_argument("files", nargs="*", type=Path,
                        help="Verilog files (default: every committed configuration in hdl/)")


def lint(path: Path) -> tuple[int, str]:
    """Return (exit status, Verilator's messages) for one file."""
    from nmc import toolenv
    from pyhdl.verilog import VERILATOR_WAIVERS
    module = path.stem
    r = subprocess.run(["verilator", "--lint-only", "-Wall", *VERILATOR_WAIVERS, "--top-module", module,
                        str(path)], env=toolenv.environment(), capture_output=True, text=True)
    return r.returncode, r.stderr


def run(args) -> int:
    from pyhdl import verilog
    files = args.files or [verilog.HDL_DIR / f"{verilog.module_name(c)}.v" for c in verilog.CONFIGS]
    failed = 0
    for path in files:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (run `make verilog`)")
        status, messages = lint(path)
        print(f"{path}: {'clean' if status == 0 else 'FAILED'}")
        if status:
            print(messages)
            failed += 1
    return 1 if failed else 0
