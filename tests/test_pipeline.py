"""The instructor's grading pipeline: real nbgrader on the real notebooks, in a throw-away course.

One course is released, filled with the sample submissions of ``tools/samples/``
(built from the release), autograded by the class grader (``python -m bpgrade
autograde``, every assignment at once on one Dask cluster: a never-ending student's
cells wait out their time limit while the others are graded), given feedback and
exported; every slow test reads that one course. Plain ``nbgrader autograde`` grades
the same kind of class in tests/test_parallel_grading.py and tests/test_dask_grading.py,
which check that both agree cell by cell.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from bpgrade import language
from bpgrade.course import tools_env
from bpgrade.nbgrader_plugins import HIDDEN_NOTE, HideHiddenTests, strip_hidden_region
from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]

ASSIGNMENTS = grade_demo.sampled_assignments()
TIMEOUT = 15  # nbgrader_config.py's per-cell timeout
# The test course's, added to its copy of nbgrader_config.py: a never-ending student's
# loops spin a core until the limit (twelve students, two or three loops each), so the
# class is graded with a shorter one; the never-ending test checks that it is the
# configured limit, not nbgrader's default, that stops them.
COURSE_TIMEOUT = 5
JOBS = 4  # Dask workers: more than the cores, as most of a never-ending student is waiting


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def course(tmp_path_factory):
    """Every assignment released, the samples submitted, autograded, fed back, exported."""
    course = grade_demo.make_course(tmp_path_factory.mktemp("course"), ASSIGNMENTS,
                                    extra_config=f"c.Execute.timeout = {COURSE_TIMEOUT}")
    course.rows = grade_demo.run_all(course, jobs=JOBS)
    course.grades = grade_demo.cell_grades(course)
    return course


def _samples(course, assignment: str, prefix: str = ""):
    return [e for e in course.expected
            if e.assignment == assignment and e.student.startswith(prefix)]


def _autograded(course, assignment: str, student: str):
    path = course.root / "autograded" / student / assignment / f"{assignment}.ipynb"
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c
            for c in nbformat.read(path, as_version=4).cells}


# ----------------------------------------------------------------- the feedback preprocessor


def test_strip_hidden_region_keeps_the_visible_tests_and_drops_the_hidden_ones():
    source = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(3) == 9\n### END HIDDEN TESTS\nprint(1)"
    stripped, removed = strip_hidden_region(source)
    assert removed
    assert stripped == f"check(f)\n{HIDDEN_NOTE}\nprint(1)"


def test_strip_hidden_region_refuses_an_unclosed_region():
    with pytest.raises(ValueError, match="never closed"):
        strip_hidden_region("### BEGIN HIDDEN TESTS\nassert secret")


def _test_cell(source: str, outputs: list) -> nbformat.NotebookNode:
    """An instructor's test cell as autograde leaves it (graded, locked)."""
    cell = nbformat.v4.new_code_cell(source, outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "test_f", "points": 1, "schema_version": 3}
    return cell


def test_hide_hidden_tests_cuts_the_traceback_to_its_message_only_in_hidden_test_cells():
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "dW is transposed",
             "traceback": ["frame quoting: assert secret_check(dW)", "AssertionError: dW..."]}
    hidden = _test_cell("### BEGIN HIDDEN TESTS\nassert secret_check(dW)\n### END HIDDEN TESTS",
                        [nbformat.from_dict(error)])
    visible = nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.from_dict(error)])
    nb = nbformat.v4.new_notebook(cells=[hidden, visible])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    assert "secret_check" not in json.dumps(nb.cells[0])
    assert nb.cells[0].outputs[0].traceback == ["\x1b[0;31mAssertionError\x1b[0m: dW is transposed"]
    assert nb.cells[1].outputs[0].traceback == error["traceback"]


