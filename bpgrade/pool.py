"""Parallel, crash-safe autograding of a whole class with nbgrader.

    python -m bpgrade autograde ex04_backward --jobs 4 [--db-url URL] [--force]

run in the course root (the folder of ``nbgrader_config.py``) grades every
``submitted/<student>/<assignment>/`` with nbgrader's own ``Autograde`` converter,
the code path of ``nbgrader autograde <assignment> --student <id> --force``, so the
grades are those of a serial ``nbgrader autograde <assignment>`` and every setting
of ``nbgrader_config.py`` (the sandbox of ``nbgrader_sandbox.py`` included) applies.

How it works
------------
* **Workers.** ``--jobs`` long-lived worker processes (``python -m bpgrade
  _worker``) each load nbgrader and the course's config once, then grade the
  students the parent sends them one at a time (a JSON line in, a JSON line out).
  One ``nbgrader`` process per student would pay nbgrader's start-up (about 1.7 s
  of the 2.6 s a single-student call costs here) for every submission. The
  workers start first; the first one also reads the gradebook (its URL, whether
  the assignment is in it, who is graded) and tells the parent, which never loads
  nbgrader itself, so the start-ups overlap.
* **Graded means graded.** A student is *graded* when nbgrader graded the
  submission: its ``Autograde`` run returned without raising, the gradebook holds
  the submission and the autograded notebooks exist, freshly written. The ERROR
  lines that nbclient logs on the way (a cell that timed out, an interrupted or
  dead kernel) do not make it fail: nbgrader gave those cells zero, as a serial
  ``nbgrader autograde`` does. They become the outcome's *notes* (for instance
  ``2 cells timed out (3 s each)`` or ``kernel died in cell 4: ...``), shown in
  the progress line and under the summary. A notebook repaired before grading
  (a list of strings in its metadata, ``bpgrade_repairs``, read back from the
  autograded notebook) is counted as *repaired*, with what was repaired.
* **Isolation.** A student whose grading raises (a notebook that is not JSON, a
  kernel that cannot be interrupted) is reported as *failed* with the reason, and
  its worker goes on. A worker that dies (a kernel that kills its parent, the
  out-of-memory killer) is reported with its student and replaced; a student that
  takes longer than ``--timeout`` seconds has its worker killed and replaced. No
  student's failure touches another's grades: each is its own nbgrader run.
* **Crash safety.** A student counts as finished only when the journal
  ``.grading/<assignment>/<student>.json`` says so, and the parent writes that
  file (atomically: write then rename) only after nbgrader graded the student
  (see above: notes or not). It records a fingerprint of the submitted files and
  the gradebook's address. A run that is killed (even with SIGKILL, the whole process group)
  leaves at worst a half-written ``autograded/<student>/`` folder and a
  half-saved submission in the gradebook, with no journal entry; the next run
  regrades exactly those students with ``--force``, which replaces both. A
  finished student is skipped only if its journal entry matches the current
  submission (a resubmission is regraded), its autograded notebook exists and
  the gradebook holds its submission (a new or emptied gradebook regrades all).
* **Gradebook.** SQLite by default (nbgrader's ``sqlite:///<root>/gradebook.db``
  or the ``db_url`` of ``nbgrader_config.py``), with ``?timeout=60`` added: a
  worker that finds the database locked by another waits up to 60 s for it.
  Measured here (2 cores, load about 8, 4 workers, 24 submissions of
  ``ex05_updates``): with ``timeout=0`` 23 of 24 students failed with "database
  is locked", so the workers do contend; with the driver's default 5 s and with
  60 s none failed. nbgrader's writes last milliseconds; 60 s leaves room for a
  machine so loaded that a writer is descheduled while it holds the lock. A
  student whose grading still fails with "database is locked" is graded once more
  at the end of the run. Serialising the writes through the parent was not
  needed, and it would mean replacing nbgrader's own saving code. With
  ``--db-url postgresql+psycopg2://user@host/db`` the workers (and workers on
  other machines, see ``--shard``) write concurrently; PostgreSQL locks rows.

The assignment must already be in the gradebook (``nbgrader generate_assignment``
against the same ``db_url`` puts it there); the grader checks that before it starts.
Exit status: 0 when every submission is graded (with notes or not), 1 when any
failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .course import tools_env, tools_on_path

# jsonschema (under nbformat) imports rfc3987_syntax if it is installed, for two
# format checkers ("iri", "iri-reference") that no notebook schema uses; that import
# builds 35 Earley parsers and costs about 1.5 s of CPU in every process (see
# python-jsonschema/jsonschema#1428). The grader's processes do without it.
sys.modules.setdefault("rfc3987_syntax", None)

SQLITE_BUSY_TIMEOUT = 60  # seconds a SQLite writer waits for the lock
STUDENT_TIMEOUT = 1800  # seconds before a worker stuck on one student is killed
STATE_DIR = ".grading"
REPAIRS_KEY = "bpgrade_repairs"  # notebook metadata: what was repaired before grading


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
    """SHA-256 of every file's relative path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
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
        tmp = self.entry(student).with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.entry(student))

    def forget(self, student: str) -> None:
        self.entry(student).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- workers


