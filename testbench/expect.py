"""What the performance counters must read, from the ``pyhdl.sizing`` formulas only.

Exact expectations only: a counter is checked when the formula is exact for the
traffic of the run (e.g. busy cycles only for an isolated inference without stalls).
"""

from __future__ import annotations

from pyhdl import sizing
from pyhdl.config import ArrayConfig

__all__ = ["counter_expectations", "completion_cycles", "max_cycles", "TIMING_VECTORS"]

#: Back-to-back batches are timed exactly for their first this-many vectors
#: (steady state is reached after two; the schedule model is Python-slow).
TIMING_VECTORS = 64


def counter_expectations(shapes, cfg: ArrayConfig, vectors: int, *, isolated: bool,
                         stall_free: bool) -> dict[str, int]:
    """Counters that the formulas fix exactly for this run.

    ``stall_free``: no idle or backpressure on any stream.  The stall counters have no
    closed formula (the output-stall counter also counts the sequencer waiting for a free
    output slot while the sink is ready), so they are only reported.
    """
    steps = sizing.ideal_cycles(shapes, cfg)
    expected = {
        "mac_ops": vectors * steps * cfg.pe * cfg.simd,
        "bank_reads": vectors * steps * cfg.pe,
        "inferences": vectors,
    }
    if cfg.mode == "near":
        expected["bus_bytes"] = 0
    if isolated and stall_free:
        expected["busy"] = sizing.inference_cycles(shapes, cfg)
    return expected


def completion_cycles(shapes, cfg: ArrayConfig, vectors: int) -> list[int]:
    """Cycle (after the first input beat is accepted) in which each vector's last result is
    accepted, for full-rate input and no backpressure: ``pyhdl.sizing.schedule``."""
    return list(sizing.schedule(shapes, cfg, vectors)["accept"])


def max_cycles(shapes, cfg: ArrayConfig, vectors: int, load_words: int) -> int:
    """A generous timeout for one run (stalls up to ~90 %): a hang ends as a clear failure."""
    per_vector = sizing.ideal_cycles(shapes, cfg) + 64 * len(shapes) + 64
    return 20 * (load_words + vectors * per_vector) + 10_000
