# Two entry points for a fresh Debian machine with Python 3.11, 3.12 or 3.13:
#   make demo   installs what is missing, then runs the simulated Lạng Sơn fleet on SQLite
#   make test   installs what is missing (Python and Debian packages), then runs the whole suite
# The newest supported Python found is used; `make test PYTHON=python3.11 VENV=.venv-3.11` picks another.
PYTHON ?= $(shell ./scripts/find-python)
VENV   ?= .venv
BIN     = $(VENV)/bin
PORT   ?= 8000
SEED   ?= 1

.PHONY: demo test bench install debs lock clean messages

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "no python3.13, python3.12 or python3.11 found: install one (Debian: python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	# Python 3.11's bundled pip (23.2) refuses the lock: in --require-hashes mode it looks up an extra of a
	# pinned package (amqtt's pwdlib[argon2]) on the index instead of taking the pinned one. 24.2 does not.
	$(BIN)/python -m pip install --quiet "pip==24.2"

# Reinstall only when the lock file changes.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Debian packages the tests talk to (real peers, never mocks). Installed only when missing.
debs:
	@./scripts/ensure-debs

demo: install
	$(BIN)/monitor demo --port $(PORT) --seed $(SEED)

test: install debs
	$(BIN)/ruff check monitor tests
	$(BIN)/mypy monitor
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 -q

# Benchmarks print the service's figures beside a reference in the same run (see bench/README.md).
# `make bench` runs every one of them (bench/run_all.py, about half an hour on two cores) and prints one table.
bench: install
	./scripts/ensure-debs prometheus-blackbox-exporter prometheus-snmp-exporter wrk
	$(BIN)/python bench/run_all.py

# The message catalogue: extract every message of the code and the page templates (babel.cfg), then bring the
# English catalogue up to date; translate the new entries in monitor/locale/en/LC_MESSAGES/monitor.po.
# The service reads the .po as it is (nothing to compile); tests/test_catalogue.py fails on a missing English.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _stored --no-location --sort-output \
		--project lang-son-fleet-monitor -o monitor/locale/monitor.pot .
	$(BIN)/pybabel update -i monitor/locale/monitor.pot -d monitor/locale -D monitor -l en --no-fuzzy-matching -w 120
	$(BIN)/pybabel compile -i monitor/locale/en/LC_MESSAGES/monitor.po -o /dev/null --statistics

# One lock for every supported Python (markers keep aiosnmp, a test-only client, to CPython 3.11).
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
