# imageapi — the two commands of the quick start, and a few more.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test lint bench clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The server's own dependencies only: the test tools (pytest, ruff, psycopg, the OpenAPI
# client generator and the pydantic it brings, which Litestar loads into every serving
# process once it is installed) come with the first `make test`.
$(STAMP): pyproject.toml contrib/hello/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . -e contrib/hello
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

## Set up (venv, install, migrate, secret, first user, demo library) and serve on BIND_URL.
serve: $(STAMP)
	$(BIN)/imageapi serve

## Run the test suite (benchmarks excluded; they are run on demand).
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Benchmarks: make bench BENCH=rescan  (see tests/benchmarks/)
bench: $(TEST_STAMP)
	$(BIN)/python tests/benchmarks/$(BENCH).py

clean-data:
	rm -rf data
