"""Golden side of nmc: torch models, quantization, integer inference and model images.

Simulator-free: importing it never needs Amaranth, cocotb or Verilator.
"""