class Worker:
    """One ``python -m bpgrade _worker`` process and the student it is grading.

    Its first line says it is ready (``{"ready": {...}}``) or why it cannot start
    (``{"error": "..."}``); each later line is the :class:`Outcome` of one student.
    """

    def __init__(self, root: Path, assignment: str, db_url: str | None, log: Path,
                 check: bool = False):
        argv = [sys.executable, "-m", "bpgrade", "_worker", assignment]
        argv += ["--db-url", db_url] if db_url else []
        argv += ["--check"] if check else []
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(argv, cwd=root, env=tools_env(), text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, bufsize=1)
        self.check = check
        self.ready = False
        self.student: str | None = None
        self.fingerprint = ""
        self.started = time.monotonic()

    def send(self, student: str, fp: str) -> None:
        self.student, self.fingerprint, self.started = student, fp, time.monotonic()
        self.proc.stdin.write(student + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        """End of input: the worker finishes its loop and exits."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def join(self, timeout: float = 30) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _lost(worker: Worker, why: str) -> Outcome:
    return Outcome(worker.student or "?", "failed", time.monotonic() - worker.started,
                   reason=why)


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | ".join(ln.strip() for ln in tail)


@dataclass
class Settings:
    """What the first worker found in the course: the gradebook and who is in it."""

    db_url: str
    course_id: str
    in_gradebook: set[str]


class Pool:
    """The worker processes, the students still to send, and who is grading whom.

    The workers start at once, each loading nbgrader and the course's config (about
    a second and a half); the first also reads the gradebook for the parent, which
    never imports nbgrader (:meth:`start`). Use as a context manager: leaving it
    kills the workers still running.
    """

    def __init__(self, root: Path, assignment: str, log: Path,
                 timeout: float = STUDENT_TIMEOUT):
        self.root, self.assignment, self.log, self.timeout = root, assignment, log, timeout
        self.db_url: str | None = None
        self.settings: Settings | None = None
        self.live: dict = {}  # worker's stdout -> Worker, for every worker not closed
        self.closed: list[Worker] = []
        self.pending: list[str] | None = None  # None until grade(); the next is at the end
        self.journal: Journal | None = None
        self.retried: set[str] = set()
        self.sel = selectors.DefaultSelector()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.live.values():
            worker.kill()
        for worker in self.closed:
            worker.join()
        self.sel.close()

    def _spawn(self, check: bool = False) -> None:
        worker = Worker(self.root, self.assignment, self.db_url, self.log, check)
        self.live[worker.proc.stdout] = worker
        self.sel.register(worker.proc.stdout, selectors.EVENT_READ)

    def start(self, workers: int, db_url: str | None = None,
              wait: float = STUDENT_TIMEOUT) -> Settings:
        """Start ``workers`` processes; return the first one's :class:`Settings`.

        ``db_url`` None means the course's gradebook, as its config says. Raises
        :class:`GradingError` if the first worker cannot start or finds no assignment.
        """
        self.db_url = db_url
        for i in range(workers):
            self._spawn(check=i == 0)
        deadline = time.monotonic() + wait
        while self.settings is None:
            if time.monotonic() > deadline:
                raise GradingError(f"nbgrader did not start within {wait:g} s; see {self.log}")
            for _ in self._poll():
                pass  # no student is out before the settings are known
        return self.settings

    def grade(self, todo: list[str], journal: Journal) -> Iterator[Outcome]:
        """Grade ``todo``; yield each student's outcome as it finishes."""
        self.pending, self.journal = list(reversed(todo)), journal
        for worker in [w for w in self.live.values() if w.ready and w.student is None]:
            self._dispatch(worker)
        while self.pending or any(w.student for w in self.live.values()):
            if not self.live:  # every worker died while starting
                why = f"no grading worker could start: {_log_tail(self.log)}"
                while self.pending:
                    yield Outcome(self.pending.pop(), "failed", reason=why)
                return
            yield from self._poll()

    def _poll(self) -> Iterator[Outcome]:
        for key, _ in self.sel.select(timeout=1.0):
            yield from self._read(self.live[key.fileobj])
        for worker in [w for w in self.live.values() if self._overdue(w)]:
            self._drop(worker)
            worker.kill()
            yield _lost(worker, f"not graded within {self.timeout:g} s; its worker was killed")
            self._spawn()

    def _overdue(self, worker: Worker) -> bool:
        return worker.student is not None and time.monotonic() - worker.started > self.timeout

    def _drop(self, worker: Worker) -> None:
        self.sel.unregister(worker.proc.stdout)
        del self.live[worker.proc.stdout]

    def _read(self, worker: Worker) -> Iterator[Outcome]:
        """Handle one line of ``worker`` (or its death)."""
        line = worker.proc.stdout.readline()
        if not line:
            self._drop(worker)
            worker.kill()
            status = worker.proc.returncode
            if worker.check and self.settings is None:
                raise GradingError(f"nbgrader could not start (exit status {status}): "
                                   f"{_log_tail(self.log)}")
            if worker.student is not None:
                yield _lost(worker, f"the grading process died (exit status {status})")
                self._spawn()
            return  # a worker that dies before it is ready is not replaced
        message = json.loads(line)
        if "error" in message:
            raise GradingError(message["error"])
        if "ready" in message:
            worker.ready = True
            if worker.check:
                ready = message["ready"]
                self.db_url = ready["db_url"]
                self.settings = Settings(ready["db_url"], ready["course_id"],
                                         set(ready["in_gradebook"]))
            if self.pending is not None:
                self._dispatch(worker)
            return
        outcome = Outcome(**message)
        worker.student = None
        if outcome.status == "graded":
            self.journal.record(outcome.student, worker.fingerprint, outcome)
        if _retry(outcome, self.retried):
            self.pending.insert(0, outcome.student)
        else:
            yield outcome
        self._dispatch(worker)

    def _dispatch(self, worker: Worker) -> None:
        """Send the next student to ``worker``, or let it go."""
        if not self.pending:
            self._drop(worker)
            worker.close()
            self.closed.append(worker)
            return
        student = self.pending.pop()
        self.journal.forget(student)
        worker.send(student, self.journal.submission(student))


