"""Hardware side of nmc: the Amaranth array, its compiler and Verilog generation.

``pyhdl.config`` and ``pyhdl.sizing`` are pure Python; only the hardware modules
import Amaranth, so the compiler and the testbench stay cheap to import.
"""
