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

## Lambda layer for `sam build` (template.yaml AgesweepLayer, BuildMethod makefile): the agesweep package and
## its Lambda dependencies (pyproject.toml's core dependencies and the lambda and plot extras, by name), as Linux x86_64 / CPython 3.11 wheels on any build host.
## boto3 is included so the botocore that the tracer pulls in matches it (the layer shadows the runtime's copy).
build-AgesweepLayer:
	$(eval LAYER_ROOT := $(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
	mkdir -p "$(ARTIFACTS_DIR)/python"
	$(PYTHON) -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]; print("\n".join(p["dependencies"] + [d for e in sys.argv[2:] for d in p["optional-dependencies"][e]]))' "$(LAYER_ROOT)pyproject.toml" lambda plot > "$(ARTIFACTS_DIR)/layer-requirements.txt"
	$(PYTHON) -m pip install -q --disable-pip-version-check --no-compile --target "$(ARTIFACTS_DIR)/python" \
		--platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all: \
		-r "$(ARTIFACTS_DIR)/layer-requirements.txt"
	rm -rf "$(ARTIFACTS_DIR)/layer-requirements.txt" "$(ARTIFACTS_DIR)/python/bin"
	cp -R "$(LAYER_ROOT)agesweep" "$(ARTIFACTS_DIR)/python/agesweep"
	find "$(ARTIFACTS_DIR)/python/agesweep" -name __pycache__ -prune -exec rm -rf {} +
