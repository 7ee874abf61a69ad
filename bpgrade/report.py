"""The class report: what a class got wrong, read from the gradebook and the autograded notebooks.

    python -m bpgrade report ASSIGNMENT [ASSIGNMENT ...] [--db-url URL] [--root DIR]
                                        [--out DIR] [--anonymise] [--book-url URL]

run in the course root after grading (``python -m bpgrade autograde`` or ``nbgrader
autograde``) prints a short summary and writes two files into ``reports/``:

* ``report-<assignments>.html``: one self-contained page (no script, no request: the
  figures are SVG inside the page) with, per assignment, the score distribution, the
  students graded, failed, repaired and late, the statistics of every graded cell with
  its item discrimination and a flag in plain words for a cell that misbehaves, and per
  function the mistakes ranked by the students who made them; with several assignments,
  the mistakes that persist from one into the next;
* ``report-<assignments>.csv``: the data of the page, one row per student and graded
  cell (a student whose grading failed: one row), for a spreadsheet.

Where the numbers come from
---------------------------
* **Scores** are the gradebook's (any URL the grader accepts: SQLite or PostgreSQL),
  cell by cell. The *final* score is the score minus the late penalty, never below 0,
  as the exports of :mod:`bpgrade.lms` write it.
* **What went wrong in a cell** is read from the student's own autograded notebook
  (``autograded/<student>/<assignment>/<notebook>.ipynb``), from the ``error`` outputs
  of the graded test cell that lost points, never from printed or displayed output
  and never from another student's notebook (:func:`cell_outcome`): a diagnosis of
  :mod:`bpgrade.checks` (``ename == "Diagnosis"``, the id on the last line of its
  message), else what the grader wrote there (a timeout, a resource limit, a dead
  kernel, a cell the integrity check refused), else the exception the student's code
  raised, by its type (``student-exception:TypeError``). When the test's error is a
  ``NameError`` (the function does not exist), the grader's outcome in the student's
  own cell of that function says why (it timed out, or was refused). Every id is one
  of the catalogue :mod:`bpgrade.checks.diagnoses`, which gives its message and the
  section of the book that teaches the point.
* **Failed** students have a submission but no grade: the class-wide grader's record
  ``.grading/<assignment>/<student>.failed`` gives the reason. **Repaired**: the
  autograded notebook's ``bpgrade_repairs`` metadata (written by the grader; a value a
  student planted is replaced before grading). **Late**: the gradebook's time late.

A notebook is hostile data: every string read from it, from the gradebook or from the
grader's records is escaped in the page (Jinja2's autoescape, and a Content Security
Policy that forbids any script or request), neutralised in the CSV (a text cell that
a spreadsheet would read as a formula is prefixed with ``'``, numbers stay numbers),
and stripped of control characters in the terminal. No link or special file is
followed: a notebook is read only if it is a regular file inside the course.

Item discrimination is the *corrected item-total correlation*: the Pearson correlation,
over the graded students, of a cell's score with the score of the rest of the
assignment. A cell that strong students fail and weak ones pass correlates negatively:
its instructions may mislead, or its test may be wrong.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import io
import json
import math
import os
import re
import secrets
import stat
import string
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .lms import spreadsheet_text
from .pool import FAILED_SUFFIX, REPAIRS_KEY, STATE_DIR, course_settings, redacted

TEMPLATES = Path(__file__).resolve().parent / "templates" / "report"
REPORTS_DIR = "reports"
MAX_NOTEBOOK_BYTES = 256 * 1024**2  # a larger autograded notebook is not read

DIAGNOSIS_ENAME = "Diagnosis"
DIAGNOSIS_LINE = re.compile(r"\[diagnosis: ([a-z0-9]+(?:-[a-z0-9]+)*)\]")
ID_MAX = 64

# Outcome ids (the catalogue's entries of kind "outcome").
STUDENT_EXCEPTION = "student-exception"
CELL_TIMEOUT = "cell-timeout"
RESOURCE_MEMORY = "resource-memory"
RESOURCE_PROCESSES = "resource-processes"
RESOURCE_TMP = "resource-tmp"
RESOURCE_OUTPUT = "resource-output"
INTEGRITY_REFUSAL = "integrity-refusal"
NOTEBOOK_REPAIRED = "notebook-repaired"
LATE_PENALTY = "late-penalty"
GRADING_FAILED = "grading-failed"
NO_ERROR_OUTPUT = "no-error-output"  # points lost with no error output (graded by hand ...)

FLAG_WORDS = {
    "negative": "negative discrimination: students who do well on the rest of the "
                "assignment do worse here; a misleading instruction or a wrong test?",
    "nobody": "nobody gets full marks: check the instructions and the test",
    "everybody": "everybody gets full marks: the test may check too little",
}


# --------------------------------------------------------------------------- hostile text


def printable(text: object, limit: int = 2000) -> str:
    """``text`` as a string without control or format characters (terminal escapes,
    bidirectional overrides), each shown as ``\\uXXXX``; cut to ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "…"
    return "".join(c if c in "\n\t" or unicodedata.category(c)[0] != "C"
                   else f"\\u{ord(c):04x}" for c in text)


