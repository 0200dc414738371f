"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def random_models() -> int:
    """Random MLPs per array configuration in the co-simulation suite: ``NMC_RANDOM_MODELS`` (default 50)."""
    raw = os.environ.get("NMC_RANDOM_MODELS", "50")
    try:
        n = int(raw)
    except ValueError:
        raise pytest.UsageError(f"NMC_RANDOM_MODELS must be an integer, not {raw!r}") from None
    if n < 1:
        raise pytest.UsageError(f"NMC_RANDOM_MODELS must be >= 1, not {n}")
    return n


@pytest.fixture
def iverilog():
    """Icarus Verilog, a Debian package that .ci/run installs: under CI a missing
    ``iverilog`` is a failure, elsewhere a skip."""
    import shutil
    if shutil.which("iverilog") is None:
        if os.environ.get("CI"):
            pytest.fail("iverilog is not installed (.ci/run installs it with apt-get)")
        pytest.skip("iverilog is not installed: apt-get install -y iverilog")


@pytest.fixture(scope="session")
def small_digits():
    """The digits model compiled for the small config and its first test images
    (``pyhdl.fpga.boards.digits_program``), shared by the board and serial-line tests."""
    from pyhdl.config import SMALL
    from pyhdl.fpga import boards
    return boards.digits_program(SMALL, 3)


@pytest.fixture
def ended():
    """``ended(pid)``: whether process ``pid`` ends within 5 s (a SIGKILL lands
    asynchronously; a zombie that nobody reaps in a container counts as ended)."""
    import time

    def gone(pid: int) -> bool:
        try:
            return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True

    def ended(pid: int) -> bool:
        deadline = time.monotonic() + 5
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return gone(pid)
    return ended


@pytest.fixture
def stuck_tool(tmp_path):
    """``stuck_tool(name)``: an executable ``tmp_path/name`` that starts a child that
    sleeps for a minute, writes the child's pid to ``tmp_path/<name>.pid`` and waits for
    it, as a build script waits for its tools.  Returns (tool, pid file)."""
    import stat

    def make(name: str):
        tool, pid_file = tmp_path / name, tmp_path / f"{name}.pid"
        # through a rename: `>` creates the file empty before the pid is written, and a
        # reader that waits for the file must never see it empty
        tool.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > '{pid_file}.part'\n"
                        f"mv '{pid_file}.part' '{pid_file}'\nwait\n")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
        return tool, pid_file
    return make


#: what a ``slow`` test without ``seconds``, and any other test, count for in the files' order
SLOW_DEFAULT_S, TEST_DEFAULT_S = 5, 0.5


def pytest_collection_modifyitems(items):
    """Files by their ``slow`` tests' ``seconds`` (roughly what each takes), longest first;
    tests keep their order within a file.  `make test`'s workers take whole files, so the
    long single-threaded tool runs (Yosys, nextpnr, Icarus) start early and the quick
    files fill the gaps, instead of one of them keeping a worker busy at the end."""
    weight = {}
    for item in items:
        mark = item.get_closest_marker("slow")
        seconds = (mark.kwargs.get("seconds") or SLOW_DEFAULT_S) if mark else TEST_DEFAULT_S
        weight[item.path] = weight.get(item.path, 0) + seconds
    items.sort(key=lambda item: -weight[item.path])
