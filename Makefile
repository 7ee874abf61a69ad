# The README's two commands: `make book` and `make test`. Each sets up .venv once.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: setup notebooks wheel book gettext pdf test test-fast bench lint lock grade report grade-demo exercises clean help

help:
	@echo "make book   - set up .venv (once) and build the book into _build/html (中文版: _build/html/zh_CN)"
	@echo "make gettext - after editing a page: update the Chinese catalogs (locales/zh_CN)"
	@echo "make wheel  - build the course's wheel (bplib, bpgrade) into _build/dist (make book does it)"
	@echo "make test   - set up .venv (once), build the book, run every test"
	@echo "make pdf    - build the site, then the book as one PDF: _build/pdf/book.pdf"
	@echo "make bench  - run the benchmarks (prints ratios)"
	@echo "make grade-demo - the instructor pipeline on sample submissions"
	@echo "make grade ASSIGNMENT=ex04_backward JOBS=4 - autograde a class on Dask (SCHEDULER=tcp://host:8786 for a cluster)"
	@echo "make report ASSIGNMENT=ex04_backward - what the class got wrong: reports/report-*.html and .csv"
	@echo "             (several: ASSIGNMENT='ex04_backward ex07_autodiff'; ANONYMISE=1; DB_URL=...)"
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

# axe-core (npm), which the accessibility tests inject into every page of the site; read
# from .venv/node at test time (no network). Without npm it is skipped with a message (the
# tests then skip; in CI, where .ci/run installs npm, they must run).
AXE_VERSION := 4.14.1
AXE := $(VENV)/node/node_modules/axe-core/axe.min.js
$(AXE):
	@if command -v npm >/dev/null 2>&1; then \
	  npm install --prefix $(VENV)/node --no-audit --no-fund --silent axe-core@$(AXE_VERSION); \
	else echo "npm not found: axe-core not installed (apt-get install nodejs npm)"; fi

setup: $(STAMP) $(AXE)

# The chapters' .ipynb twins that the Colab and Binder buttons open, and binder/requirements.txt
# (commit them; tests/test_launch.py fails when they are stale).
notebooks: setup
	$(PY) -m tools.build_notebooks

# The course's wheel (bplib and bpgrade only: no solutions, tests or tools), which the
# exercises page offers for download; built before the book, which links it. Rebuilt only
# when the content of what it packs changed (bplib/, bpgrade/, pyproject.toml, README.md:
# a key beside it in _build/dist), from a copy, moved into place with one rename
# (tools/wheel.py), so that a book build running alongside never sees a half-written file.
wheel: setup
	$(PY) -m tools.wheel

# Both editions: English into _build/html, then the Chinese edition (中文版) from the same
# sources and the same executed notebooks (locales/zh_CN/*.po; nothing runs again), built
# in _build/zh_CN/html (MyST-NB writes jupyter_execute/ beside the output folder: not in
# the English site) and synced into _build/html/zh_CN, only the files that changed. Both
# builds are strict (-W -n --keep-going). See CONTRIBUTING.md. With nothing changed,
# `make book` builds no wheel, writes no page and copies no file (python -m bench book);
# when no file the book reads changed since both editions were last built (their content:
# tools/bookkey.py), it does not even start Sphinx. The key is removed before a build and
# written only after both editions succeeded.
book: wheel
	@if $(PY) -m tools.bookkey --fresh; then exit 0; fi; \
	rm -f _build/.book-sha256 && \
	$(VENV)/bin/jupyter-book build . --builder html -W -n --keep-going && \
	$(PY) -m tools.i18n html && \
	$(PY) -m tools.bookkey --write

# After editing an English page: extract its messages and update the catalogs
# (new messages untranslated, changed ones fuzzy), then translate them (CONTRIBUTING.md).
gettext: setup
	$(PY) -m tools.i18n gettext

# The PDF of the whole book, through XeLaTeX (TeX Live and Noto CJK from Debian: see
# .ci/run), into _build/pdf/book.pdf, then copied into the site, whose intro page links
# book.pdf. Its Sphinx tree is _build/pdf/_build (the site's doctrees stay untouched) and
# it shares the site's executed-notebook cache, which `book` has just brought up to date:
# no chapter runs again.
# Without XeLaTeX `make pdf` stops; `make test` goes on (PDF_OPTIONAL) with no PDF, and
# the PDF test is skipped, except in CI, where it fails.
PDF_WORK := _build/pdf/_build
TEX_DEBS := texlive-xetex latexmk texlive-latex-extra texlive-fonts-recommended \
  texlive-lang-chinese texlive-science fonts-freefont-otf fonts-noto-cjk poppler-utils
pdf: book
	@rm -f _build/pdf/book.pdf _build/html/book.pdf
	@if ! command -v xelatex >/dev/null || ! command -v latexmk >/dev/null; then \
	  echo "make pdf needs XeLaTeX: apt-get install $(TEX_DEBS)" >&2; \
	  test "$(PDF_OPTIONAL)" = 1; \
	else \
	  set -ex; \
	  mkdir -p $(PDF_WORK); \
	  ln -sfn ../../.jupyter_cache $(PDF_WORK)/.jupyter_cache; \
	  $(VENV)/bin/jupyter-book build . --builder pdflatex --path-output _build/pdf -W -n --keep-going; \
	  cp $(PDF_WORK)/latex/book.pdf _build/pdf/book.pdf; \
	  cp _build/pdf/book.pdf _build/html/book.pdf; \
	fi

# --dist loadfile: each test module on one worker, so a module's expensive course fixture is
# built once (pytest 9.2 broke xdist's loadgroup: pytest-xdist issue #1386). The files that
# hold a worker longest are handed out first, and a file that reads another's course goes
# to its worker (tests/scheduling.py; refresh its table from --durations=0).
# The PDF test (tests/test_pdf.py) reads _build/pdf/book.pdf: `pdf` builds the site first.
test: PDF_OPTIONAL := 1
test: book pdf
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $(JOBS) --dist loadfile --durations=25

# The inner loop: no book, no nbgrader, no browser (tests/conftest.py also leaves out every
# test that reads the site or builds the book's messages).
test-fast: setup
	$(VENV)/bin/pytest -n $(JOBS) --dist loadfile -m "not slow"

bench: setup
	$(PY) -m bench

ASSIGNMENT ?=
grade: setup
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=ex04_backward [JOBS=4]"; exit 2; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m bpgrade autograde $(ASSIGNMENT) --jobs $(JOBS) $(if $(DB_URL),--db-url '$(DB_URL)') $(if $(SCHEDULER),--scheduler '$(SCHEDULER)'); \
	  status=$$?; echo "what the class got wrong: make report ASSIGNMENT=$(ASSIGNMENT)"; exit $$status

# The class report of graded assignments (bpgrade/report.py): an offline HTML page and a
# CSV in reports/, and a summary on the terminal. Several assignments, in teaching order,
# also show the mistakes that persist from one into the next.
report: setup
	@test -n "$(ASSIGNMENT)" || { echo "usage: make report ASSIGNMENT=ex04_backward [ASSIGNMENT='ex04_backward ex07_autodiff'] [ANONYMISE=1] [DB_URL=...]"; exit 2; }
	$(PY) -m bpgrade report $(ASSIGNMENT) $(if $(DB_URL),--db-url '$(DB_URL)') $(if $(ANONYMISE),--anonymise)

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
