"""Grades to the LMS, due dates and late penalties: real nbgrader on a real gradebook.

One throw-away course (two exercises, one of them also in Chinese, ``ex03_error_zh``;
seven students with names, emails and LMS ids) is released, given due dates with
``nbgrader db assignment add --duedate``, filled with on-time, late and missing
submissions (``timestamp.txt`` in several time zones; one student works in Chinese, one
submits in both languages), autograded with the course's configuration (so the
course's late-penalty plugin runs), fed back and exported with the three exporters of
``bpgrade.lms``; the CSVs are parsed back and every cell is checked against the
gradebook and against penalties computed here by hand. A mixed class gets one column
per exercise.
"""

from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from bpgrade.course import make_course, run_nbgrader, tools_on_path
from tools import samples

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ["ex03_error", "ex05_updates"]  # the exercises: one export column each
ZH = "ex03_error_zh"  # ex03_error in Chinese, released to the same class
GRADEBOOK_ASSIGNMENTS = [*ASSIGNMENTS, ZH]
# Due dates as an instructor types them: with a time zone name, and with none (= UTC).
DUE = {"ex03_error": "2026-03-02 17:00:00 Europe/Paris", "ex05_updates": "2026-03-09 12:00:00",
       ZH: "2026-03-02 17:00:00 Europe/Paris"}
DUE_UTC = {"ex03_error": datetime(2026, 3, 2, 16, 0), "ex05_updates": datetime(2026, 3, 9, 12, 0),
           ZH: datetime(2026, 3, 2, 16, 0)}
STUDENTS = {  # id: (first, last, email, Canvas user id)
    "alice": ("Ada", "Lovelace", "ada@example.edu", "1001"),
    "bob": ("Bob", "Marley", "bob@example.edu", "1002"),
    "carol": ("Carol", "Shaw", "carol@example.edu", "1003"),
    "dave": ("Dave", "Cutler", "dave@example.edu", ""),
    "erin": ("Erin", "Catto", "erin@example.edu", "1005"),  # never submits anything
    "fang": ("Fang", "Zhou", "fang@example.edu", "1006"),  # works in Chinese
    "gao": ("Gao", "Li", "gao@example.edu", "1007"),  # submits in both languages
}


@dataclass(frozen=True)
class Sub:
    answer: str  # "correct", "blank", or "wrong" (the correct answers but mse_loss's 1/2 dropped)
    timestamp: str  # timestamp.txt as nbgrader writes it (c.Exchange.timestamp_format)
    seconds_late: float


SUBMISSIONS = {  # (student, assignment) -> Sub; absent = not submitted
    ("alice", "ex03_error"): Sub("correct", "2026-03-02 16:59:59.000000 Europe/Paris", 0),
    ("alice", "ex05_updates"): Sub("correct", "2026-03-09 11:00:00.000000 UTC", 0),
    # 18:00 CET = 17:00 UTC: 25 hours late, two started days, 20 %
    ("bob", "ex03_error"): Sub("correct", "2026-03-03 18:00:00.000000 CET", 25 * 3600),
    ("bob", "ex05_updates"): Sub("correct", "2026-03-09 12:00:00.000000 UTC", 0),
    # nine days late: capped at 50 %
    ("carol", "ex03_error"): Sub("correct", "2026-03-11 16:00:00.000000 UTC", 9 * 86400),
    # blank and on time: 0 points, no penalty
    ("dave", "ex03_error"): Sub("blank", "2026-03-01 09:00:00.000000 UTC", 0),
    # thirty minutes late: one started day, 10 %
    ("dave", "ex05_updates"): Sub("correct", "2026-03-09 12:30:00.000000 UTC", 1800),
    # the Chinese exercise, on time, with one mistake; and the other exercise late (a day)
    ("fang", ZH): Sub("wrong", "2026-03-02 10:00:00.000000 UTC", 0),
    ("fang", "ex05_updates"): Sub("correct", "2026-03-10 11:00:00.000000 UTC", 23 * 3600),
    # blank in English first, then answered in Chinese: the later one counts
    ("gao", "ex03_error"): Sub("blank", "2026-03-01 08:00:00.000000 UTC", 0),
    ("gao", ZH): Sub("correct", "2026-03-01 09:00:00.000000 UTC", 0),
}


