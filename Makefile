# imageapi — the two commands of the quick start, and a few more.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml contrib/hello/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e contrib/hello
	touch $(STAMP)

## Set up (venv, install, migrate, secret, first user, demo library) and serve on BIND_URL.
serve: $(STAMP)
	$(BIN)/imageapi serve

## Run the test suite (benchmarks excluded; they are run on demand).
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Benchmarks: make bench BENCH=rescan  (see tests/benchmarks/)
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/$(BENCH).py

clean-data:
	rm -rf data
