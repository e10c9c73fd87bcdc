# Breakwater: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: install test lint demo bench up down clean help

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv with Breakwater and its test tools

lint: $(STAMP) ## ruff over the whole tree
	$(BIN)/ruff check .

test: $(STAMP) lint ## the whole test suite (unit, contract, integration)
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

help: ## this list
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

clean: ## remove local state (databases, logs, traces, reports), keep .venv
	rm -rf var reports
