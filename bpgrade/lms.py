"""Grades out of nbgrader into an LMS, late penalties, and feedback that reads offline.

Three export plugins for ``nbgrader export`` (nbgrader's ``ExportPlugin`` API), chosen
on the command line or in ``nbgrader_config.py``::

    nbgrader export --exporter=bpgrade.lms.CanvasExportPlugin --to canvas.csv
    nbgrader export --exporter=bpgrade.lms.MoodleExportPlugin --to moodle.csv
    nbgrader export --exporter=bpgrade.lms.PerStudentExportPlugin --to grades_long.csv
    # or: c.ExportApp.plugin_class = "bpgrade.lms.CanvasExportPlugin"

* :class:`CanvasExportPlugin`: Canvas's gradebook import layout: ``Student, ID,
  SIS User ID, SIS Login ID, Section``, one column per assignment, and a
  ``Points Possible`` row right after the header;
* :class:`MoodleExportPlugin`: Moodle's grade import (CSV): one identifier column
  (``Email address`` or ``ID number``, which Moodle maps to its user field), then one
  column per grade item;
* :class:`PerStudentExportPlugin`: one row per student and assignment: student,
  assignment, score, max score, late penalty (and the raw score and timestamp).

Every score written is nbgrader's score minus the late penalty (never below 0).

:class:`CsvExportPlugin` is nbgrader's own ``grades.csv`` (the same columns), written
with the :mod:`csv` module; ``nbgrader_config.py`` makes it the course's default.

**No formulas.** A spreadsheet opens a cell that starts with ``=``, ``+``, ``-``, ``@``,
a tab, a carriage return (or a line feed, a NUL, their full-width forms, or any of
these after leading spaces) as a formula: ``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``.
Student ids, names, emails and LMS ids come from outside, so every text cell of every
exporter goes through :func:`spreadsheet_text`, which puts a single quote before such
a value (OWASP's advice for CSV injection). Scores stay numbers (:class:`Number`).

:class:`PercentPerDayPenalty` is the course's late-submission plugin
(``c.AssignLatePenalties.plugin_class``): a percentage of the notebook's maximum score
per started day late, capped. :func:`feedback_head` is the Jinja filter that inlines
MathJax 3 into the feedback HTML, under a strict Content-Security-Policy (see
``bpgrade/templates/feedback/``).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin, LateSubmissionPlugin
from traitlets import Dict, Enum, Float, Unicode

DAY = 86400.0
TEMPLATES = Path(__file__).resolve().parent / "templates"
"""Template base folder of the offline feedback (``HTMLExporter.extra_template_basedirs``)."""


FORMULA_START = frozenset("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's ``= + - @``,
tab and carriage return; line feed, NUL and the full-width ``＝ ＋ － ＠`` as well)."""


class Number(str):
    """A cell the exporter wrote as a number (a score): never prefixed."""


def spreadsheet_text(value: object) -> str:
    """``value`` as a CSV text cell that no spreadsheet evaluates.

    A value whose first character, after any leading spaces, is in
    :data:`FORMULA_START` gets a single quote in front (OWASP's advice for CSV
    injection); any other value, and a :class:`Number`, is written as it is.

    >>> spreadsheet_text("=1+1"), spreadsheet_text(" @SUM(A1)"), spreadsheet_text("alice")
    ("'=1+1", "' @SUM(A1)", 'alice')
    """
    if isinstance(value, Number):
        return value
    text = "" if value is None else str(value)
    first = text.lstrip(" ")[:1]
    return "'" + text if first and first in FORMULA_START else text


def write_csv(dest: str, rows: list[list[object]]) -> None:
    """Write ``rows`` to ``dest`` (UTF-8) with every text cell through
    :func:`spreadsheet_text`."""
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([[spreadsheet_text(c) for c in row] for row in rows])


def _number(x: float) -> Number:
    """A score as an LMS reads it: ``7.5``, ``10``, ``0``, at most two decimals."""
    return Number(f"{round(float(x), 2) + 0.0:g}")


@dataclass
class Grade:
    """One student's grade on one assignment, as the gradebook has it."""

    student: object  # nbgrader.api.Student
    assignment: object  # nbgrader.api.Assignment
    submitted: bool
    raw_score: float
    late_penalty: float
    timestamp: object  # datetime or None
    seconds_late: float

    @property
    def score(self) -> float:
        return max(0.0, self.raw_score - self.late_penalty)

    @property
    def max_score(self) -> float:
        return float(self.assignment.max_score or 0.0)


