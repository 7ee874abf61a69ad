"""Grading under attack: the sandboxed kernel, the limits and the integrity checks.

Fast tests check the static integrity rules and the bubblewrap command line. The
slow tests run real ``nbgrader autograde`` in a throw-away course whose
``nbgrader_config.py`` is the course's own plus ``load_subconfig`` of
``nbgrader_sandbox.py``: one batched call grades a correct student, every hostile
student of ``tests/hostile/`` and a second correct student.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from conftest import require

from bpgrade import integrity, kernel
from bpgrade.course import make_course as _make_course
from bpgrade.course import run_nbgrader, tools_env

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "hostile"
ASSIGNMENT = "ex04_backward"
CELL_TIMEOUT = 8  # the test course's per-cell timeout (the course uses 15 s)


slow = pytest.mark.slow  # real nbgrader


def _require_bwrap() -> None:
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")


# ------------------------------------------------------------------------- the corpus


@dataclass
class Case:
    """One hostile student: edits to a correct submission and what must happen."""

    name: str
    description: str
    lose: set[str]
    reason: str
    edits: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, grade_id, code)


def load_case(path: Path) -> Case:
    """Read ``tests/hostile/<name>.cell`` (format: ``tests/hostile/README.md``)."""
    header, edits, current = {}, [], None
    for line in path.read_text().splitlines():
        m = re.match(r"# %% (cell|after|test|delete|meta|copy): (\w+|\*|\+)\s*$", line)
        if m:
            current = [m.group(1), m.group(2), []]
            edits.append(current)
        elif current is not None:
            current[2].append(line)
        elif (h := re.match(r"# (case|lose|reason): (.*)$", line)):
            header[h.group(1)] = h.group(2).strip()
    lose = set() if header["lose"] == "-" else set(header["lose"].split())
    return Case(path.stem, header["case"], lose, header["reason"],
                [(k, g, "\n".join(code).strip("\n")) for k, g, code in edits])


CASES = [load_case(p) for p in sorted(HOSTILE.glob("*.cell"))]


def test_the_corpus_covers_every_attack_the_issue_lists():
    names = {c.name for c in CASES}
    assert {"loop_in_function", "loop_top_level", "memory_bomb", "os_exit", "patch_numpy",
            "patch_checker", "call_reference", "edit_test_cell", "delete_test_cell",
            "read_solutions", "delete_gradebook", "background_process", "print_flood",
            "syntax_error", "memory_across_processes", "fork_bomb", "fill_tmp"} <= names
    for case in CASES:
        assert case.edits, f"{case.name}: no edit"
        # A reason that matches the empty string matches any output: the slow test that
        # looks for it could not fail. (A pattern that does not compile raises here.)
        assert not re.search(case.reason, ""), f"{case.name}: {case.reason!r} matches anything"


# ------------------------------------------------------------------ static integrity


def _solution_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("solution")]


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*/*.ipynb")),
                         ids=lambda p: p.stem)
def test_no_instructor_solution_is_refused_by_the_integrity_check(path):
    nb = nbformat.read(path, as_version=4)
    trees = [integrity.parse_cell(c.source) for c in nb.cells if c.cell_type == "code"]
    imports = {k: v for t in trees if t for k, v in integrity.imported_names(t).items()}
    forbidden = integrity.forbidden_names(_solution_cells(nb))
    for cell in _solution_cells(nb):
        found = integrity.find_violations(cell.source, forbidden, imports)
        assert found == [], f"{path.stem}: {found}"


@pytest.mark.parametrize("case", [c for c in CASES if "IntegrityError" in c.reason],
                         ids=lambda c: c.name)
def test_each_tampering_case_is_refused_with_the_error_its_reason_names(case):
    """What the slow test looks for, without nbgrader: the course's integrity check (reading
    the exercise from ``solutions/``) on the case's notebook, then each refused cell run;
    its error, written as nbgrader writes it, must match the case's reason."""
    from traitlets.config import Config

    from bpgrade.nbgrader_plugins import CheckIntegrity

    nb = apply_case(nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4),
                    case)
    config = Config()
    config.CourseDirectory.root = str(ROOT)
    config.CourseDirectory.source_directory = "solutions"
    CheckIntegrity(config=config).preprocess(
        nb, {"nbgrader": {"assignment": ASSIGNMENT, "notebook": ASSIGNMENT}})
    refused = [c for c in nb.cells if "bpgrade_integrity" in c.metadata]
    assert refused, f"{case.name}: no cell refused"
    errors = []
    for cell in refused:
        with pytest.raises(Exception) as raised:  # noqa: B017 - what is raised is the point
            exec(cell.source, {})  # noqa: S102 - the student's code is only comments now
        errors.append(f"{type(raised.value).__name__}: {raised.value}")
    assert re.search(case.reason, "\n".join(errors)), (case.reason, errors)


