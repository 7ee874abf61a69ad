"""The class report (``python -m bpgrade report``): what a class got wrong.

Fast tests: what a cell's ``error`` outputs say (against the grader's own messages, so
that a reworded message fails here), the CSV's neutralised cells, the statistics, and a
report of hostile strings. Slow tests, on real nbgrader and a real gradebook: a class
built from ``tools/samples`` (every sample mistake once, the first of each exercise
twice, correct and blank students, and in ``ex04_backward`` a never-ending, an
over-memory, a repaired, a late, an unreadable and two hostile students), graded once by
``python -m bpgrade autograde``: the report counts what the class was built to contain,
its CSV agrees with its page, the page opens offline in Chromium with its figures and no
serious axe-core violation. A second, small class checks item discrimination.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from bpgrade import integrity, kernel
from bpgrade import report as rep
from bpgrade.course import make_course
from bpgrade.nbgrader_plugins import output_reason
from tools import grade_demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import REPO_ROOT, require  # noqa: E402

# ----------------------------------------------------------------- a cell's error outputs


def _cell(*errors: tuple[str, str], stream: str = "", html: str = "") -> dict:
    outputs = []
    if stream:
        outputs.append({"output_type": "stream", "name": "stdout", "text": stream})
    if html:
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"text/html": html, "text/plain": html}})
    outputs += [{"output_type": "error", "ename": e, "evalue": v, "traceback": []}
                for e, v in errors]
    return {"cell_type": "code", "metadata": {}, "source": "", "outputs": outputs}


LIMITS = kernel.Limits()
BUDGET = kernel.budget_messages(LIMITS)
DIAGNOSIS = ("Diagnosis", "db is wrong: ...\nRead: chapter 4 (chapters/04_gradients.html#x)\n"
             "[diagnosis: db-averaged]")


@pytest.mark.parametrize("errors, outcome", [
    ([DIAGNOSIS], "db-averaged"),
    ([("ResourceLimitError", BUDGET["memory"])], rep.RESOURCE_MEMORY),
    ([("BlockingIOError", "[Errno 11] Resource temporarily unavailable"),
      ("ResourceLimitError", BUDGET["tasks"])], rep.RESOURCE_PROCESSES),
    ([("OSError", "[Errno 28] No space left on device"),
      ("ResourceLimitError", BUDGET["tmp"])], rep.RESOURCE_TMP),
    ([("KeyboardInterrupt", ""), ("ResourceLimitError", output_reason(1024**2))],
     rep.RESOURCE_OUTPUT),
    ([("CellTimeoutError", "the cell's output did not stop after the timeout"),
      ("ResourceLimitError", output_reason(1024**2))], rep.RESOURCE_OUTPUT),
    ([("KeyboardInterrupt", ""), ("CellTimeoutError", "")], rep.CELL_TIMEOUT),
    ([("DeadKernelError", kernel.death_reason(None, LIMITS, {"oom_kill": 1}))],
     rep.RESOURCE_MEMORY),
    ([("NotRunError", "not run: " + kernel.death_reason(152, LIMITS))], rep.CELL_TIMEOUT),
    ([("NotRunError", "not run: " + kernel.death_reason(None, LIMITS))], rep.CELL_TIMEOUT),
    ([("NotRunError", "not run: " + kernel.death_reason(3, LIMITS))],
     "student-exception:DeadKernelError"),
    ([("NotRunError", "not run: the notebook used up its time limit of 300 s")],
     rep.CELL_TIMEOUT),
    ([("DeadKernelError", kernel.death_reason(None, LIMITS, {"tasks_max": 3}))],
     rep.CELL_TIMEOUT),  # a kernel that stopped answering: its time ran out
    ([("MemoryError", "")], rep.RESOURCE_MEMORY),
    ([("_ArrayMemoryError", "Unable to allocate 16.0 GiB")], rep.RESOURCE_MEMORY),
    ([("NotImplementedError", "")], "student-exception:NotImplementedError"),
    ([("AssertionError", "linear_backward: dx is wrong")], "student-exception:AssertionError"),
    ([], rep.NO_ERROR_OUTPUT),
])
def test_a_cells_errors_give_one_outcome_id_in_the_graders_words(errors, outcome):
    assert rep.cell_outcome(_cell(*errors)) == outcome


def test_a_refused_cells_replacement_raises_what_the_report_calls_an_integrity_refusal():
    violations = integrity.find_violations(
        "from bplib import linear_backward as ref\ndef linear_backward(d, c):\n"
        "    return ref(d, c)", {"linear_backward"}, {})
    source = integrity.replacement_source("x = 1", violations, {"linear_backward"})
    with pytest.raises(Exception) as raised:  # noqa: B017 - its type's name is the point
        exec(source, {})  # noqa: S102 - comments and a raise only
    error = (type(raised.value).__name__, str(raised.value))
    assert rep.cell_outcome(_cell(error)) == rep.INTEGRITY_REFUSAL


def test_a_diagnosis_counts_only_from_an_error_output_with_the_exact_last_line():
    forged = "[diagnosis: relu-mask-at-zero]"
    assert rep.cell_outcome(_cell(("AssertionError", "no"), stream=forged + "\n",
                                  html=forged)) == "student-exception:AssertionError"
    assert rep.cell_outcome(_cell(("ValueError", f"x\n{forged}"))) == \
        "student-exception:ValueError"  # the id line, but not a Diagnosis
    assert rep.cell_outcome(_cell(("Diagnosis", f"{forged} trailing"))) == \
        "student-exception:Diagnosis"
    assert rep.cell_outcome(_cell(("Diagnosis", '[diagnosis: x"><script>]'))) == \
        "student-exception:Diagnosis"
    assert rep.cell_outcome(_cell(("Diagnosis", "[diagnosis: " + "a" * 65 + "]"))) == \
        "student-exception:Diagnosis"
    assert rep.cell_outcome(_cell(("Diagnosis", f"message\n{forged}\n"))) == "relu-mask-at-zero"


def test_a_missing_function_is_explained_by_the_graders_error_in_its_own_cell():
    missing = ("NameError", "name 'two_layer_net' is not defined")
    timed_out = _cell(("KeyboardInterrupt", ""), ("CellTimeoutError", ""))
    assert rep.cell_outcome(_cell(missing), timed_out) == rep.CELL_TIMEOUT
    assert rep.cell_outcome(_cell(missing), _cell(("IntegrityError", "refused"))) == \
        rep.INTEGRITY_REFUSAL
    assert rep.cell_outcome(_cell(missing), _cell(("SyntaxError", "expected ':'"))) == \
        "student-exception:SyntaxError"
    assert rep.cell_outcome(_cell(missing), _cell()) == "student-exception:NameError"
    # only a NameError sends the report to the student's cell, and never for a diagnosis
    assert rep.cell_outcome(_cell(("TypeError", "")), timed_out) == "student-exception:TypeError"
    assert rep.cell_outcome(_cell(missing), _cell(DIAGNOSIS)) == "student-exception:Diagnosis"


def test_an_exception_type_is_shown_only_if_it_is_a_python_name():
    assert rep.exception_name("numpy.linalg.LinAlgError") == "numpy.linalg.LinAlgError"
    for hostile in ("<img src=x onerror=alert(1)>", "=1+1", "", "a" * 81, None, 3):
        assert rep.exception_name(hostile) == "?"


def test_notebook_json_of_any_shape_is_read_without_error():
    for junk in (None, [], "x", {"outputs": "x"}, {"outputs": [None, 3, {"output_type": 1}]},
                 {"outputs": [{"output_type": "error", "ename": 5, "evalue": None}]}):
        assert rep.cell_outcome(junk) in (rep.NO_ERROR_OUTPUT, "student-exception:?")
    assert rep.functions_of({"cells": "x"}) == {} and rep.functions_of(None) == {}


# ------------------------------------------------------------------------ hostile strings


@pytest.mark.parametrize("text, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\r=1", "'\\u000d=1"), ("plain", "plain"), ("a=b", "a=b"), ("", ""), (None, ""),
    # the exporters' rule (bpgrade.lms.spreadsheet_text): after spaces, full width, NUL
    ("  =1+1", "'  =1+1"), ("\uff1d1+1", "'\uff1d1+1"), ("\0=1", "'\\u0000=1"),
])
def test_a_text_cell_a_spreadsheet_would_evaluate_gets_a_leading_quote(text, cell):
    assert rep.csv_cell(text) == cell


def test_numbers_stay_numbers_in_the_csv():
    assert rep.csv_cell(-3) == -3 and rep.csv_cell(-2.5) == -2.5 and rep.csv_cell(4.0) == 4
    assert rep.csv_cell(float("nan")) == "" and rep.csv_cell(True) == "true"


def test_terminal_escapes_and_bidirectional_overrides_are_shown_not_obeyed():
    assert rep.printable("\x1b[31mred\x1b[0m") == "\\u001b[31mred\\u001b[0m"
    assert rep.printable("abc\u202edcba") == "abc\\u202edcba"
    assert rep.printable("two\nlines") == "two\nlines"


def test_every_id_the_report_can_give_has_words_and_a_section_of_the_book():
    known = rep.catalogue()
    outcomes = [rep.CELL_TIMEOUT, rep.RESOURCE_MEMORY, rep.RESOURCE_PROCESSES,
                rep.RESOURCE_TMP, rep.RESOURCE_OUTPUT, rep.INTEGRITY_REFUSAL,
                rep.NOTEBOOK_REPAIRED, rep.LATE_PENALTY, rep.GRADING_FAILED]
    for outcome in outcomes + ["student-exception:TypeError", "db-averaged"]:
        found = rep.entry(outcome, known)
        assert found.kind in ("mistake", "outcome") and found.message and found.url, found
    blank = rep.entry("student-exception:NotImplementedError", known)
    assert blank.message.startswith("not answered") and blank.url == known[
        "student-exception"].url
    assert rep.entry("student-exception:KeyError", known).message == \
        "the student's code raised KeyError"
    assert rep.entry("made-up-id", known).kind == "unknown"


def test_a_catalogue_template_reads_for_a_whole_class():
    assert rep.readable("{what} is wrong: it matches {fn}", "tanh_backward") == \
        "‹what› is wrong: it matches tanh_backward"
    assert rep.readable("{{literal}} {x", "f") == "{{literal}} {x"  # not a template: as is


# --------------------------------------------------------------------------- statistics


def _assignment(rows: dict[str, list[float]], points: list[float],
                outcomes: dict[tuple[str, int], str] | None = None) -> rep.Assignment:
    """A graded assignment from ``{student: [score of each cell]}``; a lost cell's outcome
    is ``outcomes[(student, cell index)]`` (default ``student-exception:AssertionError``)."""
    cells = [rep.GradedCell("nb", f"test_f{i}", f"f{i}", p) for i, p in enumerate(points)]
    subs = []
    for student, scores in rows.items():
        sub = rep.Submission(student, "graded", score=sum(scores))
        for i, (cell, score) in enumerate(zip(cells, scores, strict=True)):
            lost = score < cell.points
            outcome = (outcomes or {}).get((student, i), "student-exception:AssertionError")
            sub.cells[("nb", cell.name)] = (score, outcome if lost else None)
        subs.append(sub)
    return rep.Assignment("ex99", sum(points), cells, subs)


def test_a_cell_passed_only_by_weak_students_discriminates_negatively_and_is_flagged():
    strong = {f"strong{i}": [2, 2, 2, 2, 2, 0] for i in range(4)}
    weak = {f"weak{i}": [2, 0, 0, 0, 0, 2] for i in range(4)}
    middle = {"middle": [2, 2, 2, 0, 0, 0]}
    stats = {c.cell.name: c for c in rep.cell_statistics(
        _assignment({**strong, **weak, **middle}, [2] * 6))}
    assert stats["test_f5"].discrimination < -0.5 and "negative" in stats["test_f5"].flags
    assert stats["test_f1"].discrimination > 0.5 and stats["test_f1"].flags == []
    assert stats["test_f0"].flags == ["everybody"] and stats["test_f0"].discrimination is None
    assert stats["test_f0"].full == 1 and stats["test_f5"].full == pytest.approx(4 / 9)


def test_a_cell_nobody_passes_is_flagged_and_its_zero_share_is_one():
    stats = rep.cell_statistics(_assignment({"a": [1, 0], "b": [0, 0], "c": [1, 0]}, [1, 3]))
    assert stats[1].flags == ["nobody"] and stats[1].zero == 1 and stats[1].mean == 0


def test_the_correlation_is_pearsons_and_undefined_without_spread():
    assert rep.correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1)
    assert rep.correlation([1, 2, 3], [3, 1, 2]) == pytest.approx(-0.5)
    assert rep.correlation([1, 1, 1], [1, 2, 3]) is None
    assert rep.correlation([1, 2], [1, 2]) is None


def test_mistakes_are_ranked_by_students_and_count_a_student_once_per_function():
    outcomes = {("a", 0): "db-averaged", ("b", 0): "db-averaged", ("c", 0): "wrong-sign",
                ("a", 1): "db-averaged"}
    a = _assignment({"a": [0, 0], "b": [0, 1], "c": [0, 1], "d": [1, 1]}, [1, 1], outcomes)
    ranked = rep.mistakes(a)
    assert [(m.id, m.students, m.share) for m in ranked["f0"]] == [
        ("db-averaged", ["a", "b"], 0.5), ("wrong-sign", ["c"], 0.25)]
    assert [(m.id, m.students) for m in ranked["f1"]] == [("db-averaged", ["a"])]


def test_a_mistake_made_again_in_a_later_assignment_persists_with_its_students():
    first = _assignment({"a": [0], "b": [0], "c": [1]}, [1], {("a", 0): "looks-numerical",
                                                             ("b", 0): "looks-numerical"})
    later = _assignment({"a": [0], "b": [1], "c": [0]}, [1], {("a", 0): "looks-numerical",
                                                             ("c", 0): "looks-numerical"})
    later.name = "ex98"
    (row,) = rep.persisting([first, later])
    assert row.id == "looks-numerical" and row.again == ["a"]
    assert row.students == {"ex99": ["a", "b"], "ex98": ["a", "c"]}


# ------------------------------------------------------------- a report of hostile strings

HOSTILE_ID = '<img src=x onerror="alert(1)">'
FORMULA_ID = "=HYPERLINK(\"http://evil\",\"x\")"


def _hostile_report(anonymise: bool = False) -> rep.Report:
    a = _assignment({HOSTILE_ID: [0, 1], FORMULA_ID: [1, 0], "ok_student": [1, 1]}, [1, 1],
                    {(HOSTILE_ID, 0): "student-exception:?",
                     (FORMULA_ID, 1): 'forged-<b>id</b>'})
    a.submissions[0].repairs = ["<script>alert('repair')</script>"]
    a.submissions.append(rep.Submission("-failed_student", "failed", reason=(
        "-failed_student: NotJSONError: '<script>alert(2)</script>'")))
    return rep.Report([a], known={}, anonymise=anonymise)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_hostile_ids_reasons_and_repairs_are_text_in_the_page_never_markup():
    page = _hostile_report().html()
    parser = _Tags()
    parser.feed(page)
    tags = {t for t, _ in parser.tags}
    assert "script" not in tags and "b" not in tags, tags
    assert sum(t == "img" for t, _ in parser.tags) == 3  # the three figures, nothing else
    assert not [(t, a) for t, a in parser.tags if any(k.startswith("on") for k in a)]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "&lt;script&gt;alert(&#39;repair&#39;)" in page
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"',
                                  page).group(1))
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_hostile_ids_in_the_csv_are_inert_and_numbers_are_numbers():
    rows = list(csv.reader(io.StringIO(_hostile_report().csv())))
    header, body = rows[0], rows[1:]
    cells = [c for row in body for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    students = {row[header.index("student")] for row in body}
    assert "'" + FORMULA_ID in students and "'-failed_student" in students
    assert {row[header.index("cell_points")] for row in body} == {"1", ""}


def test_anonymised_everything_names_pseudonyms_only():
    report = _hostile_report(anonymise=True)
    outputs = report.html() + report.csv() + report.text()
    for found in ("ok_student", "failed_student", "onerror", "HYPERLINK"):
        assert found not in outputs, found
    assert "student 4: NotJSONError" in outputs or re.search(r"student \d: NotJSONError", outputs)
    names = {report.name(s.student) for s in report.assignments[0].submissions}
    assert names == {"student 1", "student 2", "student 3", "student 4"}


# ============================================================== a real class, really graded

corpus = grade_demo.corpus
ASSIGNMENTS = grade_demo.sampled_assignments()
EX04 = "ex04_backward"
CELL_TIMEOUT = 5  # seconds: the never-ending student stays cheap
DUE = "2026-01-16 00:00:00 UTC"  # ex04's due date; the samples are stamped 2026-01-15 12:00
LATE_STAMP = "2026-01-17 06:00:00.000000 UTC"  # 30 h late: two started days, 20 %
FORGER = "=SUM(1;2)<img src=x onerror=alert(1)>"  # a student id that is hostile too
FORGED = "db-averaged"  # linear_backward's mistake, raised by the forger's relu_backward
ANY = "(any reason)"  # the cell fails, for a reason the construction does not fix


@dataclass
class Member:
    """One student's submission of one assignment, as the class was built."""

    student: str
    assignment: str
    lost: dict[str, object] = field(default_factory=dict)  # test grade id -> outcome or ANY
    status: str = "graded"
    repaired: bool = False
    late: bool = False


