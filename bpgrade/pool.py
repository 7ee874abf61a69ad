"""Crash-safe autograding of a whole class with nbgrader, on Dask.

    python -m bpgrade autograde ex04_backward [--scheduler tcp://host:8786] [--jobs N]
                                              [--db-url URL] [--force] [--timeout S]

run in the course root (the folder of ``nbgrader_config.py``) grades every
``submitted/<student>/<assignment>/`` with nbgrader's own ``Autograde`` converter,
so the grades are those of a serial ``nbgrader autograde <assignment>`` and every
setting of ``nbgrader_config.py`` (the sandbox of ``nbgrader_sandbox.py`` included)
applies. One code path: without ``--scheduler`` it starts a Dask ``LocalCluster`` on
this machine (``--jobs`` worker processes, default one per CPU, one thread each);
with ``--scheduler`` it sends the class to a running Dask cluster (SSH hosts,
Kubernetes, SLURM: see ``chapters/scaling.md``).

How it works
------------
* **Stateless workers, no shared filesystem.** One Dask task per student carries
  everything it needs (:func:`make_task`): the student's submitted files (bytes, read
  without following a link or opening anything but regular files and folders:
  :func:`bpgrade.submission.read_submission`; what it refused goes with them, and
  reaches the student's notes as in a serial autograde),
  the instructor's source folder of the assignment (``solutions/<assignment>/``)
  and the course's grading configuration (``nbgrader_config.py``,
  ``nbgrader_sandbox.py``); it names no path of the course. The worker
  (:func:`grade_task`) builds a private throw-away course from them in its own
  temporary folder (once per worker process and assignment: ``nbgrader
  generate_assignment`` puts the assignment into a private SQLite gradebook
  there), runs nbgrader's ``Autograde`` for that one student (bubblewrap, limits,
  integrity check, repair: the same configuration) and returns the autograded
  folder's files and the scores per grade cell. Workers never see the course
  folder nor the gradebook.
* **What a worker keeps between tasks**: the private course of an assignment
  (keyed by a hash of the files the task carries, ``course_key``: the same files,
  the same course), nbgrader's application loaded in it, and (:func:`nbgrader_reuse`)
  one SQLAlchemy engine per private gradebook and the checked JSON schema of
  nbgrader's cell metadata, which nbgrader would otherwise rebuild a dozen and some
  thirty times per student; nbgrader's ``Gradebook()`` checks the tables and the course
  once per engine and course, not at each of its sixteen opens per student, and the
  private gradebook (throw-away) is written without ``fsync``. Each student's files are
  written into the private course for the task and removed after it.
* **The fast path and the classic one.** Before the first task the client writes the
  bytecode of ``bpgrade`` and ``bplib`` (:func:`compile_packages`), which every
  sandboxed kernel imports and cannot compile for itself; each worker forks its
  kernels from a zygote that has imported them (:mod:`bpgrade.zygote`: the same
  sandbox, built per student; ``--cold-kernels`` starts them cold). ``--classic``
  grades on the path measured in issue #24 (none of this, and the checks' exact watch
  loop only: :mod:`bpgrade.checks._trust`), for ``python -m bench grading_scale``, which
  runs all three in one run; the grades are the same. ``python -m
  bench.profile_grading`` shows where a submission's CPU goes.
* **The client alone writes.** For each returned result the client replaces
  ``autograded/<student>/<assignment>/`` with the returned files and saves the
  grades into the course's gradebook (SQLite or PostgreSQL) with nbgrader's own
  ``SaveAutoGrades`` and ``AssignLatePenalties`` preprocessors run on the returned
  autograded notebook, after ``update_or_create_submission`` with the timestamp
  the worker read: the same code that writes the grades in a serial ``nbgrader
  autograde``, which ran nothing else against the gradebook. It then checks that
  the gradebook holds, cell by cell, the scores the worker computed.
* **Graded means graded.** As before: a student is *graded* when nbgrader's run
  returned without raising and wrote every notebook; the ERROR lines nbclient logs
  on the way (a cell that timed out, a dead kernel) are the outcome's *notes*; a
  notebook repaired before grading (its ``bpgrade_repairs`` metadata) counts as
  *repaired*. A student whose grading raises is *failed* with the reason.
* **Nothing lost, nothing twice.** A worker that dies mid-task (SIGKILL, the
  out-of-memory killer) wrote nothing anywhere that matters: Dask reschedules its
  task on another worker. A submission that kills its worker every time ends, after
  Dask's ``distributed.scheduler.allowed-failures`` retries (:data:`ALLOWED_FAILURES`
  on a LocalCluster), as ``KilledWorker``: that student is *failed* with the
  reason and the run goes on. Only the running task of a dead worker counts as
  suspect: the LocalCluster gives each worker one task at a time
  (``distributed.scheduler.worker-saturation: 1.0``; give a scheduler of your own
  the same setting). ``--timeout``: a task that runs longer ends its worker
  process (a watchdog thread in the worker), which Dask treats like any other
  death of a worker; the watchdog first logs a Dask event (:data:`TIMEOUT_TOPIC`),
  so a student failed that way is reported as over the limit.
* **Crash safety.** A student counts as finished only when the journal
  ``.grading/<assignment>/<student>.json`` says so; the client writes that file
  (atomically) only after the gradebook write (a student whose grading failed gets
  ``<student>.failed`` instead, with the reason, for the class report). A client
  killed mid-run leaves at worst a half-written ``autograded/<student>/`` and a
  half-saved submission with no journal entry; the next run regrades exactly those
  students and replaces both. A finished student is skipped only if its journal entry matches the
  current submission (a resubmission is regraded), its autograded notebooks exist
  and the gradebook holds its submission.
* **The run is visible.** One line per student with the counts (done, failed,
  left) and the rate per minute, Dask's dashboard link when the dashboard runs
  (it needs ``bokeh``, which the course does not install), and the summary table.

The assignment must already be in the course's gradebook (``nbgrader
generate_assignment`` against the same ``db_url`` puts it there); the client checks
that before any task starts. Exit status: 0 when every submission is graded (with
notes or not), 1 when any failed, 2 on bad input.

For the tests only: a worker whose environment has ``BPGRADE_TEST_KILL_WORKER=<student>``
SIGKILLs its own process when it receives that student's task, a submission that
kills its worker every time (a kernel cannot: the sandbox's PID namespace hides the
worker from it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import memo
from .course import CONFIG_FILES, IGNORE, tools_on_path
from .submission import (
    NOTES_KEY,
    PLACEHOLDER,
    Refused,
    read_submission,
    write_record,
)

# jsonschema (under nbformat) imports rfc3987_syntax if it is installed, for two
# format checkers ("iri", "iri-reference") that no notebook schema uses; that import
# builds 35 Earley parsers and costs about 1.5 s of CPU in every process (see
# python-jsonschema/jsonschema#1428). The grader's processes do without it.
sys.modules.setdefault("rfc3987_syntax", None)

SQLITE_BUSY_TIMEOUT = 60  # seconds a SQLite writer waits for the lock
STUDENT_TIMEOUT = 1800  # seconds one student's task may run before its worker is ended
ALLOWED_FAILURES = 2  # deaths of a worker a task may cause before it is KilledWorker
STATE_DIR = ".grading"
FAILED_SUFFIX = ".failed"  # .grading/<assignment>/<student>.failed: why its grading failed
REPAIRS_KEY = "bpgrade_repairs"  # notebook metadata: what was repaired before grading
WINDOW = 64  # students sent to Dask ahead of their results, at least
TEST_KILL_ENV = "BPGRADE_TEST_KILL_WORKER"  # tests only: see the module's docstring
TIMEOUT_TOPIC = "bpgrade-timeout"  # Dask event a worker logs before its watchdog ends it


class GradingError(RuntimeError):
    """The class cannot be graded as asked (no assignment, no gradebook entry ...)."""


@dataclass
class Outcome:
    """What happened to one student's submission."""

    student: str
    status: str  # "graded", "failed" or "skipped"
    seconds: float = 0.0
    score: float | None = None
    max_score: float | None = None
    reason: str = ""  # failed: why; graded: notes (a cell timed out, the kernel died ...)
    repairs: list[str] = field(default_factory=list)  # what was repaired before grading
    notes: list[str] = field(default_factory=list)  # the student's notes (refused files ...)


