"""Parallel, crash-safe autograding on Dask (``python -m bpgrade``, its LocalCluster)
against serial nbgrader (a separate scheduler and workers: tests/test_dask_grading.py).

One throw-away course (``ex05_updates``, released with the real nbgrader) holds
five well-formed students built from the release by ``tools/samples``
(correct, blank, two typical mistakes, a second correct one). Copies of it are
graded by one batched ``nbgrader autograde`` (the reference) and by the parallel
grader, with and without hostile extras, and with a SIGKILL half-way.

A second course, with a 3 s cell timeout, holds the students whose grading logs
errors that nbgrader survives (a function that loops forever, a loop at the top of
a cell, ``os._exit``) and one whose notebook was repaired before grading: the
parallel grader must report them *graded*, as serial nbgrader grades them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from bpgrade import pool as grading
from bpgrade.course import make_course
from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ex05_updates"


# The students of released_course (with a second copy of "correct"): the first two sample
# mistakes of the assignment, the solution and the blank release.
FIVE = ("correct", "blank", "wrong_adam_update", "wrong_sgd_momentum_update")


def released_course(dest: Path, db_url: str | None = None):
    """A course with ``ASSIGNMENT`` released (into ``db_url`` if given) and five students.

    Returns the course and ``{student: {grade_id: expected score}}`` from the corpus.
    """
    course = grade_demo.make_course(dest, [ASSIGNMENT])
    extra = [f"--db={db_url}"] if db_url else []
    course.nbgrader("release", "generate_assignment", ASSIGNMENT, "--force", *extra)
    source = nbformat.read(dest / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(dest / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    expected = {}
    for nb, e in grade_demo.corpus.variants(source, release, ASSIGNMENT):
        if e.student not in FIVE:
            continue  # never_ending's cell timeouts cost half a minute; test_pipeline covers
            # it, and every other sample mistake
        for student in [e.student] + (["correct_again"] if e.student == "correct" else []):
            submit(dest, student, nb)
            expected[student] = {g: 0.0 if g in e.failing else p for g, p in e.points.items()}
    return course, expected


def submit(root: Path, student: str, nb) -> Path:
    """Write ``nb`` as ``student``'s submission; return its folder."""
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        (folder / f"{ASSIGNMENT}.ipynb").write_text(nb)
    else:
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    (folder / "timestamp.txt").write_text(grade_demo.corpus.TIMESTAMP)
    return folder