def csv_cell(value: object) -> object:
    """A value as a CSV cell a spreadsheet will not evaluate: a number stays a number;
    a text gets a leading ``'`` where the exporters' :func:`bpgrade.lms.spreadsheet_text`
    would give it one (OWASP's rule: ``= + - @``, tab, CR, LF, NUL and their full-width
    forms, also after leading spaces)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    raw = "" if value is None else str(value)
    text = printable(raw)  # a carriage return is shown as \u000d
    # The exporters' rule (bpgrade.lms), on the text as written and as it came.
    risky = spreadsheet_text(raw) != raw or spreadsheet_text(text) != text
    return "'" + text if risky else text


def exception_name(ename: object) -> str:
    """An exception's type name as the report shows it: a dotted Python name of at most
    80 characters, else ``"?"`` (a notebook's ``ename`` is any string)."""
    name = str(ename) if isinstance(ename, str) else ""
    if 0 < len(name) <= 80 and all(part.isidentifier() for part in name.split(".")):
        return name
    return "?"


# ---------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Entry:
    """What the report shows of one id: its kind, message, section of the book, link."""

    id: str
    kind: str  # "mistake", "outcome", or "unknown" (an id the catalogue does not have)
    message: str = ""
    section: str = ""
    url: str = ""


def catalogue() -> dict[str, object]:
    """The diagnosis catalogue (:data:`bpgrade.checks.diagnoses.CATALOGUE`), or ``{}``
    where this version of the checks has none."""
    try:
        from .checks.diagnoses import CATALOGUE
    except ImportError:
        return {}
    return dict(CATALOGUE)


# What an exception of the student's code says to the instructor, by its type.
EXCEPTION_WORDS = {
    "NotImplementedError": "not answered: the stub's NotImplementedError is still there",
    "NameError": "a name is not defined: the function's cell failed, or was not run",
    "SyntaxError": "the function's cell does not parse",
    "?": "the student's code raised an exception whose type name is not a Python name",
}

# The one id the report adds itself (not a failure a notebook shows).
OWN_ENTRIES = {NO_ERROR_OUTPUT: Entry(
    NO_ERROR_OUTPUT, "outcome", "the cell lost points without an error output (a score "
    "given by hand, or no autograded notebook for it)")}


def entry(outcome: str, known: dict[str, object]) -> Entry:
    """The catalogue's entry of an outcome id; ``student-exception:TypeError`` is the
    entry ``student-exception`` (its section and link) with words for that type."""
    base, _, detail = outcome.partition(":")
    found = known.get(outcome) or known.get(base)
    if found is None:
        return OWN_ENTRIES.get(outcome, Entry(outcome, "unknown"))
    message = str(getattr(found, "message", ""))
    if base == STUDENT_EXCEPTION:
        message = EXCEPTION_WORDS.get(detail, f"the student's code raised {detail}")
    return Entry(outcome, str(getattr(found, "kind", "mistake")), message,
                 str(getattr(found, "section", "")), str(getattr(found, "url", "")))


def readable(template: str, function: str) -> str:
    """A catalogue message (a ``str.format`` template) as the report shows it for a whole
    class: ``{fn}`` is the function, any other field its name in angle quotes
    (``‹what› is wrong``)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return template
    out = []
    for literal, name, _, _ in parts:
        out.append(literal)
        if name is not None:
            out.append(function if name == "fn" else f"‹{name}›")
    return "".join(out)


# ------------------------------------------------------------------- what a cell's error says

# The grader's own errors, written after a cell by bpgrade.nbgrader_plugins (sandbox,
# limits), nbgrader (timeouts) or the integrity check's replacement code; the first kind
# a cell has, in this order, is its outcome (a limit the cell reached, then a refused
# cell, a dead kernel, a timeout). The words are those of bpgrade.kernel.budget_messages
# and death_reason (tests/test_report.py checks every one of them against this table).
GRADER_ERRORS = ("ResourceLimitError", "IntegrityError", "DeadKernelError", "NotRunError",
                 "CellTimeoutError")
_REASONS = [
    (re.compile(r"in total across its processes|memory (?:budget|limit)"), RESOURCE_MEMORY),
    (re.compile(r"processes/threads"), RESOURCE_PROCESSES),
    (re.compile(r"^/tmp is full"), RESOURCE_TMP),
    (re.compile(r"printed more than|output (?:limit|was cut)"), RESOURCE_OUTPUT),
    (re.compile(r"CPU time limit|time limit of|stopped answering"), CELL_TIMEOUT),
]
MEMORY_ERRORS = {"MemoryError", "_ArrayMemoryError"}


def _errors(cell: object) -> list[tuple[str, str]]:
    """``(ename, evalue)`` of each ``error`` output of a notebook cell (a dict from JSON)."""
    outputs = cell.get("outputs") if isinstance(cell, dict) else None
    found = []
    for out in outputs if isinstance(outputs, list) else []:
        if isinstance(out, dict) and out.get("output_type") == "error":
            ename, evalue = out.get("ename"), out.get("evalue")
            found.append((ename if isinstance(ename, str) else "",
                          evalue if isinstance(evalue, str) else ""))
    return found


def _grader_outcome(ename: str, evalue: str) -> str | None:
    """The outcome id of an error the grader writes, or None for any other error."""
    if ename not in GRADER_ERRORS:
        return None
    if ename == "IntegrityError":
        return INTEGRITY_REFUSAL
    if ename == "CellTimeoutError":
        return CELL_TIMEOUT
    reason = evalue.removeprefix("not run: ")
    for pattern, outcome in _REASONS:
        if pattern.search(reason):
            return outcome
    if ename == "ResourceLimitError":
        return RESOURCE_MEMORY if "memory" in reason else RESOURCE_PROCESSES
    return f"{STUDENT_EXCEPTION}:DeadKernelError"  # the student's code ended its kernel


def diagnosis_id(ename: str, evalue: str) -> str | None:
    """The id of a diagnosis error output (``ename == "Diagnosis"``, the message's last
    line exactly ``[diagnosis: <id>]``), else None."""
    if ename != DIAGNOSIS_ENAME:
        return None
    last = evalue.rstrip("\n").rsplit("\n", 1)[-1].strip()
    match = DIAGNOSIS_LINE.fullmatch(last)
    return match.group(1) if match and len(match.group(1)) <= ID_MAX else None


def cell_outcome(test_cell: object, own_cell: object = None) -> str:
    """Why a graded test cell lost points, from its ``error`` outputs only.

    In order: an error the grader wrote (a resource limit, a dead kernel, a timeout, a
    refused cell), a diagnosis of the checks, a memory error, else the type of the
    first exception (``student-exception:<type>``); :data:`NO_ERROR_OUTPUT` when the
    cell has no error output. When that exception is a ``NameError`` (the function was
    never defined) and the student's own cell of the function (``own_cell``, same
    notebook) has an error, that error says why instead (it timed out, was refused, did
    not parse); a diagnosis is never read from it.
    """
    errors = _errors(test_cell)
    for ename, evalue in errors:
        if (found := diagnosis_id(ename, evalue)) is not None and not any(
                ename in GRADER_ERRORS for ename, _ in errors):
            return found
    if not errors:
        return NO_ERROR_OUTPUT
    found = _failure(errors)
    if found == f"{STUDENT_EXCEPTION}:NameError" and _errors(own_cell):
        return _failure(_errors(own_cell))
    return found


def _failure(errors: list[tuple[str, str]]) -> str:
    """The outcome of a cell's errors that are not a diagnosis: the grader's, a memory
    error, else the first exception's type."""
    for kind in GRADER_ERRORS:  # the cause first: a limit, then what it led to
        for ename, evalue in errors:
            if ename == kind:
                return _grader_outcome(ename, evalue)
    names = [exception_name(ename) for ename, _ in errors]
    if any(n in MEMORY_ERRORS for n in names):
        return RESOURCE_MEMORY
    return f"{STUDENT_EXCEPTION}:{names[0]}"


