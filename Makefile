# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint format typecheck pytest demo bench clean conformance-live

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -n auto

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# The conformance rows against a real workspace (docs/emulator.md, "Checking the emulator
# against a real workspace"): DBX_PROMOTE_LIVE_HOST plus the usual Databricks auth.
conformance-live: $(STAMP)
	@test -n "$$DBX_PROMOTE_LIVE_HOST" || { echo "set DBX_PROMOTE_LIVE_HOST (and the usual Databricks auth)"; exit 2; }
	$(BIN)/pytest -q -s -rs tests/test_conformance.py -k test_live_workspace

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) dist .demo .bench .pytest_cache .ruff_cache .mypy_cache
