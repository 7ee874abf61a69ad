"""``python -m bpgrade check NOTEBOOK.ipynb``: the student's check of an exercise.

It runs the notebook from a fresh ``python3`` kernel, top to bottom, the way the
grader does (the same integrity check of answer cells, the same per-cell time limit,
every cell run even after one fails), then prints one line per test cell (the
function it tests, its points, and for a failure the last line of its error: the
failing check's message) and the total of the visible tests. It exits non-zero when
a visible test fails, when a cell raises, or when a test cell (or another locked
cell) was edited: the checksum nbgrader stored in the released cell's metadata is
recomputed (:func:`bpgrade.repair.compute_checksum`, nbgrader's algorithm in the
standard library).

It speaks the notebook's language (:func:`bpgrade.language.of_notebook`): a Chinese
notebook gets its report, and its checks' messages, in Chinese; the verdict and the exit
status are the same in every language.

Needs ``nbclient`` and ``ipykernel`` (the ``students`` extra of ``backprop-course``),
never nbgrader: the cells' nbgrader metadata is read directly. They are imported when
the check runs: importing this module loads the standard library only. The output notebook is
not written anywhere; the student's file is left as it is.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import language
from .integrity import forbidden_names, refuse_cells
from .language import N_, text
from .language import render as words
from .repair import compute_checksum

TIMEOUT = 15
"""Seconds per cell, as the course's grader (``nbgrader_config.py``)."""
KERNEL = "python3"
INSTALL_HINT = N_("pip install 'backprop-course[students]' (the course's wheel, from the "
                  "Exercises page of the course site)")


@dataclass
class TestResult:
    grade_id: str
    earned: float
    possible: float
    error: str | None = None

    @property
    def function(self) -> str:
        return self.grade_id.removeprefix("test_")


@dataclass
class Report:
    tests: list[TestResult] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    language: str = language.ENGLISH

    @property
    def earned(self) -> float:
        return sum(t.earned for t in self.tests)

    @property
    def possible(self) -> float:
        return sum(t.possible for t in self.tests)

    @property
    def ok(self) -> bool:
        return (bool(self.tests) and all(t.error is None for t in self.tests)
                and not self.edited and not self.errors)


