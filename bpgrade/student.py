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
from .repair import compute_checksum

TIMEOUT = 15
"""Seconds per cell, as the course's grader (``nbgrader_config.py``)."""
KERNEL = "python3"
INSTALL_HINT = ("pip install 'backprop-course[students]' (the course's wheel, from the "
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


def _label(index: int, cell) -> str:
    gid = _meta(cell).get("grade_id")
    return f"cell {index + 1} ({gid})" if gid else f"cell {index + 1} (your own cell)"


def edited_cells(nb) -> list[str]:
    """The locked cells (test cells, set-up cells, the instructions) whose content is no
    longer what was released: their nbgrader checksum does not match."""
    edited = []
    for i, cell in enumerate(nb.cells):
        stored = _meta(cell).get("checksum")
        if _is_locked(cell) and stored and compute_checksum(cell) != stored:
            edited.append(_label(i, cell))
    return edited


def error_line(output) -> str:
    """The last line of an error output, as the traceback ends: ``Name: message``."""
    ename, evalue = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
    if ename == "NotImplementedError" and not evalue:
        return "NotImplementedError: not written yet (the answer cell still has its stub)"
    text = f"{ename}: {' '.join(evalue.split())}" if evalue else ename
    return text if len(text) <= 300 else text[:297] + "..."


def _first_error(cell, timeout: int) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "KeyboardInterrupt":  # nbclient's interrupt on timeout
                return (f"TimeoutError: did not finish within {timeout} s, the grader's limit "
                        "per cell (it was stopped)")
            return error_line(output)
    return None


def apply_integrity(nb) -> list[str]:
    """Replace the answer cells the grader would refuse to run, as
    :class:`bpgrade.nbgrader_plugins.CheckIntegrity` does; return their labels."""
    forbidden = forbidden_names([c for c in nb.cells
                                 if c.cell_type == "code" and _meta(c).get("solution")])
    refused = refuse_cells(nb.cells, forbidden,
                           lambda c: not (_is_test(c) or _is_locked(c)))
    return [f"{_label(i, cell)}: " + "; ".join(map(str, violations))
            for i, cell, violations in refused]


def run(path: Path, timeout: int = TIMEOUT, kernel_name: str = KERNEL) -> Report:
    """Run the notebook at ``path`` from a fresh kernel and grade its visible tests."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    original = nbformat.read(path, as_version=4)
    report = Report(edited=edited_cells(original))
    nb = copy.deepcopy(original)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    report.refused = apply_integrity(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=True, record_timing=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    try:
        # the kernel's own log (a warning about TCP) is not the student's business: what
        # goes wrong in a cell comes back as the cell's error, a dead kernel as below.
        # The checks speak the notebook's language, as they do when it is graded.
        env = {**os.environ, language.ENV: language.of_notebook(original, str(path))}
        client.execute(stderr=subprocess.DEVNULL, env=env)
    except DeadKernelError as exc:
        report.errors.append(f"the kernel died ({exc}); the cells after it did not run")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        error = _first_error(cell, timeout)
        meta = _meta(cell)
        if _is_test(cell):
            possible = float(meta.get("points", 0) or 0)
            ran = cell.get("execution_count") is not None or cell.get("outputs")
            if error is None and not ran:
                error = "not run (the kernel stopped before this cell)"
            report.tests.append(TestResult(meta.get("grade_id", f"cell {i + 1}"),
                                           0.0 if error else possible, possible, error))
        elif error is not None:
            report.errors.append(f"{_label(i, cell)} raised {error}")
    return report


def _points(x: float) -> str:
    return f"{x:g}"


def render(name: str, report: Report) -> str:
    lines = [f"{name}: run from a fresh kernel, top to bottom, as the grader runs it"]
    width = max([len(t.function) for t in report.tests] + [8])
    for t in report.tests:
        status = "ok  " if t.error is None else "FAIL"
        score = f"{_points(t.earned)}/{_points(t.possible)}"
        lines.append(f"  {status} {t.function:<{width}} {score:>7}"
                     + (f"  {t.error}" if t.error else ""))
    for label in report.refused:
        lines.append(f"  REFUSED {label} (the grader does not run this cell)")
    for label in report.edited:
        lines.append(f"  EDITED  {label}: it is not the released cell; the grader uses the "
                     "original (download the notebook again and copy your answers across)")
    for message in report.errors:
        lines.append(f"  ERROR   {message}")
    failed = sum(t.error is not None for t in report.tests)
    lines.append(f"visible tests: {_points(report.earned)}/{_points(report.possible)} points, "
                 f"{len(report.tests) - failed} of {len(report.tests)} test cells pass")
    if not report.tests:
        lines.append("FAIL: no test cells found: is this a released exercise notebook?")
    elif report.ok:
        lines.append("PASS: every visible test passes (the grader adds hidden tests on other "
                     "inputs)")
    else:
        lines.append("FAIL: fix the lines above before you submit")
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
    if not args.notebook.is_file():
        print(f"{args.notebook}: no such file", file=sys.stderr)
        return 2
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat
        from jupyter_client.kernelspec import NoSuchKernel
    except ImportError as exc:
        print(f"the check needs {exc.name}: {INSTALL_HINT}", file=sys.stderr)
        return 2
    try:
        report = run(args.notebook, timeout=args.timeout)
    except nbformat.reader.NotJSONError as exc:
        print(f"{args.notebook}: not a notebook ({exc})", file=sys.stderr)
        return 2
    except NoSuchKernel:
        print(f"no {KERNEL!r} Jupyter kernel here: {INSTALL_HINT}", file=sys.stderr)
        return 2
    print(render(args.notebook.name, report))
    return 0 if report.ok else 1
