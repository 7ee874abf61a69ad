# The README's two commands: `make book` and `make test`. Each sets up .venv once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: setup book test test-fast bench lint lock grade grade-demo exercises clean help

help:
	@echo "make book   - set up .venv (once) and build the book into _build/html"
	@echo "make test   - set up .venv (once), build the book, run every test"
	@echo "make bench  - run the benchmarks (prints ratios)"
	@echo "make grade-demo - the instructor pipeline on sample submissions"
	@echo "make grade ASSIGNMENT=ex04_backward JOBS=4 - autograde a class in parallel"
	@echo "make lock   - refresh requirements.lock from pyproject.toml (needs the package index)"

LOCK := requirements.lock

# Installs the exact versions of the lock file, then the course's two packages (editable,
# no dependencies: the lock has them all). Re-installs only when pyproject.toml or the
# lock changes; a second run installs nothing.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
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

exercises: setup
	$(PY) -m tools.build_exercises

lint: setup
	$(VENV)/bin/ruff check .

# Refresh the lock file after changing the dependencies in pyproject.toml (needs the
# package index), then commit requirements.lock. CI and `make setup` install from it.
lock: setup
	$(VENV)/bin/uv pip compile pyproject.toml --extra course --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --no-emit-package backprop-course \
	  --upgrade --quiet -o $(LOCK)

clean:
	rm -rf _build .pytest_cache .hypothesis