def _submit(root: Path, student: str, assignment: str, nb, stamp: str = corpus.TIMESTAMP
            ) -> None:
    folder = root / "submitted" / student / assignment
    shutil.copytree(root / "exercises" / assignment, folder, dirs_exist_ok=True)
    if isinstance(nb, str):
        (folder / f"{assignment}.ipynb").write_text(nb)
    else:
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    (folder / "timestamp.txt").write_text(stamp)


def _test_of(source, function: str) -> str:
    return next(g for g, f in rep.functions_of(source).items() if f == function)


@dataclass
class Sample:
    """One mistake sample of an assignment: its broken function's cell, its own test, the
    diagnosis that test must report (the sample's ``# diagnosis:`` line), and every test
    it fails."""

    name: str
    function: str
    cell: str  # the broken solution cell's source
    test: str
    diagnosis: str
    failing: set[str]


def samples_of(source, release, assignment: str) -> list[Sample]:
    found = []
    for nb, e in corpus.variants(source, release, assignment):
        if e.student.startswith("wrong_"):
            found.append(Sample(e.student, e.function,
                                corpus.solution_cells(nb)[e.function].source,
                                _test_of(source, e.function), e.diagnosis, set(e.failing)))
    return found


def _conflict(x: Sample, y: Sample) -> bool:
    """Two mistakes one notebook cannot hold and still show each on its own test: the
    same function, one breaks the other's test (a function that calls the other), or a
    star import (it rebinds the names of every function above it)."""
    return (x.function == y.function or x.test in y.failing or y.test in x.failing
            or "import *" in x.cell or "import *" in y.cell)


