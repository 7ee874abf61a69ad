"""Parallel, crash-safe autograding (``python -m bpgrade``) against serial nbgrader.

One throw-away course (``ex05_updates``, released with the real nbgrader) holds
five well-formed students built from the release by ``tools/samples``
(correct, blank, two typical mistakes, a second correct one). Copies of it are
graded by one batched ``nbgrader autograde`` (the reference) and by the parallel
grader, with and without hostile extras, and with a SIGKILL half-way.
"""

from __future__ import annotations

import contextlib
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
from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ex05_updates"


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
        if e.student == "never_ending":
            continue  # its cell timeouts cost half a minute; test_pipeline covers it
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


# --------------------------------------------------------------------------- fast units


def test_a_sqlite_gradebook_gets_a_busy_timeout_and_other_databases_are_untouched():
    assert (grading.with_busy_timeout("sqlite:////srv/c/gradebook.db")
            == "sqlite:////srv/c/gradebook.db?timeout=60")
    assert (grading.with_busy_timeout("sqlite:////srv/c/g.db?mode=rw", 5)
            == "sqlite:////srv/c/g.db?mode=rw&timeout=5")
    assert grading.with_busy_timeout("sqlite:////g.db?timeout=3") == "sqlite:////g.db?timeout=3"
    pg = "postgresql+psycopg2://grader:secret@db.example/course"
    assert grading.with_busy_timeout(pg) == pg
    assert grading.redacted(pg) == "postgresql+psycopg2://grader:***@db.example/course"


def test_shards_split_the_class_into_disjoint_parts_that_cover_it():
    students = [f"s{i}" for i in range(7)]
    parts = [grading.shard(students, f"{k}/3") for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == students
    assert parts[0] == ["s0", "s3", "s6"]
    with pytest.raises(grading.GradingError, match="between 1 and N=3"):
        grading.shard(students, "4/3")
    with pytest.raises(grading.GradingError, match="K/N"):
        grading.shard(students, "half")


def test_only_a_locked_database_earns_a_student_one_more_try():
    retried: set[str] = set()
    locked = grading.Outcome("ana", "failed", reason="OperationalError: database is locked")
    assert grading._retry(locked, retried)
    assert not grading._retry(locked, retried), "a second lock is reported, not retried"
    not_json = grading.Outcome("bob", "failed", reason="NotJSONError: not JSON")
    assert not grading._retry(not_json, retried)
    assert not grading._retry(grading.Outcome("eve", "graded"), retried)


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


def test_a_gradebook_without_the_assignment_is_refused_with_the_command_to_run(tmp_path):
    submit(tmp_path, "ana", '{"cells": []}')
    with pytest.raises(grading.GradingError, match=f"nbgrader generate_assignment {ASSIGNMENT}"):
        grading.grade_class(tmp_path, ASSIGNMENT, jobs=1, progress=lambda s: None)


def test_a_gradebook_nbgrader_cannot_open_stops_the_run_with_the_reason_and_no_worker_left(
        tmp_path):
    submit(tmp_path, "ana", '{"cells": []}')
    submit(tmp_path, "ben", '{"cells": []}')
    with pytest.raises(grading.GradingError, match="nosuchdb"):
        grading.grade_class(tmp_path, ASSIGNMENT, jobs=2, db_url="nosuchdb://nowhere/x",
                            progress=lambda s: None)
    assert not _grading_workers_in(tmp_path), "a worker outlived the refused run"
    assert not journal_entries(tmp_path)


def _grading_workers_in(root: Path) -> list[int]:
    """PIDs of running ``bpgrade _worker`` processes working in ``root``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if (b"bpgrade\0_worker" in (proc / "cmdline").read_bytes()
                    and Path(os.readlink(proc / "cwd")) == root.resolve()):
                pids.append(int(proc.name))
    return pids


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
