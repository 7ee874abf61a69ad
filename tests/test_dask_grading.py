"""The class-wide grader on a real Dask cluster: a scheduler and two workers, each its
own process (``dask scheduler``, ``dask worker``), on loopback, against serial nbgrader.

One course (``ex05_updates``) holds 21 students built from ``tools/samples``: the five
of :func:`test_parallel_grading.released_course` and copies of them under other names.
A copy graded by one batched ``nbgrader autograde`` is the reference: every student's
cell scores, and every graded cell of every autograded notebook (source and grade).

The workers run with their working directory and Dask's local directory in a
folder of their own, not the course's; the tasks name no path of the course (checked
on the pickled task), so they cannot touch it: the client alone writes ``autograded/``
and the gradebook.

A submission over the time limit per student (``--timeout``): each of its answers
sleeps :data:`SLEEP` seconds, under the course's cell timeout (nbclient never
interrupts it) but over :data:`LIMIT` seconds together, so only the worker's
watchdog can stop it.

A worker-killing submission: a kernel cannot kill its worker here (the sandbox's PID
namespace hides the worker from it, see ``tests/test_parallel_grading.py``), so the
workers of this cluster run with ``BPGRADE_TEST_KILL_WORKER=kills_its_worker``, the
test hook of :mod:`bpgrade.pool` that makes a worker SIGKILL its own process when it
receives that student's task: every try kills a worker, as a real one would.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from bpgrade import pool as grading
from tools import grade_demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_parallel_grading import (  # noqa: E402
    ASSIGNMENT,
    journal_entries,
    released_course,
    submit,
)

pytestmark = pytest.mark.slow

HOSTILE = "kills_its_worker"
COPIES = 16  # students added to the five of released_course: 21 in all
WAIT = 600  # seconds: the bound of every wait below
SLOW = "slower_than_the_limit"  # the student of the per-student time limit's test
LIMIT = 16  # seconds: --timeout of that test, the limit per student
SLEEP = 12  # seconds each of SLOW's answers sleeps: under the cell timeout, over LIMIT in all


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A ``dask scheduler`` and two ``dask worker`` processes (each under its nanny,
    which restarts a killed worker), each in a process group of its own."""

    def __init__(self, folder: Path):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        dask = str(Path(sys.executable).parent / "dask")
        env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
                   DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
        env.pop("PYTHONPATH", None)
        self.log = folder / "cluster.log"
        out = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.out = out
        self.procs.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], cwd=folder, env=env, stdout=out, stderr=out,
            start_new_session=True))
        self.workdirs = []
        for i in range(2):
            workdir = folder / f"worker{i}"
            workdir.mkdir()
            self.workdirs.append(workdir)
            self.procs.append(subprocess.Popen(
                [dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                 "--local-directory", str(workdir), "--no-dashboard", "--memory-limit", "0"],
                cwd=workdir, env=dict(env, **{grading.TEST_KILL_ENV: HOSTILE}),
                stdout=out, stderr=out, start_new_session=True))

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=60)

    def wait_for_workers(self, n: int = 2) -> None:
        deadline = time.monotonic() + WAIT
        with self.client() as client:
            client.wait_for_workers(n, timeout=WAIT)
            while len(client.scheduler_info(n_workers=-1)["workers"]) < n:
                assert time.monotonic() < deadline, self.log.read_text()[-3000:]
                time.sleep(0.2)

    def worker_pids(self) -> dict[str, int]:
        with self.client() as client:
            return client.run(os.getpid)

    @classmethod
    @contextlib.contextmanager
    def running(cls, folder: Path):
        """The cluster started in ``folder``, its two workers up; stopped at the end."""
        cluster = cls(folder)
        try:
            cluster.wait_for_workers()
            yield cluster
        finally:
            cluster.stop()

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the processes started here, by their group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.out.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with Cluster.running(tmp_path_factory.mktemp("dask-cluster")) as running:
        yield running


def _student_copies(root: Path, expected: dict) -> dict:
    """Add :data:`COPIES` students, copies of the five under other names."""
    base = sorted(expected)
    for i in range(COPIES):
        name = base[i % len(base)]
        student = f"s{i:02d}_{name}"
        shutil.copytree(root / "submitted" / name, root / "submitted" / student)
        expected[student] = expected[name]
    return expected


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    course, expected = released_course(tmp_path_factory.mktemp("class") / "course")
    return course.root, _student_copies(course.root, expected)


def copy_course(klass, tmp_path_factory, name: str) -> Path:
    dest = tmp_path_factory.mktemp(name) / "course"
    shutil.copytree(klass[0], dest)
    return dest


