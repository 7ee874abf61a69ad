"""The grader on Dask against a real PostgreSQL gradebook (a throw-away server, tests/pg.py).

The assignment is released with ``nbgrader generate_assignment --db <postgres url>``,
five students are graded on a Dask cluster of separate processes, a ``dask scheduler``
and two ``dask worker`` processes, each worker in a working directory of its own (the
cluster of ``tests/test_dask_grading.py``): the workers never see the course nor the
gradebook, the client alone writes it. Every cell's score read back from PostgreSQL is
the one the submission was built to get, which is what a serial ``nbgrader autograde``
gives (``test_dask_grading.py``'s reference run checks that on the same corpus).
Needs Debian's ``postgresql`` package and ``psycopg2``: skipped without them on a
developer's machine, failed without them in CI (``CI=true``).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest

from bpgrade import pool as grading

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pg  # noqa: E402
from conftest import require  # noqa: E402
from test_dask_grading import Cluster  # noqa: E402
from test_parallel_grading import ASSIGNMENT, released_course  # noqa: E402

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if pg.postgres_bin() is None:
        return pg.INSTALL_HINT
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: make setup (psycopg2-binary, in the grade extra)"
    return None


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def server():
    require(_missing(), "PostgreSQL and psycopg2")
    with pg.postgres_server() as running:
        yield running


@pytest.fixture(scope="session")
def cluster(server, tmp_path_factory):
    """A ``dask scheduler`` and two ``dask worker`` processes, outside the course."""
    with Cluster.running(tmp_path_factory.mktemp("pg-dask-cluster")) as running:
        yield running


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def graded(server, cluster, tmp_path_factory):
    """A course whose gradebook is PostgreSQL, graded on the cluster's two workers."""
    course, expected = released_course(tmp_path_factory.mktemp("pg") / "course", server.url)
    lines: list[str] = []
    summary = grading.grade_class(course.root, ASSIGNMENT, db_url=server.url,
                                  scheduler=cluster.address, progress=lines.append)
    return course.root, expected, summary, lines


def test_a_dask_scheduler_and_worker_processes_grade_every_cell_score_into_postgresql(
        graded, server, cluster):
    root, expected, summary, lines = graded
    assert summary.count("graded") == len(expected), "\n".join(lines)
    assert f"2 Dask workers ({cluster.address})" in lines[0], lines[0]
    assert grading.gradebook_scores(root, ASSIGNMENT, server.url) == expected
    with cluster.client() as client:
        where = client.run(os.getcwd)
    assert len(where) == 2 and all(Path(cwd) in cluster.workdirs for cwd in where.values())
    assert not any(root in Path(cwd).parents for cwd in where.values())
    task = grading.make_task(root, ASSIGNMENT, "correct", grading.course_files(root, ASSIGNMENT))
    blob = pickle.dumps(task)  # what a worker receives: no path of the course, no gradebook
    assert str(root).encode() not in blob and str(server.folder).encode() not in blob


def test_nothing_is_written_to_a_sqlite_gradebook_when_postgresql_is_given(graded):
    root, *_ = graded
    assert not (root / "gradebook.db").exists()


def test_the_journal_ties_finished_students_to_the_postgresql_gradebook(graded, server):
    root, expected, _, _ = graded
    again = grading.grade_class(root, ASSIGNMENT, jobs=3, db_url=server.url,
                                progress=lambda s: None)
    assert again.count("skipped") == len(expected)
    # The same course against the default SQLite gradebook is not "already graded" there:
    # that gradebook does not even hold the assignment.
    with pytest.raises(grading.GradingError, match="not in the gradebook"):
        grading.grade_class(root, ASSIGNMENT, jobs=1, progress=lambda s: None)


def test_the_class_report_reads_every_cell_score_from_postgresql(graded, server):
    """``python -m bpgrade report --db-url`` on the PostgreSQL gradebook: the CSV's cell
    scores are those the students were built to get, and no SQLite gradebook is made."""
    import csv
    import subprocess

    root, expected, _, _ = graded
    sqlite = (root / "gradebook.db").exists()  # another test of this module may make one
    proc = subprocess.run([sys.executable, "-m", "bpgrade", "report", ASSIGNMENT,
                           "--db-url", server.url, "--out", "pg-report"], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (root / "pg-report" / f"report-{ASSIGNMENT}.html").read_text()
    assert "from postgresql+psycopg2://" in page
    with open(root / "pg-report" / f"report-{ASSIGNMENT}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    scores: dict = {}
    for row in rows:
        scores.setdefault(row["student"], {})[row["cell"]] = float(row["cell_score"])
    assert scores == expected
    assert f"{ASSIGNMENT}: {len(expected)} submissions, {len(expected)} graded" in proc.stdout
    assert (root / "gradebook.db").exists() == sqlite