# ------------------------------------------------------------------------------ the class


@dataclass(frozen=True)
class GradedCell:
    """One graded cell of an assignment, from the gradebook."""

    notebook: str
    name: str  # grade id
    function: str  # the solution cell it tests (the instructor's notebook), else its name
    points: float


@dataclass
class Submission:
    """One student's submission of one assignment."""

    student: str
    status: str  # "graded" or "failed"
    score: float = 0.0  # the gradebook's, before the late penalty
    late_penalty: float = 0.0
    seconds_late: float = 0.0
    repairs: list[str] = field(default_factory=list)
    reason: str = ""  # failed: why
    graded_at: float = 0.0  # when its newest autograded notebook was written (epoch s)
    cells: dict[tuple[str, str], tuple[float, str | None]] = field(default_factory=dict)
    # (notebook, grade id) -> (score, outcome id, or None at full marks)

    @property
    def final_score(self) -> float:
        """The score after the late penalty, never below 0 (what the LMS gets)."""
        return max(0.0, self.score - self.late_penalty)


@dataclass
class Assignment:
    """An assignment's graded cells and every submission of it."""

    name: str
    max_score: float
    cells: list[GradedCell]
    submissions: list[Submission]
    duedate: dt.datetime | None = None

    @property
    def graded(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == "graded"]

    @property
    def failed(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == "failed"]


def _regular_file(path: Path, inside: Path) -> bool:
    """Whether ``path`` is a regular file under ``inside`` reached through no link."""
    try:
        if path.resolve() != path.absolute() or inside.resolve() not in path.resolve().parents:
            return False
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, RuntimeError):
        return False