def _retry(outcome: Outcome, retried: set[str]) -> bool:
    """Whether to grade a student once more: only after a locked SQLite database, once."""
    if outcome.status != "failed" or "database is locked" not in outcome.reason:
        return False
    if outcome.student in retried:
        return False
    retried.add(outcome.student)
    return True


def worker_main(assignment: str, db_url: str | None, check: bool = False) -> int:
    """Grade the students named on stdin, one per line; answer each with a JSON line.

    The first line out says the worker is ready: the gradebook's URL (the course's
    unless ``db_url`` is given; SQLite with a busy timeout), the course, and with
    ``check`` the students the gradebook holds for ``assignment``; or it says why
    grading cannot start. Runs in the course root. stdout is kept for the answers:
    anything else that writes to file descriptor 1 goes to stderr.
    """
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        app = _nbgrader_app(assignment, db_url)
        ready = {"db_url": app.coursedir.db_url, "course_id": app.coursedir.course_id,
                 "in_gradebook": None}
        if check:
            ready["in_gradebook"] = sorted(graded_in_gradebook(
                app.coursedir.db_url, app.coursedir.course_id, assignment))
    except Exception as exc:  # the parent says why; nothing is graded
        logging.getLogger(__name__).exception("cannot start grading")
        message = str(exc) if isinstance(exc, GradingError) else f"{type(exc).__name__}: {exc}"
        answers.write(json.dumps({"error": message}) + "\n")
        return 2
    answers.write(json.dumps({"ready": ready}) + "\n")
    for line in sys.stdin:
        student = line.strip()
        if student:
            outcome = grade_one(app, assignment, student)
            answers.write(json.dumps(asdict(outcome)) + "\n")
    return 0


