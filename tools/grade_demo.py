"""The instructor's pipeline, end to end, on the sample submissions: ``make grade-demo``.

In a throw-away course (a temporary folder holding a copy of ``nbgrader_config.py``
and ``solutions/``) it runs what an instructor runs:

1. ``nbgrader generate_assignment`` for every assignment (the release, ``exercises/``);
2. fills ``submitted/`` with the sample students built from that release by
   ``tools/samples`` (correct, blank, one per typical mistake, never-ending);
3. ``nbgrader autograde <assignment>``, one batched call per assignment, or with
   ``--jobs N`` the class grader (``python -m bpgrade autograde <assignment>``) of every
   assignment at once on one Dask cluster of N workers;
4. ``nbgrader generate_feedback <assignment>``;
5. ``nbgrader export`` (``grades.csv``),

then prints the scores per student and assignment, compares every test cell's
grade with what the sample was built to score, and with the grade of the same sample
in the exercise's other language (``ex04_backward_zh`` is graded beside
``ex04_backward``, on the same mistakes), and checks that no feedback file shows
hidden-test source. It exits 1 if anything disagrees.

Usage: ``python -m tools.grade_demo [--keep DIR] [--jobs N] [assignment ...]`` (in the course
root)
"""

from __future__ import annotations

import argparse
import csv
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bpgrade import language
from bpgrade.course import Course, tools_env
from bpgrade.course import make_course as _make_course
from tools import samples as corpus

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]


def assignments(root: Path = ROOT) -> list[str]:
    """Assignments whose source notebook exists: ``solutions/<a>/<a>.ipynb``."""
    return sorted(p.parent.name for p in (root / "solutions").glob("*/*.ipynb")
                  if p.stem == p.parent.name)


def sampled_assignments(root: Path = ROOT) -> list[str]:
    """Assignments with a folder of mistake snippets in ``tools/samples/``: the default.

    The others can still be named on the command line (they get the correct, blank and
    never-ending students only).
    """
    return [a for a in assignments(root) if (corpus.HERE / language.base_assignment(a)).is_dir()]


def make_course(dest: Path, names: list[str], source_root: Path = ROOT,
                extra_config: str = "") -> Course:
    """A throw-away course with the course's configuration and the named assignments
    (``extra_config`` is added to its ``nbgrader_config.py``)."""
    return _make_course(dest, names, source_root, extra_config)


def release(course: Course) -> None:
    """``nbgrader generate_assignment`` of every assignment in the course, in one call.

    The course holds only the chosen assignments, so the glob ``*`` names exactly them.
    """
    course.nbgrader("release (all)", "generate_assignment", "*", "--force")


def submit_samples(course: Course) -> None:
    """Write the sample students into ``submitted/`` and keep their expected grades."""
    course.expected = corpus.build(course.root / "solutions", course.root / "exercises",
                                   course.root / "submitted", course.assignments)


def autograde(course: Course) -> None:
    """One batched ``nbgrader autograde`` per assignment (every student at once)."""
    for a in course.assignments:
        course.nbgrader(f"autograde {a}", "autograde", a, "--force")


def autograde_on_dask(course: Course, jobs: int, timeout: float = 1800) -> None:
    """Every assignment graded at once by the class grader, ``python -m bpgrade autograde
    <assignment> --scheduler ADDRESS``, one process per assignment, all on one Dask
    LocalCluster of ``jobs`` workers: a student's cells that run into their time limit
    wait while the rest of the class is graded, instead of holding up a serial batch.

    The wall time of the whole step is ``course.seconds["autograde"]``, each assignment's
    (from the common start to its grader's exit) ``autograde <a>``; each grader's output
    is in ``course.logs``. Raises if a grader exits non-zero (a student not graded) or
    is still running after ``timeout`` seconds (it is then killed)."""
    from bpgrade.pool import dask_client

    start = time.perf_counter()
    with dask_client(None, jobs) as client:
        status = grade_at_once(course, client.scheduler.address, timeout)
    course.seconds["autograde"] = time.perf_counter() - start
    failed = [f"bpgrade autograde {a} exited {code}:\n" + course.logs[f"autograde {a}"][-3000:]
              for a, code in status.items() if code != 0]
    if failed:
        raise RuntimeError("\n".join(failed))