def read_json(path: Path, inside: Path, limit: int = MAX_NOTEBOOK_BYTES) -> object | None:
    """The JSON in ``path`` if it is a regular file inside ``inside`` (no link followed,
    no special file opened) of at most ``limit`` bytes; else None."""
    if not _regular_file(path, inside):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return None
        data = fh.read(limit + 1)
    if len(data) > limit:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _cells(nb: object) -> list[dict]:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def functions_of(source_nb: object) -> dict[str, str]:
    """``{grade id of a graded cell: the solution cell before it}`` in the instructor's
    notebook (a cell that is both is its own function), in notebook order."""
    found, current = {}, None
    for cell in _cells(source_nb):
        meta = _nbgrader(cell)
        gid = meta.get("grade_id")
        if not isinstance(gid, str):
            continue
        if meta.get("solution"):
            current = gid
        if meta.get("grade"):
            found[gid] = gid if meta.get("solution") else (current or gid)
    return found


def _failure_record(root: Path, assignment: str, student: str) -> tuple[str, float] | None:
    """``(reason, when)`` of ``.grading/<assignment>/<student>.failed``, if there is one."""
    folder = root / STATE_DIR / assignment
    path = folder / f"{student}{FAILED_SUFFIX}"
    record = read_json(path, folder, 1024**2)
    if record is None:
        return None
    reason = record.get("reason") if isinstance(record, dict) else None
    return (printable(reason if isinstance(reason, str) else "the grader recorded a failure"),
            path.stat().st_mtime)


def _submitted(root: Path, assignment: str) -> set[str]:
    folder = root / "submitted"
    return {p.parent.name for p in folder.glob(f"*/{assignment}")
            if p.is_dir() and not p.is_symlink()} if folder.is_dir() else set()


def read_assignment(root: Path, assignment: str, gradebook) -> Assignment:
    """Every submission of ``assignment``: the gradebook's scores, the outcomes read
    from each autograded notebook, the failures from the grader's records."""
    record = gradebook.find_assignment(assignment)
    cells = []
    for notebook in record.notebooks:
        source = root / "solutions" / assignment
        order = functions_of(read_json(source / f"{notebook.name}.ipynb", source))
        known = {c.name: c for c in notebook.grade_cells}
        names = [n for n in order if n in known] + sorted(set(known) - set(order))
        cells += [GradedCell(notebook.name, n, order.get(n, n.removeprefix("test_")),
                             float(known[n].max_score or 0)) for n in names]
    result = Assignment(assignment, float(record.max_score or 0), cells, [], record.duedate)
    graded = set()
    for sub in record.submissions:
        student = sub.student.id
        graded.add(student)
        result.submissions.append(_read_submission(root, assignment, sub, cells))
    for student in sorted(_submitted(root, assignment) - graded):
        result.submissions.append(Submission(student, "failed", reason=(
            "submitted, but the gradebook has no grade for it: not graded yet, or its "
            "grading failed (see the grader's log)")))
    for sub in result.submissions:  # the grader's record of a failure after the last grade
        failure = _failure_record(root, assignment, sub.student)
        if failure is not None and failure[1] >= sub.graded_at:
            sub.status, sub.reason, sub.cells = "failed", failure[0], {}
    result.submissions.sort(key=lambda s: s.student)
    return result


def _read_submission(root: Path, assignment: str, sub, cells: list[GradedCell]) -> Submission:
    student = sub.student.id
    folder = root / "autograded" / student / assignment
    scores = {(nb.name, g.name): float(g.score or 0) for nb in sub.notebooks for g in nb.grades}
    result = Submission(student, "graded", score=float(sub.score or 0),
                        late_penalty=float(sub.late_submission_penalty or 0),
                        seconds_late=float(sub.total_seconds_late or 0))
    notebooks = {}
    for name in {c.notebook for c in cells}:
        path = folder / f"{name}.ipynb"
        nb = read_json(path, root / "autograded")
        if nb is not None:
            notebooks[name] = nb
            result.repairs += _repairs(nb)
            result.graded_at = max(result.graded_at, path.stat().st_mtime)
    if not notebooks:
        result.status = "failed"
        result.reason = "the gradebook has a submission but there is no autograded notebook"
        return result
    for cell in cells:
        score = scores.get((cell.notebook, cell.name), 0.0)
        outcome = None
        if score < cell.points:
            by_id = {_nbgrader(c).get("grade_id"): c for c in _cells(notebooks.get(cell.notebook))}
            own = by_id.get(cell.function) if cell.function != cell.name else None
            outcome = cell_outcome(by_id.get(cell.name), own)
        result.cells[(cell.notebook, cell.name)] = (score, outcome)
    return result


def _repairs(nb: object) -> list[str]:
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    found = meta.get(REPAIRS_KEY) if isinstance(meta, dict) else None
    found = [found] if isinstance(found, str) else found
    return [printable(r, 300) for r in found] if isinstance(found, list) else []


def read_class(root: Path, assignments: Iterable[str], db_url: str | None = None
               ) -> list[Assignment]:
    """Every assignment of ``assignments`` in the course at ``root``, from its gradebook
    (``db_url``, default the course's) and its autograded notebooks."""
    from nbgrader.api import Gradebook, MissingEntry

    from .course import tools_on_path

    root = Path(root).resolve()
    default_url, course_id = course_settings(root)
    url = db_url or default_url
    found = []
    with tools_on_path(), Gradebook(url, course_id) as gb:
        for name in assignments:
            try:
                found.append(read_assignment(root, name, gb))
            except MissingEntry:
                raise ReportError(f"assignment {name!r} is not in the gradebook "
                                  f"{redacted(url)}") from None
    return found


