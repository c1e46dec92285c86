# The two commands: `make up` runs Agora, `make test` runs the tests. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

BENCHMARKS := http_baseline auth catalog checkout payments flashsale redis_outage

.PHONY: up test lint fmt bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

up: $(INSTALLED)  ## Run everything: embedded PostgreSQL and Redis, demo data, API, worker, beat
	$(BIN)/agora up

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
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python -m bench.$$name || exit 1; done

clean:  ## Remove the virtualenv and local data
	rm -rf $(VENV) .agora .agora-test