@dataclass
class Summary:
    """The outcomes of one run of :func:`grade_class`."""

    assignment: str
    jobs: int
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def repaired(self) -> int:
        """Students graded in this run whose notebook was repaired before grading."""
        return sum(o.status == "graded" and bool(o.repairs) for o in self.outcomes)

    @property
    def per_minute(self) -> float:
        """Submissions graded (or failed) in this run per minute of wall time."""
        done = self.count("graded") + self.count("failed")
        return 60.0 * done / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------ the gradebook


def with_busy_timeout(db_url: str, seconds: float = SQLITE_BUSY_TIMEOUT) -> str:
    """``db_url`` with ``?timeout=seconds`` if it is SQLite and names no timeout yet.

    >>> with_busy_timeout("sqlite:////srv/course/gradebook.db")
    'sqlite:////srv/course/gradebook.db?timeout=60'
    """
    if not db_url.startswith("sqlite") or "timeout=" in db_url.partition("?")[2]:
        return db_url
    base, _, query = db_url.partition("?")
    return f"{base}?{'&'.join(filter(None, [query, f'timeout={seconds:g}']))}"


def course_settings(root: Path) -> tuple[str, str]:
    """``(db_url, course_id)`` of the course's ``nbgrader_config.py``, or nbgrader's defaults.

    The default gradebook is ``sqlite:///<root>/gradebook.db``, the default course
    ``default_course``.
    """
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    settings = {}
    with contextlib.suppress(ConfigFileNotFound):
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        settings = config.CourseDirectory
    url = settings.get("db_url") or f"sqlite:///{(root / 'gradebook.db').resolve()}"
    return str(url), str(settings.get("course_id") or "default_course")


def redacted(db_url: str) -> str:
    """``db_url`` without its password (for messages and the journal)."""
    parts = urlsplit(db_url)
    if parts.password is None:
        return db_url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def graded_in_gradebook(db_url: str, course_id: str, assignment: str) -> set[str]:
    """Students with a submission of ``assignment`` in the gradebook.

    Opening the gradebook here, in the parent, also creates its tables once
    before the workers start. Raises :class:`GradingError` if the assignment
    is not in it.
    """
    from nbgrader.api import Gradebook, MissingEntry

    with tools_on_path(), Gradebook(db_url, course_id) as gb:
        try:
            record = gb.find_assignment(assignment)
        except MissingEntry:
            raise GradingError(
                f"assignment {assignment!r} is not in the gradebook {redacted(db_url)}; "
                f"run `nbgrader generate_assignment {assignment} --db <that url>` first"
            ) from None
        return {s.student.id for s in record.submissions}


def gradebook_scores(root: Path, assignment: str,
                     db_url: str | None = None) -> dict[str, dict[str, float]]:
    """``{student: {grade_id: score}}`` for every submission of ``assignment`` in the gradebook.

    ``db_url`` defaults to the course's gradebook (see :func:`course_settings`).
    """
    from nbgrader.api import Gradebook

    default_url, course_id = course_settings(Path(root))
    with Gradebook(db_url or default_url, course_id) as gb:
        return {sub.student.id: {g.name: float(g.score) for nb in sub.notebooks
                                 for g in nb.grades}
                for sub in gb.find_assignment(assignment).submissions}


# -------------------------------------------------------------------------- the journal


def submitted_students(root: Path, assignment: str) -> list[str]:
    """Students with a folder ``submitted/<student>/<assignment>/``, sorted."""
    return sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}")
                  if p.is_dir())


def fingerprint(folder: Path) -> str:
    """SHA-256 of every regular file's relative path and bytes under ``folder``, and of
    what it holds that is not one (read as :func:`bpgrade.submission.read_submission`
    reads it: no link followed, no pipe opened)."""
    digest = hashlib.sha256()
    submission = read_submission(folder)
    for rel, data in sorted(submission.files.items()):
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(data or b"").digest())
    for refusal in submission.refused:
        digest.update(f"{refusal.path}\0{refusal.what}\0".encode())
    return digest.hexdigest()


class Journal:
    """``.grading/<assignment>/<student>.json``: the students whose grading finished."""

    def __init__(self, root: Path, assignment: str, db_url: str):
        self.root, self.assignment = root, assignment
        self.db = redacted(db_url)
        self.folder = root / STATE_DIR / assignment
        self.folder.mkdir(parents=True, exist_ok=True)

    def entry(self, student: str) -> Path:
        return self.folder / f"{student}.json"

    def log(self, student: str) -> Path:
        return self.folder / f"{student}.log"

    def submission(self, student: str) -> str:
        return fingerprint(self.root / "submitted" / student / self.assignment)

    def finished(self, student: str, in_gradebook: set[str]) -> bool:
        """Whether a previous run graded this very submission into this gradebook."""
        try:
            record = json.loads(self.entry(student).read_text())
        except (OSError, ValueError):
            return False
        autograded = self.root / "autograded" / student / self.assignment
        notebooks = [autograded / n for n in record.get("notebooks", [])]
        return (record.get("fingerprint") == self.submission(student)
                and record.get("db") == self.db and student in in_gradebook
                and bool(notebooks) and all(p.is_file() for p in notebooks))

    def record(self, student: str, fp: str, outcome: Outcome) -> None:
        """Mark ``student`` finished (atomically), after nbgrader succeeded."""
        autograded = self.root / "autograded" / student / self.assignment
        notebooks = sorted(p.name for p in autograded.glob("*.ipynb"))
        data = dict(asdict(outcome), fingerprint=fp, db=self.db, notebooks=notebooks)
        self._write(self.entry(student), data)
        self.failure(student).unlink(missing_ok=True)

    def failure(self, student: str) -> Path:
        return self.folder / f"{student}{FAILED_SUFFIX}"

    def record_failure(self, student: str, fp: str, outcome: Outcome) -> None:
        """Record why ``student``'s grading failed (read by the class report,
        :mod:`bpgrade.report`); a later run that grades the student removes it."""
        self._write(self.failure(student), dict(asdict(outcome), fingerprint=fp, db=self.db))

    def _write(self, path: Path, data: dict) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    def forget(self, student: str) -> None:
        self.entry(student).unlink(missing_ok=True)




