"""The exercises' text sources (solutions/<a>/<a>.md) and what is built from them.

Fast tests: every committed source notebook is what its ``.md`` builds, byte for
byte; an edited ``.md`` is reported; a release holds no ``.md`` and no solution.
Slow tests (they run nbgrader): ``python -m tools.build_exercises --check`` finds
nothing stale in the repository and names the file and cell of an edited ``.md``;
and the instructor guide's walkthrough "Edit an exercise, add an exercise", followed
step by step on its own example (a new exercise, ex99_double) in a throw-away copy of
the course, ends with the expected grades.
"""

from __future__ import annotations

import csv
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from bpgrade.course import CONFIG_FILES, run_nbgrader, tools_on_path
from tools import build_exercises as B

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "chapters" / "instructor_guide.md"
SECTION = "## Edit an exercise, add an exercise"
# nbgrader's markers, which the guide shows as placeholders (the site must not contain them).
PLACEHOLDERS = {
    "# <solution begins>": "### BEGIN SOLUTION",
    "# <solution ends>": "### END SOLUTION",
    "# <hidden tests begin>": "### BEGIN HIDDEN TESTS",
    "# <hidden tests end>": "### END HIDDEN TESTS",
}
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "### BEGIN", "### END")
TIMESTAMP = "2026-01-15 12:00:00.000000 UTC"
NEW = "ex99_double"


def _copy_course(dest: Path, names: list[str], releases: bool = True) -> Path:
    """The configuration, the named exercises (sources and built notebooks) with their
    translations (catalogs and siblings) and their releases, as in the repository."""
    for name in CONFIG_FILES:
        shutil.copy(ROOT / name, dest / name)
    for name in names:
        for lang in B.language.SUFFIXES:
            if B.catalog_path(name, lang).is_file():
                target = B.catalog_path(name, lang, dest)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(B.catalog_path(name, lang), target)
    for name in B.with_translations(names):
        shutil.copytree(ROOT / "solutions" / name, dest / "solutions" / name)
        if releases:
            shutil.copytree(ROOT / "exercises" / name, dest / "exercises" / name)
    return dest


def _edit_a_test_line(root: Path) -> None:
    """Change one visible check of ex03_error's first test cell."""
    md = B.source_path("ex03_error", root)
    text = md.read_text(encoding="utf-8")
    old = "check_mse_loss(mse_loss, shape=(5, 3), seed=0)"
    assert text.count(old) == 1
    md.write_text(text.replace(old, old.replace("seed=0", "seed=1")), encoding="utf-8")


# --------------------------------------------------------------------------- fast


def test_every_exercise_has_a_text_source():
    names = B.assignments()
    assert names, "no exercise in solutions/"
    for name in names:
        assert B.source_path(name).is_file(), f"solutions/{name}/{name}.md is missing"


def test_committed_source_notebooks_are_what_their_md_builds():
    assert B.solution_problems() == []


def test_the_build_is_deterministic_and_has_no_outputs():
    source = B.source_path("ex04_backward")
    first, second = (B.notebook_text(B.build_notebook(source)) for _ in range(2))
    assert first == second
    nb = nbformat.reads(first, as_version=4)
    assert [c.id for c in nb.cells] == [f"ex04_backward-{i:02d}" for i in range(len(nb.cells))]
    assert nb.metadata == {"kernelspec": {"display_name": "Python 3", "language": "python",
                                          "name": "python3"},
                           "language_info": {"name": "python"}}
    assert all(c.outputs == [] and c.execution_count is None
               for c in nb.cells if c.cell_type == "code")


def test_test_cells_import_the_checks_from_bpgrade():
    for name in B.assignments():
        text = B.source_path(name).read_text(encoding="utf-8")
        assert "bplib.testing" not in text, name


def test_solution_cells_carry_the_reference_names_of_the_old_table():
    nb = B.build_notebook(B.source_path("ex04_backward"))
    refs = {c.metadata.nbgrader.grade_id: c.metadata.get("bpgrade", {}).get("reference")
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}
    assert refs["linear_backward"] == ["Linear", "Sequential"]
    assert refs["two_layer_net"] == ["Sequential", "Linear", "ReLU", "linear_backward",
                                     "relu_backward", "softmax_backward"]


def test_an_edited_md_is_reported_with_its_file_and_cell(tmp_path):
    root = _copy_course(tmp_path, ["ex03_error"], releases=False)
    assert B.solution_problems(root) == []
    _edit_a_test_line(root)
    assert B.solution_problems(root) == [
        "solutions/ex03_error/ex03_error.ipynb: cell 6 (test_mse_loss) differs in its source "
        "from what ex03_error.md builds",
        # the Chinese sibling has the same test cell, one cell later (its language cell)
        "solutions/ex03_error_zh/ex03_error_zh.ipynb: cell 7 (test_mse_loss) differs in its "
        "source from what ex03_error.md builds"]
    assert B.build_solutions(root) == [B.notebook_path("ex03_error", root),
                                       B.notebook_path("ex03_error_zh", root)]
    assert B.solution_problems(root) == []