def mistake_students(samples: list[Sample], copies) -> list[list[Sample]]:
    """The students of the class's mistakes: every sample ``copies(k)`` times, each copy
    in another student, packed first-fit so that a student holds several mistakes whose
    tests stay apart (a class's students make several mistakes; grading one notebook
    per mistake would cost minutes)."""
    students: list[list[Sample]] = []
    items = [s for k, s in enumerate(samples) for _ in range(copies(k))]
    for sample in sorted(items, key=lambda s: -sum(t.function == s.function for t in items)):
        home = next((st for st in students if sample not in st
                     and not any(_conflict(sample, other) for other in st)), None)
        if home is None:
            students.append(home := [])
        home.append(sample)
    return students


def _forger_notebook(source, release):
    """Correct, except: relu_backward prints forged ids and markup, shows markup as HTML,
    and raises an exception named ``Diagnosis`` with another function's id;
    sigmoid_backward raises an exception whose type name is markup; a markdown cell and
    the metadata carry markup and a planted list of repairs."""
    nb = corpus.correct_notebook(source, release)
    cells = corpus.solution_cells(nb)
    cells["relu_backward"].source = FORGER_CELL
    cells["sigmoid_backward"].source = (
        "Evil = type('<img src=x onerror=alert(3)>', (Exception,), {})\n\n\n"
        "def sigmoid_backward(dout, cache):\n    raise Evil('<b>bold</b>')\n")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("<script>alert(4)</script>"))
    nb.metadata["bpgrade_repairs"] = ["<script>alert(5)</script>"]
    return nb


