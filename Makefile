# Two sacred commands: `make run` and `make test`. Both bootstrap the hash-pinned
# environment in .venv first; a second call reuses it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint dev bench lock clean

$(STAMP): requirements.lock requirements-bootstrap.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bootstrap.lock
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smsseg run

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests

dev: $(STAMP)
	$(BIN)/smsseg ui

bench: $(STAMP)
	$(BIN)/smsseg bench --customers 100000 --out data/bench-100k.json

# Re-pin after editing pyproject.toml: both locks carry hashes, never download addresses.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-bootstrap.in -o requirements-bootstrap.lock
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) data/build data/raw data/exports data/*.duckdb