def test_hide_hidden_tests_keeps_nbgraders_timeout_message():
    timeout = {"output_type": "error", "ename": "CellTimeoutError", "evalue": "",
               "traceback": ["\x1b[0;31mCellTimeoutError\x1b[0m: "
                             "No reply from kernel before timeout"]}
    cell = _test_cell("### BEGIN HIDDEN TESTS\ncheck()\n### END HIDDEN TESTS",
                      [nbformat.from_dict(timeout)])
    nb, _ = HideHiddenTests().preprocess(nbformat.v4.new_notebook(cells=[cell]), {})
    assert nb.cells[0].outputs[0].traceback == timeout["traceback"]


def test_nbgrader_config_registers_the_preprocessor_before_the_html_export():
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    names = [p.__name__ for p in config.GenerateFeedback.preprocessors]
    assert names == ["GetGrades", "HideHiddenTests", "CSSHTMLHeaderPreprocessor"]
    # every HTML export (feedback, formgrader) cleans the notebook first
    assert config.HTMLExporter.preprocessors == ["bpgrade.nbgrader_plugins.SanitizeNotebook"]
    assert config.Execute.timeout == TIMEOUT


# ------------------------------------------------------------------- the sample builder


def test_fill_stubs_puts_each_body_at_its_stubs_indentation():
    source = 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    filled = grade_demo.corpus.fill_stubs(source, ["y = 2 * x\nreturn y"])
    assert filled == 'def f(x):\n    """Doc."""\n    y = 2 * x\n    return y'
    with pytest.raises(ValueError, match="1 stub"):
        grade_demo.corpus.fill_stubs(source, ["a", "b"])


def test_solution_regions_are_the_dedented_code_between_the_markers():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
    assert grade_demo.corpus.solution_regions(source) == ["return 2 * x"]


@pytest.mark.skipif("ex04_backward" not in ASSIGNMENTS, reason="needs solutions/ex04_backward")
def test_a_mistake_is_expected_to_fail_its_own_test_and_those_of_functions_that_call_it():
    nb = nbformat.read(ROOT / "solutions" / "ex04_backward" / "ex04_backward.ipynb", 4)
    expect = grade_demo.corpus.expect
    linear = expect(nb, "ex04_backward", "s", {"linear_backward"}, "")
    assert linear.failing == {"test_linear_backward", "test_two_layer_net"}
    tanh = expect(nb, "ex04_backward", "s", {"tanh_backward"}, "")
    assert tanh.failing == {"test_tanh_backward"}
    assert tanh.score == tanh.max_score - tanh.points["test_tanh_backward"]


