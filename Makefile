# Everything a fresh clone needs: python3, node and npm. `make test` and `make run` set up the rest.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SANDBOX := devtools/twilio-sandbox
# checkov pins its own dependencies (an old pycep-parser among them), so it gets a virtual environment of its own.
INFRA_VENV := .venv-infra

.PHONY: test run bench lint check-infra setup clean

test: setup $(INFRA_VENV)/.installed
	$(PY) -m pytest

# The deployment checks alone (part of `make test`): Bicep parsed and scanned, requirements resolved per Python, package contents.
check-infra: setup $(INFRA_VENV)/.installed
	$(PY) -m pytest tests/test_infra.py tests/test_requirements.py tests/test_funcignore.py

# `make run PORT=7072 PRISM_PORT=4011` when the defaults are taken.
PORT = 7071
PRISM_PORT = 4010

run: setup
	$(PY) -m devtools.host --port $(PORT) --prism-port $(PRISM_PORT)

bench: setup
	$(PY) -m bench

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

setup: $(VENV)/.installed $(SANDBOX)/node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(INFRA_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# Prism and Twilio's OpenAPI spec, pinned by the committed lock file; never committed themselves.
$(SANDBOX)/node_modules/.installed: $(SANDBOX)/package.json $(SANDBOX)/package-lock.json
	cd $(SANDBOX) && npm ci --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(SANDBOX)/node_modules .pytest_cache .mypy_cache .ruff_cache