def graded_cells(root: Path, student: str) -> dict[str, tuple[str, tuple]]:
    """``{grade_id: (source, (score, max score))}`` of the graded cells of one
    student's autograded notebook."""
    from nbgrader import utils

    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    return {c.metadata.nbgrader["grade_id"]: (c.source, utils.determine_grade(c, None))
            for c in nb.cells if utils.is_grade(c)}


@pytest.fixture(scope="module")
def serial(klass, tmp_path_factory):
    """One batched ``nbgrader autograde`` of the class: its root and scores."""
    root = copy_course(klass, tmp_path_factory, "serial")
    grade_demo.Course(root, [ASSIGNMENT]).nbgrader("autograde", "autograde", ASSIGNMENT)
    scores = grading.gradebook_scores(root, ASSIGNMENT)
    assert scores == klass[1], "the reference run disagrees with the corpus"
    return root, scores


def run_cli(root: Path, *args: str, **popen) -> subprocess.Popen:
    argv = [sys.executable, "-m", "bpgrade", "autograde", ASSIGNMENT, *args]
    return subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def assert_same_as_serial(root: Path, serial) -> None:
    serial_root, serial_scores = serial
    assert grading.gradebook_scores(root, ASSIGNMENT) == serial_scores
    for student in serial_scores:
        assert graded_cells(root, student) == graded_cells(serial_root, student), student


