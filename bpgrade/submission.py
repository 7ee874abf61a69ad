"""What the grader takes from a submission folder: regular files and folders, nothing else.

A submission folder (``submitted/<student>/<assignment>/``) is the student's data. A
symbolic link in it (to the instructor's ``solutions/``, to ``/dev/zero``), a hard link
to a file elsewhere, a named pipe (which blocks whoever opens it), a device node or a
socket must never be followed or opened on the grader's side: nbgrader's autograde
copies a submission's extra files with ``shutil.copy``, which follows links, into
``autograded/`` (where the kernel reads them), and ``generate_feedback`` copies them on
into ``feedback/``, which ``release_feedback`` hands to the student.

Here:

* :func:`scan` lists a folder without opening anything but folders, each opened
  with ``O_NOFOLLOW`` from its parent's descriptor: the regular files (one link each)
  and the :class:`Refused` entries, each with what it is;
* :func:`read_submission` reads the regular files the same way, each opened with
  ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` (the bytes read are those of
  the file that was checked: no time-of-check/time-of-use gap), for the Dask client;
* :func:`refuse_special_files` is nbgrader's ``pre_convert_hook`` for plain
  ``nbgrader autograde``: before nbgrader copies anything, each refused entry is
  renamed, in its own folder, to ``<name>.bpgrade-refused`` (a rename opens nothing),
  a name ``c.CourseDirectory.ignore`` makes nbgrader skip;
* :func:`read_file` reads one file (the notebook itself, ``timestamp.txt``) the same
  careful way, for :class:`bpgrade.nbgrader_plugins.SafeNotebookExporter` (a notebook
  that is a link, a pipe ... is graded as an empty notebook, :data:`PLACEHOLDER`) and
  :func:`bpgrade.nbgrader_plugins.safe_timestamp`.

The reasons (:meth:`Refused.note`) reach the student's notes through
:class:`bpgrade.nbgrader_plugins.GuardFiles`. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REFUSED_SUFFIX = ".bpgrade-refused"
"""What :func:`refuse_special_files` appends to a refused entry's name."""
IGNORE_PATTERN = "*" + REFUSED_SUFFIX
"""The ``c.CourseDirectory.ignore`` pattern that keeps nbgrader away from them."""
NOTES_KEY = "bpgrade_notes"
"""Notebook metadata: ``{"bpgrade_notes": ["one line per note", ...]}``, what the
autograder did with the submission besides grading it (refused files, HTML it cleaned,
markers it left alone); listed at the top of the feedback. A submission's own value is
replaced."""
RECORD_DIR = Path(".grading") / ".refused"
"""Under a course root: ``<assignment>/<student>.json``, the entries the Dask client
refused (written in a worker's private course only, see :func:`write_record`)."""
MAX_FILE = 256 * 1024**2  # bytes: a larger file is not read (nor sent to a worker)
PLACEHOLDER = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 4})
"""The notebook graded in place of one that is not a regular file: nothing answered."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SHOWN = re.compile(r"[\x00-\x1f\x7f`]")


def shown(text: str, limit: int = 80) -> str:
    """A path or link target as it appears in a note: control characters and backticks
    as ``?``, at most ``limit`` characters, in backticks (a code span: no markdown or
    HTML in it is read)."""
    text = _SHOWN.sub("?", text)
    return f"`{text[:limit]}{'...' if len(text) > limit else ''}`"


@dataclass(frozen=True)
class Refused:
    """One entry of a submission that the grader did not open."""

    path: str  # relative to the submission folder, "/"-separated, as the student named it
    what: str  # "a symbolic link to '/srv/course/solutions/...'" ...

    def note(self) -> str:
        """The line in the student's notes (and the grader's log)."""
        if self.path == ".":
            return (f"{self.what[:1].upper()}{self.what[1:]}: the autograder did not "
                    "open it, so nothing of this submission was graded (hand in a "
                    "folder of regular files)")
        return (f"{shown(self.path)} is {self.what}: the autograder did not open it, "
                "graded the rest of the submission without it, and left it out of "
                "the feedback (hand in regular files only)")


def describe(st: os.stat_result, target: str | None = None) -> str | None:
    """What an entry is, for a refusal; ``None`` for a folder or a regular file with
    one link (what a submission may hold)."""
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return f"a symbolic link to {shown(target or '?')}"
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            return (f"a hard link (one of {st.st_nlink} names of a file, the others "
                    "possibly outside the submission)")
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@contextlib.contextmanager
def _opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_folder(base: Path, parts: tuple[str, ...] = ()) -> int:
    """A descriptor of ``base/parts...``: ``base`` (the instructor's) opened as it is,
    each of ``parts`` (the student's) with ``O_NOFOLLOW``. Raises :class:`OSError`
    (``ELOOP``/``ENOTDIR``) when one of ``parts`` is a link or not a folder."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _entry(dfd: int | None, name: str | Path) -> tuple[os.stat_result, str | None]:
    """``lstat`` of ``name`` (in the folder ``dfd``), and its target if it is a link."""
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    target = None
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            target = os.readlink(name, dir_fd=dfd)
    return st, target


def _walk(dfd: int, read: bool, prefix: str = ""
          ) -> Iterator[tuple[str, bytes | None, Refused | None]]:
    """``(path, bytes or None, refusal or None)`` for every entry below the folder
    ``dfd`` (folders are walked, not listed); nothing is followed, nothing but
    folders and (with ``read``) checked regular files is opened."""
    for name in sorted(os.listdir(dfd)):
        rel = prefix + name
        st, target = _entry(dfd, name)
        original = rel[: -len(REFUSED_SUFFIX)] if name.endswith(REFUSED_SUFFIX) else None
        what = describe(st, target)
        if original is not None:  # renamed by refuse_special_files on an earlier run
            yield original, None, Refused(original, what or "a name the autograder "
                                          "reserves for what it refused")
            continue
        if what is not None:
            yield rel, None, Refused(rel, what)
        elif stat.S_ISDIR(st.st_mode):
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as exc:  # replaced by something else since the stat
                yield rel, None, Refused(rel, f"a folder that could not be opened ({exc.strerror})")
                continue
            with _opened(child):
                yield from _walk(child, read, rel + "/")
        elif not read:
            yield rel, None, None
        else:
            yield _read(dfd, name, rel, st)


def _read(dfd: int, name: str, rel: str, st: os.stat_result
          ) -> tuple[str, bytes | None, Refused | None]:
    """Open one entry that ``lstat`` said is a regular file and read it, if it still is
    that file (same device and inode, one link): the bytes come from the checked file."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    except OSError as exc:
        return rel, None, Refused(rel, f"an entry that could not be opened as a regular "
                                       f"file ({exc.strerror})")
    with _opened(fd):
        now = os.fstat(fd)
        what = describe(now)
        if what is not None:
            return rel, None, Refused(rel, what)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return rel, None, Refused(rel, "a file replaced while it was read")
        chunks, left = [], MAX_FILE + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1024**2))):
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            return rel, None, Refused(rel, f"a file larger than {MAX_FILE // 1024**2} MiB")
        return rel, b"".join(chunks), None


@dataclass
class Submission:
    """What a submission folder holds, as the grader takes it."""

    files: dict[str, bytes | None]  # path -> bytes (None when not read)
    refused: list[Refused]

    def notes(self) -> list[str]:
        return [r.note() for r in self.refused]


def scan(base: Path, parts: tuple[str, ...] = (), read: bool = False) -> Submission:
    """The submission folder ``base/parts...`` (see :func:`open_folder`): its regular
    files (read when ``read``) and what it holds that the grader refuses. A folder
    that cannot be opened as such (one of ``parts`` is a link) is one refusal, ``.``."""
    try:
        dfd = open_folder(base, parts)
    except OSError as exc:
        what = folder_problem(base, parts) or f"the submission's folder could not be " \
            f"opened ({exc.strerror})"
        return Submission({}, [Refused(".", what)])
    files: dict[str, bytes | None] = {}
    refused: list[Refused] = []
    with _opened(dfd):
        for rel, data, refusal in _walk(dfd, read):
            if refusal is None:
                files[rel] = data
            else:
                refused.append(refusal)
    return Submission(files, refused)


def read_submission(folder: Path, levels: int = 2) -> Submission:
    """:func:`scan` with ``read``: the last ``levels`` folders of ``folder``
    (``<student>/<assignment>``) are the student's and opened with ``O_NOFOLLOW``."""
    folder = Path(os.path.abspath(folder))
    parts = folder.parts[-levels:]
    return scan(Path(*folder.parts[:-levels]), parts, read=True)


def folder_problem(base: Path, parts: tuple[str, ...]) -> str | None:
    """What is wrong with the folder chain ``base/parts...`` (by ``lstat``: nothing is
    followed), as the note says it; ``None`` when each part is a real folder. A part
    set aside by :func:`refuse_special_files` is described as what it was."""
    path = Path(base)
    for i, part in enumerate(parts):
        path = path / part
        which = ("the submission's folder" if i == len(parts) - 1 else
                 f"the folder {shown('/'.join(parts[: i + 1]))} that holds it")
        for candidate in (path, path.with_name(part + REFUSED_SUFFIX)):
            try:
                st, target = _entry(None, candidate)
            except FileNotFoundError:
                continue
            if candidate == path and stat.S_ISDIR(st.st_mode):
                break
            return f"{which} is {describe(st, target) or 'not a folder'}"
        else:
            return f"{which} does not exist"
    return None


# ------------------------------------------------------------------- plain nbgrader


class RefusedSubmission(SystemExit):
    """Raised by the hook when it cannot set a refused entry aside: nbgrader would then
    follow it, so autograde stops (nbgrader's hook runner swallows ``Exception``)."""


def _free_name(dfd: int, name: str) -> str:
    candidate, n = name + REFUSED_SUFFIX, 1
    while True:
        try:
            os.stat(candidate, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return candidate
        n += 1
        candidate = f"{name}.{n}{REFUSED_SUFFIX}"


def set_aside(base: Path, parts: tuple[str, ...], rel: str) -> None:
    """Rename the entry ``rel`` of the folder ``base/parts...`` to
    ``<name>.bpgrade-refused`` in its own folder (no link is followed, nothing opened)."""
    *dirs, name = rel.split("/")
    dfd = open_folder(base, tuple(parts) + tuple(dirs))
    with _opened(dfd):
        os.rename(name, _free_name(dfd, name), src_dir_fd=dfd, dst_dir_fd=dfd)


def refuse_special_files(assignment: str = "", student: str = "", notebooks=(), **_) -> None:
    """nbgrader's ``pre_convert_hook`` (``c.Autograde.pre_convert_hook``): before
    nbgrader copies the files of one submission, set aside (:func:`set_aside`)
    every entry of it that is neither a folder nor a regular file (a link, a pipe, a
    device, a socket), and the submission's folder itself if it is a link. Called
    with the notebooks nbgrader found, ``<submitted>/<student>/<assignment>/<name>.ipynb``.

    A hard link is a regular file: copying it neither follows nor blocks, so it stays
    where it is (a copy of ``submitted/`` made with ``cp -al`` must not leave a whole
    class set aside), and :class:`bpgrade.nbgrader_plugins.GuardFiles` removes
    nbgrader's copy before any code runs; the notebook itself is never read from one."""
    if not notebooks:
        return
    folder = Path(os.path.abspath(notebooks[0])).parent
    base, parts = folder.parent.parent, (folder.parent.name, folder.name)
    try:
        problem = folder_problem(base, parts)
        if problem is not None:
            for i in range(len(parts)):  # the first part that is not a real folder
                path = base.joinpath(*parts[: i + 1])
                if os.path.lexists(path) and not stat.S_ISDIR(os.lstat(path).st_mode):
                    set_aside(base, parts[:i], parts[i])
                    break
            return
        for refusal in scan(base, parts).refused:
            path = folder / refusal.path
            if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
                set_aside(base, parts, refusal.path)  # (not yet set aside; not a hard link)
    except OSError as exc:
        raise RefusedSubmission(
            f"bpgrade: cannot set aside a link or special file of {folder} ({exc}); "
            "autograde stopped so that nbgrader does not follow it: remove it by hand"
        ) from exc


def read_file(path: str | os.PathLike, levels: int = 3) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` of the file ``path``, read as :func:`read_submission` reads
    one (its last ``levels`` components, ``<student>/<assignment>/<name>``, opened
    with ``O_NOFOLLOW``), or ``(None, what it is)`` when it is not a regular file with
    one link, or was set aside by :func:`refuse_special_files` (then what it was)."""
    path = Path(os.path.abspath(path))
    base, parts = Path(*path.parts[:-levels]), path.parts[-levels:]
    try:
        dfd = open_folder(base, parts[:-1])
    except OSError:
        return None, folder_problem(base, parts[:-1]) or "in a folder that cannot be opened"
    with _opened(dfd):
        for name in (parts[-1], parts[-1] + REFUSED_SUFFIX):
            try:
                st, target = _entry(dfd, name)
            except FileNotFoundError:
                continue
            what = describe(st, target)
            if name != parts[-1] or what is not None:
                return None, what or "a name the autograder reserves"
            _, data, refusal = _read(dfd, name, name, st)
            return (data, None) if refusal is None else (None, refusal.what)
    return None, "missing"


def add_notes(nb, lines: list[str]) -> None:
    """Append ``lines`` to the notebook's :data:`NOTES_KEY` list (each line once)."""
    notes = nb.metadata.get(NOTES_KEY)
    notes = list(notes) if isinstance(notes, list) else []
    notes += [line for line in lines if line not in notes]
    if notes:
        nb.metadata[NOTES_KEY] = notes


def notebook_notes(refused: list[Refused], notebook: str) -> list[str]:
    """The lines of the notes of ``notebook`` (its name without ``.ipynb``): one per
    refused entry, the notebook itself said so when it is one of them."""
    lines = []
    for r in refused:
        if r.path == f"{notebook}.ipynb":
            lines.append(f"This notebook, {shown(r.path)}, is {r.what}: the autograder "
                         "did not open it and graded an empty notebook in its place "
                         "(0 points); hand in the notebook itself")
        else:
            lines.append(r.note())
    return lines


# ------------------------------------------------------------------------ Dask path


def record_path(root: Path, assignment: str, student: str) -> Path:
    """Where a worker's private course keeps the refusals the client sent."""
    return Path(root) / RECORD_DIR / assignment / f"{student}.json"


def write_record(root: Path, assignment: str, student: str, refused: list[Refused]) -> None:
    path = record_path(root, assignment, student)
    if not refused:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in refused]))


def read_record(root: Path, assignment: str, student: str) -> list[Refused]:
    try:
        data = json.loads(record_path(root, assignment, student).read_text())
    except (OSError, ValueError):
        return []
    return [Refused(str(d["path"]), str(d["what"])) for d in data
            if isinstance(d, dict) and "path" in d and "what" in d]
