# peforge: the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto

.PHONY: run check test test-all bench clean-build doctor calibrate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Main job: tool check, the format table, then the default design-space sweep and its
## report (build/dse/report.html).  A killed sweep continues with
## `.venv/bin/peforge sweep -o build/dse --resume`.
run: $(STAMP)
	$(BIN)/peforge doctor
	$(BIN)/peforge formats
	$(BIN)/peforge sweep -o build/dse --overwrite
	$(BIN)/peforge report build/dse

## Lint, layout and type check (ruff check, ruff format --check, mypy): part of `make test`.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py

## Test suite (CI sample: everything not marked slow), after the checks.
test: check
	$(BIN)/python -m pytest -n $(JOBS) tests

## Everything, including the slow exhaustive sweeps.
test-all: check
	$(BIN)/python -m pytest -n $(JOBS) -m '' tests

bench: $(STAMP)
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/mac_sim.py
	$(BIN)/python bench/array_sim.py
	$(BIN)/python bench/simd.py
	$(BIN)/python bench/fpga.py
	$(BIN)/python bench/lmul.py
	$(BIN)/python bench/lut.py
	$(BIN)/python bench/golden.py
	$(BIN)/python bench/dse.py
	$(BIN)/python bench/onnx_sweep.py --images 16
	$(BIN)/python bench/qor.py
	$(BIN)/python bench/blockdot.py
	$(BIN)/python bench/cost_model.py
	$(BIN)/python bench/shiftadd.py

## Re-synthesise the cost model's training / held-out sets and refit (cached results are free).
calibrate: $(STAMP)
	$(BIN)/peforge calibrate --jobs 2

doctor: $(STAMP)
	$(BIN)/peforge doctor

clean-build:
	rm -rf build