# ------------------------------------------------------------------------------- tasks


def _ignored(rel: str) -> bool:
    """Is ``rel`` left out by :data:`bpgrade.course.IGNORE` (editor leftovers, exercise
    text sources)? The patterns ignore the folder too."""
    return any(IGNORE("", [part]) for part in rel.split("/"))


def _tree(folder: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the files under ``folder`` (the instructor's, or a
    worker's own output), without what :func:`_ignored` leaves out."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if not _ignored(rel):
            files[rel] = path.read_bytes()
    return files


def submission_files(folder: Path, notebooks: list[str]) -> tuple[dict[str, bytes], list[Refused]]:
    """What a task carries of a submission folder: its regular files (read by
    :func:`bpgrade.submission.read_submission`: no link followed, no pipe or device
    opened), and what it refused. A refused notebook of the assignment (``notebooks``:
    their names) is replaced by :data:`bpgrade.submission.PLACEHOLDER`, an empty
    notebook, as :class:`~bpgrade.nbgrader_plugins.SafeNotebookExporter` replaces it in
    a serial autograde; every notebook is, when the folder itself is refused."""
    submission = read_submission(folder)
    files = {rel: data for rel, data in submission.files.items()
             if data is not None and not _ignored(rel)}
    for refusal in submission.refused:
        names = notebooks if refusal.path == "." else [refusal.path]
        for name in names:
            if name in notebooks:
                files[name] = PLACEHOLDER.encode()
    return files, submission.refused


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (see :func:`_tree`) under ``folder``; refuse paths that leave it."""
    folder = folder.resolve()
    for rel, data in files.items():
        path = (folder / rel).resolve()
        if folder not in path.parents:
            raise GradingError(f"refused a file outside its folder: {rel!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def course_files(root: Path, assignment: str) -> dict[str, bytes]:
    """What every task of ``assignment`` carries of the course: its grading configuration
    (``nbgrader_config.py``, ``nbgrader_sandbox.py``) and ``solutions/<assignment>/``."""
    source = root / "solutions" / assignment
    if not source.is_dir():
        raise GradingError(f"no source folder {source} (the instructor's notebooks)")
    files = {name: (root / name).read_bytes() for name in CONFIG_FILES
             if (root / name).is_file()}
    files.update({f"solutions/{assignment}/{rel}": data for rel, data in _tree(source).items()})
    return files


def make_task(root: Path, assignment: str, student: str, course: dict[str, bytes],
              timeout: float = STUDENT_TIMEOUT, fast: bool = True,
              zygote: bool = True) -> dict:
    """The task of one student: everything a worker needs, and no path of the course.
    ``fast``: graded on the worker's fast path (see :func:`nbgrader_reuse`); False is
    the path before issue #24, kept for the benchmark's side-by-side run. ``zygote``
    (with ``fast`` only): its kernel is forked from the worker's zygote
    (:mod:`bpgrade.zygote`), not started cold."""
    key = hashlib.sha256()
    for rel, data in sorted(course.items()):
        key.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    notebooks = sorted(Path(rel).name for rel in course
                       if rel.startswith(f"solutions/{assignment}/") and rel.count("/") == 2
                       and rel.endswith(".ipynb"))
    files, refused = submission_files(root / "submitted" / student / assignment, notebooks)
    return {"assignment": assignment, "student": student, "course": course,
            "course_key": key.hexdigest()[:16], "timeout": float(timeout),
            "submission": files, "refused": [asdict(r) for r in refused], "fast": fast,
            "zygote": fast and zygote}


_PRIVATE: dict[str, tuple[Path, object]] = {}  # worker side: course key -> (folder, app)
_TASK_LOCK = threading.Lock()  # one grading at a time in a worker process (it chdirs)


def grade_task(task: dict) -> dict:
    """Run on a Dask worker: grade one student in a private course; return the result.

    The result holds the :class:`Outcome` (as a dict), nbgrader's log, the files of
    the autograded folder (bytes; empty unless graded), the submission's timestamp as
    nbgrader read it, the auto scores ``{notebook: {grade_id: score}}``, and where it
    ran (host, process, private course folder, working directory).
    """
    student = task["student"]
    if os.environ.get(TEST_KILL_ENV) == student:  # tests only: a worker-killing submission
        os.kill(os.getpid(), signal.SIGKILL)
    fast = bool(task.get("fast"))
    with _TASK_LOCK, _watchdog(task["timeout"], student, *_current_task()), \
            nbgrader_reuse(_WORKER_ENGINES, fast=fast, scratch=_SCRATCH):
        course, app = _private_course(task)
        return _grade_in(course, app, task)


_WORKER_ENGINES: dict = {}  # worker side: the SQLAlchemy engines of its private gradebooks
_SCRATCH: set[str] = set()  # worker side: the URLs of its private (throw-away) gradebooks
_VALIDATORS: dict = {}  # (validator class, schema as JSON) -> checked validator


@contextlib.contextmanager
def nbgrader_reuse(engines: dict, keep: bool = True, fast: bool = False,
                   scratch: Collection[str] = ()):
    """Within the block, costs nbgrader pays again and again are paid once per process.

    * nbgrader's ``Gradebook`` creates a SQLAlchemy engine per instance (about 12 per
      student on a worker, 4 on the client), so every query is compiled anew (the
      compiled-statement cache belongs to the engine) and every engine's first
      connection sets up its dialect: here ``nbgrader.api.create_engine`` returns one
      engine per database URL, kept in ``engines`` (``Gradebook.close`` only disposes
      of its connections; the engine and its cache live on).
    * nbgrader checks each grade cell's metadata with ``jsonschema.validate``, which
      checks the *schema* itself first, every time (about 28 times per student): here
      the validator of a schema is built and checked once. The same errors are raised
      (``best_match`` of the same validator's errors).

    With ``fast`` (the default of :func:`grade_class`; ``--classic`` turns it off, for
    the benchmark's side-by-side run), two more:

    * nbgrader's ``Gradebook()`` lists the database's tables, runs ``create_all`` (a
      query per table) and checks the course, every time it is opened (about 16 times
      per student on a worker, 5 on the client): here that is done the first time a
      gradebook is opened on an engine for a course (:data:`_CHECKED`); later
      ``Gradebook()`` on the same engine and course only open a session.
    * a gradebook whose URL is in ``scratch`` (a worker's private, throw-away gradebook,
      rebuilt from nothing by a worker that restarts) is written without waiting for
      the disk (SQLite ``synchronous=OFF``, the rollback journal in memory). The
      course's own gradebook is never in ``scratch``: its writes keep SQLite's
      crash safety, which the client's journal relies on.
    * what the grader derives from a cell's source alone or from the instructor's
      notebook is kept for the next student (:mod:`bpgrade.memo`); without ``fast``
      it is derived anew each time.

    Nothing else changes: every gradebook, database and check is the same. Unless
    ``keep``, the engines are disposed of and forgotten at the end of the block.
    """
    import jsonschema
    import nbgrader.api as api

    real_engine, real_validate = api.create_engine, jsonschema.validate
    real_init = api.Gradebook.__init__

    def create_engine(url, *args, **kwargs):
        key = (str(url), args, tuple(sorted(kwargs.items())))
        if key not in engines:
            engines[key] = real_engine(url, *args, **kwargs)
            if fast and str(url) in scratch:
                _unsynchronised(engines[key])
        return engines[key]

    def gradebook_init(self, db_url, course_id="default_course", authenticator=None):
        engine = create_engine(db_url, echo=False, future=True)
        checked = _CHECKED.setdefault(engine, set())
        if course_id not in checked:  # the first open: nbgrader's own checks, all of them
            real_init(self, db_url, course_id, authenticator)
            checked.add(course_id)
            return
        from sqlalchemy.orm import scoped_session, sessionmaker

        self.engine = engine
        self.db = scoped_session(sessionmaker(autoflush=True, bind=engine, future=True))
        self.course_id, self.authenticator = course_id, authenticator

    def gradebook_init_shared(self, db_url, course_id="default_course", authenticator=None):
        gradebook_init(self, db_url, course_id, authenticator)
        shared = _SHARED.get(str(db_url))
        if shared is not None:  # inside one_transaction: its session, not one of our own
            self.db.remove()
            self.db = shared

    def validate(instance, schema, cls=None, *args, **kwargs):
        if args or kwargs or not isinstance(schema, dict):
            return real_validate(instance, schema, cls, *args, **kwargs)
        try:
            key = (cls, json.dumps(schema, sort_keys=True))
        except (TypeError, ValueError):
            return real_validate(instance, schema, cls)
        validator = _VALIDATORS.get(key)
        if validator is None:
            kind = cls or jsonschema.validators.validator_for(schema)
            kind.check_schema(schema)
            validator = _VALIDATORS[key] = kind(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error
        return None

    api.create_engine, jsonschema.validate = create_engine, validate
    if fast:
        api.Gradebook.__init__ = gradebook_init_shared
    kept, memo.ON = memo.ON, fast
    try:
        yield
    finally:
        api.create_engine, jsonschema.validate = real_engine, real_validate
        api.Gradebook.__init__ = real_init
        memo.ON = kept
        if not keep:
            for engine in engines.values():
                _CHECKED.pop(engine, None)
                engine.dispose()
            engines.clear()


# engine -> the courses whose gradebook was opened (and checked) on it by nbgrader_reuse
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SHARED: dict[str, object] = {}  # gradebook URL -> the session of one_transaction


class _OneSession:
    """What ``Gradebook.db`` is inside :func:`one_transaction`: the block's session, whose
    ``commit`` only flushes (the block commits once, at its end) and which no
    ``Gradebook.close`` removes."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        return getattr(self._session, name)

    def __call__(self):
        return self._session

    def commit(self) -> None:
        self._session.flush()

    def remove(self) -> None:
        pass

    def close(self) -> None:
        pass


@contextlib.contextmanager
def one_transaction(db_url: str):
    """Every nbgrader ``Gradebook`` opened on ``db_url`` in the block writes in one
    transaction, committed when the block ends and rolled back if it raises: one
    student's grades are saved all or nothing, with one commit (one ``fsync`` of a
    SQLite gradebook) instead of some twenty. Needs :func:`nbgrader_reuse` with ``fast``
    around it (elsewhere each ``Gradebook`` keeps its own session, as in nbgrader)."""
    import nbgrader.api as api
    from sqlalchemy.orm import Session

    engine = api.create_engine(db_url, echo=False, future=True)
    session = Session(bind=engine, autoflush=True, future=True)
    _SHARED[str(db_url)] = _OneSession(session)
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _SHARED.pop(str(db_url), None)
        session.close()


def _unsynchronised(engine) -> None:
    """SQLite on ``engine`` without ``fsync`` and with its rollback journal in memory
    (for a throw-away gradebook only: see :func:`nbgrader_reuse`)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()


def _current_task() -> tuple[object, str | None]:
    """``(Dask worker, key of the running task)`` in a Dask task, else ``(None, None)``."""
    with contextlib.suppress(Exception):
        from distributed import get_worker

        worker = get_worker()
        return worker, str(worker.get_current_task())
    return None, None


@contextlib.contextmanager
def _watchdog(seconds: float, student: str, worker=None, key: str | None = None):
    """End this worker process if the task runs longer than ``seconds`` (Dask then
    treats it as a dead worker: the task is retried, then ``KilledWorker``). Before
    it ends, it logs the Dask event :data:`TIMEOUT_TOPIC` with the task's key, so
    that the client can say why the task failed (see :func:`_outcome`)."""
    def expire():
        print(f"bpgrade: {student} not graded within {seconds:g} s: ending this worker",
              file=sys.stderr, flush=True)
        if worker is not None:
            with contextlib.suppress(Exception):
                worker.log_event(TIMEOUT_TOPIC, {"key": key, "student": student,
                                                 "seconds": seconds})
                time.sleep(1.0)  # the event goes out with the worker's next batch (2 ms)
        os._exit(75)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _worker_folder() -> Path:
    """Where this worker keeps its private courses: the Dask worker's local directory
    (Dask removes those of dead workers), else a temporary folder."""
    with contextlib.suppress(Exception):
        from distributed import get_worker

        return Path(get_worker().local_directory)
    return Path(tempfile.gettempdir())


def _private_course(task: dict) -> tuple[Path, object]:
    """This worker's private course for the task's assignment and configuration: built
    once per worker process (``nbgrader generate_assignment`` into a private SQLite
    gradebook), with nbgrader's autograde application loaded in it."""
    fast, zygote = bool(task.get("fast")), bool(task.get("zygote"))
    key = (f"{task['assignment']}-{task['course_key']}" + ("-fast" if fast else "")
           + ("-zygote" if zygote else ""))
    if key not in _PRIVATE:
        folder = Path(tempfile.mkdtemp(prefix=f"bpgrade-{key}-", dir=_worker_folder()))
        _write_tree(folder, task["course"])
        db_url = f"sqlite:///{folder / 'gradebook.db'}"
        if fast:
            _SCRATCH.add(db_url)
        private = [f"--db={db_url}", f"--CourseDirectory.root={folder}"]
        _new_gradebook(db_url)
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            _generate_assignment(task["assignment"], private)
            app = _nbgrader_app(task["assignment"], private + (
                [] if fast else ["--SandboxedExecute.classic_checks=True"]) + (
                ["--SandboxedExecute.zygote=True"] if zygote else []))
        finally:
            os.chdir(cwd)
        _PRIVATE[key] = (folder, app)
    return _PRIVATE[key]


def _grade_in(course: Path, app, task: dict) -> dict:
    from nbgrader.api import Gradebook

    assignment, student = task["assignment"], task["student"]
    for kind in ("submitted", "autograded"):
        shutil.rmtree(course / kind / student, ignore_errors=True)
    _write_tree(course / "submitted" / student / assignment, task["submission"])
    refused = [Refused(**r) for r in task.get("refused", [])]
    write_record(course, assignment, student, refused)  # for GuardFiles: the notes
    cwd = os.getcwd()
    os.chdir(course)
    try:
        outcome, log = grade_one(app, assignment, student)
    finally:
        os.chdir(cwd)
        write_record(course, assignment, student, [])
    result = {"outcome": asdict(outcome), "log": log, "files": {}, "timestamp": None,
              "scores": {}, "where": {"host": os.uname().nodename, "pid": os.getpid(),
                                      "course": str(course), "cwd": cwd}}
    if outcome.status == "graded":
        result["files"] = _tree(_autograded(app, assignment, student))
        with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gb:
            submission = gb.find_submission(assignment, student)
            stamp = submission.timestamp
            result["timestamp"] = stamp.isoformat() if stamp else None
            result["scores"] = {nb.name: {g.name: float(g.auto_score or 0) for g in nb.grades}
                                for nb in submission.notebooks}
    for kind in ("submitted", "autograded"):
        shutil.rmtree(course / kind / student, ignore_errors=True)
    return result


def _new_gradebook(db_url: str) -> None:
    """Create an empty gradebook at ``db_url`` as nbgrader's ``Gradebook`` does (its
    tables and the ``alembic_version`` of nbgrader's newest schema), but read that
    version in this process: nbgrader runs the ``alembic`` program for it, a Python
    start-up that costs a worker about a second of CPU."""
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from nbgrader.dbutil import ALEMBIC_DIR
    from sqlalchemy import create_engine, text

    head = ScriptDirectory(ALEMBIC_DIR).get_current_head()
    engine = create_engine(db_url, future=True)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as db:
            db.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            db.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})
    finally:
        engine.dispose()


def _generate_assignment(assignment: str, argv: list[str]) -> None:
    """``nbgrader generate_assignment ASSIGNMENT --force ARGV`` in this process, in the
    current folder: the assignment into the private gradebook (and a release nobody
    reads). Raises if nbgrader fails."""
    from nbgrader.apps.generateassignmentapp import GenerateAssignmentApp

    app = GenerateAssignmentApp()
    with tools_on_path():
        app.initialize([assignment, "--force", *argv])
        for handler in list(app.log.handlers):
            app.log.removeHandler(handler)
        app.log.propagate = False
        app.start()


def _nbgrader_app(assignment: str, argv: list[str]):
    """nbgrader's autograde application, configured as ``nbgrader autograde --force``
    in the current folder with the extra ``argv``."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    app = AutogradeApp()
    with tools_on_path():
        app.initialize([assignment, "--force", "--Autograde.create_student=True", *argv])
    app.coursedir.assignment_id = assignment
    for handler in list(app.log.handlers):  # its log goes to the result, not the worker's stderr
        app.log.removeHandler(handler)
    app.log.propagate = False
    return app


def grade_one(app, assignment: str, student: str) -> tuple[Outcome, str]:
    """Autograde one student in this process, as ``nbgrader autograde --student`` would;
    return the outcome and nbgrader's log of it.

    *Graded* when nbgrader's run returned without raising and :func:`_check_graded`
    finds its result; the ERROR lines logged on the way are the outcome's notes.
    *Failed* when nbgrader raised (it then removes the autograded notebook itself).
    """
    from nbgrader.converters import Autograde

    start, before = time.monotonic(), _stamps(_autograded(app, assignment, student))
    with _captured_log(app.log) as (records, text):
        app.coursedir.student_id = student
        reason = None
        try:
            with tools_on_path():
                Autograde(coursedir=app.coursedir, parent=app).start()
        except (Exception, SystemExit) as exc:  # one student's failure is reported, not raised
            failed = [r for r in records if r.levelno >= logging.ERROR]
            error = logging.makeLogRecord({"msg": f"{type(exc).__name__}: {exc}"})
            reason = _reason(failed or [error])
        else:
            try:
                score, max_score, notebooks = _check_graded(app, assignment, student, before)
            except Exception as exc:  # nbgrader returned, but left no grades behind
                reason = f"not graded: {type(exc).__name__}: {exc}"
                app.log.error(reason)
    seconds = time.monotonic() - start
    if reason is not None:
        return Outcome(student, "failed", seconds, reason=reason), text.getvalue()
    return (Outcome(student, "graded", seconds, score, max_score, reason=_notes(records),
                    repairs=_metadata_lines(notebooks, REPAIRS_KEY),
                    notes=_metadata_lines(notebooks, NOTES_KEY, same=True)),
            text.getvalue())


@contextlib.contextmanager
def _captured_log(log: logging.Logger):
    """Collect ``log``'s records into a list, and their text into a StringIO."""
    records: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = records.append
    text = io.StringIO()
    to_text = logging.StreamHandler(text)
    to_text.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.addHandler(keep)
    log.addHandler(to_text)
    try:
        yield records, text
    finally:
        log.removeHandler(keep)
        log.removeHandler(to_text)




def _reason(records: list[logging.LogRecord]) -> str:
    """The most telling line of nbgrader's error messages: the last line of a traceback."""
    def lines(record: logging.LogRecord) -> list[str]:
        return [ln.strip() for ln in record.getMessage().splitlines()
                if ln.strip() and not ln.strip().startswith("(Background on this error")]

    tracebacks = [lines(r) for r in records if "Traceback" in r.getMessage()]
    if tracebacks and tracebacks[-1]:
        return tracebacks[-1][-1]
    first = [ln for r in records for ln in lines(r)]
    return first[0] if first else "nbgrader reported an error"


def _autograded(app, assignment: str, student: str) -> Path:
    """The folder of ``student``'s autograded notebooks, as nbgrader lays it out."""
    return Path(app.coursedir.format_path(app.coursedir.autograded_directory, student,
                                          assignment))


def _stamps(folder: Path) -> dict[Path, tuple[int, int, int]]:
    """``{notebook: (inode, mtime in ns, size)}`` of the ``.ipynb`` files in ``folder``."""
    stamps = {}
    for path in folder.glob("*.ipynb"):
        with contextlib.suppress(OSError):
            st = path.stat()
            stamps[path] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return stamps


def _check_graded(app, assignment: str, student: str,
                  before: dict[Path, tuple[int, int, int]]
                  ) -> tuple[float, float, list[Path]]:
    """``(score, max_score, autograded notebooks)`` of what nbgrader just graded.

    Raises if the gradebook has no submission of ``student``, or if a notebook of
    the assignment has no submitted notebook in it, or no autograded file other
    than the one that was there ``before`` (see :func:`_stamps`).
    """
    from nbgrader.api import Gradebook

    folder = _autograded(app, assignment, student)
    with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        names = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        for name in names:
            gb.find_submission_notebook(name, assignment, student)
        score, max_score = float(submission.score), float(submission.max_score)
    notebooks = [folder / f"{name}.ipynb" for name in names]
    after = _stamps(folder)
    for path in notebooks:
        if path not in after or after[path] == before.get(path):
            raise GradingError(f"nbgrader wrote no autograded notebook {path}")
    return score, max_score, notebooks


_TIMEOUT = re.compile(r"Timeout waiting for execute reply \((\d+)s\)")
_NOISE = ("Interrupting kernel",)  # nbclient's ERROR line after every timeout


def _notes(records: list[logging.LogRecord]) -> str:
    """Why a graded submission lost cells, in a few words, from nbgrader's log.

    Its ERROR lines (nbclient's timeouts, a dead kernel, anything else) and the
    sandbox's "kernel died in cell N: <why>" warning; "" when there are none.
    """
    timeouts: list[str] = []
    died: list[str] = []
    other: list[str] = []
    dead_kernel = False
    for record in records:
        message = record.getMessage().strip()
        first = message.splitlines()[0].strip() if message else ""
        if record.levelno == logging.WARNING and first.lower().startswith("kernel died"):
            died.append(first)
        elif record.levelno < logging.ERROR or not first or first.startswith(_NOISE):
            continue
        elif match := _TIMEOUT.search(first):
            timeouts.append(match.group(1))
        elif first.startswith("Kernel died"):
            dead_kernel = True
        elif first[:160] not in other:
            other.append(first[:160])
    notes = []
    if timeouts:
        limits = sorted(set(timeouts), key=int)
        limit = ", ".join(f"{t} s" for t in limits)
        each = " each" if len(timeouts) > 1 and len(limits) == 1 else ""
        cells = "a cell" if len(timeouts) == 1 else f"{len(timeouts)} cells"
        notes.append(f"{cells} timed out ({limit}{each})")
    notes += died or (["the kernel died"] if dead_kernel else [])
    return "; ".join(notes + other)


def _metadata_lines(notebooks: list[Path], key: str, same: bool = False) -> list[str]:
    """The list of lines in the metadata ``key`` of the autograded notebooks
    (``bpgrade_repairs``: what was repaired before grading; ``bpgrade_notes``: the
    student's notes), notebook by notebook (``same``: each line once, unprefixed:
    notes about the submission's files are in every notebook); [] when none has any."""
    lines: list[str] = []
    for path in notebooks:
        try:
            metadata = json.loads(path.read_text()).get("metadata", {})
        except (OSError, ValueError, AttributeError):
            continue
        found = metadata.get(key) if isinstance(metadata, dict) else None
        if isinstance(found, str):
            found = [found]
        if isinstance(found, list):
            prefix = f"{path.stem}: " if len(notebooks) > 1 and not same else ""
            lines += [prefix + str(r) for r in found if not same or str(r) not in lines]
    return lines



# ----------------------------------------------------------------------- the client


SAVE_ATTEMPTS = 3  # a student's grades, saved again after a concurrent insert collided


class Importer:
    """Writes a worker's result into the course: ``autograded/`` and the gradebook."""

    def __init__(self, root: Path, assignment: str, db_url: str, course_id: str):
        from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

        self.root, self.assignment, self.db_url, self.course_id = (root, assignment, db_url,
                                                                    course_id)
        self.config = None
        with contextlib.suppress(ConfigFileNotFound):
            self.config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        # The fast path: one transaction per student (one_transaction), inside
        # nbgrader_reuse(fast=True); the classic path commits as nbgrader does.
        self.one_transaction = False

    def folder(self, student: str) -> Path:
        return self.root / "autograded" / student / self.assignment

    def save(self, student: str, result: dict) -> None:
        """Replace ``autograded/<student>/<assignment>/`` with the returned files and save
        the grades with nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties``;
        raise :class:`GradingError` if the gradebook then disagrees with the worker
        (with :attr:`one_transaction`, nothing of that student's is then saved)."""
        from nbgrader.utils import parse_utc

        folder = self.folder(student)
        if folder.exists():
            shutil.rmtree(folder)
        _write_tree(folder, result["files"])
        from nbgrader.api import InvalidEntry

        stamp = {"timestamp": parse_utc(result["timestamp"])} if result["timestamp"] else {}
        for attempt in range(SAVE_ATTEMPTS):
            transaction = (one_transaction(self.db_url) if self.one_transaction
                           else contextlib.nullcontext())
            try:
                with transaction:
                    self._save_grades(student, result, folder, stamp)
                return
            except InvalidEntry:
                # Another grader of the same gradebook (another assignment's, started
                # together) added this student between nbgrader's look-up and its insert:
                # the insert failed and was rolled back; the look-up now finds the student.
                if attempt == SAVE_ATTEMPTS - 1:
                    raise

    def _save_grades(self, student: str, result: dict, folder: Path, stamp: dict) -> None:
        import nbformat
        from nbgrader.api import Gradebook
        from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades

        with tools_on_path(), Gradebook(self.db_url, self.course_id) as gb:
            gb.update_or_create_student(student)
            gb.update_or_create_submission(self.assignment, student, **stamp)
            names = [nb.name for nb in gb.find_assignment(self.assignment).notebooks]
            for name in names:  # a notebook not handed in scores zero, as in nbgrader
                if not (folder / f"{name}.ipynb").is_file():
                    notebook = gb.find_submission_notebook(name, self.assignment, student)
                    for grade in notebook.grades:
                        grade.auto_score, grade.needs_manual_grade = 0, False
                    gb.db.commit()
        kwargs = {"config": self.config} if self.config is not None else {}
        for name in names:
            path = folder / f"{name}.ipynb"
            if not path.is_file():
                continue
            nb = nbformat.read(path, as_version=4)
            resources = {"nbgrader": {"notebook": name, "assignment": self.assignment,
                                      "student": student, "db_url": self.db_url}}
            for preprocessor in (SaveAutoGrades(**kwargs), AssignLatePenalties(**kwargs)):
                nb, resources = preprocessor.preprocess(nb, resources)
        with Gradebook(self.db_url, self.course_id) as gb:
            saved = {nb.name: {g.name: float(g.auto_score or 0) for g in nb.grades}
                     for nb in gb.find_submission(self.assignment, student).notebooks}
        if saved != result["scores"]:
            raise GradingError(f"the gradebook holds {saved}, the worker graded "
                               f"{result['scores']}")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, jobs: int | None = None):
    """A Dask client: of the cluster at ``scheduler``, else of a new ``LocalCluster``
    of ``jobs`` worker processes (one thread each) on this machine, closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout=60) as client:
            yield client
        return
    settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        with LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1,
                          processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                          memory_limit=0, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client


def _workers(client) -> int:
    return len(client.scheduler_info(n_workers=-1).get("workers", {}))


def _dashboard(client) -> str | None:
    """Dask's dashboard link, when the scheduler serves a dashboard (it needs bokeh)."""
    with contextlib.suppress(Exception):
        if "dashboard" in client.scheduler_info().get("services", {}) and client.run_on_scheduler(
                _has_bokeh):
            return client.dashboard_link
    return None


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def grade_class(root: Path, assignment: str, jobs: int | None = None,
                db_url: str | None = None, force: bool = False,
                scheduler: str | None = None, timeout: float = STUDENT_TIMEOUT,
                progress: Callable[[str], None] = print, classic: bool = False,
                zygote: bool = True) -> Summary:
    """Autograde every submission of ``assignment`` in the course at ``root`` on Dask.

    Parameters
    ----------
    root : Path
        The course root (the folder of ``nbgrader_config.py``).
    assignment : str
        The assignment, e.g. ``"ex04_backward"``.
    jobs : int, optional
        Worker processes of the LocalCluster (default: one per CPU); ignored with
        ``scheduler``.
    db_url : str, optional
        The gradebook; default the course's (SQLite ``gradebook.db``).
    force : bool
        Regrade students that a previous run finished.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).
    timeout : float
        Seconds one student's task may run before its worker process is ended.
    progress : callable
        Receives the header, then one line per finished student.
    classic : bool
        Grade on the path before issue #24 (no fast path: see :func:`nbgrader_reuse`),
        for ``python -m bench grading_scale``'s side-by-side run. Grades are the same.
    zygote : bool
        On the fast path, fork each kernel from its worker's zygote
        (:mod:`bpgrade.zygote`); ``False`` (``--cold-kernels``) starts every kernel
        cold, for the benchmark. The sandbox and the grades are the same.

    Returns
    -------
    Summary
        One :class:`Outcome` per student.
    """
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, not {jobs}")
    start = time.monotonic()
    root = root.resolve()
    students = submitted_students(root, assignment)
    if not students:
        raise GradingError(f"no submission in {root / 'submitted'}/*/{assignment}/")
    default_url, course_id = course_settings(root)
    url = with_busy_timeout(db_url or default_url)
    try:
        in_gradebook = graded_in_gradebook(url, course_id, assignment)
    except GradingError:
        raise
    except Exception as exc:
        raise GradingError(f"cannot open the gradebook {redacted(url)}: "
                           f"{type(exc).__name__}: {exc}") from None
    journal = Journal(root, assignment, url)
    summary = Summary(assignment, jobs)
    importer = Importer(root, assignment, url, course_id)
    importer.one_transaction = not classic
    if not classic:
        compile_packages()
    todo = [s for s in students if force or not journal.finished(s, in_gradebook)]
    for s in sorted(set(students) - set(todo)):
        summary.outcomes.append(Outcome(s, "skipped", reason="graded by an earlier run"))
    header = (f"{assignment}: {len(students)} submissions, {len(todo)} to grade, "
              f"{len(students) - len(todo)} already graded")
    if not todo:
        progress(f"{header}; gradebook {redacted(url)}")
    else:
        _grade_on_dask(root, assignment, todo, journal, importer, summary, scheduler, timeout,
                       header, url, progress, not classic, zygote)
    summary.seconds = time.monotonic() - start
    return summary