# --------------------------------------------------------------------------- grading


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_correct_submission_gets_every_point(course, assignment):
    grades = course.grades[(assignment, "correct")]
    (expected,) = _samples(course, assignment, "correct")
    assert grades and all(grades[g] == p for g, p in expected.points.items()), grades


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_blank_submission_scores_zero(course, assignment):
    grades = course.grades[(assignment, "blank")]
    assert grades and sum(grades.values()) == 0, grades


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_each_mistake_loses_exactly_the_points_of_the_functions_it_got_wrong(course, assignment):
    mistakes = _samples(course, assignment, "wrong_")
    assert mistakes, f"no mistake snippet in tools/samples/{assignment}/"
    for e in mistakes:
        assert e.failing, f"{e.student}: the snippet breaks no test cell"
        grades = course.grades[(assignment, e.student)]
        lost = {g for g, s in grades.items() if s < e.points[g]}
        assert lost == e.failing, f"{e.student} ({e.description}): lost {lost}, not {e.failing}"
        assert all(grades[g] == 0 for g in lost), grades


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_each_sample_fails_its_test_cell_with_the_diagnosis_it_declares(course, assignment):
    """Graded by nbgrader: the test cell of the broken function ends in an error output
    ``Diagnosis`` whose last line names the sample's id (what a class report reads).
    ``tests/test_diagnoses.py`` checks that every id of the catalogue has such a sample."""
    samples = [e for e in _samples(course, assignment, "wrong_")]
    assert samples and all(e.diagnosis for e in samples), [e.student for e in samples]
    for e in samples:
        cell = _autograded(course, assignment, e.student)[f"test_{e.function}"]
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"{e.student}: test_{e.function} has no error output"
        assert errors[-1].ename == "Diagnosis", (e.student, errors[-1].ename, errors[-1].evalue)
        assert errors[-1].evalue.splitlines()[-1] == f"[diagnosis: {e.diagnosis}]", \
            (e.student, errors[-1].evalue)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_never_ending_submission_is_stopped_by_the_cell_timeout_and_scores_zero_there(
        course, assignment):
    (e,) = _samples(course, assignment, "never_ending")
    grades = course.grades[(assignment, "never_ending")]
    assert {g for g, s in grades.items() if s < e.points[g]} == e.failing
    assert all(grades[g] == 0 for g in e.failing)
    # The looping cells ran for about the configured timeout, not nbgrader's default 30 s.
    cells = _autograded(course, assignment, "never_ending")
    durations = [_seconds(c) for c in cells.values() if c.cell_type == "code"]
    timed_out = _timed_out(course, assignment)
    assert len(timed_out) >= 2, durations  # the top-level loop and a call of the looping function
    assert max(timed_out) < COURSE_TIMEOUT + 10, durations
    # The whole autograde step (every sample student of every assignment, graded at once)
    # stayed bounded: a time limit per looping cell, and 20 s per student.
    budget = sum(COURSE_TIMEOUT * len(_timed_out(course, a)) + 20 * len(_samples(course, a))
                 for a in ASSIGNMENTS)
    assert course.seconds["autograde"] < budget, (course.seconds, budget)


def _timed_out(course, assignment: str) -> list[float]:
    """The durations of the never-ending student's cells that ran into the time limit."""
    cells = _autograded(course, assignment, "never_ending")
    durations = [_seconds(c) for c in cells.values() if c.cell_type == "code"]
    return [d for d in durations if d is not None and d >= COURSE_TIMEOUT - 1]


def _seconds(cell) -> float | None:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


# ------------------------------------------------------------------ feedback and export


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.slow
def test_feedback_shows_each_failure_message_and_no_hidden_test_source(course, assignment):
    secret = grade_demo.hidden_lines(course, assignment)
    assert secret, f"{assignment} has no hidden tests to protect"
    for e in _samples(course, assignment):
        raw = (course.root / "feedback" / e.student / assignment / f"{assignment}.html").read_text()
        text = grade_demo.feedback_text(course, assignment, e.student)
        assert not [s for s in secret if s in text or s in raw], e.student
        assert "HIDDEN TESTS" not in text
        cells = _autograded(course, assignment, e.student)
        for gid in e.failing:
            errors = [o for o in cells[gid].outputs if o.output_type == "error"]
            assert errors, f"{e.student}/{gid} failed without an error output"
            message = f"{errors[0].ename}: {errors[0].evalue}".split("\n")[0].strip()
            assert message in text, f"{e.student}/{gid}: {message!r} missing from the feedback"


@pytest.mark.slow
def test_exported_csv_has_one_row_per_student_and_assignment_with_the_gradebook_scores(course):
    rows = {(r["assignment"], r["student_id"]): r for r in course.rows}
    students = {e.student for e in course.expected}
    assert len(rows) == len(course.rows) == len(students) * len(ASSIGNMENTS)
    assert set(rows) == {(a, s) for a in ASSIGNMENTS for s in students}
    submitted = {(e.assignment, e.student): e for e in course.expected}
    for key, row in rows.items():
        if key in submitted:
            e = submitted[key]
            assert row["timestamp"], key
            assert float(row["score"]) == pytest.approx(e.score), (key, e.failing)
            assert float(row["max_score"]) == pytest.approx(e.max_score), key
        else:
            assert row["timestamp"] == "" and float(row["score"]) == 0.0, key


