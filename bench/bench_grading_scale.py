"""Grading a class: submissions per minute, serial nbgrader against the parallel grader.

In a throw-away course, ``ex04_backward`` is released and ``SUBMISSIONS`` students
hand it in: the instructor's solution, a blank release and one student per typical
mistake of ``tests/submissions/ex04_backward/`` (the rest copies of the solution).
Three runs, each on a fresh copy of that course, each timed from the command's
start to its end (process start-up included):

1. plain serial: one batched ``nbgrader autograde ex04_backward`` with nbgrader's
   own preprocessors (the sandbox switched off in the course's config);
2. sandboxed serial: the same command with ``nbgrader_sandbox.py`` loaded (skipped,
   with a note, when the repository has no ``nbgrader_sandbox.py``);
3. parallel: ``python -m bplib.grading autograde ex04_backward --jobs <CPUs>``,
   sandboxed when 2. ran.

It prints seconds, submissions per minute and ratios: the sandbox's cost per
submission (2. against 1.) and the parallel speed-up (3. against 2., or 1.), and
the CPU seconds per submission of the unsandboxed runs (the command's and its
reaped children's). On a machine shared with other work the wall-clock rates fall
with the load; the CPU figure does not, and bounds the rate any number of workers
can reach on idle CPUs. The
issue's targets: sandboxed parallel at least 90 per minute on 2 cores, and
sandboxing under 20 % per submission. Figures only: nothing here asserts a time.

Run: ``python -m bench grading_scale`` from the repository root.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ex04_backward"
SUBMISSIONS = 40
SANDBOX_CONFIG = ROOT / "nbgrader_sandbox.py"
NO_SANDBOX = "NO SANDBOX"  # what nbgrader_sandbox.py logs where bubblewrap cannot run

# Appended to the course's config for the plain run: nbgrader's own autograde steps.
PLAIN = """
# --- bench_grading_scale: plain nbgrader (no sandbox, no integrity checks) ---
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)
c.Autograde.autograde_preprocessors = [  # nbgrader 0.9's default list
    Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata]
