"""Notebook repair before grading (bpgrade/repair.py, RepairNotebook).

Fast tests repair small edits of ex04_backward against the instructor's cells read
from its release (``exercises/``, the same cells and checksums the gradebook holds).
The slow tests run real ``nbgrader autograde`` and ``generate_feedback`` in a
throw-away course: one call grades a correct student first and last and, between
them, four broken submissions (an added graded cell, a solution cell marked graded,
a pasted copy of a test cell, every cell's nbgrader metadata stripped) and a
stripped one with a wrong answer.

``BPGRADE_REPAIR_OFF=1`` builds that course with nbgrader's own sanitizing
preprocessors only (no RepairNotebook): the slow tests then fail, which shows the
repair is what makes them pass.
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from pathlib import Path

import nbformat
import pytest
from nbgrader import utils

from bpgrade import repair
from bpgrade.course import make_course, run_nbgrader
from bpgrade.nbgrader_plugins import HideHiddenTests, add_repair_note

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ex04_backward"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
REPAIR_OFF = os.environ.get("BPGRADE_REPAIR_OFF") == "1"

slow = pytest.mark.slow


# --------------------------------------------------------------------------- builders


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _index(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == gid)


def correct_notebook(release: Path = RELEASE, source: Path = SOURCE):
    """The release with every solution cell answered with the instructor's solution."""
    src = nbformat.read(source, 4)
    answers = {_meta(c)["grade_id"]: _strip_markers(c.source) for c in src.cells
               if _meta(c).get("solution")}
    nb = nbformat.read(release, 4)
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            cell.source = answers[_meta(cell)["grade_id"]]
    return nb


def added_graded_cell(nb):
    """A graded cell the gradebook does not know, after the first test cell."""
    cell = nbformat.v4.new_code_cell("bonus = 'I deserve 10 more points'")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus_points", "locked": False,
                                 "points": 10, "schema_version": 3, "solution": True}
    nb.cells.insert(_index(nb, "test_linear_backward") + 1, cell)
    return nb


def solution_marked_graded(nb):
    _meta(nb.cells[_index(nb, "linear_backward")]).update(grade=True, points=5)
    return nb


def pasted_test_copy(nb):
    """A copy of a test cell pasted at the end (Jupyter gives it a new id)."""
    cell = copy.deepcopy(nb.cells[_index(nb, "test_relu_backward")])
    cell["id"] = uuid.uuid4().hex[:8]
    nb.cells.append(cell)
    return nb


def stripped(nb, new_ids: bool = True):
    """Every cell's nbgrader metadata dropped (and, by default, new cell ids)."""
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        if new_ids:
            cell["id"] = uuid.uuid4().hex[:8]
    return nb


def wrong_relu(nb):
    """relu_backward answered wrong (found by its def even without metadata)."""
    for cell in nb.cells:
        if cell.source.startswith("def relu_backward"):
            cell.source = "def relu_backward(dout, cache):\n    return dout"
    return nb


def instructor():
    return repair.instructor_cells_from_notebook(nbformat.read(RELEASE, 4))


def gradebook_notebook():
    """What ``Gradebook.find_notebook`` gives for ex04_backward: the release's cells,
    except that test cells keep their hidden tests (and their checksum is of those)."""
    from types import SimpleNamespace as NS

    source = {_meta(c)["grade_id"]: c for c in nbformat.read(SOURCE, 4).cells if _meta(c)}
    cells, grades, solutions = [], [], []
    for cell in nbformat.read(RELEASE, 4).cells:
        m = _meta(cell)
        if not m:
            continue
        if m.get("grade"):
            cell = copy.deepcopy(cell)
            cell.source = source[m["grade_id"]].source
            grades.append(NS(name=m["grade_id"], max_score=m["points"]))
        if m.get("solution"):
            solutions.append(NS(name=m["grade_id"]))
        cells.append(NS(name=m["grade_id"], cell_type=cell.cell_type, source=cell.source,
                        locked=utils.is_locked(cell), checksum=utils.compute_checksum(cell)))
    return NS(source_cells=cells, grade_cells=grades, solution_cells=solutions, task_cells=[])


def _marks(nb) -> list[tuple]:
    """What nbgrader grades: (grade_id, grade, solution, locked, points) per cell."""
    return [(m.get("grade_id"), bool(m.get("grade")), bool(m.get("solution")),
             utils.is_locked(c), m.get("points")) for c in nb.cells
            if (m := _meta(c)) and (m.get("grade") or m.get("solution") or m.get("locked"))]


# ------------------------------------------------------------------------ fast tests