def grade_at_once(course: Course, scheduler: str, timeout: float = 1800) -> dict[str, int]:
    """``python -m bpgrade autograde <assignment> --scheduler SCHEDULER`` for every
    assignment of the course, all started at once; return each grader's exit status
    (``-9`` when it was still running after ``timeout`` seconds and was killed).

    Each assignment's wall time (from the common start to its grader's exit) is
    ``course.seconds["autograde <a>"]``, its grader's output ``course.logs["autograde <a>"]``."""
    add_students(course)
    logs = Path(tempfile.mkdtemp(prefix="autograde-logs-"))
    start = time.perf_counter()
    procs = {}
    for a in course.assignments:
        with open(logs / f"{a}.log", "wb") as out:
            procs[a] = subprocess.Popen(
                [sys.executable, "-m", "bpgrade", "autograde", a, "--scheduler", scheduler],
                cwd=course.root, env=tools_env(), stdout=out, stderr=subprocess.STDOUT)
    while running := [a for a in procs if f"autograde {a}" not in course.seconds]:
        for a in running:
            if procs[a].poll() is not None:
                course.seconds[f"autograde {a}"] = time.perf_counter() - start
            elif time.perf_counter() - start > timeout:
                procs[a].kill()
                procs[a].wait()
                course.seconds[f"autograde {a}"] = time.perf_counter() - start
        time.sleep(0.2)
    for a in procs:
        course.logs[f"autograde {a}"] = (logs / f"{a}.log").read_text(errors="replace")
    shutil.rmtree(logs, ignore_errors=True)
    return {a: proc.returncode for a, proc in procs.items()}


def add_students(course: Course) -> None:
    """Every student with a submission of one of the course's assignments, added to its
    gradebook (as ``nbgrader db student add`` does) before the graders of
    :func:`grade_at_once` start: each grader adds a student the first time it saves one
    of theirs, and two graders of one class, started together, both found ``blank``
    missing and the second insert failed (``UNIQUE constraint failed: student.id``)."""
    from nbgrader.api import Gradebook

    from bpgrade.course import tools_on_path
    from bpgrade.pool import course_settings, submitted_students, with_busy_timeout

    url, course_id = course_settings(course.root)
    students = sorted({s for a in course.assignments for s in submitted_students(course.root, a)})
    with tools_on_path(), Gradebook(with_busy_timeout(url), course_id) as gb:
        for student in students:
            gb.update_or_create_student(student)


def feedback(course: Course) -> None:
    """``nbgrader generate_feedback`` of every assignment in one call, with the course's config."""
    course.nbgrader("feedback (all)", "generate_feedback", "*", "--force")


