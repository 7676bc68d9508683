# Everything a fresh clone needs: python3, node and npm. `make test` and `make run` set up the rest.
PYTHON ?= python3
# One virtual environment per interpreter: `make test PYTHON=python3.13` builds and uses .venv-3.13.
ifeq ($(PYTHON),python3)
VENV := .venv
else
VENV := .venv-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
endif
PY := $(VENV)/bin/python
SANDBOX := devtools/twilio-sandbox
STORAGE_EMULATOR := devtools/storage-emulator
# Kusto.Language, which the deployment checks parse the operator queries with.
KQL_ANALYZER := tests/deploy/kql
# checkov pins its own dependencies (an old pycep-parser among them), so it gets a virtual environment of its own,
# always on the default python3 whichever PYTHON the tests run on.
INFRA_VENV := .venv-infra
# mutmut, for `make mutation` alone: never built by `make setup` or `make test`.
MUTATION_VENV := .venv-mutation
MUTATION_CHILDREN ?= 2
MUTMUT := nice -n 19 $(MUTATION_VENV)/bin/mutmut

.PHONY: test run bench lint check-infra setup chromium mutation clean

test: setup $(INFRA_VENV)/.installed $(KQL_ANALYZER)/node_modules/.installed chromium
	$(PY) -m pytest

# The deployment checks alone (part of `make test`), tests/deploy: Bicep parsed and scanned, requirements resolved per
# Python, package contents, the azd hooks and the number-wiring tool, and the app on Azure's 3.13 runtime library.
check-infra: setup $(INFRA_VENV)/.installed $(KQL_ANALYZER)/node_modules/.installed
	$(PY) -m pytest tests/deploy

# `make run PORT=7072 PRISM_PORT=4011 AZURITE_PORT=10003` when the defaults are taken.
PORT = 7071
PRISM_PORT = 4010
AZURITE_PORT = 10002

run: setup
	$(PY) -m devtools.host --port $(PORT) --prism-port $(PRISM_PORT) --azurite-port $(AZURITE_PORT) --note-address

bench: setup
	$(PY) -m bench

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

setup: $(VENV)/.installed $(SANDBOX)/node_modules/.installed $(STORAGE_EMULATOR)/node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "Setting up $(VENV): the Python packages (about 300 MB, 1 to 2 minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(INFRA_VENV)/.installed: requirements-infra.txt
	@echo "Setting up $(INFRA_VENV): checkov, for the deployment checks (about 300 MB, 1 to 3 minutes)..."
	python3 -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

# Prism and Twilio's OpenAPI spec, pinned by the committed lock file; never committed themselves.
$(SANDBOX)/node_modules/.installed: $(SANDBOX)/package.json $(SANDBOX)/package-lock.json
	@echo "Setting up the Twilio sandbox: Prism and Twilio's OpenAPI spec (about 150 MB, under a minute)..."
	$(PYTHON) -m devtools.npm $(SANDBOX)
	touch $@

# Azurite (the Azure Storage emulator), pinned the same way.
$(STORAGE_EMULATOR)/node_modules/.installed: $(STORAGE_EMULATOR)/package.json $(STORAGE_EMULATOR)/package-lock.json
	@echo "Setting up the storage emulator: Azurite (about 350 MB, about a minute)..."
	$(PYTHON) -m devtools.npm $(STORAGE_EMULATOR)
	touch $@

# Kusto.Language (Microsoft's KQL parser), pinned the same way.
$(KQL_ANALYZER)/node_modules/.installed: $(KQL_ANALYZER)/package.json $(KQL_ANALYZER)/package-lock.json
	@echo "Setting up the KQL analyzer: Kusto.Language (about 30 MB, under a minute)..."
	$(PYTHON) -m devtools.npm $(KQL_ANALYZER)
	touch $@

# Debian's headless Chromium, which renders the sandbox's page in the tests; installed as root when missing.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else echo "The sandbox page's tests need Debian's chromium: sudo apt-get install chromium"; fi; \
	fi

# Mutation testing of shared/ (see docs/CONTRIBUTING.md): not part of `make test` or CI. Results stay in
# mutants/, so a run tests only the functions changed since the last, and once more the survivors of
# earlier runs that tests/mutation-equivalents.txt does not list and the listed ones a run found killed
# (their verdicts cleared first: mutmut keeps a verdict until then).
mutation: $(MUTATION_VENV)/.installed $(SANDBOX)/node_modules/.installed $(STORAGE_EMULATOR)/node_modules/.installed
	mkdir -p mutants
	tar --exclude=node_modules --exclude=__pycache__ -cf - devtools | tar -xf - -C mutants
	ln -sfn $(CURDIR)/$(SANDBOX)/node_modules mutants/$(SANDBOX)/node_modules
	ln -sfn $(CURDIR)/$(STORAGE_EMULATOR)/node_modules mutants/$(STORAGE_EMULATOR)/node_modules
	$(MUTATION_VENV)/bin/python -m tests.mutation_score --forget
	$(MUTMUT) run --max-children $(MUTATION_CHILDREN)
	$(MUTATION_VENV)/bin/python -m tests.mutation_score

$(MUTATION_VENV)/.installed: requirements.txt requirements-dev.txt requirements-mutation.txt
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-mutation.txt
	touch $@

clean:
	rm -rf .venv .venv-3.* $(INFRA_VENV) $(SANDBOX)/node_modules $(STORAGE_EMULATOR)/node_modules $(KQL_ANALYZER)/node_modules .pytest_cache .mypy_cache .ruff_cache