def test_instructor_cells_and_checksums_are_the_gradebooks():
    release = nbformat.read(RELEASE, 4)
    cells = repair.instructor_cells_from_notebook(release)
    assert [c.name for c in cells][:4] == ["install", "intro", "grading", "setup"]
    for cell in release.cells:
        if "nbgrader" in cell.metadata:
            assert repair.compute_checksum(cell) == utils.compute_checksum(cell)
            assert cell.metadata.nbgrader["checksum"] == utils.compute_checksum(cell)
    # computed from the source notebook's metadata, the checksum is nbgrader's too
    for ic in cells:
        probe = nbformat.from_dict({"cell_type": ic.cell_type, "source": ic.source,
                                    "metadata": {"nbgrader": ic.metadata()}})
        assert utils.compute_checksum(probe) == ic.checksum


def test_gradebook_cells_keep_hidden_tests_yet_an_unchanged_test_copy_is_recognised():
    ids = repair.cell_ids(nbformat.read(SOURCE, 4))
    cells = repair.instructor_cells_from_gradebook(gradebook_notebook(), ids)
    assert [c.name for c in cells] == [c.name for c in instructor()]
    test = next(c for c in cells if c.name == "test_two_layer_net")
    assert "BEGIN HIDDEN TESTS" in test.source and test.grade and test.locked
    assert test.cell_id == "ex04_backward-16" and test.points == 4
    # of a pasted copy placed first and edited, the unchanged one is graded
    nb = correct_notebook()
    i = _index(nb, "test_two_layer_net")
    edited = copy.deepcopy(nb.cells[i])
    edited.source += "\nprint('extra')"
    nb.cells.insert(i, edited)
    assert len(repair.repair_notebook(nb, cells)) == 1
    assert "nbgrader" not in nb.cells[i].metadata
    # stripped, with new ids: the tests are found by their source without hidden tests
    nb = stripped(correct_notebook())
    repairs = repair.repair_notebook(nb, cells)
    assert _marks(nb) == _marks(correct_notebook()), repairs


def test_a_correct_submission_needs_no_repair():
    nb = correct_notebook()
    before = _marks(nb)
    assert repair.repair_notebook(nb, instructor()) == []
    assert repair.repair_notebook(nb, repair.instructor_cells_from_gradebook(
        gradebook_notebook())) == []
    assert _marks(nb) == before


def test_an_unknown_graded_cell_is_kept_as_an_ordinary_cell():
    nb = added_graded_cell(correct_notebook())
    repairs = repair.repair_notebook(nb, instructor())
    assert len(repairs) == 1 and "'bonus_points' is not in the instructor's" in repairs[0]
    cell = next(c for c in nb.cells if c.source.startswith("bonus ="))
    assert "nbgrader" not in cell.metadata
    assert _marks(nb) == _marks(correct_notebook())


def test_a_solution_cell_marked_graded_gets_the_instructors_metadata_back():
    nb = solution_marked_graded(correct_notebook())
    repairs = repair.repair_notebook(nb, instructor())
    assert len(repairs) == 1 and "'linear_backward'" in repairs[0] and "grade=True" in repairs[0]
    assert _marks(nb) == _marks(correct_notebook())
    assert nb.cells[_index(nb, "linear_backward")].source.startswith("def linear_backward")


def test_changed_points_and_an_unlocked_test_are_reset():
    nb = correct_notebook()
    _meta(nb.cells[_index(nb, "test_linear_backward")]).update(points=300)
    _meta(nb.cells[_index(nb, "test_relu_backward")]).update(solution=True)  # editable test
    repairs = repair.repair_notebook(nb, instructor())
    assert len(repairs) == 2 and "points=300" in repairs[0] and "solution=True" in repairs[1]
    assert _marks(nb) == _marks(correct_notebook())


def test_of_a_pasted_test_copy_the_first_unchanged_one_is_graded():
    nb = pasted_test_copy(correct_notebook())
    repairs = repair.repair_notebook(nb, instructor())
    assert len(repairs) == 1 and "'test_relu_backward' was on 2 cells" in repairs[0]
    assert "nbgrader" not in nb.cells[-1].metadata
    assert _marks(nb) == _marks(correct_notebook())
    # an edited copy placed first: the unchanged one (the instructor's checksum) wins
    nb = correct_notebook()
    original = _index(nb, "test_relu_backward")
    edited = copy.deepcopy(nb.cells[original])
    edited.source = "print('all tests passed')"
    nb.cells.insert(original, edited)
    repair.repair_notebook(nb, instructor())
    assert "nbgrader" not in nb.cells[original].metadata
    assert _meta(nb.cells[original + 1])["grade_id"] == "test_relu_backward"