def test_a_release_holds_no_md_and_no_solution_or_hidden_test():
    files = [p for p in (ROOT / "exercises").rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".md"]
    for path in files:
        data = path.read_bytes()
        found = [m for m in MARKERS if m.encode() in data]
        assert not found, f"{path.relative_to(ROOT)} contains {found}"


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_nothing_committed_is_stale():
    assert B.check() == []


@pytest.mark.slow
def test_check_names_the_file_and_cell_of_an_edited_md(tmp_path):
    root = _copy_course(tmp_path, ["ex03_error"])
    _edit_a_test_line(root)
    assert B.check(root) == [
        "solutions/ex03_error/ex03_error.ipynb: cell 6 (test_mse_loss) differs in its source "
        "from what ex03_error.md builds",
        "solutions/ex03_error_zh/ex03_error_zh.ipynb: cell 7 (test_mse_loss) differs in its "
        "source from what ex03_error.md builds",
        "exercises/ex03_error/ex03_error.ipynb: cell 6 (test_mse_loss) differs in its source",
        "exercises/ex03_error_zh/ex03_error_zh.ipynb: cell 7 (test_mse_loss) differs in its "
        "source"]
    assert not list((root / "exercises").rglob("*.md"))


# --------------------------------------------------------------------------- the walkthrough


def _guide_section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:end if end > 0 else None]


def _example_md(section: str) -> str:
    [example] = re.findall(r"^````md\n(.*?)^````$", section, re.S | re.M)
    for placeholder, marker in PLACEHOLDERS.items():
        assert example.count(placeholder) == 1, placeholder
        example = example.replace(placeholder, marker)
    return example


def _steps(section: str) -> list[str]:
    blocks = [b for b in re.findall(r"^```bash\n(.*?)^```$", section, re.S | re.M)
              if "make exercises" in b]
    assert len(blocks) == 1, "the guide's section has one block of steps with make exercises"
    return [line.strip() for line in blocks[0].splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_guide_names_no_marker_and_every_step_the_walkthrough_follows():
    section = _guide_section()
    assert not [m for m in MARKERS if m in GUIDE.read_text(encoding="utf-8")]
    steps = _steps(section)
    for expected in ("make exercises", "git diff solutions exercises",
                     "python -m tools.build_exercises --check",
                     f"nbgrader generate_assignment {NEW} --force", f"nbgrader autograde {NEW}"):
        assert expected in steps, f"the guide's steps lack {expected!r}: {steps}"
    assert f"solutions/{NEW}/{NEW}.md" in section
    example = _example_md(section)
    assert "bpgrade.checks" in example and "points:" in example


def _submit(course: Path, student: str, nb: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / NEW
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{NEW}.ipynb")


def _scores(course: Path) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with tools_on_path(), Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        return {sub.student.id: (sub.score, sub.max_score)
                for sub in gb.assignment_submissions(NEW)}


@pytest.mark.slow
def test_the_guide_walkthrough_adds_an_exercise_that_grades_right_and_wrong(tmp_path):
    """Follow the guide's steps, line by line, on its example in a copy of the course."""
    course = _copy_course(tmp_path, [])
    section = _guide_section()
    source = B.source_path(NEW, course)
    source.parent.mkdir(parents=True)
    source.write_text(_example_md(section), encoding="utf-8")
    for step in _steps(section):
        words = shlex.split(step)
        if step == "make exercises":  # make exercises = python -m tools.build_exercises
            assert B.build_solutions(course) == [B.notebook_path(NEW, course)]
            written = B.generate(course)
            assert B.notebook_path(NEW, course).is_file()
            assert course / "exercises" / NEW / f"{NEW}.ipynb" in written
        elif words[0] == "git":  # what an instructor reads; nothing to run in a copy
            continue
        elif step == "python -m tools.build_exercises --check":
            assert B.check(course) == []
        elif words[0] in ("mkdir", "cp"):
            subprocess.run(words, cwd=course, check=True)
        elif words[:2] == ["nbgrader", "autograde"]:
            # before grading: a wrong submission beside the guide's correct one
            wrong = nbformat.read(B.notebook_path(NEW, course), as_version=4)
            for cell in wrong.cells:
                cell.source = cell.source.replace("return 2 * x", "return x + 2")
            _submit(course, "wrong", wrong)
            for folder in (course / "submitted").iterdir():
                (folder / NEW / "timestamp.txt").write_text(TIMESTAMP)
            run_nbgrader(course, *words[1:])
        elif words[0] == "nbgrader":
            run_nbgrader(course, *words[1:])
        else:
            pytest.fail(f"the guide has a step this test does not follow: {step}")

    release = (course / "exercises" / NEW / f"{NEW}.ipynb").read_text(encoding="utf-8")
    assert "return 2 * x" not in release and "np.arange(4.0)" not in release
    assert "raise NotImplementedError" in release
    assert not list((course / "exercises").rglob("*.md"))
    assert _scores(course) == {"test": (2.0, 2.0), "wrong": (0.0, 2.0)}
    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(fh)
                if r["assignment"] == NEW}
    assert rows == {"test": 2.0, "wrong": 0.0}
