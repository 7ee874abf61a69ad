"""The student's path (issue #15, part 1): the small install and the check command.

Fast tests: nbgrader's checksum as :mod:`bpgrade.student` recomputes it (without
nbgrader) agrees with nbgrader's own on every released cell; every exercise starts
with the cell that says what to install, and that cell tells a student with the wrong
``bplib`` (or none) what to do; an edited test cell is found.

Slow tests, as a student would: the wheel that ``make book`` builds
(``_build/dist/``, offered on the exercises page; rebuilt here first if the source
changed since, so that no test runs a stale wheel) holds ``bplib`` and ``bpgrade`` only,
byte for byte as in the source;
a fresh venv (no system site packages) gets only that wheel and its ``students``
extra from the package index, and ``python -m bpgrade check`` there runs a released
exercise copied out of the course: blank (fails, every function listed), answered
correctly (exit 0), with one wrong function, an edited test cell, or a cell that raises
(each fails, saying why).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from html import unescape
from pathlib import Path

import nbformat
import pytest

from bpgrade import student
from bpgrade.repair import compute_checksum
from tools import wheel as course_wheel

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((ROOT / "exercises").glob("ex[0-9][0-9]_*/ex[0-9][0-9]_*.ipynb"))
ASSIGNMENT = "ex04_backward"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
FUNCTIONS = ["linear_backward", "relu_backward", "sigmoid_backward", "tanh_backward",
             "two_layer_net"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
WHEEL = course_wheel.wheel_path(ROOT)


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# ------------------------------------------------------------------------------ fast


def test_the_checksum_is_nbgraders_on_every_released_cell():
    from nbgrader.utils import compute_checksum as nbgraders

    assert len(EXERCISES) >= 6
    seen = 0
    for path in EXERCISES:
        for cell in nbformat.read(path, as_version=4).cells:
            if "nbgrader" in cell.metadata:
                assert compute_checksum(cell) == nbgraders(cell) == _meta(cell)["checksum"], \
                    f"{path.name}: {_meta(cell).get('grade_id')}"
                changed = copy.deepcopy(cell)
                changed.source += " "
                assert compute_checksum(changed) == nbgraders(changed) != _meta(cell)["checksum"]
                seen += 1
    assert seen > 50


def test_an_edited_test_cell_is_found_and_an_answered_one_is_not():
    nb = nbformat.read(RELEASE, as_version=4)
    assert student.edited_cells(nb) == []
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            cell.source = "def f():\n    return 1\n"  # answering is not editing
    assert student.edited_cells(nb) == []
    test = next(c for c in nb.cells if _meta(c).get("grade_id") == "test_relu_backward")
    test.source = test.source.replace("check_relu_backward(", "print(", 1)
    assert student.edited_cells(nb) == [f"cell {nb.cells.index(test) + 1} (test_relu_backward)"]


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.parent.name)
def test_every_exercise_starts_with_the_cell_that_says_what_to_install(path):
    cell = nbformat.read(path, as_version=4).cells[0]
    meta = _meta(cell)
    assert cell.cell_type == "code" and meta["grade_id"] == "install"
    assert meta["locked"] and not meta.get("grade") and not meta.get("solution")
    assert "pip install backprop-course" in cell.source and "import bpgrade.checks" in cell.source


@pytest.mark.parametrize("fake", ["missing", "wrong"])
def test_the_install_cell_says_in_one_line_what_to_install(tmp_path, fake):
    """Run the install cell with no ``bplib`` at all, or with an unrelated ``bplib``
    (like the crypto package of that name on the public index)."""
    if fake == "wrong":  # an unrelated bplib, and a bpgrade.checks that imports
        (tmp_path / "bplib").mkdir()
        (tmp_path / "bplib" / "__init__.py").write_text("def pair(a, b):\n    return a\n")
        (tmp_path / "bpgrade").mkdir()
        (tmp_path / "bpgrade" / "__init__.py").write_text("")
        (tmp_path / "bpgrade" / "checks.py").write_text("")
    source = nbformat.read(RELEASE, as_version=4).cells[0].source
    # -S -I: no site packages, no repository on the path: only tmp_path can provide bplib
    proc = subprocess.run([sys.executable, "-I", "-S", "-c",
                           f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n{source}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and "pip install backprop-course" in last, last
    assert "Traceback" in proc.stderr and proc.stderr.count("ImportError") == 1


def test_the_install_cell_passes_with_the_course_package():
    source = nbformat.read(RELEASE, as_version=4).cells[0].source
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_check_is_the_students_command_and_sandbox_check_the_graders():
    from bpgrade import __main__ as cli

    assert "check" in cli.STUDENT_COMMANDS and "check" not in cli.KERNEL_COMMANDS
    assert "sandbox-check" in cli.KERNEL_COMMANDS
    proc = subprocess.run([sys.executable, "-m", "bpgrade", "check", "no/such.ipynb"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_help_is_plain_text_with_every_command_in_one_aligned_column():
    from bpgrade import __main__ as cli

    proc = subprocess.run([sys.executable, "-m", "bpgrade", "--help"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    text = proc.stdout
    for markup in ("``", ":mod:", ":func:", "====", "`"):
        assert markup not in text, f"{markup!r} in the help: {text}"
    commands = cli.KERNEL_COMMANDS | cli.STUDENT_COMMANDS | cli.POOL_COMMANDS
    rows = [line for line in text.splitlines() if line.split(" ")[0] in commands]
    assert {row.split(" ")[0] for row in rows} == commands, text
    columns = {len(row) - len(row[len(row.split("  ")[0]):].lstrip()) for row in rows}
    assert len(columns) == 1, f"the descriptions start at different columns: {text}"


# ------------------------------------------------------------------------------ slow


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The course's wheel, built from the source under test: :func:`tools.wheel.ensure`
    rebuilds it if what it packs changed since ``make book`` (its content, not its file
    names: an edit to ``bpgrade`` is never tested through the wheel of the edit before)."""
    path, _ = course_wheel.ensure(ROOT)
    assert path == WHEEL
    return path


