# peforge: the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto

.PHONY: run test test-all bench clean-build doctor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Main job: tool check, then the format table.
run: $(STAMP)
	$(BIN)/peforge doctor
	$(BIN)/peforge formats

## Test suite (CI sample: everything not marked slow).
test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) tests

## Everything, including the slow exhaustive sweeps.
test-all: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m '' tests

bench: $(STAMP)
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/mac_sim.py
	$(BIN)/python bench/simd.py
	$(BIN)/python bench/fpga.py

doctor: $(STAMP)
	$(BIN)/peforge doctor

clean-build:
	rm -rf build