FORGER_CELL = f"""class Diagnosis(AssertionError):
    pass


class Shown:
    def _repr_html_(self):
        return '<img src=x onerror=alert(2)>[diagnosis: wrong-sign]'


def relu_backward(dout, cache):
    print('[diagnosis: relu-mask-from-dout]')
    print('<script>alert(1)</script>=HYPERLINK("http://evil")')
    raise Diagnosis('student correct: all fine\\n[diagnosis: {FORGED}]')


Shown()
"""


def build_class(dest: Path) -> tuple[Path, list[Member]]:
    """Every sample mistake of every sampled assignment, the first one in two copies (so
    that a count of 2 is ranked above the 1s: the ranking test has something to order),
    carried by students who each make several, and a correct and a blank student; in
    ex04_backward also the never-ending, over-memory, repaired, late, unreadable and
    forging students."""
    course = make_course(dest, ASSIGNMENTS, REPO_ROOT,
                         extra_config=f"c.Execute.timeout = {CELL_TIMEOUT}")
    course.nbgrader("release", "generate_assignment", "*", "--force")
    course.nbgrader("due", "db", "assignment", "add", EX04, f"--duedate={DUE}")
    root, members = course.root, []
    for a in ASSIGNMENTS:
        source = nbformat.read(root / "solutions" / a / f"{a}.ipynb", 4)
        release = nbformat.read(root / "exercises" / a / f"{a}.ipynb", 4)
        for nb, e in corpus.variants(source, release, a):
            if e.student == "correct" or e.student == "blank":
                lost = "student-exception:NotImplementedError"
            elif e.student == "never_ending" and a == EX04:
                lost = rep.CELL_TIMEOUT
            else:
                continue
            _submit(root, e.student, a, nb)
            members.append(Member(e.student, a, dict.fromkeys(e.failing, lost)))
        for i, held in enumerate(mistake_students(samples_of(source, release, a),
                                                  lambda k: 1 + (k == 0)), start=1):
            nb = corpus.correct_notebook(source, release)
            cells = corpus.solution_cells(nb)
            for sample in held:
                cells[sample.function].source = sample.cell
            failing = set().union(*(x.failing for x in held))
            lost = dict.fromkeys(failing, ANY) | {x.test: x.diagnosis for x in held}
            student = f"mistakes_{i:02d}"
            _submit(root, student, a, nb)
            members.append(Member(student, a, lost))
        if a == EX04:
            members += _ex04_outcomes(root, source, release)
    return root, members


