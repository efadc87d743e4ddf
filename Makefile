# Yimen — the two commands a newcomer needs are `make run` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint bench chaos demo migrate clean help

help:
	@echo "make run    - start NATS, the seven services, the simulator, the console and the gateway on :$${YIMEN_PORT:-8000}"
	@echo "             (REPLICAS=2 NATS_CLUSTER=3: two processes per service, a three-node JetStream cluster)"
	@echo "make test   - the whole test suite"
	@echo "make bench  - benchmarks (JSON + Markdown under bench/results)"
	@echo "make demo   - walk the happy path against a running 'make run'"
	@echo "make lint   - ruff, the import contracts and mypy (shared/ and every domain/)"

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# `make run REPLICAS=2 NATS_CLUSTER=3`: two processes of every service behind the gateway, three nats-servers
# forming a JetStream cluster (deploy/launcher.py).
run: $(STAMP)
	$(BIN)/python -m deploy.launcher $(if $(REPLICAS),--replicas $(REPLICAS)) $(if $(NATS_CLUSTER),--nats-cluster $(NATS_CLUSTER)) $(RUN_ARGS)

migrate: $(STAMP)
	$(BIN)/python -m shared.migrate upgrade

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos tests/chaos $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m deploy.demo

clean:
	rm -rf var
