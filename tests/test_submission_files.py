"""A submission's links and special files are never followed or opened by either grader.

One course (``ex05_updates`` released with the real nbgrader) is built twice from the
same recipe: once graded by plain ``nbgrader autograde`` with the course's
configuration, once by the Dask grader (``bpgrade.pool.grade_class`` on a
LocalCluster); both then get ``nbgrader generate_feedback``. Its students:

* ``honest``: the correct notebook and a data file of its own (copied as usual);
* ``linker``: the correct notebook, a cell that lists its working folder and prints
  what it can read of ``answers.txt``, and beside it a symbolic link to the
  instructor's source notebook (absolute), one relative, one to ``/dev/null``, a
  folder link to ``solutions/``, a hard link to the source notebook, a named pipe, a
  socket and (where the grader may make one) a character device;
* ``nblinker``: the notebook itself is a link to the instructor's source notebook;
* ``dirlinker``: the submission's folder is a link to the instructor's source folder;
* ``pipe_stamp``: the correct notebook, with ``timestamp.txt`` a named pipe (nbgrader
  reads it with ``open()``: it would wait for a writer forever).

Every student is graded (never a hang, never a crash); the refused entries score
nothing, the rest is graded as usual; nothing of the instructor's (solutions, hidden
tests) and no link or special file reaches ``autograded/`` or ``feedback/``; each
refusal is in the student's notes (the autograded notebook's ``bpgrade_notes``) and
in the feedback page; and both graders agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import threading
from pathlib import Path

import nbformat
import pytest

from bpgrade import pool
from bpgrade import submission as sub
from bpgrade.course import make_course, run_nbgrader
from tools import grade_demo, samples

ROOT = Path(__file__).resolve().parents[1]
A = "ex05_updates"
LISTING = ("import os\nprint('FILES:', sorted(os.listdir('.')))\n"
           "try:\n    print('READ:', open('answers.txt').read()[:4000])\n"
           "except OSError as exc:\n    print('READ FAILED:', type(exc).__name__)\n")
LINKER_ENTRIES = {"answers.txt", "rel.json", "null.npy", "everything", "hard.txt", "pipe",
                  "sock"}  # + "zero" where mknod works
SCORES = {"honest": "max", "linker": "max", "nblinker": 0, "dirlinker": 0,
          "pipe_stamp": "max"}


def _bind_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # the socket file stays after close


def build(dest: Path) -> Path:
    """The course with its five students (see the module's docstring), not graded."""
    course = make_course(dest, [A], ROOT)
    root = course.root
    course.nbgrader("release", "generate_assignment", A, "--force")
    source_nb = root / "solutions" / A / f"{A}.ipynb"
    source = nbformat.read(source_nb, 4)
    release = nbformat.read(root / "exercises" / A / f"{A}.ipynb", 4)
    correct = samples.correct_notebook(source, release)

    def submit(student: str, nb=correct) -> Path:
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{A}.ipynb")
        (folder / "timestamp.txt").write_text(samples.TIMESTAMP)
        return folder

    (submit("honest") / "data.txt").write_text("the student's own data\n")
    listing = samples.correct_notebook(source, release)
    listing.cells.append(nbformat.v4.new_code_cell(LISTING))
    folder = submit("linker", listing)
    os.symlink(source_nb, folder / "answers.txt")
    os.symlink(f"../../../solutions/{A}/{A}.ipynb", folder / "rel.json")
    os.symlink("/dev/null", folder / "null.npy")
    os.symlink(root / "solutions", folder / "everything")
    os.link(source_nb, folder / "hard.txt")
    os.mkfifo(folder / "pipe")
    _bind_socket(folder / "sock")
    with contextlib.suppress(OSError):  # needs CAP_MKNOD (root, outside a container)
        os.mknod(folder / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    folder = submit("nblinker")
    (folder / f"{A}.ipynb").unlink()
    os.symlink(source_nb, folder / f"{A}.ipynb")
    (root / "submitted" / "dirlinker").mkdir(parents=True)
    os.symlink(root / "solutions" / A, root / "submitted" / "dirlinker" / A)
    folder = submit("pipe_stamp")
    (folder / "timestamp.txt").unlink()
    os.mkfifo(folder / "timestamp.txt")
    return root


def secrets(root: Path) -> list[str]:
    """Lines only the instructor's source notebook holds: its solution regions and its
    hidden tests."""
    nb = nbformat.read(root / "solutions" / A / f"{A}.ipynb", 4)
    lines = [line.strip() for c in samples.solution_cells(nb).values()
             for region in samples.solution_regions(c.source) for line in region.split("\n")
             if line.strip() and not line.strip().startswith("#")]
    course = grade_demo.Course(root, [A])
    return sorted(set(lines + grade_demo.hidden_lines(course, A)))


def feedback(root: Path) -> None:
    run_nbgrader(root, "generate_feedback", A, "--force", timeout=600)


def scores(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(A).submissions}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The course graded by plain ``nbgrader autograde``, then fed back."""
    root = build(tmp_path_factory.mktemp("files_plain") / "course")
    proc = run_nbgrader(root, "autograde", A, timeout=600)
    feedback(root)
    return root, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def dask(tmp_path_factory):
    """The same course graded by the Dask grader (one worker), then fed back."""
    root = build(tmp_path_factory.mktemp("files_dask") / "course")
    lines: list[str] = []
    summary = pool.grade_class(root, A, jobs=1, progress=lines.append)
    feedback(root)
    return root, summary, "\n".join(lines)


def _special(folder: Path) -> list[str]:
    """Everything under ``folder`` that is not a real folder or a regular file with one
    link (found with lstat: nothing followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            if not (stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1)):
                found.append(str(path.relative_to(folder)))
    return found


def _check_course(root: Path) -> None:
    secret = secrets(root)
    hidden = grade_demo.hidden_lines(grade_demo.Course(root, [A]), A)
    assert len(secret) > 5 and hidden
    for kind in ("autograded", "feedback"):
        assert not _special(root / kind), f"{kind}/ holds links or special files"
        for path in (p for p in (root / kind).rglob("*") if p.is_file()):
            text = path.read_text(errors="replace")
            # the graded notebook keeps the hidden tests (nbgrader's design) and a
            # correct answer is the solution; anything else is a copy of a student's file
            if path.name == f"{A}.ipynb":
                continue
            shown = hidden if path.name == f"{A}.html" else secret
            leaked = [s for s in shown if s in text]
            assert not leaked, f"{path.relative_to(root)} shows the instructor's {leaked[:3]}"
    for student in ("nblinker", "dirlinker"):  # graded empty: no solution anywhere
        for path in [root / "autograded" / student / A / f"{A}.ipynb",
                     root / "feedback" / student / A / f"{A}.html"]:
            text = path.read_text()
            leaked = [s for s in secret if s in text and s not in hidden]
            assert not leaked, f"{path.relative_to(root)} shows the solution {leaked[:3]}"
    for student in SCORES:
        names = {p.name for p in (root / "autograded" / student / A).iterdir()}
        extra = names - {f"{A}.ipynb", "timestamp.txt", "data.txt"}
        assert not extra, f"{student}: copied {extra}"
    assert (root / "autograded" / "honest" / A / "data.txt").read_text() == \
        "the student's own data\n"
    assert (root / "feedback" / "honest" / A / "data.txt").is_file()
    got = scores(root)
    max_score = got["honest"]
    assert max_score > 0
    assert got == {s: (max_score if v == "max" else v) for s, v in SCORES.items()}
    # the kernel saw none of the refused entries
    nb = nbformat.read(root / "autograded" / "linker" / A / f"{A}.ipynb", 4)
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "READ FAILED: FileNotFoundError" in out, out
    listed = set(re.search(r"FILES: (\[.*\])", out).group(1).strip("[]").replace("'", "")
                 .split(", "))
    assert not listed & (LINKER_ENTRIES | {"zero"}), listed


def _notes(root: Path, student: str) -> list[str]:
    meta = json.loads((root / "autograded" / student / A / f"{A}.ipynb").read_text())["metadata"]
    return meta.get(sub.NOTES_KEY, [])


def _check_notes(root: Path) -> None:
    linker = _notes(root, "linker")
    made = LINKER_ENTRIES | ({"zero"} if _has_zero(root) else set())
    for name in made:
        (line,) = [n for n in linker if n.startswith(f"`{name}` is ")]
        assert "the autograder did not open it" in line
    assert any("`answers.txt` is a symbolic link to" in n for n in linker)
    assert any("`hard.txt` is a hard link" in n for n in linker)
    assert any("`pipe` is a named pipe" in n for n in linker)
    assert any("`sock` is a socket" in n for n in linker)
    (nb_line,) = _notes(root, "nblinker")
    assert nb_line.startswith(f"This notebook, `{A}.ipynb`, is a symbolic link") and \
        "0 points" in nb_line
    (dir_line,) = _notes(root, "dirlinker")
    assert dir_line.startswith("The submission's folder is a symbolic link")
    assert any(n.startswith("`timestamp.txt` is a named pipe") for n in _notes(root, "pipe_stamp"))
    assert _notes(root, "honest") == []
    for student in ("linker", "nblinker", "dirlinker"):
        page = (root / "feedback" / student / A / f"{A}.html").read_text()
        assert "Notes from the autograder" in page and "did not open" in page, student


def _has_zero(root: Path) -> bool:
    folder = root / "submitted" / "linker" / A
    return any(p.name.startswith("zero") for p in folder.iterdir())


@pytest.mark.slow
def test_plain_nbgrader_grades_the_rest_and_hands_out_no_link_or_special_file(plain):
    root, log = plain
    _check_course(root)


@pytest.mark.slow
def test_plain_nbgrader_puts_each_refusal_in_the_students_notes_and_feedback(plain):
    root, log = plain
    _check_notes(root)
    assert "refused: linker/ex05_updates: `answers.txt` is a symbolic link" in log
    # the refused entries are set aside in submitted/, not followed, not deleted
    folder = root / "submitted" / "linker" / A
    assert os.path.islink(folder / "answers.txt.bpgrade-refused")
    assert stat.S_ISFIFO(os.lstat(folder / "pipe.bpgrade-refused").st_mode)
    # a hard link stays where it is (a copy neither follows nor blocks); nbgrader's copy
    # of it was deleted before the kernel ran (checked in _check_course)
    assert os.lstat(folder / "hard.txt").st_nlink == 2
    assert "removed nbgrader's copy of hard.txt" in log
    assert os.path.islink(root / "submitted" / "dirlinker" / f"{A}.bpgrade-refused")


@pytest.mark.slow
def test_the_dask_grader_sends_no_link_or_special_file_and_agrees_with_plain_nbgrader(
        dask, plain):
    root, summary, out = dask
    assert summary.count("failed") == 0, out
    assert summary.count("graded") == len(SCORES), out
    _check_course(root)
    _check_notes(root)
    assert scores(root) == scores(plain[0])
    linker = next(o for o in summary.outcomes if o.student == "linker")
    assert any("`answers.txt` is a symbolic link" in n for n in linker.notes)
    assert "notes for the student" in pool.summary_table(summary)
    # the client never touches submitted/: the entries are where the student put them
    assert os.path.islink(root / "submitted" / "linker" / A / "answers.txt")


def test_a_task_carries_no_byte_of_a_link_target(tmp_path):
    folder = tmp_path / "submitted" / "s" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_text(sub.PLACEHOLDER)
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor only")
    os.symlink(secret, folder / "link.txt")
    os.link(secret, folder / "hard.txt")
    os.mkfifo(folder / "pipe")
    files, refused = pool.submission_files(folder, [f"{A}.ipynb"])
    assert set(files) == {f"{A}.ipynb"}
    assert {r.path for r in refused} == {"link.txt", "hard.txt", "pipe"}
    os.remove(folder / f"{A}.ipynb")
    os.symlink(secret, folder / f"{A}.ipynb")
    files, _ = pool.submission_files(folder, [f"{A}.ipynb"])
    assert files == {f"{A}.ipynb": sub.PLACEHOLDER.encode()}


def test_reading_never_blocks_on_a_pipe(tmp_path):
    folder = tmp_path / "s" / "a"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe")
    os.mkfifo(folder / "timestamp.txt")
    result = {}
    worker = threading.Thread(target=lambda: result.update(
        files=sub.read_submission(folder), one=sub.read_file(folder / "timestamp.txt")),
        daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "reading a submission blocked on a named pipe"
    assert result["files"].files == {}
    assert result["one"] == (None, "a named pipe (FIFO)")


def test_a_file_replaced_between_the_check_and_the_read_is_refused(tmp_path):
    """The bytes read are those of the file that was checked: a file swapped for a link
    (or another file) after ``lstat`` is refused, not read."""
    folder = tmp_path / "s" / "a"
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("mine")
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor only")
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.stat("data.txt", dir_fd=dfd, follow_symlinks=False)
        os.rename(folder / "data.txt", tmp_path / "checked.txt")  # kept: its inode stays taken
        os.symlink(secret, folder / "data.txt")  # swapped for a link after the check
        assert sub._read(dfd, "data.txt", "data.txt", st)[1] is None
        os.remove(folder / "data.txt")
        shutil.copy(secret, folder / "data.txt")  # swapped for another regular file
        rel, data, refusal = sub._read(dfd, "data.txt", "data.txt", st)
        assert data is None and refusal.what == "a file replaced while it was read"
    finally:
        os.close(dfd)


def test_notes_show_hostile_names_as_inert_code():
    refusal = sub.Refused("<img src=x onerror=alert(1)>`\n[x](javascript:alert(1))",
                          "a symbolic link to " + sub.shown("`</code><script>"))
    line = refusal.note()
    assert line.count("`") % 2 == 0 and "\n" not in line
    assert "`<img src=x onerror=alert(1)>?" in line