# ------------------------------------------------------------- what the guides promise


@pytest.mark.slow
def test_validate_exits_zero_even_when_tests_fail_so_its_output_must_be_read(course):
    a = ASSIGNMENTS[-1]
    outputs = {}
    for student in ("blank", "correct"):
        nb = course.root / "submitted" / student / a / f"{a}.ipynb"
        proc = subprocess.run([*grade_demo.NBGRADER, "validate", str(nb)], cwd=course.root,
                              capture_output=True, text=True, env=tools_env(), timeout=300)
        assert proc.returncode == 0, proc.stderr
        outputs[student] = proc.stdout
    assert "VALIDATION FAILED ON" in outputs["blank"]
    assert "Success! Your notebook passes all the tests." in outputs["correct"]


@pytest.mark.slow
def test_zip_collect_files_an_lms_download_under_submitted(course):
    a = ASSIGNMENTS[-1]
    archive = course.root / "downloaded" / a / "archive"
    archive.mkdir(parents=True)
    notebook = (course.root / "submitted" / "correct" / a / f"{a}.ipynb").read_bytes()
    with zipfile.ZipFile(archive / "lms_download.zip", "w") as zf:
        zf.writestr(f"jdoe_late_12345_67890_{a}.ipynb", notebook)
    course.nbgrader("zip_collect", "zip_collect", a)
    assert (course.root / "submitted" / "jdoe" / a / f"{a}.ipynb").read_bytes() == notebook


# ------------------------------------------------------------- both languages (issue 22)


@pytest.mark.slow
def test_every_sample_scores_the_same_in_chinese_as_in_english_cell_by_cell(course):
    """The Chinese twin of each exercise is released, given the same sample students (the
    same mistakes in its answer cells) and graded beside the English one: every test
    cell of every student gets the same points in both."""
    pairs = [(a, language.sibling(a, "zh_CN")) for a in ASSIGNMENTS
             if language.of_assignment(a) == language.ENGLISH]
    assert len(pairs) >= 6 and all(zh in ASSIGNMENTS for _, zh in pairs)
    for en, zh in pairs:
        students = sorted(e.student for e in _samples(course, en))
        assert students == sorted(e.student for e in _samples(course, zh))
        for student in students:
            assert course.grades[(zh, student)] == course.grades[(en, student)], (zh, student)
    assert grade_demo.language_mismatches(course) == []


@pytest.mark.slow
def test_each_chinese_failure_says_in_chinese_what_the_english_one_says(course):
    """Every test cell a sample fails with a diagnosis: in the Chinese autograded notebook
    the same diagnosis, its message in Chinese (Han fraction of the words at least 0.3)
    with the same names, numbers and shapes as the English one."""
    from test_zh_exercises import han_fraction, same_facts

    checked = 0
    for e in course.expected:
        base = language.base_assignment(e.assignment)
        if base == e.assignment:
            continue
        zh_cells = _autograded(course, e.assignment, e.student)
        en_cells = _autograded(course, base, e.student)
        for gid in sorted(e.failing):
            zh = [o for o in zh_cells[gid].outputs if o.output_type == "error"]
            en = [o for o in en_cells[gid].outputs if o.output_type == "error"]
            assert zh and en and zh[0].ename == en[0].ename, (e.assignment, e.student, gid)
            if en[0].ename != "Diagnosis":
                continue  # Python's own error (a stub's NotImplementedError, a timeout)
            en_lines, zh_lines = en[0].evalue.splitlines(), zh[0].evalue.splitlines()
            assert zh_lines[-1] == en_lines[-1], (e.student, gid)  # [diagnosis: <id>]
            message = "\n".join(zh_lines[:-2])
            assert not same_facts("\n".join(en_lines[:-2]), message), (e.student, gid, message)
            assert han_fraction(message) >= 0.3, (e.student, gid, message)
            checked += 1
    assert checked >= 40, checked
