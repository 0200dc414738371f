"""The ``nmc`` command line.  Each subcommand lives in its own module ``nmc/cmd_<name>.py``
exposing ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.

Bad input never ends in a traceback: TypeError/ValueError (and our own
``UsageError``) become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("report", "verilog", "lint", "sim", "synth", "bench")


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nmc", description="Near-memory MAC array for quantized MLP inference.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"nmc.cmd_{name}")
        except ModuleNotFoundError as e:
            if e.name != f"nmc.cmd_{name}":
                raise
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (UsageError, TypeError, ValueError, FileNotFoundError) as e:
        print(f"nmc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
