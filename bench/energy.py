"""Energy per inference from the RTL performance counters and a per-access energy table.

The table (``bench/energy_pj.json``, replaceable with ``nmc bench --energy FILE``) gives
picojoules per operation; the defaults are Horowitz (ISSCC 2014, 45 nm) and Han et al.
(2015).  Counts come from the RTL counters of one inference, never from a formula:

=====================  ==================================================================
part                   energy
=====================  ==================================================================
MAC                    ``mac_ops * (mul8 + add32)``: one 8-bit multiply and one 32-bit
                       accumulate per lane-step (padding lanes included: they toggle too)
activations            SRAM bits touched / 64 * ``sram_64``: reads ``act_reads * simd *
                       a_bits``, writes ``act_writes * max(pe, simd) * a_bits``
weights, near memory   ``bank_reads * simd * w_bits / 64 * sram_64`` (local 8 KB-class bank)
weights, shared SRAM   ``bus_bytes * 8 / 64 * shared_sram_64`` (baseline, on-chip shared
                       memory; optional key, default ``sram_64``)
weights, DRAM          ``bus_bytes * 8 / 32 * dram_32`` (baseline, off-chip memory)
=====================  ==================================================================

SRAM energy is scaled linearly with the bits of an access (the table gives a 64-bit
access).  A shared weight memory holding a whole model is bigger than an 8 KB bank and
costs more per access, so the shared-SRAM baseline is a lower bound.  Requantization and
control are left out: they are the same in both modes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

__all__ = ["DEFAULT_TABLE", "KEYS", "OPTIONAL_KEYS", "load_table", "estimate", "WEIGHT_MEMORIES"]

DEFAULT_TABLE = Path(__file__).resolve().parent / "energy_pj.json"

#: Keys the table must hold (each ``{"value": pJ, "source": ...}`` or a bare number).
KEYS = ("add8_pj", "mul8_pj", "add32_pj", "sram_8kb_64bit_access_pj", "dram_32bit_access_pj")

#: Optional keys: the baseline's shared weight SRAM per 64-bit access (default: the 8 KB
#: figure, a lower bound for a memory that holds a whole model).
OPTIONAL_KEYS = ("shared_sram_64bit_access_pj",)

#: Where the weights come from: the near-memory banks, or over the bus from a shared
#: on-chip SRAM or from DRAM.
WEIGHT_MEMORIES = ("local", "sram", "dram")


def load_table(path=None) -> dict[str, float]:
    """``{key: pJ}`` from an energy table file; missing or bad entries raise ValueError."""
    path = Path(path or DEFAULT_TABLE)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"energy table {path} is unreadable: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"energy table {path} is not JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict):
        raise ValueError(f"energy table {path} must be a JSON object")
    table = {}
    for key in KEYS + OPTIONAL_KEYS:
        if key not in data:
            if key in OPTIONAL_KEYS:
                continue
            raise ValueError(f"energy table {path} has no {key!r}; it needs {', '.join(KEYS)}")
        entry = data[key]
        value = entry.get("value") if isinstance(entry, dict) else entry
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"energy table {path}: {key} must be a finite number >= 0 of picojoules, not {value!r}")
        table[key] = float(value)
    return table


def estimate(counters: dict[str, float], cfg, table: dict[str, float], weights: str = "local") -> dict[str, float]:
    """Energy of one inference in pJ by part, from per-inference counter values.

    ``weights`` picks where weights come from: ``"local"`` (near-memory bank reads,
    counter ``bank_reads``) or ``"sram"`` / ``"dram"`` (bytes over the shared bus,
    counter ``bus_bytes``).  Returns ``{"mac", "activations", "weights", "total"}``.
    """
    if weights not in WEIGHT_MEMORIES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MEMORIES)}, not {weights!r}")
    for name in ("mac_ops", "act_reads", "act_writes", "bank_reads", "bus_bytes"):
        if name not in counters:
            raise ValueError(f"counters lack {name!r}")
    sram_bit = table["sram_8kb_64bit_access_pj"] / 64
    lanes = max(cfg.pe, cfg.simd)
    parts = {
        "mac": counters["mac_ops"] * (table["mul8_pj"] + table["add32_pj"]),
        "activations": (counters["act_reads"] * cfg.simd + counters["act_writes"] * lanes) * cfg.a_bits * sram_bit,
    }
    if weights == "local":
        parts["weights"] = counters["bank_reads"] * cfg.simd * cfg.w_bits * sram_bit
    elif weights == "sram":
        shared = table.get("shared_sram_64bit_access_pj", table["sram_8kb_64bit_access_pj"])
        parts["weights"] = counters["bus_bytes"] * 8 * shared / 64
    else:
        parts["weights"] = counters["bus_bytes"] * 8 / 32 * table["dram_32bit_access_pj"]
    parts["total"] = sum(parts.values())
    return parts
