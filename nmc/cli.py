"""The ``nmc`` command line.  Each subcommand lives in its own module ``nmc/cmd_<name>.py``
exposing ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.

Bad input never ends in a traceback: TypeError/ValueError (and our own
``UsageError``) become one line on stderr and exit status 2.  SIGTERM and SIGHUP
unwind the command like Ctrl-C does (exit status 128 + the signal's number): the FPGA
tools run in process groups of their own, which a signal to ``nmc`` alone does not
reach, and only the command's cleanup stops them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

COMMANDS = ("report", "verilog", "lint", "sim", "synth", "bench")


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


class Stopped(BaseException):
    """A termination signal, raised in the main thread so that the command unwinds:
    like KeyboardInterrupt, not an Exception, so no ``except Exception`` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


#: the signals a command unwinds on, besides SIGINT (KeyboardInterrupt)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _stop_signals_raise():
    """Within: STOP_SIGNALS raise :class:`Stopped`.  Python only lets the main thread
    set handlers; elsewhere (a command run from a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        if not stopping:  # a second signal must not interrupt the cleanup of the first
            stopping = True
            raise Stopped(signum)
    before = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


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
        with _stop_signals_raise():
            return int(args._run(args) or 0)
    except (UsageError, TypeError, ValueError, FileNotFoundError) as e:
        print(f"nmc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Stopped as e:
        print(f"nmc {args.command}: stopped by {e.name}", file=sys.stderr)
        return 128 + e.signum


if __name__ == "__main__":
    sys.exit(main())