@pytest.mark.parametrize("code, words", [
    ("import numpy\nn = numpy\nn.allclose = lambda *a: True", "rebinds n.allclose"),
    ("import sys\nsys.modules['bpgrade.checks'] = None", "rebinds sys.modules"),
    ("import builtins\nbuiltins.len = lambda x: 0", "rebinds builtins.len"),
    ("from bpgrade import checks\nchecks.check_backward = print", "imports bpgrade"),
    ("import numpy as np\nvars(np)['allclose'] = 1", "vars()"),
    ("import bplib\nf = getattr(bplib, 'linear_' + 'backward')", "computed name"),
    ("import bplib\nf = getattr(bplib, 'linear_backward')", "bplib.linear_backward"),
    ("def f(x):\n    return x.__globals__", ".__globals__"),
    ("exec('import numpy; numpy.allclose = None')", "exec()"),
])
def test_tampering_the_checker_could_rely_on_is_named(code, words):
    found = integrity.find_violations(code, {"linear_backward"})
    assert any(words in str(v) for v in found), found


@pytest.mark.parametrize("code", [
    "def linear_backward(dout, cache):\n    x, W, b = cache\n    dx = dout @ W.T\n"
    "    return dx, x.T @ dout, dout.sum(axis=0)",
    "import numpy as np\ndef relu_backward(dout, cache):\n    out = np.array(dout)\n"
    "    out[cache <= 0] = 0\n    return out",
    "from bplib import linear_forward\nout, cache = linear_forward(1, 2, 3)",
    "def f(a):\n    a.shape = (2, 3)\n    return a",
    "def linear_backward(dout, cache)\n    return 1",  # a syntax error: running it says so
])
def test_ordinary_student_code_is_not_refused(code):
    assert integrity.find_violations(code, {"linear_backward", "relu_backward"}) == []


def test_a_refused_cell_keeps_its_code_as_comments_and_its_functions_raise_the_reason():
    source = "import numpy as np\nnp.allclose = max\ndef f(x):\n    return x"
    found = integrity.find_violations(source, set())
    namespace: dict = {}
    with pytest.raises(Exception, match="rebinds np.allclose") as raised:
        exec(integrity.replacement_source(source, found, {"f"}), namespace)  # noqa: S102
    assert type(raised.value).__name__ == "IntegrityError"
    with pytest.raises(Exception, match="did not run the cell that defines f"):
        namespace["f"](1)
    assert "#     np.allclose = max" in integrity.replacement_source(source, found, {"f"})


# ------------------------------------------------------------------- the bwrap command


