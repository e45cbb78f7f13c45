# wellkept: `make demo` runs the embedded demo; `make test` runs ruff, mypy and the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint typecheck pytest services tools bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# the core install: enough for the SQLite demo
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# every extra plus the test tools
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/wellkept demo --dir wellkept-demo

services:
	scripts/ensure-services.sh

# Debian tools the tests drive: promtool (package prometheus) checks the metrics exposition;
# logrotate is the peer log_rotate is compared with (zstd for its zstd compression); chromium
# runs the dashboard's browser test; wrk is bench/api.py's load generator
tools:
	scripts/ensure-tools.sh promtool:prometheus logrotate:logrotate zstd:zstd chromium:chromium wrk:wrk

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench examples

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev services tools
	$(BIN)/pytest

test: $(VENV)/.dev services tools lint typecheck pytest

bench: $(VENV)/.dev services tools
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/health.py
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) wellkept-demo .pytest_cache .mypy_cache .ruff_cache
