# One list of the project's habits. Each target is the same command README.md shows.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint format bench token clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

run: $(BIN)/python          ## the embedded default: all services, one process, SQLite
	$(BIN)/pip install -q -e . && $(BIN)/mandet run

test: $(BIN)/python         ## the whole suite: unit, integration (SQLite + PostgreSQL), e2e (broker)
	$(BIN)/pip install -q -e '.[test]' && $(BIN)/python -m pytest

test-fast: $(BIN)/python    ## unit and embedded tests only, no PostgreSQL or broker
	$(BIN)/python -m pytest -m "not e2e and not integration" tests/unit

lint:
	$(BIN)/ruff check shared services mandet tests bench

format:
	$(BIN)/ruff format shared services mandet tests bench

bench:                      ## every scenario vs its same-run baseline -> bench/results/<date>.md
	$(BIN)/python -m bench

token:                      ## a dev admin token for the embedded default
	$(BIN)/mandet token --role admin

clean:
	rm -rf data .pytest_cache .hypothesis