def test_bwrap_command_hides_the_course_then_binds_back_the_venv_packages_and_submission(
        tmp_path):
    course, work = tmp_path / "course", tmp_path / "course" / "autograded" / "s" / "a"
    cmd = kernel.bwrap_command(["python"], workdir=work, runtime_dir=tmp_path / "rt",
                                course_root=course, prefix=Path("/opt/venv"),
                                packages=[ROOT / "bpgrade", ROOT / "bplib"],
                                env={"PATH": "/usr/bin"})
    pairs = [(cmd[i], cmd[i + 1]) for i in range(len(cmd) - 1)]
    # The project bplib is installed from is hidden: by its own tmpfs, or by the private
    # /tmp when the checkout lives under it (as a CI clone may).
    tmp = Path(tempfile.gettempdir()).resolve()
    hidden_by = str(tmp) if ROOT.resolve().is_relative_to(tmp) else str(ROOT.resolve())
    assert ("--tmpfs", hidden_by) in pairs
    first_tmpfs = cmd.index("--tmpfs")
    for path in ("/opt/venv", str(ROOT / "bplib"), str(ROOT / "bpgrade"), str(work)):
        assert cmd.index(path) > first_tmpfs
    assert ("--bind", str(tmp_path / "rt")) in pairs and ("--ro-bind", str(work)) in pairs
    assert {"--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"} <= set(cmd)


def test_limits_round_trip_through_the_environment():
    limits = kernel.Limits(memory=123, cpu=4, file_size=5)
    assert kernel.Limits.from_env(limits.as_env()) == limits


def test_kernel_spec_starts_the_launcher_with_the_cwd_off_the_path_and_message_interrupts():
    spec = kernel.kernel_spec()
    assert spec["argv"][1:5] == ["-P", "-m", "bpgrade", "kernel"], spec["argv"]
    assert "{connection_file}" in spec["argv"]
    assert spec["interrupt_mode"] == "message"


@slow
def test_the_grading_kernel_has_no_debugger_no_history_no_cwd_on_its_path_and_dies_at_the_end(
        tmp_path):
    _require_bwrap()
    folder = tmp_path / "course" / "submitted" / "ana"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, sys\nprint(os.getpid())"),
        nbformat.v4.new_code_cell("print(sys.modules.get('debugpy', 'absent'),"
                                  " get_ipython().history_manager.enabled)"),
        nbformat.v4.new_code_cell("import numpy\nprint('site-packages' in numpy.__file__)")])
    (folder / "numpy.py").write_text("raise SystemExit('a submitted numpy.py was imported')\n")
    from bpgrade.nbgrader_plugins import SandboxedExecute

    ep = SandboxedExecute(course_root=str(tmp_path / "course"), timeout=30)
    ep.preprocess(nb, {"metadata": {"path": str(folder)}})
    texts = [c.outputs[0].get("text", c.outputs[0]).strip() for c in nb.cells]
    assert texts[1:] == ["None False", "True"], texts
    assert texts[0] == "2", "the kernel is not the only process of its PID namespace"
    for _ in range(50):  # the inner bubblewrap follows its parent within milliseconds
        if not processes_of(folder):
            break
        time.sleep(0.1)
    assert not processes_of(folder), "the kernel outlived its notebook"


# ------------------------------------------------------------ real nbgrader, batched


def _nbgrader(root: Path, *args: str, env: dict | None = None) -> str:
    proc = run_nbgrader(root, *args, env=env)
    return proc.stdout + proc.stderr


def make_course(dest: Path) -> Path:
    """A course with ``solutions/ex04_backward``, the real config, a short cell timeout."""
    _make_course(dest, [ASSIGNMENT], ROOT, extra_config=f"c.Execute.timeout = {CELL_TIMEOUT}")
    _nbgrader(dest, "generate_assignment", ASSIGNMENT, "--force")
    return dest


def _strip_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)


