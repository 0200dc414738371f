"""FPGA flow: synthesis, place and route and bitstreams with the YoWASP tools from PyPI.

* :mod:`.targets` — devices (ECP5-85F, iCE40 UP5K), tool options, goals, cell names;
* :mod:`.harness` — a register-bounded measurement top for any Verilog design;
* :mod:`.flow` — Yosys + nextpnr runs, success decided from the logs;
* :mod:`.report` — resources and timing from the tools' JSON, the printed table;
* :mod:`.synth` — ``nmc synth``: the array configs on their targets;
* :mod:`.boards` — board tops and bitstreams through amaranth-boards.

See ``docs/fpga.md``.
"""
