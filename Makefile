# Integration hub: `make run` and `make test` work on a fresh machine with Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

# Development defaults; production sets its own environment and does not use this file.
export DEBUG ?= true
# Where `make run` and `make demo` listen: make run PORT=8080
PORT ?= 8000

.PHONY: run demo test test-browser screenshots lint bench messages venv dev clean check-python

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.x)")'

$(PY): | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@ $(STAMP)

venv: $(STAMP)
dev: $(DEV_STAMP)

run: $(STAMP)
	$(PY) manage.py hub_bootstrap
	HUB_CONSOLE_URL=$${HUB_CONSOLE_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py hub_run 127.0.0.1:$(PORT)

# The demo: the sandbox partners, examples/demo.yaml, the hub, and a scenario of payments;
# RECIPE=payment|booking|double-opt-in|support|refund runs one of examples/recipes/ instead.
demo: $(STAMP)
	SANDBOX_ENABLED=true $(PY) manage.py hub_bootstrap
	SANDBOX_ENABLED=true HUB_CONSOLE_URL=$${HUB_CONSOLE_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py demo --addrport 127.0.0.1:$(PORT) $(if $(RECIPE),--recipe $(RECIPE))

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The console in Chromium (Debian's: apt-get install chromium), driven by Playwright.
test-browser: $(DEV_STAMP)
	@command -v chromium >/dev/null || { echo "test-browser needs Chromium: apt-get install chromium"; exit 1; }
	HUB_BROWSER_TESTS=1 $(PY) -m pytest tests/browser $(PYTEST_ARGS)

# The screenshots of docs/getting-started.md, taken by the browser tests.
screenshots: $(DEV_STAMP)
	mkdir -p docs/img
	HUB_SCREENSHOTS=docs/img HUB_BROWSER_TESTS=1 $(PY) -m pytest tests/browser -k "getting_started or incident or workflow_run" $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The French catalogue: collect the marked strings, then (after translating the new entries of
# integrations_site/locale/fr/LC_MESSAGES/django.po) compile it. Needs gettext's tools.
messages: $(DEV_STAMP)
	$(PY) manage.py makemessages -l fr --ignore=".venv/*" --ignore="tests/*" --ignore="var/*" --ignore="build/*"
	$(PY) manage.py compilemessages -l fr --ignore=".venv/*" --ignore="build/*"

clean:
	rm -rf $(VENV) var/test_hub.sqlite3*

bench: $(DEV_STAMP)
	$(PY) -m tests.bench $(ARGS)