def export(course: Course) -> list[dict[str, str]]:
    """``nbgrader export`` to ``grades.csv``; return its rows."""
    course.nbgrader("export", "export", "--to", "grades.csv")
    with open(course.root / "grades.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def run_all(course: Course, jobs: int | None = None) -> list[dict[str, str]]:
    """Release, submit, autograde (nbgrader's batch per assignment, or with ``jobs`` the
    class grader on Dask: :func:`autograde_on_dask`), feedback and export; return the CSV
    rows."""
    release(course)
    submit_samples(course)
    if jobs:
        autograde_on_dask(course, jobs)
    else:
        autograde(course)
    feedback(course)
    return export(course)


# ------------------------------------------------------------------------- reading back


def cell_grades(course: Course) -> dict[tuple[str, str], dict[str, float]]:
    """``{(assignment, student): {test grade_id: score}}`` from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        for e in course.expected:
            nb = gb.find_submission_notebook(e.assignment, e.assignment, e.student)
            out[(e.assignment, e.student)] = {g.name: g.score for g in nb.grades
                                              if g.cell.cell_type == "code"}
    return out


def feedback_text(course: Course, assignment: str, student: str) -> str:
    """The visible text of a feedback HTML file: tags removed, entities decoded."""
    path = course.root / "feedback" / student / assignment / f"{assignment}.html"
    raw = path.read_text()
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def hidden_lines(course: Course, assignment: str) -> list[str]:
    """The non-blank lines inside the hidden-test regions of an assignment's source."""
    import nbformat

    nb = nbformat.read(course.root / "solutions" / assignment / f"{assignment}.ipynb", 4)
    lines = []
    for cell in corpus.test_cells(nb).values():
        inside = False
        for line in cell.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def leaks(course: Course) -> list[str]:
    """Hidden-test lines found in any feedback file, as ``assignment/student: line``."""
    found = []
    for a in course.assignments:
        secret = hidden_lines(course, a)
        for e in (e for e in course.expected if e.assignment == a):
            raw = (course.root / "feedback" / e.student / a / f"{a}.html").read_text()
            text = feedback_text(course, a, e.student)
            found += [f"{a}/{e.student}: {s}" for s in secret if s in text or s in raw]
            if "HIDDEN TESTS" in text:
                found.append(f"{a}/{e.student}: a hidden-test delimiter")
    return found


def mismatches(course: Course) -> list[str]:
    """Test cells whose grade differs from what the sample was built to score."""
    grades, bad = cell_grades(course), []
    for e in course.expected:
        for gid, score in grades[(e.assignment, e.student)].items():
            want = 0.0 if gid in e.failing else e.points.get(gid, 0.0)
            if score != want:
                bad.append(f"{e.assignment}/{e.student}/{gid}: got {score}, expected {want}")
    return bad


def language_mismatches(course: Course) -> list[str]:
    """Test cells whose grade in a translated exercise (``ex04_backward_zh``) differs from
    the same sample student's in the English one: the languages must grade alike."""
    grades, bad = cell_grades(course), []
    for (a, student), cells in sorted(grades.items()):
        base = language.base_assignment(a)
        if base != a and (base, student) in grades and cells != grades[(base, student)]:
            english = grades[(base, student)]
            bad += [f"{a}/{student}/{gid}: {cells.get(gid)}, in {base} {english.get(gid)}"
                    for gid in sorted(set(cells) | set(english))
                    if cells.get(gid) != english.get(gid)]
    return bad


def score_table(rows: list[dict[str, str]], names: list[str]) -> str:
    """Students down, assignments across; ``score/max`` or ``-`` where nothing was submitted."""
    cells = {(r["student_id"], r["assignment"]): r for r in rows}
    students = sorted({r["student_id"] for r in rows}, key=lambda s: (s.startswith("wrong"), s))
    width = max(len(s) for s in students) + 2
    head = "student".ljust(width) + "".join(a.rjust(16) for a in names)
    lines = [head, "-" * len(head)]
    for s in students:
        row = s.ljust(width)
        for a in names:
            r = cells.get((s, a))
            cell = "-" if not r or not r["timestamp"] else (
                f"{float(r['score']):g}/{float(r['max_score']):g}")
            row += cell.rjust(16)
        lines.append(row)
    return "\n".join(lines)


def report(course: Course, rows: list[dict[str, str]]) -> int:
    """Print the table, the timings and the checks; return the exit status."""
    print(score_table(rows, course.assignments))
    print("\nsample students:")
    for e in course.expected:
        if e.student.startswith("wrong") or e.student == "never_ending":
            print(f"  {e.assignment}/{e.student}: {e.description}")
    print("\nwall time per step (s):")
    for step, sec in course.seconds.items():
        print(f"  {step:<28}{sec:7.1f}")
    bad, leaked, languages = mismatches(course), leaks(course), language_mismatches(course)
    for line in bad:
        print("MISMATCH", line)
    for line in languages:
        print("LANGUAGES DIFFER", line)
    for line in leaked:
        print("LEAK", line)
    print(f"\n{len(course.expected)} submissions graded; {len(bad)} grade mismatch(es); "
          f"{len(languages)} difference(s) between the languages; "
          f"{len(leaked)} hidden-test line(s) in feedback.")
    return 1 if bad or leaked or languages else 0


def main(argv: list[str] | None = None) -> int:
    """Build a throw-away course, run the whole pipeline, print the scores."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every one in solutions/")
    parser.add_argument("--keep", type=Path, help="build the course here and keep it")
    parser.add_argument("--source", type=Path, default=ROOT, help="course root to copy from")
    parser.add_argument("--jobs", type=int, help="grade with the class grader (bpgrade "
                        "autograde) on a Dask cluster of this many workers")
    args = parser.parse_args(argv)
    names = args.assignments or sampled_assignments(args.source)
    if not names:
        print(f"no assignment with samples in {args.source / 'solutions'}", file=sys.stderr)
        return 1
    skipped = sorted(set(assignments(args.source)) - set(names))
    if skipped and not args.assignments:
        print(f"not graded (no tools/samples/<assignment>/ folder): {' '.join(skipped)}")
    with tempfile.TemporaryDirectory(prefix="grade-demo-") as tmp:
        where = args.keep or Path(tmp) / "course"
        course = make_course(where, names, args.source)
        print(f"course: {where}  assignments: {' '.join(names)}", flush=True)
        start = time.perf_counter()
        rows = run_all(course, args.jobs)
        print(f"pipeline finished in {time.perf_counter() - start:.0f} s\n")
        return report(course, rows)


if __name__ == "__main__":
    sys.exit(main())