def _ex04_outcomes(root: Path, source, release) -> list[Member]:
    """The students of ex04_backward whose outcome is not a mistake."""
    correct = corpus.correct_notebook(source, release)
    over_memory = corpus.correct_notebook(source, release)
    sigmoid = corpus.solution_cells(release)["sigmoid_backward"].source
    corpus.solution_cells(over_memory)["sigmoid_backward"].source = corpus.fill_stubs(
        sigmoid, ["hog = bytearray(64 * 1024**3)\nreturn dout"])
    repaired = corpus.correct_notebook(source, release)
    next(iter(corpus.test_cells(repaired).values())).metadata.nbgrader["points"] = 300
    _submit(root, "over_memory", EX04, over_memory)
    _submit(root, "repaired", EX04, repaired)
    _submit(root, "late", EX04, correct, stamp=LATE_STAMP)
    _submit(root, "unreadable", EX04, '{"cells": [ <script>alert(6)</script>')
    _submit(root, FORGER, EX04, _forger_notebook(source, release))
    return [
        Member("over_memory", EX04, {_test_of(source, "sigmoid_backward"): rep.RESOURCE_MEMORY}),
        Member("repaired", EX04, repaired=True), Member("late", EX04, late=True),
        Member("unreadable", EX04, status="failed"),
        Member(FORGER, EX04, dict.fromkeys(corpus.expect(
            source, EX04, "", {"relu_backward", "sigmoid_backward"}, "").failing, ANY) | {
            _test_of(source, "relu_backward"): FORGED,
            _test_of(source, "sigmoid_backward"): "student-exception:?"})]


@dataclass
class Graded:
    root: Path
    members: list[Member]
    text: str  # what `python -m bpgrade report` printed
    html: str
    rows: list[dict[str, str]]  # the CSV


def _run(root: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "bpgrade", *args], cwd=root, text=True,
                          capture_output=True, timeout=timeout)
    return proc