def hostile_notebook(root: Path, code: str):
    """The release with ``code`` as the first solution cell."""
    nb = nbformat.read(root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    cell.source = code
    return nb


def run_cli(root: Path, *args: str, **popen) -> subprocess.Popen:
    argv = [sys.executable, "-m", "bpgrade", "autograde", ASSIGNMENT, *args]
    return subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def journal_entries(root: Path) -> set[str]:
    return {p.stem for p in (root / grading.STATE_DIR / ASSIGNMENT).glob("*.json")}


def journal_record(root: Path, student: str) -> dict:
    return json.loads((root / grading.STATE_DIR / ASSIGNMENT / f"{student}.json").read_text())


CELL_TIMEOUT = "c.Execute.timeout = 3  # seconds: the looping students stay cheap"
REPAIRS_KEY = "bpgrade_repairs"  # notebook metadata that bpgrade.repair writes
REPAIRS = ["restored the deleted test cell test_adam_update"]  # as bpgrade.repair writes them


def survivors_course(dest: Path):
    """A course whose cells time out after 3 s, with ``ASSIGNMENT`` released and four
    students whose grading logs errors that nbgrader survives, or a repair.

    ``loops_in_function``: the first solution's function loops forever when called
    (``tools/samples/never_ending/in_function.py``); ``loops_top_level``: the last
    solution cell starts with an infinite loop (``never_ending/top_level.py``);
    ``os_exit``: the first solution cell kills its kernel (``tests/hostile/os_exit.cell``);
    ``repaired``: the correct notebook with a test cell's points changed, which the
    course's ``RepairNotebook`` repairs and lists in the notebook's ``bpgrade_repairs``
    metadata; the submission also carries a planted list of its own, which that
    step replaces (without it, the planted list is what nbgrader keeps).
    """
    course = make_course(dest, [ASSIGNMENT], ROOT, extra_config=CELL_TIMEOUT)
    course.nbgrader("release", "generate_assignment", ASSIGNMENT, "--force")
    corpus = grade_demo.corpus
    source = nbformat.read(dest / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(dest / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    never_ending = corpus.HERE / "never_ending"

    def variant(edit):
        nb = corpus.correct_notebook(source, release)
        answers = list(corpus.solution_cells(nb).values())
        edit(nb, answers[0], answers[-1])
        return nb

    def loop_in_function(nb, first, last):
        stub = corpus.solution_cells(release)[first.metadata.nbgrader.grade_id].source
        first.source = corpus.fill_stubs(stub, [(never_ending / "in_function.py").read_text()])

    def loop_top_level(nb, first, last):
        last.source = (never_ending / "top_level.py").read_text() + "\n" + last.source

    def os_exit(nb, first, last):
        hostile = (ROOT / "tests" / "hostile" / "os_exit.cell").read_text()
        first.source = hostile.split("# %% cell:", 1)[1].split("\n", 1)[1].strip()
        assert "os._exit" in first.source

    def repaired(nb, first, last):
        test = next(iter(corpus.test_cells(nb).values()))
        test.metadata.nbgrader["points"] = 300
        nb.metadata[REPAIRS_KEY] = REPAIRS

    for name, edit in [("loops_in_function", loop_in_function),
                       ("loops_top_level", loop_top_level), ("os_exit", os_exit),
                       ("repaired", repaired)]:
        submit(dest, name, variant(edit))
    return course.root


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def template(tmp_path_factory):
    """The released course with its five students, not yet graded."""
    course, expected = released_course(tmp_path_factory.mktemp("template") / "course")
    return course.root, expected


def copy_course(template, tmp_path_factory, name: str) -> Path:
    dest = tmp_path_factory.mktemp(name) / "course"
    shutil.copytree(template[0], dest)
    return dest


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def serial_scores(template, tmp_path_factory):
    """Per-student, per-cell scores of one batched ``nbgrader autograde`` (the reference)."""
    root = copy_course(template, tmp_path_factory, "serial")
    grade_demo.Course(root, [ASSIGNMENT]).nbgrader("autograde", "autograde", ASSIGNMENT)
    return grading.gradebook_scores(root, ASSIGNMENT)


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def parallel_run(template, tmp_path_factory):
    """The parallel grader on two workers, with two hostile students added."""
    root = copy_course(template, tmp_path_factory, "parallel")
    submit(root, "not_a_notebook", '{"cells": [ this is not JSON')
    submit(root, "kills_its_grader", hostile_notebook(
        root, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"))
    lines: list[str] = []
    summary = grading.grade_class(root, ASSIGNMENT, jobs=2, progress=lines.append)
    return root, summary, lines


@pytest.fixture(scope="session")
def survivors(tmp_path_factory):
    """:func:`survivors_course` graded three ways: serial ``nbgrader autograde``
    (the reference), the grader's CLI on two workers, and the grader once more.

    Returns ``(serial root, serial statuses, parallel root, CLI exit status, CLI
    output, summary of the second run)``.
    """
    template = survivors_course(tmp_path_factory.mktemp("survivors") / "course")
    serial = copy_course((template,), tmp_path_factory, "survivors-serial")
    grade_demo.Course(serial, [ASSIGNMENT]).nbgrader("autograde", "autograde", ASSIGNMENT)
    statuses = {s: "graded" if (serial / "autograded" / s / ASSIGNMENT
                                / f"{ASSIGNMENT}.ipynb").is_file() else "failed"
                for s in grading.submitted_students(serial, ASSIGNMENT)}
    root = copy_course((template,), tmp_path_factory, "survivors-parallel")
    proc = run_cli(root, "--jobs", "2")
    out, _ = proc.communicate(timeout=600)
    rerun = grading.grade_class(root, ASSIGNMENT, jobs=2, progress=lambda s: None)
    return serial, statuses, root, proc.returncode, out, rerun


# --------------------------------------------------------------------------- fast units


def _record(level: int, msg: str) -> logging.LogRecord:
    return logging.makeLogRecord({"levelno": level, "levelname": logging.getLevelName(level),
                                  "msg": msg})


def test_the_notes_of_a_graded_student_say_which_cells_timed_out_and_why_the_kernel_died():
    timeout = [_record(logging.ERROR, "Timeout waiting for execute reply (3s)."),
               _record(logging.ERROR, "Interrupting kernel")]
    assert grading._notes(timeout) == "a cell timed out (3 s)"
    assert grading._notes(timeout * 3) == "3 cells timed out (3 s each)"
    died = [_record(logging.ERROR, "Kernel died while waiting for execute reply."),
            _record(logging.WARNING, "kernel died in cell 4: the kernel was killed (memory)")]
    assert grading._notes(died) == "kernel died in cell 4: the kernel was killed (memory)"
    assert grading._notes(died[:1]) == "the kernel died"
    checksum = _record(logging.WARNING, "Attribute 'checksum' for cell x has changed!")
    assert grading._notes([checksum, _record(logging.INFO, "Writing 1 bytes")]) == ""


def test_the_progress_line_and_the_summary_show_notes_and_repairs_beside_the_counts():
    noted = grading.Outcome("ana", "graded", 4.0, 9, 13, reason="a cell timed out (3 s)")
    fixed = grading.Outcome("ben", "graded", 1.0, 13, 13, repairs=REPAIRS)
    failed = grading.Outcome("eve", "failed", 0.4, reason="NotJSONError: not JSON")
    line = grading._progress_line(noted, 1, 3, 3)
    assert "graded" in line and line.endswith("  a cell timed out (3 s)"), line
    assert grading._progress_line(fixed, 2, 3, 3).endswith(f"  repaired (1): {REPAIRS[0]}")
    summary = grading.Summary(ASSIGNMENT, 2, [noted, fixed, failed], seconds=6.0)
    table = grading.summary_table(summary)
    assert f"graded{2:>26}" in table and f"failed{1:>26}" in table, table
    assert f"repaired{1:>24}" in table, table
    assert "  ana: a cell timed out (3 s)" in table and f"  ben: {REPAIRS[0]}" in table
    assert "  eve: NotJSONError: not JSON" in table


def test_a_sqlite_gradebook_gets_a_busy_timeout_and_other_databases_are_untouched():
    assert (grading.with_busy_timeout("sqlite:////srv/c/gradebook.db")
            == "sqlite:////srv/c/gradebook.db?timeout=60")
    assert (grading.with_busy_timeout("sqlite:////srv/c/g.db?mode=rw", 5)
            == "sqlite:////srv/c/g.db?mode=rw&timeout=5")
    assert grading.with_busy_timeout("sqlite:////g.db?timeout=3") == "sqlite:////g.db?timeout=3"
    pg = "postgresql+psycopg2://grader:secret@db.example/course"
    assert grading.with_busy_timeout(pg) == pg
    assert grading.redacted(pg) == "postgresql+psycopg2://grader:***@db.example/course"


def test_the_journal_forgets_a_student_who_resubmits(tmp_path):
    folder = submit(tmp_path, "ana", '{"cells": []}')
    autograded = tmp_path / "autograded" / "ana" / ASSIGNMENT
    autograded.mkdir(parents=True)
    (autograded / f"{ASSIGNMENT}.ipynb").write_text("{}")
    journal = grading.Journal(tmp_path, ASSIGNMENT, "sqlite:////x.db")
    journal.record("ana", journal.submission("ana"), grading.Outcome("ana", "graded"))
    assert journal.finished("ana", {"ana"})
    assert not journal.finished("ana", set()), "a gradebook without the submission"
    assert not grading.Journal(tmp_path, ASSIGNMENT, "sqlite:////y.db").finished("ana", {"ana"})
    (folder / "extra.py").write_text("x = 1")
    assert not journal.finished("ana", {"ana"}), "the submission changed"


@pytest.mark.slow  # nbgrader creates the gradebook
def test_a_gradebook_without_the_assignment_is_refused_with_the_command_to_run(tmp_path):
    submit(tmp_path, "ana", '{"cells": []}')
    with pytest.raises(grading.GradingError, match=f"nbgrader generate_assignment {ASSIGNMENT}"):
        grading.grade_class(tmp_path, ASSIGNMENT, jobs=1, progress=lambda s: None)


def test_a_gradebook_nbgrader_cannot_open_stops_the_run_with_the_reason_and_no_worker_left(
        tmp_path):
    submit(tmp_path, "ana", '{"cells": []}')
    submit(tmp_path, "ben", '{"cells": []}')
    before = _children()
    with pytest.raises(grading.GradingError, match="nosuchdb"):
        grading.grade_class(tmp_path, ASSIGNMENT, jobs=2, db_url="nosuchdb://nowhere/x",
                            progress=lambda s: None)
    assert _children() <= before, "a worker outlived the refused run"
    assert not journal_entries(tmp_path)


def _children() -> set[int]:
    """PIDs of the running children of this process (a LocalCluster's workers)."""
    pids = set()
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                pids.add(int(proc.name))
    return pids


def test_a_task_that_killed_its_worker_every_time_is_failed_with_the_reason_not_raised():
    from distributed.scheduler import KilledWorker

    class Future:  # what as_completed yields: result() raises what the task ended with
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    killed = grading._outcome(Future(KilledWorker("autograde-eve", "tcp://w:1", 2)), "eve",
                              30, KilledWorker)
    assert killed.status == "failed"
    assert "killed the worker every time" in killed.reason and "30 s" in killed.reason
    assert "KilledWorker" in killed.reason
    broken = grading._outcome(Future(ValueError("no")), "ann", 30, KilledWorker)
    assert (broken.status, broken.reason) == ("failed", "ValueError: no")


def test_a_task_carries_the_submission_the_source_and_the_configuration_and_no_path(
        tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    (tmp_path / "solutions" / ASSIGNMENT / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text("{}")
    (tmp_path / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.md").write_text("# the text source")
    (tmp_path / "solutions" / ASSIGNMENT / "data.csv").write_text("1,2")
    submit(tmp_path, "ana", '{"cells": []}')
    task = grading.make_task(tmp_path, ASSIGNMENT, "ana",
                             grading.course_files(tmp_path, ASSIGNMENT), timeout=5)
    assert set(task["course"]) == {"nbgrader_config.py", f"solutions/{ASSIGNMENT}/data.csv",
                                   f"solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"}
    assert set(task["submission"]) == {f"{ASSIGNMENT}.ipynb", "timestamp.txt"}
    assert str(tmp_path) not in repr(task)
    with pytest.raises(grading.GradingError, match="outside"):
        grading._write_tree(tmp_path / "x", {"../../escape.txt": b""})


# ----------------------------------------------------------------------- the real thing


@pytest.mark.slow
def test_parallel_autograde_gives_every_student_the_cell_scores_of_serial_nbgrader(
        template, serial_scores, parallel_run):
    root, summary, _ = parallel_run
    expected = template[1]
    assert set(serial_scores) == set(expected)
    assert serial_scores == expected, "the reference run disagrees with the corpus"
    scores = grading.gradebook_scores(root, ASSIGNMENT)
    assert {s: scores[s] for s in serial_scores} == serial_scores
    graded = {o.student for o in summary.outcomes if o.status == "graded"}
    assert set(serial_scores) <= graded


@pytest.mark.slow
def test_a_file_that_is_not_a_notebook_is_reported_failed_with_nbgraders_reason(parallel_run):
    _, summary, lines = parallel_run
    (outcome,) = [o for o in summary.outcomes if o.student == "not_a_notebook"]
    assert outcome.status == "failed"
    assert "JSON" in outcome.reason, outcome.reason
    assert any("failed" in ln and "not_a_notebook" in ln for ln in lines), lines


@pytest.mark.slow
def test_a_kernel_that_kills_its_grading_process_costs_only_its_own_student(
        parallel_run, serial_scores):
    root, summary, _ = parallel_run
    (outcome,) = [o for o in summary.outcomes if o.student == "kills_its_grader"]
    if outcome.status == "failed":  # no sandbox: the kernel's parent is the worker
        assert "died" in outcome.reason, outcome.reason
        assert "kills_its_grader" not in journal_entries(root)
    else:  # a sandboxed kernel only kills its own launcher: a dead kernel, graded
        assert outcome.status == "graded" and outcome.score < outcome.max_score
    assert sum(o.status == "graded" for o in summary.outcomes) >= len(serial_scores)


@pytest.mark.slow
def test_the_summary_counts_graded_failed_and_skipped_and_gives_the_rate(parallel_run):
    _, summary, _ = parallel_run
    assert len(summary.outcomes) == 7
    assert summary.count("skipped") == 0
    assert summary.count("graded") + summary.count("failed") == 7
    table = grading.summary_table(summary)
    assert f"graded{summary.count('graded'):>26}" in table
    assert "per minute" in table and "not_a_notebook" in table
    assert summary.per_minute == pytest.approx(60 * 7 / summary.seconds)


@pytest.mark.slow
def test_students_whose_cells_time_out_or_whose_kernel_dies_are_graded_as_by_serial_nbgrader(
        survivors):
    serial, serial_statuses, root, returncode, out, _ = survivors
    assert returncode == 0, out
    assert set(serial_statuses) == {"loops_in_function", "loops_top_level", "os_exit",
                                    "repaired"}
    statuses = {s: journal_record(root, s)["status"] for s in journal_entries(root)}
    assert statuses == serial_statuses == dict.fromkeys(serial_statuses, "graded"), out
    assert (grading.gradebook_scores(root, ASSIGNMENT)
            == grading.gradebook_scores(serial, ASSIGNMENT)), out
    notes = {s: journal_record(root, s)["reason"] for s in statuses}
    assert "timed out (3 s" in notes["loops_in_function"], notes
    assert "timed out (3 s" in notes["loops_top_level"], notes
    assert "kernel died" in notes["os_exit"], notes
    assert notes["repaired"] == "", notes
    for student, note in notes.items():
        (line,) = [ln for ln in out.splitlines() if f" {student} " in ln and "graded" in ln]
        assert line.endswith(note), line
    assert f"graded{4:>26}" in out and f"failed{0:>26}" in out, out


@pytest.mark.slow
def test_a_repair_written_into_the_notebook_is_counted_beside_graded_and_failed(survivors):
    _, _, root, _, out, _ = survivors
    nb = nbformat.read(root / "autograded" / "repaired" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    repairs = nb.metadata.get(REPAIRS_KEY)
    assert repairs and isinstance(repairs, list), "no bpgrade_repairs in the autograded notebook"
    assert journal_record(root, "repaired")["repairs"] == repairs
    assert all(journal_record(root, s)["repairs"] == [] for s in journal_entries(root)
               if s != "repaired")
    assert f"repaired{1:>24}" in out, out
    (line,) = [ln for ln in out.splitlines() if " repaired " in ln and "graded" in ln]
    assert f"repaired ({len(repairs)}): {'; '.join(repairs)}" in line, line


@pytest.mark.slow
def test_students_graded_despite_errors_are_journaled_and_a_rerun_grades_nobody(survivors):
    _, serial_statuses, root, _, _, rerun = survivors
    assert journal_entries(root) == set(serial_statuses)
    assert rerun.count("skipped") == len(serial_statuses)
    assert rerun.count("graded") == rerun.count("failed") == 0


@pytest.mark.slow
def test_a_second_run_skips_finished_students_and_regrades_only_a_resubmission(
        template, tmp_path_factory):
    root = copy_course(template, tmp_path_factory, "rerun")
    first = grading.grade_class(root, ASSIGNMENT, jobs=2, progress=lambda s: None)
    assert first.count("graded") == 5
    blank = nbformat.read(root / "submitted" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    submit(root, "blank", blank)  # "blank" hands in a correct notebook after all
    second = grading.grade_class(root, ASSIGNMENT, jobs=2, progress=lambda s: None)
    assert [o.student for o in second.outcomes if o.status == "graded"] == ["blank"]
    assert second.count("skipped") == 4
    scores = grading.gradebook_scores(root, ASSIGNMENT)
    assert scores["blank"] == scores["correct"] == template[1]["correct"]


@pytest.mark.slow
def test_sigkill_half_way_then_a_rerun_finishes_the_class_with_the_uninterrupted_grades(
        template, serial_scores, tmp_path_factory):
    root = copy_course(template, tmp_path_factory, "killed")
    proc = run_cli(root, "--jobs", "2", start_new_session=True)
    deadline = time.monotonic() + 600
    while not journal_entries(root) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    finished = journal_entries(root)
    assert 1 <= len(finished) < len(serial_scores), "the kill did not land half-way"
    # A student cut off mid-way: give it a half-written autograded notebook, which
    # plain `nbgrader autograde` (without --force) would take for a finished one.
    cut = sorted(set(serial_scores) - finished)[0]
    partial = root / "autograded" / cut / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists():
        partial.chmod(0o644)  # nbgrader leaves its notebooks read-only
    partial.write_text('{"cells": [{"cell_type": "code", "sou')

    rerun = run_cli(root, "--jobs", "2")
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out
    assert f"{len(finished)} already graded" in out, out
    assert f"skipped{len(finished):>25}" in out, out
    assert grading.gradebook_scores(root, ASSIGNMENT) == serial_scores
    assert journal_entries(root) == set(serial_scores)
    assert nbformat.read(partial, 4).cells, "the half-written notebook was not regraded"