def compile_packages() -> list[Path]:
    """Write the bytecode of ``bpgrade`` and ``bplib`` where it is missing or stale (in
    their ``__pycache__`` folders, as ``pip`` does when it installs a wheel); return the
    folders compiled. Every sandboxed kernel imports both before any cell and cannot
    write bytecode (its packages are read-only; ``PYTHONDONTWRITEBYTECODE``), so in a
    source checkout that has none each kernel compiled them anew: about 0.04 s of CPU
    per student, and 0.01 s more in the launcher. Returns the folders whose bytecode is
    now up to date; a folder that cannot be written (a read-only installation) is left
    as it is."""
    import compileall

    from .kernel import package_dirs

    done = []
    for folder in package_dirs():
        with contextlib.suppress(OSError), contextlib.redirect_stdout(io.StringIO()):
            if compileall.compile_dir(str(folder), quiet=2, workers=1):
                done.append(folder)
    return done


def _grade_on_dask(root, assignment, todo, journal, importer, summary, scheduler, timeout,
                   header, url, progress, fast=True, zygote=True) -> None:
    """Send the students of ``todo`` to Dask, a window of them at a time (at least
    :data:`WINDOW`, or twice the workers: the scheduler always has work queued, and the
    client never holds every submission of a large class in memory), and write each
    result as it comes back."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    course = course_files(root, assignment)
    with dask_client(scheduler, summary.jobs) as client, \
            nbgrader_reuse({}, keep=False, fast=fast):
        summary.jobs = _workers(client) or summary.jobs
        where = scheduler or "a LocalCluster on this machine"
        progress(f"{header}; {summary.jobs} Dask workers ({where}); gradebook {redacted(url)}")
        if link := _dashboard(client):
            progress(f"Dask dashboard: {link}")
        waiting, running, prints, students = list(reversed(todo)), as_completed(), {}, {}

        def submit_more() -> None:
            window = max(WINDOW, 2 * _workers(client))
            while waiting and running.count() < window:
                student = waiting.pop()
                journal.forget(student)
                prints[student] = journal.submission(student)
                task = make_task(root, assignment, student, course, timeout, fast, zygote)
                key = f"autograde-{assignment}-{student}-{os.urandom(4).hex()}"
                future = client.submit(grade_task, task, pure=False, key=key)
                students[future.key] = student
                running.add(future)

        submit_more()
        width = max(len(s) for s in todo)
        started, done, failed = time.monotonic(), 0, 0
        for future in running:
            student = students.pop(future.key)
            outcome = _outcome(future, student, timeout, KilledWorker, client)
            future.release()
            if outcome.status == "graded":
                try:
                    importer.save(student, outcome.result)
                except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                    outcome = Outcome(student, "failed", outcome.seconds,
                                      reason=f"not saved: {type(exc).__name__}: {exc}")
                else:
                    journal.record(student, prints[student], outcome)
            if outcome.status == "failed":
                journal.record_failure(student, prints[student], outcome)
            if getattr(outcome, "result", None) is not None:
                journal.log(student).write_text(outcome.result.get("log", ""))
                del outcome.result
            summary.outcomes.append(outcome)
            done += outcome.status == "graded"
            failed += outcome.status == "failed"
            rate = 60.0 * (done + failed) / max(time.monotonic() - started, 1e-9)
            progress(_progress_line(outcome, done + failed, len(todo), width, failed, rate))
            submit_more()


def _timed_out(client, key: str) -> int:
    """How many times the task ``key`` ran over its time limit (the watchdog's events)."""
    try:
        events = client.get_events(TIMEOUT_TOPIC)
    except Exception:  # noqa: BLE001 - no events: the reason stays the general one
        return 0
    return sum(isinstance(msg, dict) and msg.get("key") == str(key) for _, msg in events)


def _outcome(future, student: str, timeout: float, killed_worker: type,
             client=None) -> Outcome:
    """The :class:`Outcome` of one finished future; a graded one keeps the worker's
    result in its ``result`` attribute (for the client's import)."""
    try:
        result = future.result()
    except killed_worker as exc:
        if client is not None and (times := _timed_out(client, future.key)):
            tries = "once" if times == 1 else f"{times} times"
            return Outcome(student, "failed", reason=(
                f"took longer than the {timeout:g} s limit per student (the watchdog "
                f"ended its worker {tries}): {_describe(exc)}"))
        return Outcome(student, "failed", reason=(
            f"its grading killed the worker every time it was tried (a crash, the "
            f"out-of-memory killer, or over the {timeout:g} s limit): {_describe(exc)}"))
    except Exception as exc:  # noqa: BLE001 - the task raised: reported, not raised
        return Outcome(student, "failed", reason=_describe(exc))
    outcome = Outcome(**result["outcome"])
    outcome.result = result
    return outcome


def _describe(exc: BaseException, limit: int = 300) -> str:
    """``"Type: message"`` of an exception, even one whose ``str()`` fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - e.g. a KilledWorker whose worker is a plain string
        text = ", ".join(map(str, exc.args))
    return f"{type(exc).__name__}: {text[:limit]}"


def _progress_line(o: Outcome, done: int, total: int, width: int, failed: int = 0,
                   rate: float | None = None) -> str:
    """``[done/total] status student score seconds  notes`` with, before the student,
    the run's counts: done, failed, left, and students per minute so far."""
    score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
    counts = f"[{done:>{len(str(total))}}/{total}"
    counts += f" failed {failed} left {total - done}"
    counts += f" {rate:5.1f}/min]" if rate is not None else "]"
    text = f"{counts} {o.status:<7} {o.student:<{width}} {score:>9} {o.seconds:6.1f} s"
    notes = [o.reason] if o.reason and o.status != "skipped" else []
    if o.repairs:
        notes.append(f"repaired ({len(o.repairs)}): {'; '.join(o.repairs)}")
    if o.notes:
        notes.append(f"notes for the student ({len(o.notes)}, in the feedback)")
    return text + "".join(f"  {n}" for n in notes)


def summary_table(summary: Summary) -> str:
    """The run in a few lines: graded, failed, repaired, skipped, time, submissions
    per minute; then the notes of graded students, the repairs and the failures."""
    rows = [("graded", summary.count("graded")), ("failed", summary.count("failed")),
            ("repaired", summary.repaired), ("skipped", summary.count("skipped")),
            ("workers", summary.jobs), ("wall time", f"{summary.seconds:.1f} s"),
            ("per minute", f"{summary.per_minute:.1f} submissions")]
    lines = [f"autograde {summary.assignment}", "-" * 32]
    lines += [f"{name:<14}{value!s:>18}" for name, value in rows]
    graded = [o for o in summary.outcomes if o.status == "graded"]
    noted = [o for o in graded if o.reason]
    if noted:
        lines += ["", "graded, with notes (see .grading/<assignment>/<student>.log):"]
        lines += [f"  {o.student}: {o.reason}" for o in noted]
    repaired = [o for o in graded if o.repairs]
    if repaired:
        lines += ["", "repaired before grading:"]
        lines += [f"  {o.student}: {'; '.join(o.repairs)}" for o in repaired]
    with_notes = [o for o in graded if o.notes]
    if with_notes:
        lines += ["", "notes for the student (refused files, cleaned output ...; in the "
                  "feedback):"]
        lines += [f"  {o.student}: {n}" for o in with_notes for n in o.notes]
    failed = [o for o in summary.outcomes if o.status == "failed"]
    if failed:
        lines += ["", "failed submissions (see .grading/<assignment>/<student>.log):"]
        lines += [f"  {o.student}: {o.reason}" for o in failed]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bpgrade",
                                     description="Crash-safe nbgrader autograde on Dask.")
    sub = parser.add_subparsers(dest="command", required=True)
    auto = sub.add_parser("autograde", help="autograde every submission of an assignment")
    auto.add_argument("assignment", nargs="+", help="one or more, graded one after the other: "
                      "an exercise and its translation, ex04_backward ex04_backward_zh, grade "
                      "a class that works in both languages in one run")
    auto.add_argument("--scheduler", help="a running Dask scheduler, e.g. tcp://host:8786 "
                      "(default: a LocalCluster on this machine)")
    auto.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                      help="LocalCluster worker processes (default: the number of CPUs)")
    auto.add_argument("--db-url", help="gradebook URL (default: the course's SQLite file)")
    auto.add_argument("--root", type=Path, default=Path.cwd(),
                      help="course root (default: the current folder)")
    auto.add_argument("--force", action="store_true", help="regrade finished students too")
    auto.add_argument("--timeout", type=float, default=STUDENT_TIMEOUT,
                      help="seconds per student before its worker process is ended")
    auto.add_argument("--classic", action="store_true",
                      help="grade on the path before issue #24 (for the benchmark's "
                      "side-by-side run; the grades are the same)")
    auto.add_argument("--cold-kernels", action="store_true",
                      help="start every kernel cold instead of forking it from the worker's "
                      "zygote (for the benchmark; the same sandbox and grades)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    status = 0
    for assignment in args.assignment:
        try:
            summary = grade_class(args.root, assignment, args.jobs, args.db_url, args.force,
                                  args.scheduler, args.timeout, lambda s: print(s, flush=True),
                                  args.classic, not args.cold_kernels)
        except GradingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted: run the same command again to grade the students not "
                  "finished", file=sys.stderr)
            return 130
        print("\n" + summary_table(summary))
        status = max(status, 1 if summary.count("failed") else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