def test_of_a_copied_solution_cell_the_answered_one_is_kept():
    nb = nbformat.read(RELEASE, 4)  # unanswered stubs
    i = _index(nb, "relu_backward")
    answered = copy.deepcopy(nb.cells[i])
    answered.source = "def relu_backward(dout, cache):\n    return dout * (cache > 0)"
    nb.cells.insert(i + 1, answered)
    repair.repair_notebook(nb, instructor())
    assert "nbgrader" not in nb.cells[i].metadata
    assert _meta(nb.cells[i + 1])["grade_id"] == "relu_backward"


@pytest.mark.parametrize("new_ids", [False, True], ids=["same ids", "new ids"])
def test_stripped_metadata_is_matched_back(new_ids):
    nb = stripped(correct_notebook(), new_ids=new_ids)
    repairs = repair.repair_notebook(nb, instructor())
    assert _marks(nb) == _marks(correct_notebook())
    assert len(repairs) == len(instructor())
    how = " ".join(repairs)
    if new_ids:
        assert "by its cell id" not in how
        assert "'linear_backward' by the function(s) it defines (linear_backward)" in how
        assert "'test_linear_backward' by its unchanged source" in how
    else:
        assert all("by its cell id" in r for r in repairs)


def test_a_stripped_solution_with_helpers_and_a_draft_is_matched_by_its_function():
    nb = stripped(correct_notebook())
    i = next(i for i, c in enumerate(nb.cells) if c.source.startswith("def relu_backward"))
    nb.cells[i].source = "def _mask(c):\n    return c > 0\n\n" + nb.cells[i].source
    nb.cells.insert(i, nbformat.v4.new_markdown_cell("def relu_backward in a markdown cell"))
    repair.repair_notebook(nb, instructor())
    assert _meta(nb.cells[i + 1])["grade_id"] == "relu_backward"
    assert "nbgrader" not in nb.cells[i].metadata


def test_a_test_cell_whose_solution_cell_is_gone_too_is_put_back():
    nb = correct_notebook()
    for gid in ("relu_backward", "test_relu_backward"):
        del nb.cells[_index(nb, gid)]
    cells = repair.instructor_cells_from_gradebook(gradebook_notebook())
    (line,) = repair.repair_notebook(nb, cells)
    assert "'test_relu_backward' was missing" in line
    nb = nbformat.from_dict(nb)  # as RepairNotebook does: the new cell is a plain dict
    nbformat.validate(nb)
    i = _index(nb, "test_relu_backward")
    assert _meta(nb.cells[i - 1])["grade_id"] == "test_linear_backward"
    assert "BEGIN HIDDEN TESTS" in nb.cells[i].source and utils.is_locked(nb.cells[i])
    # one missing after a present solution cell is left to nbgrader (add_missing_cells)
    nb = correct_notebook()
    del nb.cells[_index(nb, "test_relu_backward")]
    assert repair.repair_notebook(nb, cells) == []


def test_a_student_cannot_plant_repairs_and_odd_grade_ids_are_shown_safely():
    nb = correct_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "<script>alert(1)</script>`x",
                                 "points": 1, "solution": False, "locked": True}
    nb.cells.append(cell)
    (line,) = repair.repair_notebook(nb, instructor())
    assert "<" not in line and "`" not in line


def test_the_feedback_lists_the_repairs_at_the_top():
    nb = added_graded_cell(correct_notebook())
    nb.metadata[repair.REPAIRS_KEY] = repair.repair_notebook(nb, instructor()) + ["a <b>"]
    nb, _ = HideHiddenTests().preprocess(nb, {})
    top = nb.cells[0]
    assert top.cell_type == "markdown" and "repaired this notebook" in top.source
    assert "'bonus_points'" in top.source and "a &lt;b&gt;" in top.source
    plain = correct_notebook()
    assert not add_repair_note(plain) and plain.cells[0].metadata.nbgrader.grade_id == "install"
    assert "repaired" not in plain.cells[0].source


# ------------------------------------------------------------------ real nbgrader


CASES = {
    "r_added_graded_cell": added_graded_cell,
    "r_solution_marked_graded": solution_marked_graded,
    "r_pasted_test_copy": pasted_test_copy,
    "r_all_metadata_stripped": stripped,
}
WRONG = "r_stripped_wrong_relu"  # loses what a wrong relu_backward loses, nothing else
GONE = "r_relu_and_its_test_deleted"  # nbgrader's add_missing_cells alone fails on it
STUDENTS = ["aaa_correct", *CASES, WRONG, GONE, "zzz_correct"]
NO_REPAIR = """
from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    OverwriteCells, OverwriteKernelspec)
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]
"""


