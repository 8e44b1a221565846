# Tutor Quality: `make demo` and `make test` are all a newcomer needs; both install first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE_AS_OF := 2026-11-25T00:00:00Z

.PHONY: install test lint demo sample bench services clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=64" wheel
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

services:
	@scripts/ensure_services.sh

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) services lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/tqs demo $(DEMO_ARGS)

sample: $(STAMP)
	$(BIN)/tqs init-db
	$(BIN)/tqs ingest tests/data/sample.json --sync --as-of $(SAMPLE_AS_OF)
	$(BIN)/tqs tutors

bench: $(STAMP) services
	$(BIN)/python -m bench.rescore_cost
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.email
	$(BIN)/python -m bench.backtest
	$(BIN)/python -m bench.flag_policies

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .hypothesis *.egg-info test-artifacts
