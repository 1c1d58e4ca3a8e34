# Two sacred commands: `make run` and `make test`. Both bootstrap the hash-pinned
# environment in .venv first; a second call reuses it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint dev bench lock clean chromium

# --compile-bytecode: every process then starts from .pyc files, also where PYTHONDONTWRITEBYTECODE
# stops Python from writing them on first import (as on this machine); without them each process compiled
# ~2,000 modules again, ~4 s of CPU (`smsseg run` on the demo: 14 -> 9 s; the suite: -15%).
$(STAMP): requirements.lock requirements-bootstrap.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-bootstrap.lock
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smsseg run

test: $(STAMP) lint chromium
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# tests/ui drives Debian's chromium. CI runs as root on a fresh machine, so there it is installed;
# anyone else gets a note here and the UI test is skipped, saying how to install it.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium for tests/ui (apt-get)"; \
			(export DEBIAN_FRONTEND=noninteractive; apt-get update -qq >/dev/null && \
			 apt-get install -y -qq chromium >/dev/null) \
			|| echo "chromium: apt-get install failed; tests/ui will be skipped (and fail under CI=true)" >&2; \
		else \
			echo "chromium: $(CHROMIUM) is missing and cannot be installed here (not root, or no apt-get);" \
				"tests/ui will be skipped. Install it with: sudo apt-get install chromium" >&2; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check pipeline bench tests
	$(BIN)/ruff format --check pipeline bench tests

dev: $(STAMP)
	$(BIN)/smsseg ui

# The standard sizes; BENCHMARKS.md says how to read data/bench-*.json. 5M needs ~60 GB free in $TMPDIR
# and a bigger DuckDB memory bound: SMSSEG_MEMORY_LIMIT=2.5GB make bench BENCH_SIZES=5000000
BENCH_SIZES ?= 100000 1000000
bench: $(STAMP)
	for n in $(BENCH_SIZES); do $(BIN)/smsseg bench --customers $$n --out data/bench-$$n.json || exit 1; done

# Re-pin after editing pyproject.toml: both locks carry hashes, never download addresses.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 requirements-bootstrap.in -o requirements-bootstrap.lock
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) data/build data/raw data/exports data/*.duckdb