def _run(root: Path, *args: str) -> tuple[bool, str]:
    try:
        proc = run_nbgrader(root, *args)
    except RuntimeError as failed:
        return False, str(failed)
    return True, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """One course; one autograde call for every student; then generate_feedback."""
    root = tmp_path_factory.mktemp("repair") / "course"
    extra = "c.Execute.timeout = 8\n" + (NO_REPAIR if REPAIR_OFF else "")
    make_course(root, [ASSIGNMENT], ROOT, extra_config=extra)
    run_nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    release = root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    for student in STUDENTS:
        nb = correct_notebook(release, source)
        if student in CASES:
            nb = CASES[student](nb)
        elif student == WRONG:
            nb = wrong_relu(stripped(nb))
        elif student == GONE:
            for gid in ("relu_backward", "test_relu_backward"):
                del nb.cells[_index(nb, gid)]
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    ok, log = _run(root, "autograde", ASSIGNMENT, "--force")
    _, feedback_log = _run(root, "generate_feedback", ASSIGNMENT, "--force")
    return root, ok, log, feedback_log, _grades(root)


def _grades(root: Path) -> dict[str, dict[str, tuple]]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, sub.student.id)
            out[sub.student.id] = {g.name: (g.score, g.max_score) for g in nb.grades}
    return out


def _feedback(root: Path, student: str) -> str:
    path = root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    return path.read_text() if path.is_file() else ""


@slow
def test_autograde_finishes_without_an_error(course):
    _, ok, log, *_ = course
    assert ok, log[-3000:]
    assert "There was an error processing" not in log


@slow
@pytest.mark.parametrize("student", [*CASES, "aaa_correct", "zzz_correct"])
def test_a_repaired_submission_with_right_answers_gets_full_marks(course, student):
    *_, table = course
    got = table.get(student)
    assert got and all(score == top > 0 for score, top in got.values()), (student, got)
    assert set(got) == {"test_linear_backward", "test_relu_backward", "test_sigmoid_backward",
                        "test_tanh_backward", "test_two_layer_net"}


@slow
def test_a_stripped_submission_loses_exactly_what_its_wrong_answer_loses(course):
    *_, table = course
    got = table.get(WRONG)
    assert got, table
    lost = {g for g, (score, top) in got.items() if score < top}
    assert lost == {"test_relu_backward", "test_two_layer_net"}, got


@slow
def test_a_deleted_solution_and_its_test_lose_only_what_needs_that_function(course):
    root, *_, table = course
    got = table.get(GONE)
    assert got, table
    lost = {g for g, (score, top) in got.items() if score < top}
    assert lost == {"test_relu_backward", "test_two_layer_net"}, got
    nb = nbformat.read(root / "autograded" / GONE / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    assert any("'test_relu_backward' was missing" in r for r in nb.metadata[repair.REPAIRS_KEY])


@slow
@pytest.mark.parametrize("student, words", [
    ("r_added_graded_cell", r"graded cell 'bonus_points' is not in the instructor"),
    ("r_solution_marked_graded", r"'linear_backward': its nbgrader metadata was changed "
                                 r"\(grade=True"),
    ("r_pasted_test_copy", r"'test_relu_backward' was on 2 cells"),
    ("r_all_metadata_stripped", r"matched to the instructor&#x27;s cell 'test_two_layer_net'"
                                r"|matched to the instructor's cell 'test_two_layer_net'"),
])
def test_each_repair_is_logged_stored_and_listed_in_the_feedback(course, student, words):
    root, _, log, feedback_log, _ = course
    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    stored = nb.metadata.get(repair.REPAIRS_KEY)
    assert isinstance(stored, list) and any(re.search(words, s) for s in stored), stored
    assert f"repair: {student}/{ASSIGNMENT}:" in log
    html = _feedback(root, student)
    assert "repaired this notebook" in html, feedback_log[-2000:]
    assert re.search(words.replace("'", "(?:'|&#x27;|&#39;)"), html)


@slow
def test_correct_students_get_no_repair_note(course):
    root, *_ = course
    for student in ("aaa_correct", "zzz_correct"):
        nb = nbformat.read(root / "autograded" / student / ASSIGNMENT
                           / f"{ASSIGNMENT}.ipynb", 4)
        assert repair.REPAIRS_KEY not in nb.metadata
        html = _feedback(root, student)
        assert html and "repaired this notebook" not in html