def expected_penalty(seconds_late: float, score: float, max_score: float) -> float:
    """10 % of the maximum per started day, at most 50 %, never more than the score."""
    days = -(-seconds_late // 86400)
    return min(score, max_score * min(0.10 * days, 0.50))


@dataclass
class GradedCourse:
    root: Path
    max_score: dict  # assignment -> float
    raw: dict  # (student, assignment) -> raw score
    timestamp: dict  # (student, assignment) -> when it was submitted (the gradebook's)
    logs: dict  # step -> nbgrader's output


def _build(dest: Path) -> GradedCourse:
    course = make_course(dest, GRADEBOOK_ASSIGNMENTS, ROOT)
    root = course.root
    course.nbgrader("release", "generate_assignment", "*", "--force")
    for a in GRADEBOOK_ASSIGNMENTS:  # the documented command
        course.nbgrader(f"due {a}", "db", "assignment", "add", a, f"--duedate={DUE[a]}")
    from nbgrader.api import Gradebook

    with tools_on_path(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid, (first, last, email, lms_id) in STUDENTS.items():
            gb.update_or_create_student(sid, first_name=first, last_name=last, email=email,
                                        lms_user_id=lms_id or None)
    for (student, a), sub in SUBMISSIONS.items():
        source = nbformat.read(root / "solutions" / a / f"{a}.ipynb", as_version=4)
        release = nbformat.read(root / "exercises" / a / f"{a}.ipynb", as_version=4)
        if sub.answer == "correct":
            nb = samples.correct_notebook(source, release)
        else:
            nb = _wrong(source, release, a) if sub.answer == "wrong" else release
        folder = root / "submitted" / student / a
        shutil.copytree(root / "exercises" / a, folder, dirs_exist_ok=True)
        nbformat.write(nb, folder / f"{a}.ipynb")
        (folder / "timestamp.txt").write_text(sub.timestamp)
    for a in GRADEBOOK_ASSIGNMENTS:
        course.nbgrader(f"autograde {a}", "autograde", a, "--force")
    course.nbgrader("feedback", "generate_feedback", "*", "--force")
    for plugin, name in [("CanvasExportPlugin", "canvas.csv"), ("MoodleExportPlugin", "moodle.csv"),
                         ("PerStudentExportPlugin", "per_student.csv")]:
        course.nbgrader(f"export {plugin}", "export", f"--exporter=bpgrade.lms.{plugin}",
                        "--to", name)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        max_score = {a.name: a.max_score for a in gb.assignments}
        raw = {k: gb.find_submission(k[1], k[0]).score for k in SUBMISSIONS}
        timestamp = {k: gb.find_submission(k[1], k[0]).timestamp for k in SUBMISSIONS}
    return GradedCourse(root, max_score, raw, timestamp, course.logs)


def _wrong(source, release, assignment: str):
    """The sample student of tools/samples whose mse_loss leaves out the 1/2."""
    from bpgrade import language

    [nb] = [nb for nb, e in samples.variants(source, release,
                                              language.base_assignment(assignment))
            if e.student == "wrong_mse_loss_no_half"]
    return nb


_BUILT: dict[str, GradedCourse] = {}


def graded_course(tmp_path_factory) -> GradedCourse:
    """The course, built once per test process (``tests/test_feedback_offline.py`` reads it too)."""
    if "course" not in _BUILT:
        _BUILT["course"] = _build(tmp_path_factory.mktemp("lms_course"))
    return _BUILT["course"]


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> GradedCourse:
    return graded_course(tmp_path_factory)


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _score(course: GradedCourse, student: str, a: str) -> tuple[float, float] | None:
    """(score after penalty, penalty) computed here, or None when nothing was submitted."""
    sub = SUBMISSIONS.get((student, a))
    if sub is None:
        return None
    raw = course.raw[(student, a)]
    penalty = expected_penalty(sub.seconds_late, raw, course.max_score[a])
    return raw - penalty, penalty


def _column(course: GradedCourse, student: str, a: str) -> tuple[str, str] | None:
    """The submission that fills the student's cell of the exercise ``a``: theirs to
    ``a`` or to its Chinese sibling, the later one; None when there is none."""
    subs = [k for k in ((student, a), (student, f"{a}_zh")) if k in SUBMISSIONS]
    return max(subs, key=lambda k: course.timestamp[k], default=None)


def _column_score(course: GradedCourse, student: str, a: str) -> tuple[float, float] | None:
    """(score after penalty, penalty) in the exercise's column, computed here."""
    key = _column(course, student, a)
    return None if key is None else _score(course, *key)


def _fmt(x: float) -> str:
    return f"{round(x, 2) + 0.0:g}"


# ---------------------------------------------------------------------- pure functions


@pytest.mark.parametrize(("seconds", "percent"), [
    (0, 0), (1, 10), (86400, 10), (86401, 20), (4.5 * 86400, 50), (30 * 86400, 50)])
def test_percent_per_day_penalty_counts_started_days_and_stops_at_the_cap(seconds, percent):
    from bpgrade.lms import percent_per_day_penalty

    assert percent_per_day_penalty(seconds, 20.0) == pytest.approx(20.0 * percent / 100)


def test_percent_per_day_penalty_grace_and_settings():
    from bpgrade.lms import percent_per_day_penalty

    assert percent_per_day_penalty(600, 10.0, grace_seconds=900) == 0
    assert percent_per_day_penalty(3 * 86400, 10.0, percent_per_day=25, max_percent=60) == 6.0


def test_course_config_selects_the_penalty_plugin_and_the_offline_feedback_template():
    from traitlets.config.loader import PyFileConfigLoader

    from bpgrade import lms

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.AssignLatePenalties.plugin_class is lms.PercentPerDayPenalty
    assert config.PercentPerDayPenalty.percent_per_day == 10.0
    assert config.PercentPerDayPenalty.max_percent == 50.0
    assert config.HTMLExporter.extra_template_basedirs[0] == str(lms.TEMPLATES)
    assert (lms.TEMPLATES / "feedback" / "mathjax.html.j2").is_file()


def test_the_feedback_template_is_not_ignored_by_git():
    """``.gitignore`` ignores every ``feedback/`` folder (nbgrader's output): the template
    folder must be excepted, or a fresh clone has no offline feedback."""
    import subprocess

    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    from bpgrade import lms

    files = sorted(str(p.relative_to(ROOT)) for p in (lms.TEMPLATES / "feedback").iterdir())
    assert "bpgrade/templates/feedback/mathjax.html.j2" in files
    proc = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1, f"git ignores {proc.stdout.split()}: fix .gitignore"


# ------------------------------------------------------------------ the real gradebook


@pytest.mark.slow
def test_due_dates_are_stored_in_utc_whatever_zone_they_were_typed_in(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        for a in ASSIGNMENTS:
            assert gb.find_assignment(a).duedate == DUE_UTC[a]
        for (student, a), sub in SUBMISSIONS.items():
            s = gb.find_submission(a, student)
            assert s.total_seconds_late == pytest.approx(sub.seconds_late), (student, a)


@pytest.mark.slow
def test_autograde_stores_the_course_late_penalty_in_the_gradebook(course):
    from nbgrader.api import Gradebook

    assert course.raw[("alice", "ex03_error")] == course.max_score["ex03_error"] > 0
    assert course.raw[("dave", "ex03_error")] == 0
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        for student, a in SUBMISSIONS:
            got = gb.find_submission(a, student).late_submission_penalty
            want = _score(course, student, a)[1]
            assert got == pytest.approx(want), (student, a)
    # the cases: 20 % (two started days), 50 % (capped), 10 % (thirty minutes), none
    m3, m5 = course.max_score["ex03_error"], course.max_score["ex05_updates"]
    assert _score(course, "bob", "ex03_error")[1] == pytest.approx(0.2 * m3)
    assert _score(course, "carol", "ex03_error")[1] == pytest.approx(0.5 * m3)
    assert _score(course, "dave", "ex05_updates")[1] == pytest.approx(0.1 * m5)


@pytest.mark.slow
def test_canvas_csv_has_canvas_columns_a_points_possible_row_and_every_score(course):
    rows = _read(course.root / "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *ASSIGNMENTS]
    assert rows[1] == ["    Points Possible", "", "", "", "",
                       *[_fmt(course.max_score[a]) for a in ASSIGNMENTS]]
    body = rows[2:]
    assert len(body) == len(STUDENTS)
    by_id = {r[2]: r for r in body}
    assert set(by_id) == set(STUDENTS)
    # sorted by last name, as Canvas lists them
    assert [r[2] for r in body] == sorted(STUDENTS, key=lambda s: STUDENTS[s][1])
    for sid, (first, last, email, lms_id) in STUDENTS.items():
        row = by_id[sid]
        assert row[:5] == [f"{last}, {first}", lms_id, sid, email, ""]
        for i, a in enumerate(ASSIGNMENTS):
            want = _column_score(course, sid, a)
            assert row[5 + i] == ("0" if want is None else _fmt(want[0])), (sid, a)
    # the late ones really lost points
    assert float(by_id["bob"][5]) < float(by_id["alice"][5])


@pytest.mark.slow
def test_moodle_csv_has_an_identifier_column_then_one_column_per_grade_item(course):
    rows = _read(course.root / "moodle.csv")
    assert rows[0] == ["Email address", *ASSIGNMENTS]
    assert len(rows) == 1 + len(STUDENTS)
    by_email = {r[0]: r for r in rows[1:]}
    for sid, (_, _, email, _) in STUDENTS.items():
        for i, a in enumerate(ASSIGNMENTS):
            want = _column_score(course, sid, a)
            assert by_email[email][1 + i] == ("0" if want is None else _fmt(want[0])), (sid, a)


@pytest.mark.slow
def test_per_student_csv_has_score_max_and_late_penalty_for_every_student_and_assignment(course):
    rows = _read(course.root / "per_student.csv")
    header, body = rows[0], rows[1:]
    assert header == ["student_id", "last_name", "first_name", "email", "assignment", "score",
                      "max_score", "late_penalty", "raw_score", "timestamp", "seconds_late"]
    assert len(body) == len(STUDENTS) * len(ASSIGNMENTS)
    cells = {(r[0], r[4]): dict(zip(header, r, strict=True)) for r in body}
    for sid, (first, last, email, _) in STUDENTS.items():
        for a in ASSIGNMENTS:
            r = cells[(sid, a)]
            assert (r["last_name"], r["first_name"], r["email"]) == (last, first, email)
            assert r["max_score"] == _fmt(course.max_score[a])
            want = _column_score(course, sid, a)
            if want is None:
                assert (r["score"], r["late_penalty"], r["raw_score"], r["timestamp"],
                        r["seconds_late"]) == ("0", "", "", "", ""), (sid, a)
                continue
            sub = SUBMISSIONS[_column(course, sid, a)]
            assert r["score"] == _fmt(want[0]), (sid, a)
            assert r["late_penalty"] == _fmt(want[1]), (sid, a)
            assert r["raw_score"] == _fmt(course.raw[_column(course, sid, a)]), (sid, a)
            assert r["seconds_late"] == _fmt(sub.seconds_late), (sid, a)
            assert r["timestamp"], (sid, a)


@pytest.mark.slow
def test_feedback_html_shows_the_late_penalty_only_to_late_students(course):
    for student, a in SUBMISSIONS:
        page = (course.root / "feedback" / student / a / f"{a}.html").read_text()
        shown = re.findall(r"Late submission penalty \(Score: -([0-9.]+)\)", page)
        penalty = _score(course, student, a)[1]
        if penalty > 0:
            assert shown and float(shown[0]) == pytest.approx(round(penalty, 2)), (student, a)
        else:
            assert not shown, (student, a)


@pytest.mark.slow
def test_export_plugin_is_selectable_in_the_config_file(course, tmp_path):
    config = course.root / "nbgrader_config.py"
    saved = config.read_text()
    try:
        config.write_text(saved + '\nc.ExportApp.plugin_class = "bpgrade.lms.MoodleExportPlugin"\n'
                          'c.MoodleExportPlugin.identifier = "id"\n')
        run_nbgrader(course.root, "export", "--to", str(tmp_path / "m.csv"))
    finally:
        config.write_text(saved)
    rows = _read(tmp_path / "m.csv")
    assert rows[0] == ["ID number", *ASSIGNMENTS]
    assert sorted(r[0] for r in rows[1:]) == sorted(STUDENTS)


# ------------------------------------------------------------- a class in two languages


@pytest.mark.slow
def test_a_mixed_class_gets_one_column_per_exercise_whichever_language_it_worked_in(course):
    """fang answered ex03_error in Chinese only (one function wrong); gao left it blank in
    English, then answered it in Chinese: both columns are named ex03_error and hold the
    Chinese grade."""
    assert course.max_score[ZH] == course.max_score["ex03_error"] > 0
    assert course.raw[("gao", ZH)] == course.max_score[ZH] > course.raw[("fang", ZH)] > 0
    assert course.raw[("gao", "ex03_error")] == 0
    canvas = {r[2]: r for r in _read(course.root / "canvas.csv")[2:]}
    moodle = {r[0]: r for r in _read(course.root / "moodle.csv")[1:]}
    per_student = {(r[0], r[4]): r for r in _read(course.root / "per_student.csv")[1:]}
    for sid in ("fang", "gao"):
        got = _fmt(course.raw[(sid, ZH)])
        assert canvas[sid][5] == moodle[STUDENTS[sid][2]][1] == got, sid
        assert per_student[(sid, "ex03_error")][5] == got, sid
    assert not [k for k in per_student if k[1] == ZH]


@pytest.mark.slow
def test_a_student_who_submitted_both_languages_is_named_in_the_exports_log(course):
    for plugin in ("CanvasExportPlugin", "MoodleExportPlugin", "PerStudentExportPlugin"):
        log = course.logs[f"export {plugin}"]
        assert "student gao submitted ex03_error in 2 languages" in log, plugin
        assert "student fang submitted" not in log, plugin


@pytest.mark.slow
def test_one_column_per_gradebook_assignment_when_asked(course, tmp_path):
    run_nbgrader(course.root, "export", "--exporter=bpgrade.lms.MoodleExportPlugin",
                 "--MoodleExportPlugin.one_column_per_exercise=False",
                 "--to", str(tmp_path / "m.csv"))
    rows = _read(tmp_path / "m.csv")
    assert sorted(rows[0][1:]) == sorted(GRADEBOOK_ASSIGNMENTS)
    by_email = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_email["gao@example.edu"]["ex03_error"] == "0"
    assert by_email["gao@example.edu"][ZH] == _fmt(course.max_score[ZH])
