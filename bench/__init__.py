"""Benchmarks of nmc (issue 6): array efficiency, simulation speed, near-memory vs von-Neumann.

Benchmarks, not tests: each writes ``build/bench/<name>.json`` and prints a table.
``nmc bench`` (``make bench``) runs them; ``nmc bench --only NAME`` picks some.
Measurements share two cores with whatever else runs: timings are noisy, so each
speed is reported as a ratio against a baseline measured in the same run.
Cycle counts and bytes moved come from the RTL performance counters and are exact.
"""
