# Breakwater: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

DEMO_ARGS ?=
BENCH_ARGS ?=
# The console's chart library, vendored from npm (nothing is fetched at run time).
UPLOT_VERSION ?= 1.6.32
UPLOT_DIR := console/static/vendor/uplot

.PHONY: install test lint demo bench up down clean help vendor-uplot

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv with Breakwater and its test tools

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

demo: $(STAMP) ## stack up, seed, the headline experiments, a verdict table, the report, stack down
	$(BIN)/breakwater demo $(DEMO_ARGS)

bench: $(STAMP) ## what Breakwater costs and how it scales: bench/results/latest.json, bench/README.md
	$(BIN)/python -m bench $(BENCH_ARGS)

up: $(STAMP) ## the whole shop on 127.0.0.1 (gateway on :8080), seeded
	$(BIN)/breakwater up
	$(BIN)/breakwater seed

down: $(STAMP) ## stop what `make up` or `breakwater up` started
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