@pytest.mark.slow
def test_the_wheel_holds_bplib_and_bpgrade_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"bplib", "bpgrade", f"backprop_course-{VERSION}.dist-info"}, top
    for bad in ("solutions", "exercises", "tests", "tools", "chapters", "BEGIN SOLUTION"):
        assert not [n for n in names if bad in n], bad
    assert not [n for n in names if n.endswith((".ipynb", ".md", ".keras", ".db"))]
    # every module of the source, byte for byte (not only the same file names)
    assert course_wheel.stale(ROOT) is None
    assert course_wheel.differences(wheel, ROOT) == [], "the wheel is not the source's"
    meta = zipfile.ZipFile(wheel).read(f"backprop_course-{VERSION}.dist-info/METADATA").decode()
    requires = re.findall(r"^Requires-Dist: (.*)$", meta, re.M)
    assert [r for r in requires if "extra ==" not in r] == ["numpy>=2"], requires
    students = sorted(r.split(";")[0].strip() for r in requires if "'students'" in r
                      or '"students"' in r)
    assert students == ["ipykernel>=6", "nbclient>=0.10"], students


@pytest.mark.slow
def test_the_exercises_page_offers_the_wheel(built_site, wheel):
    html = (built_site / "chapters" / "exercises.html").read_text(encoding="utf-8")
    links = re.findall(r'href="\.\./(_downloads/[0-9a-f]+/' + re.escape(WHEEL.name) + ')"', html)
    assert links, "chapters/exercises.html does not link the wheel"
    offered, built = zipfile.ZipFile(built_site / links[0]), zipfile.ZipFile(wheel)
    # the same files (zip times may differ); a wheel rebuilt by the fixture `wheel` from
    # a changed source is not the one the site offers until `make book` runs again
    assert offered.namelist() == built.namelist(), "the site's wheel is stale: `make book`"
    assert all(offered.read(n) == built.read(n) for n in built.namelist()
               if not n.endswith("RECORD")), "the site's wheel is stale: `make book`"
    text = unescape(re.sub(r"<[^>]+>", "", html))  # highlighted code is cut into spans
    for command in (f'%pip install "/content/{WHEEL.name}[students]"', "python3 -m venv",
                    f'pip install "./{WHEEL.name}[students]"', "python -m bpgrade check"):
        assert command in text, command


@pytest.fixture(scope="module")
def student_venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv with only the course's wheel (built from the current source) and its
    ``students`` extra."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--find-links", str(wheel.parent), f"{wheel}[students]"],
                   check=True, timeout=900, env=_env())
    return py


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH", "PYTHONHOME")}
    env["PATH"] = "/usr/bin:/bin"
    return env