class ReportError(RuntimeError):
    """The report cannot be made as asked (no such assignment, no gradebook ...)."""


# ----------------------------------------------------------------------------- statistics


def correlation(x: list[float], y: list[float]) -> float | None:
    """Pearson's correlation of ``x`` and ``y``; None when either does not vary or there
    are fewer than three pairs."""
    n = len(x)
    if n < 3 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx <= 1e-12 * max(1.0, mx * mx) * n or syy <= 1e-12 * max(1.0, my * my) * n:
        return None
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


@dataclass
class CellStats:
    """One graded cell over the graded students."""

    cell: GradedCell
    students: int
    mean: float | None
    full: float | None  # share of students with full marks
    zero: float | None  # share of students with 0
    discrimination: float | None  # corrected item-total correlation
    flags: list[str]  # keys of FLAG_WORDS


def cell_statistics(assignment: Assignment) -> list[CellStats]:
    """Points, mean, share at full marks and at zero, discrimination and flags of
    every graded cell (over the graded students)."""
    graded = assignment.graded
    totals = [sum(score for score, _ in s.cells.values()) for s in graded]
    stats = []
    for cell in assignment.cells:
        key = (cell.notebook, cell.name)
        scores = [s.cells[key][0] if key in s.cells else 0.0 for s in graded]
        n = len(scores)
        if not n:
            stats.append(CellStats(cell, 0, None, None, None, None, []))
            continue
        full = sum(x >= cell.points for x in scores) / n
        zero = sum(x <= 0 for x in scores) / n
        rest = [t - x for t, x in zip(totals, scores, strict=True)]
        r = correlation(scores, rest)
        flags = []
        if r is not None and r < 0:
            flags.append("negative")
        if full == 0:
            flags.append("nobody")
        elif full == 1:
            flags.append("everybody")
        stats.append(CellStats(cell, n, sum(scores) / n, full, zero, r, flags))
    return stats


@dataclass
class Mistake:
    """One id under one function: the students whose test of it failed that way."""

    function: str
    id: str
    students: list[str]
    share: float  # of the graded students


def mistakes(assignment: Assignment) -> dict[str, list[Mistake]]:
    """``{function: [Mistake, ...]}``, functions in the notebook's order, each list ranked
    by the number of students (then by id). A student counts once per function and id."""
    by_function: dict[str, dict[str, set[str]]] = {}
    for cell in assignment.cells:
        by_function.setdefault(cell.function, {})
    functions = {(c.notebook, c.name): c.function for c in assignment.cells}
    for sub in assignment.graded:
        for key, (_, outcome) in sub.cells.items():
            if outcome is not None:
                by_function[functions[key]].setdefault(outcome, set()).add(sub.student)
    n = max(1, len(assignment.graded))
    return {f: sorted((Mistake(f, i, sorted(s), len(s) / n) for i, s in ids.items()),
                      key=lambda m: (-len(m.students), m.id))
            for f, ids in by_function.items()}


@dataclass
class Persisting:
    """An id met in several assignments: the students per assignment, and those who
    made it in more than one."""

    id: str
    students: dict[str, list[str]]  # assignment -> students (any function)
    shares: dict[str, float]
    again: list[str]  # students with the id in two assignments or more


