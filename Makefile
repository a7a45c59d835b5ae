# fmq_theory — the two commands a new user runs:  `make book`  and  `make test`;
# `make check` is the quick loop (property and unit tests only).
# Every target does its own set-up (virtual environment in .venv, data cache in data/).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
JOBS ?= 2

.PHONY: install data check test report book mathjax browser latex bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0   # CPU build on this kind of machine
	$(PY) -m pip install -q -e ".[test,book]"
	@rm -f $(VENV)/.installed-*
	@touch $@

data: install
	$(VENV)/bin/fmq data prepare

# The quick loop: property and unit tests, no book, no browser, no long runs (a few minutes).
check: install data latex
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -m "not slow and not book and not gpu" -q --ignore=tests/test_benchmarks_smoke.py

test: install data mathjax browser latex
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --durations=25

report: install
	$(VENV)/bin/fmq report

# --- the book (book/_config.yml, book/_toc.yml; output book/_build/html) -------------------
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_mathjax/mathjax/tex-mml-chtml.js

book: install data mathjax
	$(PY) -m fmq_book build

# MathJax served from the book itself (no CDN at read time): npm package, es5/ copied in.
mathjax: $(MATHJAX)

$(MATHJAX):
	npm install --no-save --no-audit --no-fund --prefix build/npm mathjax@$(MATHJAX_VERSION)
	rm -rf book/_mathjax/mathjax
	mkdir -p book/_mathjax
	cp -r build/npm/node_modules/mathjax/es5 book/_mathjax/mathjax

# Headless Debian Chromium for the book's browser test (installed when missing and root).
browser:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; \
	  else \
	    echo "make browser: chromium is missing; run 'sudo apt-get install -y chromium'" \
	         "(tests/test_book.py needs it)" >&2; \
	  fi; \
	fi

# pdflatex with booktabs for the test that compiles every `--format latex` output.
latex:
	@if ! command -v pdflatex >/dev/null || ! kpsewhich booktabs.sty >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends texlive-latex-base texlive-latex-recommended \
	      || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends texlive-latex-base texlive-latex-recommended; }; \
	  else \
	    echo "make latex: pdflatex is missing; run 'sudo apt-get install -y texlive-latex-base" \
	         "texlive-latex-recommended' (tests/test_cli_output.py needs it)" >&2; \
	  fi; \
	fi

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf book/_build .pytest_cache .hypothesis
