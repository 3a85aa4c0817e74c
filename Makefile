# The two commands: `make run` (the embedded stack) and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENV := source scripts/env.sh &&

.PHONY: help install run stop status test test-distributed test-faults test-replay test-ui test-approvals test-serving replay-report lint format bench demo-data suites clean serve compose-check

help:
	@echo "make run | stop | status | serve | test | test-distributed | test-faults | test-replay | test-ui | test-approvals | test-serving | replay-report | bench | install | demo-data | suites | lint | clean | compose-check"

# The venv is rebuilt only when a requirements or constraints file changed since the last install.
install: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

demo-data: install
	@$(ENV) $(BIN)/python -m mlops scenario
	@$(ENV) $(BIN)/python -m mlops scenario sensors

suites: install
	@$(ENV) $(BIN)/python -m mlops suites write

run: install demo-data
	@scripts/stack.sh start

stop:
	@scripts/stack.sh stop

status:
	@scripts/stack.sh status

# The serving service (python -m mlops serve): the champion of PIPELINE (default churn) on SERVE_PORT
# (default 5001), following the registry, with /metrics; in the foreground. See docs/serving.md.
serve: install
	@scripts/serve.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two pytest workers (pytest-xdist), one test file each at a time: most of the suite waits on the real
# servers it starts (MLflow, S3, Airflow task runs), so two run in the time of about one and a half.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

# The DAGs on CeleryExecutor, PostgreSQL, Redis, S3 and MLflow, natively (scripts/distributed.sh);
# installs redis-server/PostgreSQL with apt-get when missing. See docs/scale-out.md.
test-distributed: install
	$(BIN)/python -m pytest -q tests/distributed $(PYTEST_ARGS)

# Real faults against real processes: S3 erroring or stopped mid-commit, writers killed, racing
# promotions, and on the distributed stack the scheduler SIGKILLed mid-backfill and MLflow stopped
# while train, score and monitor run (see docs/operations.md).
test-faults: install
	$(BIN)/python -m pytest -q -s tests/faults $(PYTEST_ARGS)

# Two replays of a short history on the embedded stack, at two speeds: byte-identical outcome tables.
test-replay: install
	$(BIN)/python -m pytest -q -s tests/replay $(PYTEST_ARGS)

# The Airflow UI in a real browser (Playwright, headless Debian chromium; installed with apt-get when
# missing, as Playwright's own browser download is not needed) against an embedded stack of its own.
test-ui: install
	@command -v chromium >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python -m pytest -q tests/ui $(PYTEST_ARGS)

# The approval gate end to end on an embedded stack of its own: approved through the REST API,
# rejected, timed out, and approved in a real browser under Required Actions (chromium as for test-ui).
test-approvals: install
	@command -v chromium >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python -m pytest -q -s tests/approvals $(PYTEST_ARGS)

# The serving service (python -m mlops serve) against a real MLflow server: scores equal the batch
# scorer's, a promotion under load, /metrics, the served zone, a broken signature (docs/serving.md).
test-serving: install
	$(BIN)/python -m pytest -q tests/serving $(PYTEST_ARGS)

# The per-day outcome table of the embedded stack's replay (champion, predictions, verdicts, trains).
replay-report: install
	@$(ENV) $(BIN)/python -m mlops report replay $(if $(PIPELINE),--pipeline $(PIPELINE))

bench: install
	$(ENV) $(BIN)/python -m bench.run

clean: stop
	@scripts/distributed.sh down
	rm -rf .local

# Validates docker-compose.yaml, with and without the gpu and monitoring profiles, against .env.example; needs no Docker
# engine. Installs Debian's docker-compose (1.29) when none is on PATH: the oldest Compose the file keeps to.
compose-check:
	@command -v docker-compose >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
	docker-compose --env-file .env.example -f docker-compose.yaml config -q
	docker-compose --env-file .env.example -f docker-compose.yaml --profile gpu config -q
	docker-compose --env-file .env.example -f docker-compose.yaml --profile monitoring config -q
