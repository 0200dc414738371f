# Two commands do all set-up on a fresh machine: `make sim` and `make test`.
# Everything runs inside .venv, created and refreshed from pyproject.toml + constraints.txt.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
NMC    := $(VENV)/bin/nmc
PYTEST := $(VENV)/bin/python -m pytest
# The suite's long tests are single-threaded tools (YoWASP Yosys/nextpnr, Icarus): one
# pytest worker per core, whole files per worker (module fixtures are built once);
# build/sim/<tag>/ is locked per use (testbench.runner), so workers may share configurations.
PYTEST_WORKERS ?= auto

.PHONY: sim test verilog synth bench report lint clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,fpga,bench]'
	touch $(STAMP)

sim: $(STAMP)
	$(NMC) sim

test: $(STAMP)
	$(PYTEST) -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

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