def persisting(assignments: list[Assignment]) -> list[Persisting]:
    """The ids found in two assignments or more, those that the most students made
    again first."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for a in assignments:
        for ranked in mistakes(a).values():
            for m in ranked:
                seen[m.id].setdefault(a.name, set()).update(m.students)
    rows = []
    for outcome, where in seen.items():
        if len(where) < 2:
            continue
        count: dict[str, int] = defaultdict(int)
        for students in where.values():
            for s in students:
                count[s] += 1
        sizes = {a.name: max(1, len(a.graded)) for a in assignments}
        rows.append(Persisting(outcome, {a: sorted(s) for a, s in where.items()},
                               {a: len(s) / sizes[a] for a, s in where.items()},
                               sorted(s for s, k in count.items() if k > 1)))
    return sorted(rows, key=lambda p: (-len(p.again), -sum(map(len, p.students.values())),
                                       p.id))


@dataclass
class Summary:
    """The headline numbers of one assignment."""

    submissions: int
    graded: int
    failed: int
    repaired: int
    late: int
    penalised: int
    mean: float | None
    median: float | None
    max_score: float


def summary(assignment: Assignment) -> Summary:
    finals = [s.final_score for s in assignment.graded]
    return Summary(
        submissions=len(assignment.submissions), graded=len(assignment.graded),
        failed=len(assignment.failed),
        repaired=sum(bool(s.repairs) for s in assignment.graded),
        late=sum(s.seconds_late > 0 for s in assignment.submissions),
        penalised=sum(s.late_penalty > 0 for s in assignment.graded),
        mean=sum(finals) / len(finals) if finals else None, median=median(finals),
        max_score=assignment.max_score)


# -------------------------------------------------------------------------------- the report


def _points(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{round(x, digits) + 0.0:g}"


def _percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _r(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f}"


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class Report:
    """The class report of one or more graded assignments.

    ``anonymise`` replaces every student id, in every output, by a pseudonym
    (``student 7``) drawn at random for this report, the same in every assignment.
    ``book_url`` is where the links to the book's sections point (the catalogue's
    ``url`` is relative to the book's root).
    """

    def __init__(self, assignments: list[Assignment], known: dict | None = None,
                 anonymise: bool = False, book_url: str = "", source: str = ""):
        self.assignments = assignments
        self.known = catalogue() if known is None else known
        self.book_url = book_url
        self.source = source  # where the grades come from (the gradebook, redacted)
        self.anonymised = anonymise
        self._names: dict[str, str] = {}
        self._pattern = None
        if anonymise:
            students = sorted({s.student for a in assignments for s in a.submissions})
            numbers = list(range(1, len(students) + 1))
            secrets.SystemRandom().shuffle(numbers)
            width = len(str(len(students)))
            self._names = {s: f"student {k:0{width}d}" for s, k in zip(students, numbers,
                                                                      strict=True)}
            if students:
                ids = "|".join(re.escape(s) for s in sorted(students, key=len, reverse=True))
                self._pattern = re.compile(rf"(?<![\w.-])(?:{ids})(?![\w-])")

    # -------------------------------------------------------------------- shared pieces

    def name(self, student: str) -> str:
        """How the report names a student: the id, or its pseudonym."""
        return self._names.get(student, printable(student, 200)) if self.anonymised else \
            printable(student, 200)

    def words(self, text: str) -> str:
        """A free text (a reason, a repair) with every student id replaced by its
        pseudonym when the report is anonymised."""
        text = printable(text)
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._names[m.group(0)], text)

    def entry(self, outcome: str) -> Entry:
        return entry(outcome, self.known)

    def link(self, found: Entry) -> str:
        if not found.url:
            return ""
        return f"{self.book_url.rstrip('/')}/{found.url}" if self.book_url else found.url

    # ------------------------------------------------------------------------ text

    def text(self) -> str:
        """The short summary the command prints."""
        lines = []
        for a in self.assignments:
            s = summary(a)
            lines += [f"{a.name}: {s.submissions} submissions, {s.graded} graded, "
                      f"{s.failed} failed, {s.repaired} repaired, {s.late} late "
                      f"({s.penalised} with a penalty)",
                      f"  score out of {_points(s.max_score)}: mean {_points(s.mean)}, "
                      f"median {_points(s.median)}"]
            for c in cell_statistics(a):
                flags = f"  <- {', '.join(c.flags)}" if c.flags else ""
                lines.append(f"  {c.cell.name:<28} {_points(c.cell.points):>4} pts  mean "
                             f"{_points(c.mean):>5}  full {_percent(c.full):>5}  zero "
                             f"{_percent(c.zero):>5}  discrimination {_r(c.discrimination):>5}"
                             f"{flags}")
            top = sorted((m for ranked in mistakes(a).values() for m in ranked),
                         key=lambda m: (-len(m.students), m.function, m.id))[:5]
            if top:
                lines.append("  most students lost points on:")
                lines += [f"    {m.function}: {printable(m.id)}: {len(m.students)} "
                          f"({_percent(m.share)})" for m in top]
            for sub in a.failed:
                lines.append(f"  failed: {self.name(sub.student)}: {self.words(sub.reason)}")
        rows = persisting(self.assignments) if len(self.assignments) > 1 else []
        if rows:
            lines.append("across assignments (students who made the same mistake again):")
            lines += [f"  {printable(p.id)}: {len(p.again)} students" for p in rows[:5]]
        return "\n".join(lines)

    # ------------------------------------------------------------------------- CSV

    CSV_HEADER = ["assignment", "student", "status", "final_score", "score", "late_penalty",
                  "max_score", "seconds_late", "repairs", "notebook", "cell", "function",
                  "cell_score", "cell_points", "outcome", "kind", "notes"]

    def rows(self) -> list[list[object]]:
        """The CSV's rows (header first): one per graded student and graded cell, one per
        failed student; every text cell neutralised (:func:`csv_cell`)."""
        rows: list[list[object]] = [list(self.CSV_HEADER)]
        for a in self.assignments:
            for sub in a.submissions:
                who = [a.name, self.name(sub.student), sub.status]
                if sub.status == "failed":
                    rows.append(who + ["", "", "", a.max_score, sub.seconds_late, 0, "", "",
                                       "", "", "", GRADING_FAILED, "outcome",
                                       self.words(sub.reason)])
                    continue
                money = [sub.final_score, sub.score, sub.late_penalty, a.max_score,
                         sub.seconds_late, len(sub.repairs)]
                notes = self.words("; ".join(sub.repairs))
                for cell in a.cells:
                    score, outcome = sub.cells.get((cell.notebook, cell.name), (0.0, None))
                    kind = self.entry(outcome).kind if outcome else ""
                    rows.append(who + money + [cell.notebook, cell.name, cell.function, score,
                                               cell.points, outcome or "", kind, notes])
        return [[csv_cell(v) for v in row] for row in rows]

    def csv(self) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.rows())
        return out.getvalue()

    # ------------------------------------------------------------------------ HTML

    def html(self) -> str:
        """The page: self-contained (inline style, figures as SVG data), no script."""
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(
            enabled_extensions=("html", "j2"), default_for_string=True, default=True),
            trim_blocks=True, lstrip_blocks=True)
        env.filters.update(points=_points, percent=_percent, r=_r, duration=_duration,
                           readable=readable)
        sections = []
        for a in self.assignments:
            stats = cell_statistics(a)
            ranked = mistakes(a)
            sections.append({
                "a": a, "summary": summary(a), "stats": stats, "mistakes": ranked,
                "figures": [f for f in (score_histogram(a), cell_chart(a, stats),
                                        mistake_chart(a, ranked)) if f is not None],
            })
        rows = persisting(self.assignments) if len(self.assignments) > 1 else []
        across = persisting_chart(self.assignments, rows) if rows else None
        return env.get_template("report.html.j2").render(
            report=self, sections=sections, persisting=rows, across=across,
            flag_words=FLAG_WORDS, csp=CSP,
            title="Class report: " + ", ".join(a.name for a in self.assignments),
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))

    def write(self, folder: Path, stem: str | None = None) -> tuple[Path, Path]:
        """Write ``<stem>.html`` and ``<stem>.csv`` into ``folder``; return their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or "report-" + "-".join(a.name for a in self.assignments)
        paths = folder / f"{stem}.html", folder / f"{stem}.csv"
        for path, text in zip(paths, (self.html(), self.csv()), strict=True):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8", newline="")
            os.replace(tmp, path)
        return paths


