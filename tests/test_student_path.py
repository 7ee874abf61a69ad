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


# ------------------------------------------------------------- the Chinese notebook (issue 22)

RELEASE_ZH = ROOT / "exercises" / f"{ASSIGNMENT}_zh" / f"{ASSIGNMENT}_zh.ipynb"
SOURCE_ZH = ROOT / "solutions" / f"{ASSIGNMENT}_zh" / f"{ASSIGNMENT}_zh.ipynb"


def _with_answers(source: Path, release: Path, wrong_sigmoid: bool = False):
    answers = {_meta(c)["grade_id"]: "\n".join(
        line for line in c.source.split("\n") if "SOLUTION" not in line)
        for c in nbformat.read(source, as_version=4).cells if _meta(c).get("solution")}
    if wrong_sigmoid:
        answers["sigmoid_backward"] = ("def sigmoid_backward(dout, cache):\n"
                                       "    s = 1.0 / (1.0 + np.exp(-cache))\n"
                                       "    return dout * s * (1.0 - s)\n")
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            cell.source = answers[_meta(cell)["grade_id"]]
    return nb


@pytest.mark.slow
def test_the_wheel_carries_the_chinese_messages():
    table = zipfile.ZipFile(WHEEL).read("bpgrade/locale/zh_CN.json")
    assert table == (ROOT / "bpgrade" / "locale" / "zh_CN.json").read_bytes(), \
        "the wheel is stale: run `make book`"


@pytest.mark.slow
def test_a_chinese_notebook_is_checked_in_chinese_with_the_english_verdicts(student_venv,
                                                                           tmp_path):
    """Blank, correct and with one wrong function, in a fresh venv with only the wheel: the
    Chinese notebook gets the English notebook's exit status, points and verdict per
    function, and its report and the checks' messages in Chinese, with the same numbers."""
    from test_zh_exercises import han_fraction, same_facts

    runs = {}
    for lang, source, release, name in (("en", SOURCE, RELEASE, ASSIGNMENT),
                                        ("zh", SOURCE_ZH, RELEASE_ZH, f"{ASSIGNMENT}_zh")):
        for case in ("blank", "correct", "wrong"):
            nb = (nbformat.read(release, as_version=4) if case == "blank" else
                  _with_answers(source, release, wrong_sigmoid=case == "wrong"))
            folder = tmp_path / lang / case
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{name}.ipynb")
            runs[lang, case] = subprocess.run(
                [str(student_venv), "-m", "bpgrade", "check", f"{name}.ipynb"], cwd=folder,
                capture_output=True, text=True, timeout=600, env=_env())
    for case in ("blank", "correct", "wrong"):
        en, zh = runs["en", case], runs["zh", case]
        assert zh.returncode == en.returncode == (0 if case == "correct" else 1), zh.stdout
        en_lines, zh_lines = en.stdout.splitlines(), zh.stdout.splitlines()
        assert len(zh_lines) == len(en_lines), zh.stdout
        for e, z in zip(en_lines[1:], zh_lines[1:], strict=True):
            words = e.split()
            if words and words[0] in ("ok", "FAIL") and words[1] in FUNCTIONS:
                assert z.split()[:3] == [{"ok": "通过", "FAIL": "未通过"}[words[0]],
                                         words[1], words[2]], (e, z)
            # the Chinese notebook has one cell more (its language cell) above the others
            assert not same_facts(re.sub(r"cell \d+", "cell", e),
                                  re.sub(r"第 \d+ 个单元格", "cell", z)), (e, z)
            assert han_fraction(z) >= 0.3, z
    wrong = next(line for line in runs["zh", "wrong"].stdout.splitlines()
                 if "sigmoid_backward" in line)
    assert "它正是把缓存当作 x 时得到的结果" in wrong, wrong
    assert "未通过：提交之前，请先改正上面列出的问题" in runs["zh", "wrong"].stdout
    assert "通过：每个可见测试都通过了" in runs["zh", "correct"].stdout


@pytest.mark.slow
def test_a_chinese_notebook_speaks_chinese_in_any_jupyter_by_its_own_language_cell(
        student_venv, tmp_path):
    """Run as Colab or a student's own Jupyter would run it: cell by cell in a plain kernel
    of the student's venv, nobody setting BPGRADE_LANG. The notebook's language cell makes
    its checks answer in Chinese; without that cell they answer in English."""
    from test_zh_exercises import han_fraction

    script = (
        "import json, sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, allow_errors=True, timeout=120, kernel_name='python3').execute()\n"
        "print(json.dumps([o.get('evalue', '') for c in nb.cells if c.cell_type == 'code'\n"
        "                  for o in c.get('outputs', []) if o.get('output_type') == 'error']))\n")
    env = {k: v for k, v in _env().items() if k != "BPGRADE_LANG"}
    messages = {}
    for with_cell in (True, False):
        nb = _with_answers(SOURCE_ZH, RELEASE_ZH, wrong_sigmoid=True)
        if not with_cell:
            nb.cells = [c for c in nb.cells if _meta(c).get("grade_id") != "language"]
        path = tmp_path / f"{with_cell}" / f"{ASSIGNMENT}_zh.ipynb"
        path.parent.mkdir()
        nbformat.write(nb, path)
        run = subprocess.run([str(student_venv), "-c", script, path.name], cwd=path.parent,
                             capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 0, run.stderr[-2000:]
        [messages[with_cell]] = json.loads(run.stdout)  # the wrong sigmoid_backward's only
    assert "它正是把缓存当作 x 时得到的结果" in messages[True]
    assert han_fraction(messages[True].splitlines()[0]) >= 0.3, messages[True]
    assert "it matches what you get if you treat the cache as x" in messages[False]
