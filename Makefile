# Tutor Quality: `make demo` and `make test` are all a newcomer needs; both install first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE_AS_OF := 2026-11-25T00:00:00Z
UPGRADE_VENV := build/upgrade-venv
IMAGE ?= tutor-quality

.PHONY: install upgrade docker docker-if-available test lint demo sample bench services clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=64" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The newest releases setup.cfg allows, frozen into constraints.txt (its header kept), then .venv reinstalled
# from it: run `make test` and commit the file.
upgrade:
	rm -rf $(UPGRADE_VENV)
	$(PYTHON) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/python -m pip install --quiet --upgrade pip "setuptools>=64" wheel
	$(UPGRADE_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	{ grep '^#' constraints.txt; $(UPGRADE_VENV)/bin/python -m pip freeze --exclude-editable \
	  | grep -v -i '^tutor[-_]quality=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(UPGRADE_VENV)
	$(MAKE) --no-print-directory install
	@git diff --stat -- constraints.txt 2>/dev/null || true

# The one image that runs the API (its default command), `tqs worker` and `tqs dashboard`.
docker:
	docker build -t $(IMAGE) .

# `make test` builds the image too, where a Docker engine answers (none runs on the CI machines).
docker-if-available:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory docker; \
	else \
	  echo "docker: no Docker engine answers here (docker info failed): the image build is skipped"; \
	fi

services:
	@scripts/ensure_services.sh

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) services lint docker-if-available
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
	$(BIN)/python -m bench.reads
	$(BIN)/python -m bench.production
	$(BIN)/python -m bench.growth
	$(BIN)/python -m bench.fuzz
	$(BIN)/python -m bench.email
	$(BIN)/python -m bench.backtest
	$(BIN)/python -m bench.flag_policies

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .hypothesis *.egg-info test-artifacts
