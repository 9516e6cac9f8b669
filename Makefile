# Two commands on a fresh machine with Python 3.11, pip and apt: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, pinned: on a machine with a local CPU wheel this takes it; elsewhere set
# TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu" to avoid a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: install system-packages run lint test test-fast ui bench-ingest clean

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[embeddings,reranking,dev]"
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: install
	$(BIN)/python -m rag_assets.demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m rag_core.config_reference --check

# The Debian servers the tests start (PostgreSQL, Prometheus, Pushgateway, chromium): installed when missing.
system-packages:
	scripts/system_packages.sh

# Lint (ruff: pyflakes, pycodestyle, import order, bugbear), then the whole suite, slow tests included.
# In two runs that together hold every test: the unit tier's fast tests spread over every core (each has its own
# folder and Lite file), then the rest one at a time (they share one Milvus server, PostgreSQL, ports and processes).
test: lint system-packages
	$(BIN)/python -m pytest tests/unit -m "not slow" -n auto
	$(BIN)/python -m pytest -m slow

# The fast loop: the unit tier (tests/unit), without its tests on the real server or in processes of their own,
# spread over every core (pytest-xdist); each test has its own folder and Lite file, so they run side by side.
test-fast: lint
	$(BIN)/python -m pytest tests/unit -m "not slow" -n auto

ui: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench-ingest: install
	$(BIN)/python -m benchmarks.ingest_throughput

clean:
	rm -rf data .dagster
