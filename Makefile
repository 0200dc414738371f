# Two commands do all set-up on a fresh machine: `make sim` and `make test`.
# Everything runs inside .venv, created and refreshed from pyproject.toml + constraints.txt.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
NMC    := $(VENV)/bin/nmc
PYTEST := $(VENV)/bin/python -m pytest
# The suite's long tests are single-threaded tools (YoWASP Yosys/nextpnr, Icarus): one
# pytest worker per core, whole files per worker (module fixtures are built once), the
# longest files first in tests/conftest.py's order (not xdist's, by test count);
# build/sim/<tag>/ is locked per use (testbench.runner), so workers may share configurations.
PYTEST_WORKERS ?= auto
PYTEST_XDIST = -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: sim test test-extended verilog synth bench report lint clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --no-compile --disable-pip-version-check -c constraints.txt -e '.[test,fpga,bench]'
	@# bytecode on every core (pip compiles on one: 48 s against 35 s); one torch test file
	@# is Python 3.12 syntax, which pip's compile skips silently and compileall reports
	$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $(STAMP)

sim: $(STAMP)
	$(NMC) sim

# `make test` stays under 10 minutes on two cores; the extended tests (two more
# place-and-route / gate-level runs, ~3 min) run in CI after it (.ci/run).
test: $(STAMP)
	$(PYTEST) $(PYTEST_XDIST) -m "not extended" $(PYTEST_ARGS)

test-extended: $(STAMP)
	$(PYTEST) $(PYTEST_XDIST) -m extended $(PYTEST_ARGS)

report: $(STAMP)
	$(NMC) report

verilog: $(STAMP)
	$(NMC) verilog --all

lint: $(STAMP)
	$(NMC) lint

synth: $(STAMP)
	$(NMC) synth

bench: $(STAMP)
	$(NMC) bench

clean:
	rm -rf build sim_build .pytest_cache
