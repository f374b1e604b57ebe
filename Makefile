# Every target sets up what it needs: a fresh machine needs only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install test test-slow lint format benchmark bench-embed clean

install: $(INSTALLED)

$(INSTALLED): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[bench,train,dev]"
	touch $(INSTALLED)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# quick suite (what CI and README call); slow end-to-end checks are in test-slow
test: lint
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

bench-embed: install
	$(PY) benchmarks/bench_embed.py

benchmark: bench-embed

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
