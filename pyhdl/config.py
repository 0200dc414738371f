"""Array configuration: the checked parameter set shared by hardware, compiler and testbench.

Pure Python (no Amaranth import), so the compiler and the testbench can use it
without building anything.
"""

from __future__ import annotations

import dataclasses
import numbers

from golden import contract

__all__ = ["ArrayConfig", "DEFAULT", "SMALL", "MODES"]

MODES = ("near", "vonneumann")


def _is_pow2(v: int) -> bool:
    return v >= 1 and v & (v - 1) == 0


def _int(name: str, value, lo: int, hi: int, *, pow2: bool = False) -> int:
    contract.check_bits(name, value, lo, hi)
    if pow2 and not _is_pow2(value):
        raise ValueError(f"{name} must be a power of two between {lo} and {hi}, not {value}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ArrayConfig:
    """Parameters of one near-memory MAC array.

    Parameters
    ----------
    pe : int
        Processing elements (output neurons computed in parallel), power of two 1..64.
    simd : int
        MAC lanes per PE (inputs consumed per cycle), power of two 1..64.
    w_bits, a_bits : int
        Weight and activation widths, 2..8.
    acc_bits : int
        Accumulator width, 8..48.
    m_bits : int
        Requantization multiplier width, 2..24.
    bank_depth : int
        Words in each PE's weight bank (one word = ``simd`` weights), power of two.
    max_layers : int
        Entries of the descriptor table, 1..64.
    max_features : int
        Largest layer width (in or out); a multiple of ``max(pe, simd)``.
    mode : str
        ``"near"`` (weights in per-PE banks) or ``"vonneumann"`` (one shared weight
        memory streamed over a ``bus_bits`` bus, the baseline of the benchmarks).
    bus_bits : int
        Width of the shared weight bus in ``"vonneumann"`` mode, a multiple of 8.
    """

    pe: int = 8
    simd: int = 8
    w_bits: int = 8
    a_bits: int = 8
    acc_bits: int = 32
    m_bits: int = 16
    bank_depth: int = 512
    max_layers: int = 8
    max_features: int = 256
    mode: str = "near"
    bus_bits: int = 64

    def __post_init__(self):
        _int("pe", self.pe, 1, 64, pow2=True)
        _int("simd", self.simd, 1, 64, pow2=True)
        contract.check_bits("w_bits", self.w_bits, *contract.BITS_RANGE)
        contract.check_bits("a_bits", self.a_bits, *contract.BITS_RANGE)
        contract.check_bits("acc_bits", self.acc_bits, *contract.ACC_BITS_RANGE)
        contract.check_bits("m_bits", self.m_bits, *contract.M_BITS_RANGE)
        _int("bank_depth", self.bank_depth, 2, 2**20, pow2=True)
        _int("max_layers", self.max_layers, 1, 64)
        _int("max_features", self.max_features, 1, 2**16)
        lanes = max(self.pe, self.simd)
        if self.max_features % lanes:
            raise ValueError(f"max_features must be a multiple of max(pe, simd) = {lanes}, not {self.max_features}")
        if not isinstance(self.mode, str) or self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        _int("bus_bits", self.bus_bits, 8, 1024)
        if self.bus_bits % 8:
            raise ValueError(f"bus_bits must be a multiple of 8, not {self.bus_bits}")
        min_acc = self.w_bits + self.a_bits
        if self.acc_bits < min_acc:
            raise ValueError(f"acc_bits must be at least w_bits + a_bits = {min_acc}, not {self.acc_bits}")

    @property
    def name(self) -> str:
        """A short, file-name-safe tag, e.g. ``pe8_simd8_w8a8``."""
        tag = f"pe{self.pe}_simd{self.simd}_w{self.w_bits}a{self.a_bits}"
        if self.mode != "near":
            tag += f"_vn{self.bus_bits}"
        return tag

    def replace(self, **changes) -> "ArrayConfig":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


#: The default array: 8 PEs x 8 lanes, int8 (the ECP5 target).
DEFAULT = ArrayConfig()
#: A small array that fits an iCE40 UP5K.  Its accumulator is sized for its layers: 128
#: inputs of full-scale int8 products reach 128*127*128 < 2**21, so 24 bits leave 3/4 of
#: the range to the bias (the built-in models need 22 bits at most).  Every bit is 0.28
#: ns of the accumulator's carry chain on the UP5K, 32 bits were its Fmax bound
#: (docs/fpga.md), and the compiler proves each layer at the array's width.
SMALL = ArrayConfig(pe=2, simd=4, acc_bits=24, bank_depth=512, max_features=128, max_layers=4)
