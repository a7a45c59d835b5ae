# fmq_theory — the two commands a new user runs:  `make book`  and  `make test`.
# Every target does its own set-up (virtual environment in .venv, data cache in data/).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
JOBS ?= 2

.PHONY: install data test report book bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0   # CPU build on this kind of machine
	$(PY) -m pip install -q -e ".[test,book]"
	@rm -f $(VENV)/.installed-*
	@touch $@

data: install
	$(PY) -m fmq_theory.harness.data prepare

test: install data
	$(PY) -m pytest -n $(JOBS) --dist loadgroup

report: install
	$(VENV)/bin/fmq report

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf book/_build .pytest_cache .hypothesis