def _check(py: Path, nb: nbformat.NotebookNode, folder: Path) -> subprocess.CompletedProcess:
    path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(nb, path)
    return subprocess.run([str(py), "-m", "bpgrade", "check", path.name], cwd=folder,
                          capture_output=True, text=True, timeout=600, env=_env())


def _answered() -> nbformat.NotebookNode:
    """The released notebook, copied out of the course, with the instructor's answers."""
    answers = {_meta(c)["grade_id"]: "\n".join(
        line for line in c.source.split("\n") if "SOLUTION" not in line)
        for c in nbformat.read(SOURCE, as_version=4).cells if _meta(c).get("solution")}
    nb = nbformat.read(RELEASE, as_version=4)
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            cell.source = answers[_meta(cell)["grade_id"]]
    return nb


def _lines(proc) -> dict[str, str]:
    """The line of each function in the check's output."""
    found = {}
    for line in proc.stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("ok", "FAIL") and words[1] in FUNCTIONS:
            found[words[1]] = line
    return found


@pytest.mark.slow
def test_the_student_venv_has_the_course_package_and_no_nbgrader(student_venv, tmp_path):
    code = ("import importlib.util as u, bplib, bpgrade.checks, json; "
            "print(json.dumps([bplib.__file__, u.find_spec('nbgrader') is None, "
            "u.find_spec('jupyter_book') is None]))")
    proc = subprocess.run([str(student_venv), "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True, env=_env())
    where, no_nbgrader, no_book = json.loads(proc.stdout)
    assert where.startswith(str(student_venv.parent.parent)) and no_nbgrader and no_book


@pytest.mark.slow
def test_a_blank_notebook_fails_and_lists_every_function(student_venv, tmp_path):
    proc = _check(student_venv, nbformat.read(RELEASE, as_version=4), tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = _lines(proc)
    assert sorted(lines) == sorted(FUNCTIONS), proc.stdout
    assert all(line.split()[0] == "FAIL" and "NotImplementedError" in line
               for line in lines.values()), proc.stdout
    assert "visible tests: 0/13 points" in proc.stdout


@pytest.mark.slow
def test_a_correct_notebook_passes(student_venv, tmp_path):
    proc = _check(student_venv, _answered(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _lines(proc)
    assert sorted(lines) == sorted(FUNCTIONS) and all(
        line.split()[0] == "ok" for line in lines.values()), proc.stdout
    assert "visible tests: 13/13 points, 5 of 5 test cells pass" in proc.stdout
    assert "PASS" in proc.stdout.splitlines()[-1]


@pytest.mark.slow
def test_a_wrong_function_fails_with_the_checks_message(student_venv, tmp_path):
    nb = _answered()
    cell = next(c for c in nb.cells if _meta(c).get("grade_id") == "sigmoid_backward")
    cell.source = ("def sigmoid_backward(dout, cache):\n"
                   "    s = 1.0 / (1.0 + np.exp(-cache))\n"
                   "    return dout * s * (1.0 - s)\n")
    proc = _check(student_venv, nb, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = _lines(proc)
    assert lines["sigmoid_backward"].split()[:3] == ["FAIL", "sigmoid_backward", "0/2"]
    assert "Diagnosis" in lines["sigmoid_backward"]
    assert "treat the cache as x" in lines["sigmoid_backward"], proc.stdout
    assert all(lines[f].split()[0] == "ok" for f in FUNCTIONS if f != "sigmoid_backward")
    assert "visible tests: 11/13 points, 4 of 5 test cells pass" in proc.stdout


@pytest.mark.slow
def test_an_edited_test_cell_fails_even_when_every_test_passes(student_venv, tmp_path):
    nb = _answered()
    test = next(c for c in nb.cells if _meta(c).get("grade_id") == "test_relu_backward")
    test.source = "pass  # my own test"
    proc = _check(student_venv, nb, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"EDITED +cell \d+ \(test_relu_backward\)", proc.stdout), proc.stdout
    assert all(line.split()[0] == "ok" for line in _lines(proc).values())


@pytest.mark.slow
def test_a_cell_that_raises_fails(student_venv, tmp_path):
    nb = _answered()
    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('my experiment broke')"))
    proc = _check(student_venv, nb, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"ERROR +cell \d+ \(your own cell\) raised ValueError: my experiment "
                     r"broke", proc.stdout), proc.stdout
    assert all(line.split()[0] == "ok" for line in _lines(proc).values())