class _GradebookExport(ExportPlugin):
    """What the three exporters share: which students and assignments, and their grades."""

    default_to = "grades.csv"

    missing = Unicode(
        "0", help="What is written for a missing submission ('0', or '' to leave it blank)."
    ).tag(config=True)

    def destination(self) -> str:
        return self.to or self.default_to

    def students(self, gradebook: Gradebook) -> list:
        wanted = {str(s) for s in self.student}
        return sorted((s for s in gradebook.students if not wanted or s.id in wanted),
                      key=lambda s: ((s.last_name or "").lower(), (s.first_name or "").lower(),
                                     s.id))

    def assignments(self, gradebook: Gradebook) -> list:
        wanted = {str(a) for a in self.assignment}
        return [a for a in gradebook.assignments if not wanted or a.name in wanted]

    @staticmethod
    def grade(gradebook: Gradebook, assignment, student) -> Grade:
        try:
            sub = gradebook.find_submission(assignment.name, student.id)
        except MissingEntry:
            return Grade(student, assignment, False, 0.0, 0.0, None, 0.0)
        return Grade(student, assignment, True, float(sub.score or 0.0),
                     float(sub.late_submission_penalty or 0.0), sub.timestamp,
                     float(sub.total_seconds_late or 0.0))

    def cell(self, grade: Grade) -> str:
        if grade.submitted:
            return _number(grade.score)
        try:  # the configured text for a missing submission ('0' by default)
            return _number(float(self.missing))
        except ValueError:
            return self.missing

    def rows(self, gradebook: Gradebook) -> list[list[str]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def export(self, gradebook: Gradebook) -> None:
        dest = self.destination()
        self.log.info("Exporting grades (%s) to %s", type(self).__name__, dest)
        write_csv(dest, self.rows(gradebook))


class CsvExportPlugin(_GradebookExport):
    """nbgrader's own ``grades.csv`` (its ``CsvExportPlugin``: the same columns, in the
    same order, numbers written as nbgrader writes them), through the :mod:`csv`
    module (a name with a comma stays one cell) and :func:`spreadsheet_text`."""

    HEADER = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
              "email", "raw_score", "late_submission_penalty", "score", "max_score"]

    def rows(self, gradebook: Gradebook) -> list[list[str]]:
        rows: list[list[object]] = [list(self.HEADER)]
        students = {str(s) for s in self.student}
        for a in self.assignments(gradebook):
            for s in gradebook.students:  # in the gradebook's order, as nbgrader's
                if students and s.id not in students:
                    continue
                g = self.grade(gradebook, a, s)
                rows.append([a.name, a.duedate or "", g.timestamp or "", s.id,
                             s.last_name or "", s.first_name or "", s.email or "",
                             Number(g.raw_score), Number(g.late_penalty), Number(g.score),
                             Number(float(a.max_score or 0.0))])
        return rows


class CanvasExportPlugin(_GradebookExport):
    """Canvas's gradebook CSV: identity columns, a column per assignment, points possible.

    Canvas matches rows on ``ID`` (its user id: nbgrader's ``lms_user_id``), then
    ``SIS User ID`` (nbgrader's student id), then ``SIS Login ID`` (the email). A column
    whose header is not an existing Canvas assignment creates a new one on import; map
    nbgrader's names onto existing ones with ``column_names`` (e.g.
    ``{"ex04_backward": "Exercise 4 (12345)"}``, Canvas's "Name (id)" form).
    """

    default_to = "canvas.csv"
    IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]

    section = Unicode("", help="Written in the Section column of every row.").tag(config=True)
    column_names = Dict(
        {}, help="nbgrader assignment name -> Canvas column header (default: the name)."
    ).tag(config=True)

    def rows(self, gradebook: Gradebook) -> list[list[str]]:
        assignments = self.assignments(gradebook)
        head = self.IDENTITY + [self.column_names.get(a.name, a.name) for a in assignments]
        points: list[object] = ["    Points Possible", "", "", "", ""] + [
            _number(a.max_score or 0.0) for a in assignments]
        rows = [head, points]
        for s in self.students(gradebook):
            name = ", ".join(p for p in (s.last_name, s.first_name) if p) or s.id
            rows.append([name, s.lms_user_id or "", s.id, s.email or "", self.section]
                        + [self.cell(self.grade(gradebook, a, s)) for a in assignments])
        return rows


class MoodleExportPlugin(_GradebookExport):
    """Moodle's grade import CSV: an identifier column, then one column per grade item.

    On import (Grades > Import > CSV file) map the identifier column to Moodle's
    ``Email address`` or ``ID number`` and each assignment column to its grade item.
    """

    default_to = "moodle.csv"

    identifier = Enum(["email", "id"], "email", help=(
        "Which student field identifies the row: 'email' (column 'Email address') or "
        "'id' (nbgrader's student id, column 'ID number')."
    )).tag(config=True)

    def rows(self, gradebook: Gradebook) -> list[list[str]]:
        assignments = self.assignments(gradebook)
        header = "Email address" if self.identifier == "email" else "ID number"
        rows = [[header] + [a.name for a in assignments]]
        for s in self.students(gradebook):
            key = (s.email or "") if self.identifier == "email" else s.id
            if not key:
                self.log.warning("student %s has no %s: row written without it", s.id,
                                 self.identifier)
            rows.append([key] + [self.cell(self.grade(gradebook, a, s)) for a in assignments])
        return rows


