# robodash — `make run` for a local demo, `make test` for the checks CI runs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Tests and benchmarks run on the machine's Postgres and Redis unless told otherwise. Their
# servers speak plain HTTP (tests/test_https.py runs the app behind Caddy's TLS instead).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/robodash
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	SECRET_KEY=test-secret-key-not-for-production \
	FIELD_ENCRYPTION_KEY=JfU0Xy2jQm6w5b1sXhJ1mQq8yq2k8ZrZkqv4lWm3c8Y= DEBUG=false \
	ROBODASH_BEHIND_TLS_PROXY=false

.PHONY: install run test lint typecheck compose-check bench screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
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

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
