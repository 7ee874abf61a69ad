"""The grader on Dask against a real PostgreSQL gradebook (a throw-away server, tests/pg.py).

The assignment is released with ``nbgrader generate_assignment --db <postgres url>``,
five students are graded on a Dask LocalCluster of three worker processes (which
never see the gradebook: the client alone writes it), and every cell's score read
back from PostgreSQL is the one the submission was built to get.
Needs Debian's ``postgresql`` package and ``psycopg2``: skipped without them on a
developer's machine, failed without them in CI (``CI=true``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bpgrade import pool as grading

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pg  # noqa: E402
from conftest import require  # noqa: E402
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


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def graded(server, tmp_path_factory):
    """A course whose gradebook is PostgreSQL, graded on three Dask workers."""
    course, expected = released_course(tmp_path_factory.mktemp("pg") / "course", server.url)
    lines: list[str] = []
    summary = grading.grade_class(course.root, ASSIGNMENT, jobs=3, db_url=server.url,
                                  progress=lines.append)
    return course.root, expected, summary, lines


def test_three_dask_workers_grade_every_cell_score_into_postgresql(graded, server):
    root, expected, summary, lines = graded
    assert summary.count("graded") == len(expected), "\n".join(lines)
    assert grading.gradebook_scores(root, ASSIGNMENT, server.url) == expected


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
