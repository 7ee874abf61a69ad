# The README's two commands: `make book` and `make test`. Each sets up .venv once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: setup book test test-fast bench lint grade grade-demo clean help

help:
	@echo "make book   - set up .venv (once) and build the book into _build/html"
	@echo "make test   - set up .venv (once), build the book, run every test"
	@echo "make bench  - run the benchmarks (prints ratios)"
	@echo "make grade-demo - the instructor pipeline on sample submissions"
	@echo "make grade ASSIGNMENT=ex04_backward JOBS=4 - autograde a class in parallel"

# Re-installs only when pyproject.toml changes; a second run installs nothing.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[course]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (bplib course)" >/dev/null
	$(PY) -m bpgrade install-kernel --sys-prefix >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

book: setup
	$(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going

# --dist loadfile: each test module on one worker, so a module's expensive course fixture is
# built once (pytest 9.2 broke xdist's loadgroup: pytest-xdist issue #1386).
test: book
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $(JOBS) --dist loadfile --durations=25

test-fast: setup
	$(VENV)/bin/pytest -n $(JOBS) --dist loadfile -m "not slow"

bench: setup
	$(PY) -m bench

ASSIGNMENT ?=
grade: setup
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=ex04_backward [JOBS=4]"; exit 2; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m bpgrade autograde $(ASSIGNMENT) --jobs $(JOBS) $(if $(DB_URL),--db-url '$(DB_URL)')

grade-demo: setup
	$(PY) -m tools.grade_demo

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf _build .pytest_cache .hypothesis
