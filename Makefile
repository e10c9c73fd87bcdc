# Breakwater: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test lint demo clean

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

clean: ## remove local state (databases, logs, traces, reports), keep .venv
	rm -rf var reports