class PerStudentExportPlugin(_GradebookExport):
    """One row per student and assignment: the score after the late penalty, the maximum,
    the penalty, the raw score, when it was submitted and how late (seconds)."""

    default_to = "grades_per_student.csv"
    HEADER = ["student_id", "last_name", "first_name", "email", "assignment", "score",
              "max_score", "late_penalty", "raw_score", "timestamp", "seconds_late"]

    def rows(self, gradebook: Gradebook) -> list[list[str]]:
        rows = [list(self.HEADER)]
        for s in self.students(gradebook):
            for a in self.assignments(gradebook):
                g = self.grade(gradebook, a, s)
                rows.append([
                    s.id, s.last_name or "", s.first_name or "", s.email or "", a.name,
                    self.cell(g), _number(g.max_score),
                    _number(g.late_penalty) if g.submitted else "",
                    _number(g.raw_score) if g.submitted else "",
                    g.timestamp.isoformat(sep=" ") if g.timestamp else "",
                    _number(g.seconds_late) if g.submitted else "",
                ])
        return rows


# ---------------------------------------------------------------------- late penalties


def percent_per_day_penalty(seconds_late: float, max_score: float, percent_per_day: float = 10.0,
                            max_percent: float = 50.0, grace_seconds: float = 0.0) -> float:
    """``percent_per_day`` % of ``max_score`` per started day late, at most ``max_percent`` %.

    A second late (past ``grace_seconds``) is a started day: 1 s late costs one day.
    """
    late = max(0.0, float(seconds_late) - float(grace_seconds))
    days = math.ceil(late / DAY)
    return max_score * min(days * percent_per_day, max_percent) / 100.0


class PercentPerDayPenalty(LateSubmissionPlugin):
    """nbgrader late-submission plugin: ``percent_per_day`` % of the notebook's maximum
    score per started day late, capped at ``max_percent`` %; nbgrader then caps the
    penalty at the notebook's score (a grade never goes below zero).

    ``c.AssignLatePenalties.plugin_class = "bpgrade.lms.PercentPerDayPenalty"``;
    ``c.PercentPerDayPenalty.percent_per_day = 10``, ``.max_percent = 50``,
    ``.grace_minutes = 0``.
    """

    percent_per_day = Float(10.0, help="Percent of the maximum score per started day late.") \
        .tag(config=True)
    max_percent = Float(50.0, help="The penalty never exceeds this percent of the maximum.") \
        .tag(config=True)
    grace_minutes = Float(0.0, help="Minutes after the due date that cost nothing.") \
        .tag(config=True)

    def _max_score(self, score: float) -> float:
        """The maximum score of the notebook being graded, read from the gradebook that
        nbgrader's AssignLatePenalties (this plugin's parent) has open."""
        parent = self.parent
        try:
            nb = parent.gradebook.find_submission_notebook(
                parent.notebook_id, parent.assignment_id, parent.student_id)
            return float(nb.max_score)
        except (AttributeError, MissingEntry):
            self.log.warning("maximum score unknown: the late penalty is a percent of the score")
            return float(score)

    def late_submission_penalty(self, student_id: str, score: float,
                                total_seconds_late: float) -> float | None:
        penalty = percent_per_day_penalty(total_seconds_late, self._max_score(score),
                                          self.percent_per_day, self.max_percent,
                                          60.0 * self.grace_minutes)
        self.log.info("%s is %.0f s late: penalty %g", student_id, total_seconds_late, penalty)
        return penalty or None


# ----------------------------------------------------------------- feedback, offline


def mathjax_path(name: str = "tex-svg.js") -> Path:
    """MathJax 3 as the ``sphinx-mathjax-offline`` distribution ships it (no CDN)."""
    try:
        path = Path(metadata.distribution("sphinx-mathjax-offline").locate_file(
            f"sphinx-mathjax-offline/static/mathjax/{name}"))
    except metadata.PackageNotFoundError as exc:
        raise RuntimeError("offline feedback needs MathJax: pip install sphinx-mathjax-offline "
                           "(the course's `grade` extra has it)") from exc
    if not path.is_file():
        raise RuntimeError(f"MathJax not found at {path}: reinstall sphinx-mathjax-offline")
    return Path(path)


def offline_mathjax(name: str = "tex-svg.js") -> str:
    """Jinja filter: the MathJax 3 component ``name`` as text to inline in a ``<script>``.

    ``tex-svg.js`` draws with SVG paths, so it needs no font file: the page is whole.
    """
    js = mathjax_path(name or "tex-svg.js").read_text(encoding="utf-8")
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


MATHJAX_CONFIG = """
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
    displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams'
  },
  svg: {fontCache: 'global'},
  options: {enableMenu: false}
};
"""


def feedback_head(name: str = "tex-svg.js") -> str:
    """Jinja filter: the feedback page's head: a Content-Security-Policy that lets only
    the page's own two scripts run (by their SHA-256,
    :func:`bpgrade.sanitize.content_security_policy`), then MathJax's configuration
    and MathJax 3 itself (:func:`offline_mathjax`), inlined. Whatever of a submission
    the page still held (it is cleaned before: :mod:`bpgrade.sanitize`) could not run
    a script, load anything or send anything anywhere."""
    from .sanitize import content_security_policy

    scripts = [MATHJAX_CONFIG, f"\n{offline_mathjax(name)}\n"]
    policy = content_security_policy(scripts)
    return (f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            + "\n".join(f"<script>{script}</script>" for script in scripts))
