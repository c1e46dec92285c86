# The two commands: `make up` runs Agora, `make test` runs the tests. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

BENCHMARKS := http_baseline auth catalog checkout payments flashsale flashsale_purchase scale crawler grpc pickup redis_outage logs hotpaths middleware

.PHONY: up test lint fmt bench fuzz clean scale-up scale-down

PROTOS := $(shell find proto -name '*.proto')

# Installing builds the package, and the build generates the gRPC stubs from proto/ (hatch_build.py):
# a changed .proto reinstalls.
$(INSTALLED): pyproject.toml hatch_build.py $(PROTOS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

up: $(INSTALLED)  ## Run everything: embedded PostgreSQL and Redis, demo data, API, worker, beat
	$(BIN)/agora up

# The production shape on this machine: nginx, 2 API processes, 2 workers, beat, a log loader and
# a crawler on the machine's PostgreSQL, Redis and RabbitMQ (override any of these in the
# environment).
SCALE_ENV := AGORA_DATABASE_URL=$${AGORA_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/agora_scale} \
	AGORA_REDIS_URL=$${AGORA_REDIS_URL:-redis://127.0.0.1:6379/2} \
	AGORA_BROKER_URL=$${AGORA_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//} \
	AGORA_TASK_QUEUE=$${AGORA_TASK_QUEUE:-agora-scale} \
	AGORA_DATA_DIR=$${AGORA_DATA_DIR:-.agora-scale}

scale-up: $(INSTALLED)  ## Run the production shape behind nginx on 127.0.0.1:8080 (Ctrl-C stops)
	@command -v nginx >/dev/null || bash deploy/install-tools.sh
	$(SCALE_ENV) $(BIN)/agora stack up --prometheus-port $${AGORA_PROMETHEUS_PORT:-9090}

scale-down: $(INSTALLED)  ## Stop what `make scale-up` started, in another terminal
	$(SCALE_ENV) $(BIN)/agora stack down

test: $(INSTALLED)  ## Run the test suite on the embedded services
	$(BIN)/pytest

lint: $(INSTALLED)  ## ruff, ruff format --check, mypy --strict, import-linter
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(INSTALLED)  ## Format and autofix
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(INSTALLED)  ## Run every benchmark, each printing its table
	@command -v wrk >/dev/null || bash deploy/install-tools.sh
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python -m bench.$$name || exit 1; done

fuzz: $(INSTALLED)  ## Fuzz every operation of a running server from its OpenAPI document (~4 min)
	scripts/fuzz

clean:  ## Remove the virtualenv and local data
	rm -rf $(VENV) .agora .agora-test .agora-fuzz .agora-scale .schemathesis