def _nbgrader_app(assignment: str, db_url: str | None):
    """nbgrader's autograde application, configured as ``nbgrader autograde --force``,
    on ``db_url`` or the course's gradebook, with a busy timeout if it is SQLite."""
    from nbgrader.apps.autogradeapp import AutogradeApp

    app = AutogradeApp()
    argv = [assignment, "--force", "--Autograde.create_student=True"]
    app.initialize(argv + ([f"--db={db_url}"] if db_url else []))
    app.coursedir.assignment_id = assignment
    app.coursedir.db_url = with_busy_timeout(app.coursedir.db_url)
    return app


def grade_one(app, assignment: str, student: str) -> Outcome:
    """Autograde one student in this process, as ``nbgrader autograde --student`` would.

    *Graded* when nbgrader's run returned without raising and :func:`_check_graded`
    finds its result; the ERROR lines logged on the way are the outcome's notes.
    *Failed* when nbgrader raised (it then removes the autograded notebook itself).
    """
    from nbgrader.converters import Autograde

    journal = Path(app.coursedir.root) / STATE_DIR / assignment
    start, before = time.monotonic(), _stamps(_autograded(app, assignment, student))
    with _captured_log(app.log, journal / f"{student}.log") as records:
        app.coursedir.student_id = student
        reason = None
        try:
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
        return Outcome(student, "failed", seconds, reason=reason)
    return Outcome(student, "graded", seconds, score, max_score, reason=_notes(records),
                   repairs=_repairs(notebooks))


@contextlib.contextmanager
def _captured_log(log: logging.Logger, path: Path):
    """Collect ``log``'s records into a list, and write them to ``path``."""
    records: list[logging.LogRecord] = []
    keep = logging.Handler()
    keep.emit = records.append
    to_file = logging.FileHandler(path, mode="w")
    to_file.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.addHandler(keep)
    log.addHandler(to_file)
    try:
        yield records
    finally:
        log.removeHandler(keep)
        log.removeHandler(to_file)
        to_file.close()


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


def _repairs(notebooks: list[Path]) -> list[str]:
    """The ``bpgrade_repairs`` metadata of the autograded notebooks (what was repaired
    before grading), notebook by notebook; [] when none has any."""
    repairs: list[str] = []
    for path in notebooks:
        try:
            metadata = json.loads(path.read_text()).get("metadata", {})
        except (OSError, ValueError, AttributeError):
            continue
        found = metadata.get(REPAIRS_KEY) if isinstance(metadata, dict) else None
        if isinstance(found, str):
            found = [found]
        if isinstance(found, list):
            prefix = f"{path.stem}: " if len(notebooks) > 1 else ""
            repairs += [prefix + str(r) for r in found]
    return repairs


# ------------------------------------------------------------------------- the class


def shard(students: list[str], spec: str | None) -> list[str]:
    """The students of shard ``"K/N"`` (every N-th from the K-th, K from 1); all if None."""
    if not spec:
        return students
    try:
        k, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise GradingError(f"--shard must look like K/N (e.g. 2/3), not {spec!r}") from None
    if not 1 <= k <= n:
        raise GradingError(f"--shard {spec}: K must be between 1 and N={n}")
    return students[k - 1::n]