def _meta(cell) -> dict:
    meta = (cell.get("metadata") or {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _is_test(cell) -> bool:
    meta = _meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) \
        and not meta.get("solution")


def _is_locked(cell) -> bool:
    meta = _meta(cell)
    return not meta.get("solution") and (bool(meta.get("grade")) or bool(meta.get("locked")))


def _label(index: int, cell, lang: str) -> str:
    gid = _meta(cell).get("grade_id")
    if gid:
        return words(N_("cell {n} ({gid})"), {"n": index + 1, "gid": gid}, lang)
    return words(N_("cell {n} (your own cell)"), {"n": index + 1}, lang)


def edited_cells(nb, lang: str | None = None) -> list[str]:
    """The locked cells (test cells, set-up cells, the instructions) whose content is no
    longer what was released: their nbgrader checksum does not match."""
    lang = lang or language.of_notebook(nb)
    edited = []
    for i, cell in enumerate(nb.cells):
        stored = _meta(cell).get("checksum")
        if _is_locked(cell) and stored and compute_checksum(cell) != stored:
            edited.append(_label(i, cell, lang))
    return edited


def _error(ename: str, evalue, lang: str) -> str:
    return f"{ename}: {words(evalue, None, lang)}"


def error_line(output, lang: str = language.ENGLISH) -> str:
    """The last line of an error output, as the traceback ends: ``Name: message``."""
    ename, evalue = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
    if ename == "NotImplementedError" and not evalue:
        return _error(ename, N_("not written yet (the answer cell still has its stub)"), lang)
    line = f"{ename}: {' '.join(evalue.split())}" if evalue else ename
    return line if len(line) <= 300 else line[:297] + "..."


def _first_error(cell, timeout: int, lang: str = language.ENGLISH) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "KeyboardInterrupt":  # nbclient's interrupt on timeout
                return _error("TimeoutError", text(
                    "did not finish within {timeout} s, the grader's limit per cell (it was "
                    "stopped)", timeout=timeout), lang)
            return error_line(output, lang)
    return None


def apply_integrity(nb, lang: str | None = None) -> list[str]:
    """Replace the answer cells the grader would refuse to run, as
    :class:`bpgrade.nbgrader_plugins.CheckIntegrity` does; return their labels."""
    lang = lang or language.of_notebook(nb)
    forbidden = forbidden_names([c for c in nb.cells
                                 if c.cell_type == "code" and _meta(c).get("solution")])
    refused = refuse_cells(nb.cells, forbidden,
                           lambda c: not (_is_test(c) or _is_locked(c)), lang)
    sep = language.translate(N_("; "), lang)
    return [words(N_("{cell}: {reasons}"), {"cell": _label(i, cell, lang), "reasons": sep.join(
        words(v.text(), None, lang) for v in violations)}, lang)
        for i, cell, violations in refused]


def run(path: Path, timeout: int = TIMEOUT, kernel_name: str = KERNEL) -> Report:
    """Run the notebook at ``path`` from a fresh kernel and grade its visible tests."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    original = nbformat.read(path, as_version=4)
    lang = language.of_notebook(original, str(path))
    report = Report(edited=edited_cells(original, lang), language=lang)
    nb = copy.deepcopy(original)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    report.refused = apply_integrity(nb, lang)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    try:
        # the kernel's own log (a warning about TCP) is not the student's business: what
        # goes wrong in a cell comes back as the cell's error, a dead kernel as below.
        # The checks speak the notebook's language, as they do when it is graded.
        client.execute(stderr=subprocess.DEVNULL, env={**os.environ, language.ENV: lang})
    except DeadKernelError as exc:
        report.errors.append(words(N_("the kernel died ({error}); the cells after it did not "
                                    "run"), {"error": exc}, lang))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = _first_error(cell, timeout, lang)
        meta = _meta(cell)
        if _is_test(cell):
            possible = float(meta.get("points", 0) or 0)
            ran = cell.get("execution_count") is not None or cell.get("outputs")
            if error is None and not ran:
                error = words(N_("not run (the kernel stopped before this cell)"), None, lang)
            report.tests.append(TestResult(meta.get("grade_id", f"cell {i + 1}"),
                                           0.0 if error else possible, possible, error))
        elif error is not None:
            report.errors.append(words(N_("{cell} raised {error}"),
                                     {"cell": _label(i, cell, lang), "error": error}, lang))
    return report


def _points(x: float) -> str:
    return f"{x:g}"


def _width(s: str) -> int:
    """Columns ``s`` takes in a terminal (a Chinese character takes two)."""
    return sum(2 if "\u2e80" <= ch <= "\uffef" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def render(name: str, report: Report) -> str:
    """The report, in the notebook's language (``report.language``)."""
    lang = report.language

    def line(template: str, **fields) -> str:
        return words(template, fields, lang)

    status = {key: line(key) for key in (N_("ok"), N_("FAIL"), N_("REFUSED"), N_("EDITED"),
                                         N_("ERROR"))}
    column = max(_width(s) for s in status.values())
    lines = [line(N_("{name}: run from a fresh kernel, top to bottom, as the grader runs it"),
                  name=name)]
    width = max([len(t.function) for t in report.tests] + [8])
    for t in report.tests:
        score = f"{_points(t.earned)}/{_points(t.possible)}"
        lines.append(f"  {_pad(status['ok' if t.error is None else 'FAIL'], column)} "
                     f"{t.function:<{width}} {score:>7}" + (f"  {t.error}" if t.error else ""))
    for label in report.refused:
        lines.append(f"  {_pad(status['REFUSED'], column)} "
                     + line(N_("{cell} (the grader does not run this cell)"), cell=label))
    for label in report.edited:
        lines.append(f"  {_pad(status['EDITED'], column)} " + line(N_(
            "{cell}: it is not the released cell; the grader uses the original (download the "
            "notebook again and copy your answers across)"), cell=label))
    for message in report.errors:
        lines.append(f"  {_pad(status['ERROR'], column)} {message}")
    failed = sum(t.error is not None for t in report.tests)
    lines.append(line(N_("visible tests: {earned}/{possible} points, {passed} of {total} test "
                         "cells pass"), earned=_points(report.earned),
                      possible=_points(report.possible), passed=len(report.tests) - failed,
                      total=len(report.tests)))
    if not report.tests:
        lines.append(line(N_("FAIL: no test cells found: is this a released exercise "
                             "notebook?")))
    elif report.ok:
        lines.append(line(N_("PASS: every visible test passes (the grader adds hidden tests "
                             "on other inputs)")))
    else:
        lines.append(line(N_("FAIL: fix the lines above before you submit")))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bpgrade check",
        description="Run an exercise notebook from a fresh kernel as the grader does and "
                    "report its visible tests; exit 1 unless every one passes.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=TIMEOUT,
                        help=f"seconds per cell (default {TIMEOUT}, as the grader)")
    args = parser.parse_args(argv)
    # before the notebook is read: the language of its name, else of this shell (a Colab
    # cell's `!python -m bpgrade check` inherits the notebook's BPGRADE_LANG)
    lang = language.of_assignment(args.notebook.name)
    lang = lang if lang != language.ENGLISH else language.current()
    if not args.notebook.is_file():
        print(words(N_("{path}: no such file"), {"path": args.notebook}, lang), file=sys.stderr)
        return 2
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat
        from jupyter_client.kernelspec import NoSuchKernel
    except ImportError as exc:
        print(words(N_("the check needs {module}: {hint}"),
                  {"module": exc.name, "hint": INSTALL_HINT}, lang), file=sys.stderr)
        return 2
    try:
        report = run(args.notebook, timeout=args.timeout)
    except nbformat.reader.NotJSONError as exc:
        print(words(N_("{path}: not a notebook ({error})"), {"path": args.notebook, "error": exc},
                  lang), file=sys.stderr)
        return 2
    except NoSuchKernel:
        print(words(N_("no {kernel} Jupyter kernel here: {hint}"),
                  {"kernel": repr(KERNEL), "hint": INSTALL_HINT}, lang), file=sys.stderr)
        return 2
    print(render(args.notebook.name, report))
    return 0 if report.ok else 1
