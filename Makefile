# Two commands on a fresh machine: `make demo` and `make test` (README.md).
SHELL := /bin/bash
# Python 3.11: the Lambda runtime's, and the version torch==2.13.0's CPU wheel on this disk is built for.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
IS_311 := import sys; sys.exit(sys.version_info[:2] != (3, 11))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test lint install system-deps check-stack bench clean build-AgesweepLayer build-PlottingLayer

$(STAMP): pyproject.toml
	@$(PYTHON) -c '$(IS_311)' || { echo "agesweep needs Python 3.11, found $$($(PYTHON) --version 2>&1): run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c '$(IS_311)'; then echo "$(VENV) was made with $$($(BIN)/python --version): making it anew"; rm -rf $(VENV); fi
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

## Every test and check: ruff, mypy (strict), then unit, local end-to-end on moto, stack lint (sam, cfn-lint,
## checkov, ASL), sam build sizes, trainer.
test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf agesweep-local .aws-sam .pytest_cache

## Lambda layers for `sam build` (template.yaml, BuildMethod makefile; sam build runs each target with
## ARTIFACTS_DIR set). Each one is pip's install of pyproject.toml extras, read by name (below), as
## Linux x86_64 / CPython 3.11 wheels on any build host.

# agesweep/ entries that are not Lambda code and stay out of AgesweepLayer: the operator CLI and its
# operations, local mode, run tracking (CLI and local mode only) and the docs generator.
LAYER_EXCLUDE := cli operations local tracking.py contracts_doc.py

# The extras the layers are built from. Lambda unpacks a function's layers over each other into /opt,
# so a package in two layers (python-dateutil: botocore and matplotlib) must be the same version in
# both: each layer is installed under the pins of one resolution of all of them together.
LAYER_EXTRAS := --core lambda plot

# `... EXTRA ...`: the requirements that `pip install 'agesweep[EXTRA,...]'` would add (the core
# dependencies only with --core), one per line, read from pyproject.toml by extra name, agesweep[...]
# self-references expanded. An unknown extra is an error, not an empty layer.
# `--pins REPORT`: name==version of everything in a `pip install --report` (the constraints).
define LAYER_REQUIREMENTS_PY
import json, re, sys, tomllib
if sys.argv[1] == "--pins":
    report = json.load(open(sys.argv[2]))
    print("\n".join(f'{i["metadata"]["name"]}=={i["metadata"]["version"]}' for i in report["install"]))
    sys.exit()
pyproject, *names = sys.argv[1:]
project = tomllib.load(open(pyproject, "rb"))["project"]
extras = project.get("optional-dependencies", {})
seen, out = set(), []

def add(requirements):
    for requirement in requirements:
        self_ref = re.fullmatch(re.escape(project["name"]) + r"\[([^]]+)\]", requirement.replace(" ", ""))
        for extra in self_ref.group(1).split(",") if self_ref else ():
            if extra not in seen:
                seen.add(extra)
                add(extras[extra])
        if not self_ref and requirement not in out:
            out.append(requirement)

for name in names:
    if name == "--core":
        add(project["dependencies"])
    else:
        seen.add(name)
        add(extras[name])
if not out:
    sys.exit(f"no requirements for {names}")
print("\n".join(out))
endef
export LAYER_REQUIREMENTS_PY

LAYER_PIP = $(PYTHON) -m pip install -q --disable-pip-version-check --no-warn-conflicts \
	--platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all:

# Extension modules lose their symbol tables (--strip-unneeded keeps what the dynamic loader needs): several
# wheels ship them unstripped (kiwisolver 5.6 -> 0.2 MB, fontTools 23 -> 12 MB). Not the libraries that
# auditwheel vendored into <package>.libs/: patchelf rewrote those, and strip breaks them (OpenBLAS then
# fails to load: "ELF load command address/offset not page-aligned"). GNU strip only; another strip
# (macOS's) cannot read ELF, and the layers are then ~25 MB larger, still within Lambda's limit.
# Type stubs (*.pyi) go too: nothing imports them.
STRIP ?= strip

# $(call layer_pip,EXTRAS): install those extras' requirements into $(ARTIFACTS_DIR)/python, pinned
# as resolved with all of LAYER_EXTRAS. (--no-warn-conflicts: the build interpreter's own packages
# have nothing to do with the layer.)
define layer_pip
	mkdir -p "$(ARTIFACTS_DIR)/python"
	$(PYTHON) -c "$$LAYER_REQUIREMENTS_PY" "$(LAYER_ROOT)pyproject.toml" $(LAYER_EXTRAS) > "$(ARTIFACTS_DIR)/all-layers.txt"
	$(LAYER_PIP) --dry-run --target "$(ARTIFACTS_DIR)/resolved" --report "$(ARTIFACTS_DIR)/all-layers.json" -r "$(ARTIFACTS_DIR)/all-layers.txt"
	$(PYTHON) -c "$$LAYER_REQUIREMENTS_PY" --pins "$(ARTIFACTS_DIR)/all-layers.json" > "$(ARTIFACTS_DIR)/constraints.txt"
	$(PYTHON) -c "$$LAYER_REQUIREMENTS_PY" "$(LAYER_ROOT)pyproject.toml" $(1) > "$(ARTIFACTS_DIR)/requirements.txt"
	$(LAYER_PIP) --no-compile --target "$(ARTIFACTS_DIR)/python" \
		-c "$(ARTIFACTS_DIR)/constraints.txt" -r "$(ARTIFACTS_DIR)/requirements.txt"
	cd "$(ARTIFACTS_DIR)" && rm -rf all-layers.txt all-layers.json resolved constraints.txt requirements.txt python/bin python/share
	find "$(ARTIFACTS_DIR)/python" -name __pycache__ -prune -exec rm -rf {} +
	find "$(ARTIFACTS_DIR)/python" -type f -name '*.pyi' -delete
	if $(STRIP) --version 2>/dev/null | grep -q GNU; then \
		find "$(ARTIFACTS_DIR)/python" -type f -name '*.so' -not -path '*.libs/*' -exec $(STRIP) --strip-unneeded {} +; \
	else echo "note: no GNU strip ($(STRIP)): the layer's shared objects keep their symbol tables" >&2; fi
endef

LAYER_ROOT = $(dir $(abspath $(firstword $(MAKEFILE_LIST))))

## AgesweepLayer (every function): the agesweep package less LAYER_EXCLUDE, and the `lambda` extra.
build-AgesweepLayer:
	$(call layer_pip,--core lambda)
	cp -R "$(LAYER_ROOT)agesweep" "$(ARTIFACTS_DIR)/python/agesweep"
	cd "$(ARTIFACTS_DIR)/python/agesweep" && rm -rf $(LAYER_EXCLUDE)
	find "$(ARTIFACTS_DIR)/python/agesweep" -name __pycache__ -prune -exec rm -rf {} +

## PlottingLayer (CollateResults only, for report.html's plot): the `plot` extra (matplotlib, numpy, ...),
## less what the report never loads: numpy's test suites, matplotlib's sample data, and Pillow's optional
## AVIF codec (PIL/_avif and its libavif, ~8 MB; Pillow then reports AVIF unsupported; the plot is a PNG).
build-PlottingLayer:
	$(call layer_pip,plot)
	find "$(ARTIFACTS_DIR)/python" -type d -name tests -path '*/python/numpy/*' -prune -exec rm -rf {} +
	cd "$(ARTIFACTS_DIR)/python" && rm -rf matplotlib/tests matplotlib/mpl-data/sample_data PIL/_avif.*.so pillow.libs/libavif-*