def wait_for_journal(root: Path, proc: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + WAIT
    while len(journal_entries(root)) < at_least and proc.poll() is None:
        assert time.monotonic() < deadline, "no student finished in time"
        time.sleep(0.05)


# ------------------------------------------------------------------------------ tests


def test_a_task_names_no_path_of_the_course_and_workers_run_elsewhere(klass, cluster):
    root = klass[0]
    task = grading.make_task(root, ASSIGNMENT, "correct",
                             grading.course_files(root, ASSIGNMENT))
    blob = pickle.dumps(task)
    assert str(root).encode() not in blob and str(root.parent).encode() not in blob
    assert set(task["course"]) == {"nbgrader_config.py", "nbgrader_sandbox.py",
                                   f"solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"}
    with cluster.client() as client:
        where = client.run(os.getcwd)
    assert len(where) == 2
    for cwd in where.values():
        assert Path(cwd) in cluster.workdirs and root not in Path(cwd).parents


@pytest.fixture(scope="module")
def clean_run(klass, cluster, tmp_path_factory):
    """The class and the worker-killing student, graded on the cluster by the CLI."""
    root = copy_course(klass, tmp_path_factory, "dask")
    shutil.copytree(root / "submitted" / "correct", root / "submitted" / HOSTILE)
    proc = run_cli(root, "--scheduler", cluster.address)
    out, _ = proc.communicate(timeout=WAIT)
    return root, proc.returncode, out


def test_the_cluster_gives_every_student_every_cell_of_serial_nbgrader(clean_run, serial):
    root, _, out = clean_run
    assert_same_as_serial(root, serial)
    assert journal_entries(root) == set(serial[1]), out
    assert f"graded{len(serial[1]):>26}" in out, out
    assert "2 Dask workers (tcp://127.0.0.1:" in out, out


def test_a_submission_that_kills_its_worker_every_time_fails_with_the_reason(clean_run):
    root, returncode, out = clean_run
    assert returncode == 1, out
    (line,) = [ln for ln in out.splitlines() if f" {HOSTILE} " in ln]
    assert " failed " in line and "killed the worker every time" in line, line
    assert "KilledWorker" in line, line
    assert HOSTILE not in journal_entries(root)
    assert f"failed{1:>26}" in out and f"  {HOSTILE}: its grading killed" in out, out


def progress_lines(out: str) -> list[str]:
    """The grader's progress lines (``[done/total … per/min]``) in its output."""
    return [ln for ln in out.splitlines() if ln.startswith("[") and "/min]" in ln]


def test_the_class_report_of_the_cluster_run_is_that_of_serial_nbgrader(clean_run, serial):
    """``python -m bpgrade report`` reads the same class from both: every row of its CSV is
    the same, and the student the cluster could not grade is there as failed, with why."""
    from bpgrade import report

    def rows(root: Path) -> list[list]:
        return report.Report(report.read_class(root, [ASSIGNMENT]), known={}).rows()

    ours, theirs = rows(clean_run[0]), rows(serial[0])
    header = ours[0]
    failed = [r for r in ours if r[header.index("student")] == HOSTILE]
    assert [r for r in ours if r not in failed] == theirs
    assert len(theirs) > len(serial[1])  # a row per student and graded cell
    (row,) = failed
    assert row[header.index("status")] == "failed"
    assert row[header.index("outcome")] == report.GRADING_FAILED
    assert "killed the worker every time" in row[header.index("notes")]


def test_the_progress_lines_count_done_failed_left_and_the_rate(clean_run, serial):
    _, _, out = clean_run
    total = len(serial[1]) + 1
    lines = progress_lines(out)
    assert len(lines) == total, out
    assert lines[-1].startswith(f"[{total}/{total} failed 1 left 0"), lines[-1]


def test_a_worker_sigkilled_half_way_loses_nobody_and_grades_nobody_twice(
        klass, cluster, serial, tmp_path_factory):
    root = copy_course(klass, tmp_path_factory, "dask-killed-worker")
    cluster.wait_for_workers()
    proc = run_cli(root, "--scheduler", cluster.address)
    wait_for_journal(root, proc, 3)
    victim = sorted(cluster.worker_pids().values())[0]
    os.kill(victim, signal.SIGKILL)
    finished = journal_entries(root)
    out, _ = proc.communicate(timeout=WAIT)
    assert len(finished) < len(serial[1]), "the kill did not land half-way"
    assert proc.returncode == 0, out
    lines = progress_lines(out)
    graded = [ln.split()[ln.split().index("graded") + 1] for ln in lines if " graded " in ln]
    assert sorted(graded) == sorted(serial[1]), "a student graded twice, or not at all"
    assert_same_as_serial(root, serial)
    with pytest.raises(ProcessLookupError):
        os.kill(victim, 0)


def test_a_client_sigkilled_half_way_then_a_rerun_grades_only_the_rest(
        klass, cluster, serial, tmp_path_factory):
    root = copy_course(klass, tmp_path_factory, "dask-killed-client")
    cluster.wait_for_workers()
    proc = run_cli(root, "--scheduler", cluster.address)
    wait_for_journal(root, proc, 2)
    proc.kill()
    proc.communicate(timeout=WAIT)
    finished = journal_entries(root)
    assert 1 <= len(finished) < len(serial[1]), "the kill did not land half-way"
    rerun = run_cli(root, "--scheduler", cluster.address)
    out, _ = rerun.communicate(timeout=WAIT)
    assert rerun.returncode == 0, out
    assert f"{len(finished)} already graded" in out, out
    assert f"skipped{len(finished):>25}" in out, out
    assert journal_entries(root) == set(serial[1])
    assert_same_as_serial(root, serial)


def _slow_notebook(root: Path):
    """The release with every answer sleeping :data:`SLEEP` s: no cell reaches the
    course's cell timeout, the notebook takes longer than :data:`LIMIT`."""
    config = (root / "nbgrader_config.py").read_text()
    cell_timeout = int(re.search(r"^c\.Execute\.timeout = (\d+)", config, re.M).group(1))
    nb = nbformat.read(root / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert SLEEP < cell_timeout and LIMIT < len(answers) * SLEEP, (cell_timeout, len(answers))
    for cell in answers:
        cell.source = f"import time\n\ntime.sleep({SLEEP})"
    return nb


def test_a_submission_over_the_time_limit_per_student_fails_and_the_rest_is_graded(
        klass, cluster, tmp_path_factory):
    root = copy_course(klass, tmp_path_factory, "dask-timeout")
    for copy in (root / "submitted").glob("s[0-9][0-9]_*"):  # the five of released_course
        shutil.rmtree(copy)
    submit(root, SLOW, _slow_notebook(root))
    others = set(grading.submitted_students(root, ASSIGNMENT)) - {SLOW}
    cluster.wait_for_workers()
    start = time.monotonic()
    proc = run_cli(root, "--scheduler", cluster.address, "--timeout", str(LIMIT))
    out, _ = proc.communicate(timeout=WAIT)  # a hung run fails here
    seconds = time.monotonic() - start
    assert proc.returncode == 1, out
    lines = progress_lines(out)
    (line,) = [ln for ln in lines if f" {SLOW} " in ln]
    assert " failed " in line and f"took longer than the {LIMIT} s limit per student" in line, out
    graded = [ln.split()[ln.split().index("graded") + 1] for ln in lines if " graded " in ln]
    assert sorted(graded) == sorted(others), "a student graded twice, or not at all"
    assert len(lines) == len(others) + 1, out
    assert journal_entries(root) == others
    assert grading.gradebook_scores(root, ASSIGNMENT) == {s: klass[1][s] for s in others}
    # Two tries (allowed-failures 1), each ended at LIMIT: not a wait for the sleeps to end.
    assert seconds < 2 * (LIMIT + 60), out
    cluster.wait_for_workers()


def test_nbgrader_reuse_shares_engines_and_schema_checks_and_raises_the_same_errors(tmp_path):
    """:func:`bpgrade.pool.nbgrader_reuse`, the workers' saving: the same errors as
    ``jsonschema.validate`` (a bad schema too), one engine per gradebook URL, and
    nbgrader's own functions back after the block."""
    import jsonschema
    import nbgrader.api as api

    schema = {"type": "object", "properties": {"points": {"type": "number"}},
              "required": ["points"]}

    def error(instance):
        try:
            jsonschema.validate(instance, schema)
        except jsonschema.ValidationError as exc:
            return exc.message, list(exc.path), exc.validator
        return None

    cases = [{"points": 1}, {"points": "one"}, {}]
    real = (jsonschema.validate, api.create_engine)
    outside = [error(c) for c in cases]
    engines: dict = {}
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    grading._new_gradebook(url)  # its tables: nbgrader then runs no alembic program
    with grading.nbgrader_reuse(engines, keep=False):
        inside = [error(c) for c in cases + cases]
        with pytest.raises(jsonschema.SchemaError):
            jsonschema.validate({}, {"type": 12})
        with api.Gradebook(url) as one, api.Gradebook(url) as two:
            assert one.engine is two.engine and len(engines) == 1
    assert inside == outside + outside and outside[0] is None and outside[1] is not None
    assert (jsonschema.validate, api.create_engine) == real and engines == {}


def test_fast_reuse_checks_a_gradebook_once_per_engine_and_course(tmp_path):
    """The fast path of :func:`bpgrade.pool.nbgrader_reuse`: nbgrader's ``Gradebook()``
    lists the tables, runs ``create_all`` and checks the course the first time only;
    later opens on the same engine and course send no statement at all, a new course
    is checked (and created) as nbgrader would, and what is read is the same. Only a
    ``scratch`` gradebook is written without fsync; the course's keeps SQLite's
    default (FULL), on which the client's journal relies."""
    import nbgrader.api as api
    from sqlalchemy import event, text

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    scratch = f"sqlite:///{tmp_path / 'scratch.db'}"
    for u in (url, scratch):
        grading._new_gradebook(u)
    statements: list[str] = []
    engines: dict = {}
    real_init = api.Gradebook.__init__
    with grading.nbgrader_reuse(engines, keep=False, fast=True, scratch={scratch}):
        with api.Gradebook(url, "course") as gb:
            event.listen(gb.engine, "before_cursor_execute",
                         lambda *args: statements.append(args[2]))
            gb.update_or_create_student("ana")
        statements.clear()
        with api.Gradebook(url, "course") as gb:
            assert statements == []  # no table listing, no create_all, no course check
            assert [s.id for s in gb.students] == ["ana"]
        with api.Gradebook(url, "other") as gb:
            assert any("course" in s.lower() for s in statements)  # checked: created
            assert gb.check_course("other").id == "other"
        with api.Gradebook(url, "course") as gb, api.Gradebook(scratch, "course") as sc:
            synchronous = {u: g.db.execute(text("PRAGMA synchronous")).scalar()
                           for u, g in ((url, gb), (scratch, sc))}
    assert synchronous == {url: 2, scratch: 0}
    assert api.Gradebook.__init__ is real_init and engines == {}


def test_one_transaction_saves_a_students_grades_all_or_nothing_in_one_commit(tmp_path):
    """The client's fast path (:func:`bpgrade.pool.one_transaction`): every nbgrader
    ``Gradebook`` opened in the block shares one session; nbgrader's own commits only
    flush, the block commits once at its end, and a block that raises leaves nothing
    behind (a client killed mid-save leaves nothing either: SQLite rolls back)."""
    import nbgrader.api as api
    from sqlalchemy import event

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    grading._new_gradebook(url)
    commits: list[int] = []
    with grading.nbgrader_reuse({}, keep=False, fast=True):
        with api.Gradebook(url, "course") as gb:  # the first open: nbgrader's checks
            event.listen(gb.engine, "commit", lambda conn: commits.append(1))
        with grading.one_transaction(url):
            with api.Gradebook(url, "course") as gb:
                gb.update_or_create_student("ana")
            with api.Gradebook(url, "course") as gb:
                gb.update_or_create_student("ben", first_name="Ben")
                assert {s.id for s in gb.students} == {"ana", "ben"}
            assert commits == []
        assert commits == [1]
        with pytest.raises(RuntimeError), grading.one_transaction(url):
            with api.Gradebook(url, "course") as gb:
                gb.update_or_create_student("cai")
            raise RuntimeError("the save of cai failed half-way")
    with api.Gradebook(url, "course") as gb:
        assert sorted(s.id for s in gb.students) == ["ana", "ben"]