# No script, no request: the figures are data: URIs, the style is in the page.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; " \
      "form-action 'none'"


# ------------------------------------------------------------------------------- figures
# In the book's style (bplib.plots): matplotlib's defaults and its tab10 colours, one idea
# per figure, labelled axes. Each figure is an SVG inside the page, with a text
# alternative that says what it shows; the tables beside it hold every number.


@dataclass(frozen=True)
class Picture:
    """A figure of the page: its SVG as a data URI, its text alternative, its caption."""

    uri: str
    alt: str
    caption: str


def _picture(fig, alt: str, caption: str) -> Picture:
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return Picture("data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode(),
                   alt, caption)


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def score_histogram(a: Assignment) -> Picture | None:
    """The final scores of the graded students, one bar per point (or 20 bars), with
    the mean and the median."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    finals = [s.final_score for s in a.graded]
    if not finals:
        return None
    top = a.max_score or max(finals) or 1.0
    edges = np.arange(-0.5, top + 1, 1.0) if top <= 40 else np.linspace(0, top, 21)
    fig, (ax,) = _figure(6.4, 3.2)
    counts, _, _ = ax.hist(finals, bins=edges, color="C0", edgecolor="white")
    mean, mid = sum(finals) / len(finals), median(finals)
    ax.axvline(mean, color="k", linestyle="--", label=f"mean {_points(mean)}")
    ax.axvline(mid, color="C3", linestyle=":", linewidth=2, label=f"median {_points(mid)}")
    ax.set_xlabel(f"final score (out of {_points(top)} points)")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{a.name}: score distribution")
    ax.legend(loc="upper left")
    most = edges[int(np.argmax(counts))] + (0.5 if top <= 40 else 0)
    alt = (f"Histogram of the final scores of the {len(finals)} graded students of "
           f"{a.name}, out of {_points(top)} points: from {_points(min(finals))} to "
           f"{_points(max(finals))}, mean {_points(mean)}, median {_points(mid)}; the "
           f"tallest bar, {int(counts.max())} students, is at {_points(most)} points.")
    return _picture(fig, alt, "Final scores (after any late penalty) of the graded students.")


def cell_chart(a: Assignment, stats: list[CellStats]) -> Picture | None:
    """Per graded cell: the share of students at full marks, and its discrimination."""
    shown = [c for c in stats if c.students]
    if not shown:
        return None
    names = [c.cell.name for c in shown]
    rows = list(range(len(shown)))
    fig, (left, right) = _figure(7.2, 0.45 * len(shown) + 1.4, ncols=2)
    left.barh(rows, [100 * c.full for c in shown], color="C2")
    left.set_xlim(0, 100)
    left.set_xlabel("students with full marks (%)")
    left.set_yticks(rows, names)
    left.invert_yaxis()
    values = [c.discrimination or 0.0 for c in shown]
    colours = ["C3" if c.discrimination is not None and c.discrimination < 0 else "C0"
               for c in shown]
    right.barh(rows, values, color=colours)
    right.axvline(0, color="k", linewidth=0.8)
    right.set_xlim(-1, 1)
    right.set_yticks(rows, ["" for _ in rows])
    right.invert_yaxis()
    right.set_xlabel("discrimination (correlation with the rest)")
    for row, c in zip(rows, shown, strict=True):
        if c.discrimination is None:
            right.text(0.02, row, "not defined", va="center", fontsize="small")
    fig.suptitle(f"{a.name}: graded cells")
    flagged = [f"{c.cell.name} ({', '.join(c.flags)})" for c in shown if c.flags]
    alt = (f"Two bar charts of the {len(shown)} graded cells of {a.name}. Left, the share "
           "of students with full marks: " + "; ".join(
               f"{c.cell.name} {_percent(c.full)}" for c in shown) + ". Right, each cell's "
           "discrimination: " + "; ".join(f"{c.cell.name} {_r(c.discrimination)}"
                                          for c in shown) + ". Flagged: "
           + ("; ".join(flagged) if flagged else "none") + ".")
    return _picture(fig, alt, "Left: how many students earn each cell's points. Right: "
                    "its discrimination; a red bar is negative.")


def mistake_chart(a: Assignment, ranked: dict[str, list[Mistake]], top: int = 10
                  ) -> Picture | None:
    """The ``top`` most frequent (function, id) pairs, by students affected."""
    from matplotlib.ticker import MaxNLocator

    every = sorted((m for ms in ranked.values() for m in ms),
                   key=lambda m: (-len(m.students), m.function, m.id))[:top]
    if not every:
        return None
    labels = [f"{m.function}: {printable(m.id, 60)}" for m in every]
    fig, (ax,) = _figure(7.2, 0.4 * len(every) + 1.2)
    ax.barh(range(len(every)), [len(m.students) for m in every], color="C1")
    ax.set_yticks(range(len(every)), labels)
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("students")
    ax.set_title(f"{a.name}: what the most students got wrong")
    alt = (f"Bar chart of the {len(every)} most frequent reasons students of {a.name} lost "
           "points, by number of students: " + "; ".join(
               f"{label}, {len(m.students)}" for label, m in zip(labels, every, strict=True))
           + ".")
    return _picture(fig, alt, "The most frequent reasons for lost points, function by "
                    "function; the tables below list them all.")


def persisting_chart(assignments: list[Assignment], rows: list[Persisting], top: int = 8
                     ) -> Picture | None:
    """The share of students with each persisting id, assignment by assignment."""
    rows = rows[:top]
    if not rows:
        return None
    fig, (ax,) = _figure(7.2, 0.55 * len(rows) * max(1, len(assignments)) / 2 + 1.4)
    height = 0.8 / len(assignments)
    for k, a in enumerate(assignments):
        ax.barh([i + k * height for i in range(len(rows))],
                [100 * p.shares.get(a.name, 0.0) for p in rows], height=height,
                color=f"C{k % 10}", label=a.name)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))],
                  [printable(p.id, 60) for p in rows])
    ax.invert_yaxis()
    ax.set_xlabel("students of the assignment (%)")
    ax.set_title("Mistakes met in several assignments")
    ax.legend()
    alt = ("Grouped bar chart of the mistakes met in more than one assignment, the share "
           "of students per assignment: " + "; ".join(
               f"{printable(p.id, 60)}: " + ", ".join(
                   f"{a.name} {_percent(p.shares.get(a.name, 0.0))}" for a in assignments)
               for p in rows) + ".")
    return _picture(fig, alt, "Mistakes that persist: the share of each assignment's "
                    "graded students who made them.")


# ------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bpgrade report",
        description="What the class got wrong: an offline HTML report, a CSV and a summary, "
                    "from the gradebook and the autograded notebooks.")
    parser.add_argument("assignments", nargs="+", metavar="ASSIGNMENT",
                        help="one or more graded assignments, in teaching order")
    parser.add_argument("--db-url", help="gradebook URL (default: the course's)")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="course root (default: the current folder)")
    parser.add_argument("--out", type=Path,
                        help=f"folder of the report (default: ROOT/{REPORTS_DIR})")
    parser.add_argument("--anonymise", "--anonymize", action="store_true",
                        help="name students by pseudonyms (student 01, ...) everywhere")
    parser.add_argument("--book-url", help="the book's address, for the links to its "
                        "sections (default: the built book in ROOT/_build/html)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = args.root.resolve()
    out = (args.out or root / REPORTS_DIR).resolve()
    default_url, _ = course_settings(root)
    url = args.db_url or default_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")
                                                  .partition("?")[0]).is_file():
        print(f"error: no gradebook at {redacted(url)}: grade first (python -m bpgrade "
              "autograde ASSIGNMENT), or give --db-url", file=sys.stderr)
        return 2
    try:
        assignments = read_class(root, args.assignments, url)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    book = args.book_url or Path(os.path.relpath(root / "_build" / "html", out)).as_posix()
    report = Report(assignments, anonymise=args.anonymise, book_url=book, source=redacted(url))
    html_path, csv_path = report.write(out)
    print(report.text())
    print(f"\nreport: {html_path}\ndata:   {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
