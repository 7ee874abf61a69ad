"""Throw-away nbgrader courses, and running nbgrader with the right tools on ``PATH``.

Every piece of the course that runs nbgrader outside the course root (the
exercise builder, the grading demo, the class-wide grader, the tests) needs the
same two things, and gets them here:

* :func:`tools_env`: the environment with this interpreter's ``bin/`` first on
  ``PATH``, because nbgrader starts ``alembic`` (to create or upgrade a
  gradebook) by name, and the venv's copy must win over any other;
* :func:`make_course`: a course in a folder of its own: a copy of the
  configuration (``nbgrader_config.py`` and the sandbox fragment it loads,
  ``nbgrader_sandbox.py``) and of the chosen ``solutions/`` folders, so the
  repository never gets a gradebook or ``submitted/`` folder;

and :class:`Course`, which runs ``python -m nbgrader`` in it, times each step and
keeps its output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILES = ("nbgrader_config.py", "nbgrader_sandbox.py")
# What is never copied from solutions/: editor leftovers, and the exercises' text
# sources (the release is generated from the .ipynb built from them).
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "ex[0-9][0-9]_*.md")


def tools_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this interpreter's ``bin/`` first on ``PATH``."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@contextlib.contextmanager
def tools_on_path() -> Iterator[None]:
    """Put this interpreter's ``bin/`` first on this process's ``PATH`` for a while
    (nbgrader run in-process creates a new gradebook with ``alembic``)."""
    before = os.environ.get("PATH")
    os.environ["PATH"] = tools_env()["PATH"]
    try:
        yield
    finally:
        if before is None:
            del os.environ["PATH"]
        else:
            os.environ["PATH"] = before


def run_nbgrader(root: Path, *args: str, timeout: float | None = 900,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m nbgrader ARGS`` in ``root`` with :func:`tools_env`; raises
    :class:`RuntimeError` with the end of its output when it exits non-zero."""
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root,
                          capture_output=True, text=True, check=False, timeout=timeout,
                          env=tools_env(env))
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} exited {proc.returncode} in {root}:\n"
                           + (proc.stdout + proc.stderr)[-4000:])
    return proc


@dataclass
class Course:
    """A throw-away nbgrader course and what happened in it."""

    root: Path
    assignments: list[str]
    expected: list = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time
    logs: dict[str, str] = field(default_factory=dict)  # step -> nbgrader's output

    def nbgrader(self, step: str, *args: str, env: dict[str, str] | None = None) -> str:
        """Run one nbgrader command in the course; return its output; raise if it fails."""
        start = time.perf_counter()
        try:
            proc = run_nbgrader(self.root, *args, env=env)
        finally:
            self.seconds[step] = time.perf_counter() - start
        self.logs[step] = proc.stdout + proc.stderr
        return self.logs[step]


def make_course(dest: Path, assignments: Iterable[str], source_root: Path,
                extra_config: str = "") -> Course:
    """A course in ``dest``: ``source_root``'s configuration files and the named
    ``solutions/`` folders (their built ``.ipynb`` and the files beside them, not
    their ``.md`` sources). ``extra_config`` is appended to the copied
    ``nbgrader_config.py`` (e.g. a shorter cell timeout for a test)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in CONFIG_FILES:
        if (source_root / name).is_file():
            shutil.copy(source_root / name, dest / name)
    if extra_config:
        with open(dest / "nbgrader_config.py", "a") as fh:
            fh.write("\n" + extra_config.strip() + "\n")
    names = list(assignments)
    for a in names:
        shutil.copytree(source_root / "solutions" / a, dest / "solutions" / a, ignore=IGNORE,
                        dirs_exist_ok=True)
    return Course(dest, names)