def read_report(root: Path, *args: str, out: str = "reports") -> tuple[str, str, list]:
    proc = _run(root, "report", *ASSIGNMENTS, "--out", out, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stem = root / out / ("report-" + "-".join(ASSIGNMENTS))
    html_text = stem.with_suffix(".html").read_text(encoding="utf-8")
    with open(stem.with_suffix(".csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return proc.stdout, html_text, rows


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    """The class, graded by ``python -m bpgrade autograde`` on a ``dask scheduler`` and
    two ``dask worker`` processes, every assignment's grader at once (as the pipeline
    does: a student who runs into the time limit does not hold up the next assignment),
    and its report."""
    from test_dask_grading import Cluster

    root, members = build_class(tmp_path_factory.mktemp("class") / "course")
    course = grade_demo.Course(root, ASSIGNMENTS)
    with Cluster.running(tmp_path_factory.mktemp("report-cluster")) as cluster:
        status = grade_demo.grade_at_once(course, cluster.address)
    for a, code in status.items():  # 1: a student could not be graded (the unreadable one)
        assert code in (0, 1), course.logs[f"autograde {a}"][-3000:]
    text, page, rows = read_report(root)
    return Graded(root, members, text, page, rows)


def _lost_in_report(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """``{(assignment, student): {cell: outcome}}`` of the cells that lost points (CSV)."""
    lost: dict = defaultdict(dict)
    for row in rows:
        if row["status"] == "graded":
            lost.setdefault((row["assignment"], row["student"]), {})
            if row["outcome"]:
                lost[(row["assignment"], row["student"])][row["cell"]] = row["outcome"]
    return lost


def _csv_name(student: str) -> str:
    return rep.csv_cell(student)


@pytest.mark.slow
def test_every_constructed_failure_is_reported_with_the_id_it_was_built_to_have(graded):
    lost = _lost_in_report(graded.rows)
    graded_members = [m for m in graded.members if m.status == "graded"]
    assert set(lost) == {(m.assignment, _csv_name(m.student)) for m in graded_members}
    for m in graded_members:
        got = lost[(m.assignment, _csv_name(m.student))]
        assert set(got) == set(m.lost), (m.assignment, m.student, got, m.lost)
        for cell, want in m.lost.items():
            assert want == ANY or got[cell] == want, (m.assignment, m.student, cell, got)
            assert got[cell] in {**rep.catalogue(), **rep.OWN_ENTRIES} or got[cell].startswith(
                "student-exception:"), (m.assignment, m.student, got[cell])


@pytest.mark.slow
def test_the_ranking_counts_each_id_per_function_as_the_class_was_built(graded):
    """The page's tables of mistakes (function by function) hold, for each id, exactly
    the students the construction gave it, and the CSV agrees with the page."""
    page = _MistakeTables()
    page.feed(graded.html)
    functions = {(r["assignment"], r["cell"]): r["function"] for r in graded.rows if r["cell"]}
    built: dict = defaultdict(set)
    from_csv: dict = defaultdict(set)
    for m in graded.members:
        for cell, want in m.lost.items():
            if want != ANY:
                built[(m.assignment, functions[(m.assignment, cell)], want)].add(m.student)
    for r in graded.rows:
        if r["status"] == "graded" and r["outcome"]:
            from_csv[(r["assignment"], r["function"], r["outcome"])].add(r["student"])
    counts = {k: len(v) for k, v in from_csv.items()}
    assert page.counts == counts
    for key, students in built.items():
        assert page.counts.get(key) == len(students) or (
            page.counts.get(key, 0) > len(students) and _any_under(graded, key)), key
    ranked = defaultdict(list)
    for (a, f, _), n in page.order:
        ranked[(a, f)].append(n)
    assert all(ns == sorted(ns, reverse=True) for ns in ranked.values()), ranked


def _any_under(graded: Graded, key) -> bool:
    """Whether some student's test of that function fails for a reason the construction
    leaves open (the test of a function that calls a broken one)."""
    a, function, _ = key
    tests = {r["cell"] for r in graded.rows if r["assignment"] == a and r["function"] == function}
    return any(m.assignment == a and any(m.lost.get(t) == ANY for t in tests)
               for m in graded.members)


class _MistakeTables(HTMLParser):
    """The mistakes tables of the page: ``counts[(assignment, function, id)]`` and the
    rows in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.where: tuple[str, str] | None = None
        self.counts: dict = {}
        self.order: list = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "mistakes" in (a.get("class") or ""):
            self.where = (a["data-assignment"], a["data-function"])
        elif tag == "tr" and self.where and "data-id" in a:
            key = (*self.where, a["data-id"])
            self.counts[key] = int(a["data-count"])
            self.order.append((key, int(a["data-count"])))

    def handle_endtag(self, tag):
        if tag == "table":
            self.where = None


class _Page(HTMLParser):
    """The page's counts (``counts[assignment][key]``) and its table of every student
    (``students[assignment][student] = (status, final score or None)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict = defaultdict(dict)
        self.students: dict = defaultdict(dict)
        self.where: str | None = None
        self.key: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "dl" and "data-assignment" in a:
            self.where = a["data-assignment"]
        elif tag == "table" and "students" in (a.get("class") or ""):
            self.where = a["data-assignment"]
        elif tag == "dd" and "data-key" in a:
            self.key = a["data-key"]
        elif tag == "tr" and "data-student" in a:
            final = float(a["data-final"]) if "data-final" in a else None
            self.students[self.where][a["data-student"]] = (a["data-status"], final)

    def handle_data(self, data):
        if self.key:
            self.counts[self.where][self.key] = int(data.split()[0])
            self.key = None


@pytest.mark.slow
def test_the_csv_agrees_with_the_page_on_every_count_and_every_students_score(graded):
    page = _Page()
    page.feed(graded.html)
    for a in ASSIGNMENTS:
        rows = [r for r in graded.rows if r["assignment"] == a]
        students = {r["student"]: r for r in rows}
        assert page.counts[a] == {
            "submissions": len(students),
            "graded": sum(r["status"] == "graded" for r in students.values()),
            "failed": sum(r["status"] == "failed" for r in students.values()),
            "repaired": sum(r["repairs"] not in ("", "0") for r in students.values()),
            "late": sum(float(r["seconds_late"] or 0) > 0 for r in students.values())}
        assert page.counts[a]["submissions"] == sum(m.assignment == a for m in graded.members)
        assert page.students[a] == {_shown_name(s): (
            r["status"], float(r["final_score"]) if r["status"] == "graded" else None)
            for s, r in students.items()}


def _shown_name(csv_name: str) -> str:
    """A student's name as the page shows it, from the CSV's (which quotes a formula)."""
    return csv_name[1:] if csv_name[:1] == "'" and csv_name[1:2] in "=+-@\t\r" else csv_name


@pytest.mark.slow
def test_failed_repaired_and_late_students_are_counted_and_named(graded):
    ex04 = [r for r in graded.rows if r["assignment"] == EX04]
    failed = {r["student"]: r for r in ex04 if r["status"] == "failed"}
    assert set(failed) == {"unreadable"}
    assert failed["unreadable"]["outcome"] == rep.GRADING_FAILED
    assert "NotJSONError" in failed["unreadable"]["notes"]
    repaired = {r["student"] for r in ex04 if r["repairs"] not in ("", "0")}
    assert repaired == {"repaired"}  # the forger's planted list was replaced
    late = {r["student"]: r for r in ex04 if float(r["seconds_late"] or 0) > 0}
    assert set(late) == {"late"}
    row = late["late"]
    assert float(row["seconds_late"]) == 30 * 3600
    assert float(row["late_penalty"]) == pytest.approx(0.2 * float(row["max_score"]))
    assert float(row["final_score"]) == pytest.approx(0.8 * float(row["max_score"]))
    assert f"{EX04}: {len({r['student'] for r in ex04})} submissions, " in graded.text
    assert "1 failed, 1 repaired, 1 late (1 with a penalty)" in graded.text
    assert "failed: unreadable: " in graded.text


@pytest.mark.slow
def test_the_blank_students_not_implemented_error_persists_in_every_assignment(graded):
    page = _Persisting()
    page.feed(graded.html)
    row = page.rows["student-exception:NotImplementedError"]
    assert row == ["blank"]


class _Persisting(HTMLParser):
    """The page's table of reasons met in several assignments: ``rows[id]`` is the list of
    students who met it again (its last cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.table = False
        self.current: str | None = None
        self.cells: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("class") == "persisting":
            self.table = True
        elif self.table and tag == "tr" and "data-id" in a:
            self.current, self.cells = a["data-id"], []
        elif self.current and tag in ("td", "th"):
            self.cells.append("")

    def handle_data(self, data):
        if self.current and self.cells:
            self.cells[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr" and self.current:
            self.rows[self.current] = [s.strip() for s in self.cells[-1].split(",") if s.strip()]
            self.current = None
        elif tag == "table":
            self.table = False


@pytest.mark.slow
def test_a_forged_id_counts_for_its_own_student_only_and_its_markup_stays_text(graded):
    forger = _csv_name(FORGER)
    relu = [r for r in graded.rows if r["assignment"] == EX04 and r["function"] == "relu_backward"
            and r["outcome"] == FORGED]
    assert [r["student"] for r in relu] == [forger]
    linear = {r["student"] for r in graded.rows if r["assignment"] == EX04
              and r["function"] == "linear_backward" and r["outcome"] == FORGED}
    assert FORGER not in linear and forger not in linear
    for r in graded.rows:  # nobody got the ids the forger printed or displayed
        if r["student"] != forger:
            assert not (r["function"] == "relu_backward" and r["outcome"] in (
                "relu-mask-from-dout", "wrong-sign") and r["student"].startswith("correct"))
    parser = _Tags()
    parser.feed(graded.html)
    assert not [t for t, _ in parser.tags if t in ("script", "b")]
    assert not [(t, a) for t, a in parser.tags if any(k.startswith("on") for k in a)]
    assert html.escape(FORGER, quote=True).replace("&#x27;", "&#39;") in graded.html
    assert not [c for r in graded.rows for c in r.values() if c[:1] in "=+-@\t\r" and c]
    assert "\x1b" not in graded.text


@pytest.mark.slow
def test_anonymised_no_student_id_reaches_the_page_the_csv_or_the_terminal(graded):
    text, page, rows = read_report(graded.root, "--anonymise", out="anonymous")
    students = {m.student for m in graded.members}
    names = {r["student"] for r in rows}
    assert len(names) == len(students) and all(re.fullmatch(r"student \d+", n) for n in names)
    everything = text + page + "\n".join(",".join(r.values()) for r in rows)
    named = [s for s in students if "_" in s]  # "late", "repaired" are words of the page
    assert len(named) > 10 and not [s for s in named if s in everything]
    assert "onerror" not in everything


def _open_offline(browser, path: Path, bypass_csp: bool = False):
    from urllib.parse import urlsplit

    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True,
                                  bypass_csp=bypass_csp)
    remote: list[str] = []
    errors: list[str] = []

    def only_file(route) -> None:
        if urlsplit(route.request.url).scheme in ("file", "data"):
            route.continue_()
        else:
            remote.append(route.request.url)
            route.abort()

    context.route("**/*", only_file)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri(), wait_until="load")
    return context, page, remote, errors


@pytest.mark.slow
def test_the_page_opens_offline_its_figures_render_and_axe_finds_nothing_serious(
        graded, browser):
    path = graded.root / "reports" / ("report-" + "-".join(ASSIGNMENTS) + ".html")
    context, page, remote, errors = _open_offline(browser, path)
    try:
        sizes = page.evaluate("() => Array.from(document.images).map(i => "
                              "[i.complete, i.naturalWidth, i.alt.length])")
        assert len(sizes) == 3 * len(ASSIGNMENTS) + 1  # three per assignment, one across
        assert all(done and width > 100 and alt > 40 for done, width, alt in sizes), sizes
        assert remote == [] and errors == [], (remote, errors)
        artifacts = REPO_ROOT / "tests" / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(artifacts / "class-report.png"), full_page=True)
    finally:
        context.close()
    axe = REPO_ROOT / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
    require(None if axe.is_file() else f"{axe} is missing: `make setup` installs it",
            "axe-core")
    # axe is a script: the page's own policy forbids it, so this tab alone sets it aside
    context, page, _, _ = _open_offline(browser, path, bypass_csp=True)
    try:
        page.add_script_tag(content=axe.read_text(encoding="utf-8"))
        violations = page.evaluate("""async () => (await axe.run(document,
            {resultTypes: ["violations"]})).violations.map(v => ({id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 3).map(n => n.html.slice(0, 160))}))""")
    finally:
        context.close()
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)


# ----------------------------------------------------------------- item discrimination


@pytest.fixture(scope="module")
def discrimination(tmp_path_factory) -> tuple[str, str]:
    """ex04_backward graded by one ``nbgrader autograde``: three strong students (all
    right but tanh_backward) and three weak ones (blank but for sigmoid_backward and
    tanh_backward); its report's page and printed summary."""
    course = make_course(tmp_path_factory.mktemp("discrimination") / "course", [EX04],
                         REPO_ROOT)
    course.nbgrader("release", "generate_assignment", EX04, "--force")
    root = course.root
    source = nbformat.read(root / "solutions" / EX04 / f"{EX04}.ipynb", 4)
    release = nbformat.read(root / "exercises" / EX04 / f"{EX04}.ipynb", 4)
    wrong_tanh = next(nb for nb, e in corpus.variants(source, release, EX04)
                      if e.student == "wrong_tanh_backward")
    right = corpus.solution_cells(corpus.correct_notebook(source, release))
    weak = nbformat.from_dict(release)
    for gid in ("sigmoid_backward", "tanh_backward"):
        corpus.solution_cells(weak)[gid].source = right[gid].source
    for i in range(3):
        _submit(root, f"strong_{i}", EX04, wrong_tanh)
        _submit(root, f"weak_{i}", EX04, weak)
    course.nbgrader("autograde", "autograde", EX04)
    proc = _run(root, "report", EX04)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return (root / "reports" / f"report-{EX04}.html").read_text(encoding="utf-8"), proc.stdout


class _Flags(HTMLParser):
    """``flags[cell]``: the flags of each row of the page's cell statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.flags: dict[str, list[str]] = {}
        self.row: str | None = None
        self.code = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "code" and self.row == "":
            self.code = True
        elif tag == "tr":
            self.row = ""
        elif tag == "span" and "data-flag" in a and self.row:
            self.flags.setdefault(self.row, []).append(a["data-flag"])

    def handle_data(self, data):
        if self.code:
            self.row, self.code = data.strip(), False
            self.flags.setdefault(self.row, [])


@pytest.mark.slow
def test_a_cell_only_weak_students_pass_and_one_everybody_passes_are_flagged(discrimination):
    page, text = discrimination
    flags = _Flags()
    flags.feed(page)
    assert flags.flags["test_tanh_backward"] == ["negative"], flags.flags
    assert flags.flags["test_sigmoid_backward"] == ["everybody"], flags.flags
    assert flags.flags["test_linear_backward"] == [], flags.flags
    line = next(ln for ln in text.splitlines() if "test_tanh_backward" in ln)
    assert "discrimination -1.00" in line and line.endswith("<- negative"), line


# ------------------------------------------------------------------- files and the sandbox


def test_a_notebook_is_read_only_as_a_regular_file_inside_the_course(tmp_path):
    import os

    course = tmp_path / "course"
    folder = course / "autograded" / "ana" / "ex04_backward"
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.json"
    secret.write_text('{"cells": []}')
    (folder / "real.ipynb").write_text('{"cells": []}')
    (folder / "link.ipynb").symlink_to(secret)
    (course / "autograded" / "bea").symlink_to(folder.parent)  # a linked student folder
    os.mkfifo(folder / "fifo.ipynb")  # opening it for reading would block
    inside = course / "autograded"
    assert rep.read_json(folder / "real.ipynb", inside) == {"cells": []}
    assert rep.read_json(folder / "link.ipynb", inside) is None
    assert rep.read_json(inside / "bea" / "ex04_backward" / "real.ipynb", inside) is None
    assert rep.read_json(folder / "fifo.ipynb", inside) is None
    assert rep.read_json(secret, inside) is None
    assert rep.read_json(folder / ".." / ".." / ".." / ".." / "secret.json", inside) is None
    (folder / "big.ipynb").write_text("[" + "0," * 100 + "0]")
    assert rep.read_json(folder / "big.ipynb", inside, limit=50) is None
    (folder / "deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    assert rep.read_json(folder / "deep.ipynb", inside) is None


@pytest.mark.slow
def test_a_cell_whose_output_is_cut_gets_the_output_limit_as_a_resource_error(tmp_path):
    """The sandbox's output cap, as the class report reads it: a ResourceLimitError
    output after the cell (besides the note the student reads)."""
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    from bpgrade.nbgrader_plugins import SandboxedExecute

    folder = tmp_path / "course" / "submitted" / "ana"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("for _ in range(200):\n    print('x' * 1000)"),
        nbformat.v4.new_code_cell("print('small')")])
    ep = SandboxedExecute(course_root=str(tmp_path / "course"), timeout=30,
                          max_output_bytes=20_000)
    ep.preprocess(nb, {"metadata": {"path": str(folder)}})
    assert rep.cell_outcome(nb.cells[0]) == rep.RESOURCE_OUTPUT
    assert [o.output_type for o in nb.cells[1].outputs] == ["stream"]
