# Everything a fresh clone needs: python3, node and npm. `make test` and `make run` set up the rest.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SANDBOX := devtools/twilio-sandbox

.PHONY: test run bench lint setup clean

test: setup
	$(PY) -m pytest

run: setup
	$(PY) -m devtools.host

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

# Prism and Twilio's OpenAPI spec, pinned by the committed lock file; never committed themselves.
$(SANDBOX)/node_modules/.installed: $(SANDBOX)/package.json $(SANDBOX)/package-lock.json
	cd $(SANDBOX) && npm ci --no-audit --no-fund --silent
	touch $@

clean:
	rm -rf $(VENV) $(SANDBOX)/node_modules .pytest_cache .mypy_cache .ruff_cache
