# rewrite-detector — developer entry points. `make run` = set up + start the service; `make test` = the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 50051
DATA_DIR ?= ./data
# The local CPU wheel of torch must be installed first: a looser requirement pulls GBs of CUDA wheels.
TORCH_PIN := torch==2.13.0

.PHONY: setup run serve test test-fast proto lint bench clean browser postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $@

setup: $(VENV)/.installed

run: setup serve

serve:
	HF_HUB_OFFLINE=1 $(BIN)/rewrite-detector serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests

test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow" tests

# Headless Chromium for tests/integration/test_report_browser.py (Debian package; idempotent; root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; \
	}
	@chromium --version 2>/dev/null

# PostgreSQL server binaries (initdb, postgres) for the shared-store tests, which start their own throwaway
# server (Debian package; idempotent; root or sudo).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends postgresql; \
	}
	@ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null || command -v postgres

proto: setup
	$(BIN)/python proto/generate.py client

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy client/rewrite_detector server/rewrite_detector_server models/rewrite_detector_models

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python bench/eval_pan.py --mode both --subset 200 --seed 1 --cache-dir bench/out/cache
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info
