"""Cost of autograding: nbgrader's batched autograde against a bare nbclient run.

For each assignment, in a throw-away course: release it, submit the solution as
``COPIES`` students, and time one ``nbgrader autograde <assignment>`` call (one
batch). Beside it, execute the same filled-in notebook ``BARE_RUNS`` times with
nbclient (a fresh kernel each time, the way autograde runs each submission) and
take the median. The ratio is

    (autograde seconds / COPIES) / (bare seconds per run)

i.e. what nbgrader's bookkeeping (sanitising, overwriting cells, the gradebook,
process start-up shared by the batch) costs on top of just running the notebook.
Figures only: nothing here asserts a time.

Run: ``python -m bench autograde [assignment ...]`` from the repository root.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]
COPIES = 20
BARE_RUNS = 3


def _submit_copies(course, assignment: str, corpus, copies: int) -> nbformat.NotebookNode:
    """Write ``copies`` students who all hand in the solution; return that notebook."""
    source = nbformat.read(course.root / "solutions" / assignment / f"{assignment}.ipynb", 4)
    release = nbformat.read(course.root / "exercises" / assignment / f"{assignment}.ipynb", 4)
    nb = corpus.correct_notebook(source, release)
    for i in range(copies):
        dest = course.root / "submitted" / f"student{i:02d}" / assignment
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{assignment}.ipynb")
    return nb


def bare_seconds(nb: nbformat.NotebookNode, cwd: Path, runs: int = BARE_RUNS) -> float:
    """Median wall time of executing ``nb`` with nbclient in a fresh kernel (start-up included)."""
    from nbclient import NotebookClient

    times = []
    for _ in range(runs):
        copy = nbformat.from_dict(nb)
        start = time.perf_counter()
        client = NotebookClient(copy, timeout=60, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(cwd)}})
        client.execute(stderr=subprocess.DEVNULL)  # no kernel start-up warnings
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_assignment(assignment: str, copies: int = COPIES) -> tuple[float, float]:
    """(autograde seconds per submission in a batch of ``copies``, bare seconds per run)."""
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        course = grade_demo.make_course(Path(tmp) / "course", [assignment])
        grade_demo.release(course)
        nb = _submit_copies(course, assignment, grade_demo.corpus, copies)
        course.nbgrader("autograde", "autograde", assignment, "--force")
        batched = course.seconds["autograde"] / copies
        bare = bare_seconds(nb, course.root / "exercises" / assignment)
    return batched, bare


def main(argv: list[str] | None = None) -> None:
    """Print, per assignment, seconds per submission batched vs bare, and their ratio."""
    given = argv if argv is not None else sys.argv[1:]  # `python -m bench autograde`: a filter
    names = [n for n in given if n.startswith("ex")] or grade_demo.sampled_assignments()
    print(f"{'assignment':<18}{'autograde s/sub':>16}{'nbclient s/run':>16}{'ratio':>8}"
          f"   (batch of {COPIES}, median of {BARE_RUNS} bare runs)")
    for a in names:
        batched, bare = bench_assignment(a)
        print(f"{a:<18}{batched:>16.2f}{bare:>16.2f}{batched / bare:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
