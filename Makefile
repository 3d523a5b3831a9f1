# Two commands on a fresh machine: `make demo` and `make test` (README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install system-deps check-stack bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip check
	touch $(STAMP)

node_modules/.installed-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium renders report.html in the tests (Debian package; installed when missing).
system-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

install: $(STAMP) node_modules/.installed-stamp system-deps

## The main job: a local 40-age sweep on synthetic data, through the real template and state machine.
demo: $(STAMP)
	$(BIN)/agesweep local events/manifests/demo.yaml

## Every test and check: unit, local end-to-end on moto, stack lint (sam, cfn-lint, checkov, ASL), trainer.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf agesweep-local .aws-sam .pytest_cache