def grade_class(root: Path, assignment: str, jobs: int = 2, db_url: str | None = None,
                force: bool = False, shard_spec: str | None = None,
                timeout: float = STUDENT_TIMEOUT,
                progress: Callable[[str], None] = print) -> Summary:
    """Autograde every submission of ``assignment`` in the course at ``root``.

    Parameters
    ----------
    root : Path
        The course root (the folder of ``nbgrader_config.py``).
    assignment : str
        The assignment, e.g. ``"ex04_backward"``.
    jobs : int
        Worker processes; each grades one submission at a time.
    db_url : str, optional
        The gradebook; default the course's (SQLite ``gradebook.db``). A SQLite URL
        gets a 60 s busy timeout.
    force : bool
        Regrade students that a previous run finished.
    shard_spec : str, optional
        ``"K/N"``: grade only every N-th student from the K-th (several machines).
    timeout : float
        Seconds one student may take before its worker is killed and replaced.
    progress : callable
        Receives one line per finished student.

    Returns
    -------
    Summary
        One :class:`Outcome` per student of the shard.
    """
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, not {jobs}")
    start = time.monotonic()
    root = root.resolve()
    students = shard(submitted_students(root, assignment), shard_spec)
    if not students:
        raise GradingError(f"no submission in {root / 'submitted'}/*/{assignment}/")
    folder = root / STATE_DIR / assignment
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(root, assignment, folder / "workers.log", timeout) as pool:
        settings = pool.start(min(jobs, len(students)), db_url)
        journal = Journal(root, assignment, settings.db_url)
        summary = Summary(assignment, jobs)
        todo = [s for s in students if force or not journal.finished(s, settings.in_gradebook)]
        for s in sorted(set(students) - set(todo)):
            summary.outcomes.append(Outcome(s, "skipped", reason="graded by an earlier run"))
        progress(f"{assignment}: {len(students)} submissions, {len(todo)} to grade, "
                 f"{len(students) - len(todo)} already graded; {jobs} workers; "
                 f"gradebook {redacted(settings.db_url)}")
        width = max(len(s) for s in students)
        for outcome in pool.grade(todo, journal):
            summary.outcomes.append(outcome)
            progress(_progress_line(outcome, len(summary.outcomes), len(students), width))
    summary.seconds = time.monotonic() - start
    return summary


def _progress_line(o: Outcome, done: int, total: int, width: int) -> str:
    score = f"{o.score:g}/{o.max_score:g}" if o.score is not None else "-"
    text = (f"[{done:>{len(str(total))}}/{total}] {o.status:<7} {o.student:<{width}} "
            f"{score:>9} {o.seconds:6.1f} s")
    notes = [o.reason] if o.reason and o.status != "skipped" else []
    if o.repairs:
        notes.append(f"repaired ({len(o.repairs)}): {'; '.join(o.repairs)}")
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
    failed = [o for o in summary.outcomes if o.status == "failed"]
    if failed:
        lines += ["", "failed submissions (see .grading/<assignment>/<student>.log):"]
        lines += [f"  {o.student}: {o.reason}" for o in failed]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bpgrade",
                                     description="Parallel, crash-safe nbgrader autograde.")
    sub = parser.add_subparsers(dest="command", required=True)
    auto = sub.add_parser("autograde", help="autograde every submission of an assignment")
    auto.add_argument("assignment")
    auto.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                      help="worker processes (default: the number of CPUs)")
    auto.add_argument("--db-url", help="gradebook URL (default: the course's SQLite file)")
    auto.add_argument("--root", type=Path, default=Path.cwd(),
                      help="course root (default: the current folder)")
    auto.add_argument("--force", action="store_true", help="regrade finished students too")
    auto.add_argument("--shard", help="K/N: grade every N-th student from the K-th")
    auto.add_argument("--timeout", type=float, default=STUDENT_TIMEOUT,
                      help="seconds per student before its worker is killed")
    worker = sub.add_parser("_worker", help=argparse.SUPPRESS)
    worker.add_argument("assignment")
    worker.add_argument("--db-url")
    worker.add_argument("--check", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "_worker":
        return worker_main(args.assignment, args.db_url, args.check)
    try:
        summary = grade_class(args.root, args.assignment, args.jobs, args.db_url, args.force,
                              args.shard, args.timeout, lambda s: print(s, flush=True))
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to grade the students not finished",
              file=sys.stderr)
        return 130
    print("\n" + summary_table(summary))
    return 1 if summary.count("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
