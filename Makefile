# tocsin: two commands do all the set-up on a fresh machine.
#   make demo   create .venv, install, ensure a Chromium, run the pipeline on the sandbox
#   make test   the same set-up, then lint and the whole test suite
# Everything else here is a building block of those two.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup venv chromium test lint format demo bench clean

setup: venv chromium

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# A Chromium for Playwright: Debian's package when we are root and it is missing,
# else Playwright's own download (on a user's machine with internet).
chromium:
	@if command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium; then \
	  echo "chromium: $$(command -v chromium || echo /usr/bin/chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	  || (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null); \
	  echo "chromium: installed $$(command -v chromium)"; \
	else \
	  $(PY) -m playwright install chromium; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The suite in parallel (pytest-xdist; loadgroup keeps a module that shares a costly
# fixture on one worker, see tests/conftest.py), then the few `serial` tests alone.
# Four workers on two cores: the tests wait on subprocesses, Chromium and sockets about
# a third of the time, so two workers left the cores idle (docs/benchmarks.md#test-suite).
TEST_JOBS ?= 4
TEST_ARGS ?=

test: setup lint
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadgroup -m "not serial" $(TEST_ARGS)
	$(PY) -m pytest -q -m serial $(TEST_ARGS)

demo: setup
	$(VENV)/bin/tocsin demo

bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	@echo "run a benchmark with: $(PY) bench/<name>.py  (see docs/benchmarks.md)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