def correct_notebook(course: Path):
    """The release with every solution cell replaced by the instructor's solution."""
    source = nbformat.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    answers = {c.metadata["nbgrader"]["grade_id"]: _strip_markers(c.source)
               for c in _solution_cells(source)}
    nb = nbformat.read(course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    for cell in _solution_cells(nb):
        cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
    return nb


def apply_case(nb, case: Case):
    """The correct notebook with the case's edits."""
    def index(gid):
        return next(i for i, c in enumerate(nb.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id") == gid)

    inserted = None  # the cell the last `after` added (`meta: +`)
    for kind, gid, code in case.edits:
        if kind in ("cell", "test"):
            nb.cells[index(gid)].source = code
        elif kind == "after":
            inserted = nbformat.v4.new_code_cell(code)
            nb.cells.insert(index(gid) + 1, inserted)
        elif kind == "meta":  # merge JSON into the nbgrader metadata; empty: strip it
            for cell in (nb.cells if gid == "*" else [inserted] if gid == "+"
                         else [nb.cells[index(gid)]]):
                if not code.strip():
                    cell.metadata.pop("nbgrader", None)
                    continue
                meta = cell.metadata.setdefault("nbgrader", {})
                for key, value in json.loads(code).items():
                    if value is None:
                        meta.pop(key, None)
                    else:
                        meta[key] = value
        elif kind == "copy":  # a pasted copy (new cell id) at the end of the notebook
            pasted = nbformat.from_dict(json.loads(json.dumps(nb.cells[index(gid)])))
            pasted["id"] = f"pasted-{gid}"[:64]
            nb.cells.append(pasted)
        else:
            del nb.cells[index(gid)]
    return nb


def submit(course: Path, student: str, nb) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")


def grades(course: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``{student: {test grade_id: (score, max_score)}}`` from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(ASSIGNMENT):
            nb = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, sub.student.id)
            out[sub.student.id] = {g.name: (g.score, g.max_score) for g in nb.grades
                                   if g.cell.cell_type == "code"}
    return out


def live_processes():
    """``(pid, command line, working folder)`` of every other live process."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        yield int(proc.name), cmd, cwd


def processes_of(course: Path) -> list[str]:
    """Live processes started for this course: kernels, launchers, the corpus' sleeps."""
    return [f"{pid}: {cmd}" for pid, cmd, cwd in live_processes()
            if str(course) in cwd or "sleep 6061" in cmd or "sleep 6062" in cmd]


# session: built once per worker even if xdist interleaves modules; twice: with every
# kernel started cold (plain `nbgrader autograde`) and forked from the zygote (the fast
# path of `python -m bpgrade autograde`, bpgrade/zygote.py)
@pytest.fixture(scope="session", params=["cold", "zygote"])
def graded(tmp_path_factory, request):
    """One course, one ``nbgrader autograde`` call: a correct student first and last,
    every hostile case in between."""
    _require_bwrap()
    course = make_course(tmp_path_factory.mktemp(f"hostile-{request.param}") / "course")
    correct = correct_notebook(course)
    submit(course, "aaa_correct", correct)
    for case in CASES:
        submit(course, f"h_{case.name}", apply_case(correct_notebook(course), case))
    submit(course, "zzz_correct", correct)
    start = time.perf_counter()
    log = _nbgrader(course, "autograde", ASSIGNMENT, "--force",
                    *(["--SandboxedExecute.zygote=True"] if request.param == "zygote" else []))
    seconds = time.perf_counter() - start
    forked = log.count("forked from the worker's zygote")
    assert forked == (len(CASES) + 2 if request.param == "zygote" else 0), log[-3000:]
    time.sleep(0.5)
    return course, grades(course), log, seconds, processes_of(course)


def _outputs(course: Path, student: str, gid: str | None = None) -> str:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code" or (gid and cell.metadata.get(
                "nbgrader", {}).get("grade_id") != gid):
            continue
        for o in cell.get("outputs", []):
            texts.append(o.get("text", "") if o.output_type == "stream"
                         else f"{o.get('ename')}: {o.get('evalue')}")
    return "\n".join(texts)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@slow
def test_hostile_submission_gets_a_grade_and_a_reason(graded, case):
    course, table, *_ = graded
    got = table[f"h_{case.name}"]
    lost = {g for g, (score, top) in got.items() if score < top}
    assert lost == case.lose, f"{case.description}: lost {lost}, expected {case.lose}"
    assert all(got[g][0] == 0 for g in lost), got
    # The reason shows in a lost test cell, or in the student's own cell it came from.
    where = sorted(case.lose) + [g for kind, g, _ in case.edits if kind == "cell"] or [None]
    text = "\n".join(_outputs(course, f"h_{case.name}", g) for g in where)
    assert re.search(case.reason, text), f"{case.name}: {case.reason!r} not in:\n{text[:2000]}"


@slow
def test_correct_students_graded_before_and_after_the_hostile_ones_keep_full_marks(graded):
    _, table, *_ = graded
    for student in ("aaa_correct", "zzz_correct"):
        got = table[student]
        assert got and all(score == top > 0 for score, top in got.values()), (student, got)


@slow
def test_autograde_of_the_whole_hostile_batch_finishes_in_bounded_time(graded):
    *_, seconds, _ = graded
    timeouts = sum(len(c.lose) for c in CASES if "Timeout" in c.reason) + 2
    assert seconds < timeouts * CELL_TIMEOUT + 15 * (len(CASES) + 2), seconds


@slow
def test_no_process_outlives_the_grading(graded):
    *_, leftover = graded
    assert leftover == []


@slow
def test_gradebook_is_intact_with_every_student(graded):
    course, table, *_ = graded
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert set(table) == {"aaa_correct", "zzz_correct"} | {f"h_{c.name}" for c in CASES}
    assert (course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert (course / "submitted" / "aaa_correct" / ASSIGNMENT).is_dir()


@slow
def test_a_flood_of_output_is_cut_to_a_bounded_notebook(graded):
    course, *_ = graded
    path = course / "autograded" / "h_print_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 4 * 1024**2


@slow
def test_refused_cells_show_the_students_code_and_the_reason_in_the_autograded_notebook(
        graded):
    course, *_ = graded
    nb = nbformat.read(course / "autograded" / "h_patch_numpy" / ASSIGNMENT
                       / f"{ASSIGNMENT}.ipynb", 4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
               == "linear_backward"]
    assert "#     np.allclose = lambda *args, **kwargs: True" in cell.source
    assert "IntegrityError" in _outputs(course, "h_patch_numpy", "linear_backward")


@slow
def test_without_bubblewrap_autograde_warns_loudly_and_still_grades(tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "correct", correct_notebook(course))
    env = {**tools_env(), kernel.ENV_OFF: "1"}
    log = _nbgrader(course, "autograde", ASSIGNMENT, "--force", env=env)
    assert "WARNING: NO SANDBOX for student code" in log
    got = grades(course)["correct"]
    assert all(score == top for score, top in got.values()), got


def _processes_naming(text: str) -> list[int]:
    return [pid for pid, cmd, _ in live_processes() if text in cmd]


@slow
def test_the_kernel_launcher_and_its_kernel_die_with_the_process_that_started_them(tmp_path):
    """jupyter_client starts the launcher in a session of its own: a grader killed with
    SIGKILL (a Dask worker, a killed class run) must not leave it and its kernel running
    (they would also hold the grader's output pipe open)."""
    _require_bwrap()
    work = tmp_path / "work"
    work.mkdir()
    conn = tmp_path / "rt" / "kernel.json"
    conn.parent.mkdir()
    starter = ("import subprocess, sys, time\n"
               "p = subprocess.Popen([sys.executable, '-P', '-m', 'bpgrade', 'kernel', '-f',"
               " sys.argv[1]], start_new_session=True)\n"
               "print(p.pid, flush=True)\ntime.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", starter, str(conn)], cwd=work,
                              stdout=subprocess.PIPE, text=True)
    try:
        int(parent.stdout.readline())
        deadline = time.monotonic() + 60
        while len(_processes_naming(str(conn))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the launcher and, under bubblewrap, the kernel
        assert len(_processes_naming(str(conn))) >= 2, "the kernel did not start"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while _processes_naming(str(conn)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _processes_naming(str(conn))
    for pid in left:  # do not leave them behind even when the test fails
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, "the launcher or its kernel outlived the process that started them"