c.OverwriteCells.add_missing_cells = False
"""
# Appended for the sandboxed runs when nbgrader_config.py does not load the sandbox yet.
SANDBOXED = """
# --- bench_grading_scale: the sandbox ---
load_subconfig("nbgrader_sandbox.py")  # noqa: F821
"""


@dataclass
class Row:
    """One timed run."""

    label: str
    seconds: float
    graded: int
    cpu: float | None  # CPU seconds of the command and the processes it reaped; see below
    note: str = ""

    @property
    def per_minute(self) -> float:
        return 60.0 * self.graded / self.seconds

    @property
    def cpu_per_submission(self) -> float | None:
        return None if self.cpu is None else self.cpu / max(self.graded, 1)


def make_template(dest: Path, n: int = SUBMISSIONS) -> tuple[Path, str]:
    """Release the assignment in a new course at ``dest`` and submit ``n`` students.

    Returns the course root and a description of the mix.
    """
    course = grade_demo.make_course(dest, [ASSIGNMENT])
    if SANDBOX_CONFIG.exists():
        shutil.copy(SANDBOX_CONFIG, dest / SANDBOX_CONFIG.name)
    course.nbgrader("release", "generate_assignment", ASSIGNMENT, "--force")
    source = nbformat.read(dest / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(dest / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    variants = {e.student: nb for nb, e in grade_demo.corpus.variants(source, release, ASSIGNMENT)
                if e.student != "never_ending"}
    mistakes = sorted(s for s in variants if s != "correct")
    names = mistakes + [f"correct_{i:02d}" for i in range(n - len(mistakes))]
    for name in names:
        folder = dest / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(variants.get(name, variants["correct"]), folder / f"{ASSIGNMENT}.ipynb")
        (folder / "timestamp.txt").write_text(grade_demo.corpus.TIMESTAMP)
    return dest, f"{n - len(mistakes)} correct, {len(mistakes)} blank or with a mistake"


def configured_copy(template: Path, dest: Path, sandboxed: bool) -> Path:
    """A copy of the course whose config runs nbgrader plain or sandboxed."""
    shutil.copytree(template, dest)
    config = dest / "nbgrader_config.py"
    text = config.read_text()
    if not sandboxed:
        text += PLAIN
    elif "nbgrader_sandbox" not in text:
        text += SANDBOXED
    config.write_text(text)
    return dest


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: list[str], cwd: Path) -> tuple[float, float, str, int]:
    """(wall seconds, CPU seconds, output, exit status) of one command."""
    start, cpu = time.perf_counter(), _cpu_of_children()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env=grade_demo._env(), timeout=3600)
    return (time.perf_counter() - start, _cpu_of_children() - cpu,
            proc.stdout + proc.stderr, proc.returncode)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if "Error" in ln or "error" in ln]
    return lines[-1][:120] if lines else "see its output"


def _count_autograded(course: Path) -> int:
    return len(list((course / "autograded").glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")))


def serial_run(course: Path, label: str, sandboxed: bool) -> Row:
    """One batched ``nbgrader autograde`` of the whole class."""
    seconds, cpu, log, code = _run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                                   course)
    note = "" if code == 0 else f"nbgrader exited {code}: " + _last_error(log)
    if NO_SANDBOX in log:
        note = "NO SANDBOX on this machine: limits only"
    return Row(label, seconds, _count_autograded(course), None if sandboxed else cpu, note)


def parallel_run(course: Path, label: str, jobs: int, sandboxed: bool) -> Row:
    """``python -m bplib.grading autograde`` on ``jobs`` workers."""
    seconds, cpu, log, code = _run([sys.executable, "-m", "bplib.grading", "autograde",
                                    ASSIGNMENT, "--jobs", str(jobs)], course)
    logs = "".join(p.read_text(errors="replace")
                   for p in (course / ".grading" / ASSIGNMENT).glob("*.log"))
    note = "" if code == 0 else f"exit {code}: " + _last_error(log)
    if NO_SANDBOX in logs:
        note = "NO SANDBOX on this machine: limits only"
    return Row(label, seconds, _count_autograded(course), None if sandboxed else cpu, note)


def table(rows: list[Row], reference: Row) -> str:
    head = (f"{'run':<44}{'seconds':>9}{'graded':>8}{'per minute':>12}{'speed-up':>10}"
            f"{'CPU s/sub':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = r.per_minute / reference.per_minute if reference.graded else float("nan")
        cpu = "-" if r.cpu is None else f"{r.cpu_per_submission:.2f}"
        line = (f"{r.label:<44}{r.seconds:>9.1f}{r.graded:>8}{r.per_minute:>12.1f}"
                f"{ratio:>10.2f}{cpu:>11}")
        lines.append(line + (f"   ({r.note})" if r.note else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the three runs and the ratios the issue sets targets for."""
    jobs = os.cpu_count() or 1
    sandbox = SANDBOX_CONFIG.exists()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        template, mix = make_template(Path(tmp) / "template")
        load = os.getloadavg()[0]
        print(f"{ASSIGNMENT}: {SUBMISSIONS} submissions ({mix}); {jobs} CPUs; "
              f"load average {load:.1f} at the start", flush=True)
        rows = [serial_run(configured_copy(template, Path(tmp) / "plain", False),
                           "plain nbgrader autograde, serial batch", False)]
        if sandbox:
            rows.append(serial_run(configured_copy(template, Path(tmp) / "sandboxed", True),
                                   "sandboxed nbgrader autograde, serial batch", True))
        kind = "sandboxed" if sandbox else "plain"
        rows.append(parallel_run(configured_copy(template, Path(tmp) / "parallel", sandbox),
                                 f"{kind} bplib.grading --jobs {jobs}", jobs, sandbox))
    print(table(rows, rows[0]))
    if not sandbox:
        print(f"sandboxed rows skipped: no {SANDBOX_CONFIG.name} in the repository")
    else:
        cost = rows[0].per_minute / rows[1].per_minute - 1
        print(f"sandbox cost per submission: {100 * cost:+.0f} % (target: under 20 %)")
        print(f"parallel against sandboxed serial: {rows[2].per_minute / rows[1].per_minute:.2f}x")
    print(f"{kind} parallel: {rows[-1].per_minute:.0f} submissions per minute on {jobs} CPUs "
          f"(target: at least 90 per minute on 2 cores, sandboxed)")
    bound = 60.0 * jobs / rows[0].cpu_per_submission
    print(f"plain nbgrader spends {rows[0].cpu_per_submission:.2f} CPU s per submission: at "
          f"most {bound:.0f} per minute on {jobs} idle CPUs, whatever the parallelism "
          f"(load average {os.getloadavg()[0]:.1f} now; other work lowers every rate above)")
    if sandbox:
        print("CPU of sandboxed runs is not shown: kernels in bubblewrap's PID namespace "
              "are not reaped by the command, so their CPU time is not counted")


if __name__ == "__main__":
    main()
