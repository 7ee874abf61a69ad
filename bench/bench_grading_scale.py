"""Grading a class: submissions per minute, serial nbgrader against the parallel grader.

In a throw-away course, ``ex04_backward`` is released and ``SUBMISSIONS`` students
hand it in: the instructor's solution, a blank release, one student per typical
mistake of ``tools/samples/ex04_backward/``, ``never_ending`` (a function that loops
forever and a loop at the top of a cell, ``tools/samples/never_ending/``) and
``os_exit`` (its first answer calls ``os._exit``), the rest copies of the solution.
The course's pipeline grades all of them (the loops and the dead kernel cost their
cells' points), and so must the parallel grader: its run is expected to exit 0.
Plain nbgrader (run 1) cannot grade ``os_exit``: nbgrader 0.9's ``Execute`` does not
catch the dead kernel, so that row grades one submission fewer and notes nbgrader's
exit status 1. The
course's cell timeout is cut to ``CELL_TIMEOUT`` seconds (15 in ``nbgrader_config.py``)
so that the two loops do not swamp the rate of the other submissions.
Five kinds of run, each on a fresh copy of that course, each timed from the command's
start to its end (process start-up included):

1. plain serial: one batched ``nbgrader autograde ex04_backward`` with nbgrader's
   own preprocessors and the stock ``python3`` kernel (the course's sandbox
   switched off in its config): the reference;
2. the course's pipeline without bubblewrap: the same command with
   ``nbgrader_sandbox.py`` loaded (its kernel, limits and integrity checks) but
   ``BPGRADE_SANDBOX_OFF=1``, so that the kernel starts without bubblewrap;
3. sandboxed serial: the same command, bubblewrap on;
4. sandboxed on Dask, one machine: ``python -m bpgrade autograde ex04_backward --jobs
   <CPUs>`` (a LocalCluster of one worker process per CPU), twice: on the path before
   issue #24 (``--classic``), on the fast path with every kernel started cold
   (``--cold-kernels``) and on the fast path (the default: kernels forked from each
   worker's zygote, :mod:`bpgrade.zygote`), alternating, twice each, the faster of
   each shown, so that their ratios are measured in one run;
5. sandboxed on a Dask cluster: a ``dask scheduler`` and ``<CPUs>`` ``dask worker``
   processes started beforehand (each with its own working directory, one thread,
   as on separate machines), and ``python -m bpgrade autograde ex04_backward
   --scheduler tcp://127.0.0.1:<port>`` (fast path); the cluster's start-up is not
   timed (on real machines it is started once for many runs).

Runs 2 and 3 differ only in bubblewrap, which costs little, so each is run
twice, alternating, and the faster of the two is shown. Runs 2-4 are skipped,
with a note, when the repository has no
``nbgrader_sandbox.py``. It prints seconds, submissions per minute, the speed-up
against run 1, and the CPU seconds per submission: those of every process the run
started (a ``cpuacct`` cgroup that the command joins before it starts: workers,
kernels in their sandboxes, and nothing else of a busy machine), or, where no such
cgroup can be made, the whole machine's busy time from ``/proc/stat`` (other work
counts too then: run it on an idle machine). Then the ratios the issue sets targets
for: what bubblewrap costs per submission (3 against 2; target under 20 %), the fast
path against the classic one (issue #24), and the sandboxed parallel rate and CPU
per submission (issue #24's goal: at least 150 per minute, at most 0.5 CPU s, on 2
cores). For comparison it prints the
last figure of the hand-written worker pool that the Dask grader replaced
(:data:`POOL_FIGURE`). Figures only: nothing here asserts a time.
``python -m bench.bench_grading_scale --dask-only`` runs only the three rows of 4.

Run: ``python -m bench grading_scale`` from the repository root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from bpgrade.course import make_course, tools_env
from bpgrade.kernel import ENV_OFF
from tools import grade_demo

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ex04_backward"
SUBMISSIONS = 40
CELL_TIMEOUT = 3  # seconds per cell in the bench's course (its never-ending student)
OS_EXIT = "import os\n\nos._exit(3)"  # the first answer of the os_exit student
REPEATS = 2  # runs 2 and 3 are repeated, alternating, and the faster of each is shown
SANDBOX_CONFIG = ROOT / "nbgrader_sandbox.py"
# The last run of this bench with the hand-written pool (``--jobs 2``, 2 cores, sandboxed)
# before the grader moved to Dask: submissions per minute, machine CPU s per submission.
POOL_FIGURE = (124.5, 0.89)
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
    cpu: float  # CPU seconds the machine was busy during the run
    note: str = ""
    scores: dict | None = None  # {student: {grade_id: score}}: the run's gradebook

    @property
    def per_minute(self) -> float:
        return 60.0 * self.graded / self.seconds

    @property
    def cpu_per_submission(self) -> float:
        return self.cpu / max(self.graded, 1)


def make_template(dest: Path, n: int = SUBMISSIONS) -> tuple[Path, str]:
    """Release the assignment in a new course at ``dest`` and submit ``n`` students.

    Returns the course root and a description of the mix.
    """
    course = make_course(dest, [ASSIGNMENT], ROOT,
                         extra_config=f"c.Execute.timeout = {CELL_TIMEOUT}")
    if SANDBOX_CONFIG.exists():
        shutil.copy(SANDBOX_CONFIG, dest / SANDBOX_CONFIG.name)
    course.nbgrader("release", "generate_assignment", ASSIGNMENT, "--force")
    source = nbformat.read(dest / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    release = nbformat.read(dest / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    variants = {e.student: nb for nb, e in grade_demo.corpus.variants(source, release, ASSIGNMENT)}
    os_exit = nbformat.from_dict(variants["correct"])
    next(iter(grade_demo.corpus.solution_cells(os_exit).values())).source = OS_EXIT
    variants["os_exit"] = os_exit
    mistakes = sorted(s for s in variants if s != "correct")
    names = mistakes + [f"correct_{i:02d}" for i in range(n - len(mistakes))]
    for name in names:
        folder = dest / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(variants.get(name, variants["correct"]), folder / f"{ASSIGNMENT}.ipynb")
        (folder / "timestamp.txt").write_text(grade_demo.corpus.TIMESTAMP)
    return dest, (f"{n - len(mistakes)} correct, {len(mistakes)} blank, with a mistake, "
                  f"never ending or calling os._exit")


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


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1's CPU accounting, where mounted


class CpuMeter:
    """CPU seconds of the processes a run starts, all of them (workers, kernels in their
    sandboxes): a cpuacct cgroup (v1) that the run's first process joins before it
    starts, so that every process it starts is counted and nothing else on the machine
    is. Where no such cgroup can be made, the machine's busy time (:func:`busy_cpu_seconds`,
    which counts other work too); :attr:`how` says which."""

    def __init__(self):
        self.folder: Path | None = CPUACCT / f"bench-grading-{os.getpid()}-{os.urandom(3).hex()}"
        try:
            self.folder.mkdir()
        except OSError:
            self.folder = None
        self.how = "cpuacct cgroup of the run" if self.folder else "machine busy time"

    def join(self) -> None:
        """In a child before ``exec`` (``preexec_fn``): join the group."""
        if self.folder is not None:
            with open(self.folder / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def read(self) -> float:
        if self.folder is None:
            return busy_cpu_seconds()
        return int((self.folder / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                self.folder.rmdir()


METER: CpuMeter | None = None  # set by main()


def busy_cpu_seconds() -> float:
    """CPU seconds the machine has spent outside idle and I/O wait since boot (all CPUs).

    Unlike the CPU time of a command's reaped children, this counts the kernels
    that bubblewrap runs in their own PID namespace.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _meter() -> CpuMeter:
    global METER
    if METER is None:
        METER = CpuMeter()
    return METER


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None
         ) -> tuple[float, float, str, int]:
    """(wall seconds, CPU seconds (:class:`CpuMeter`), output, exit status) of one command."""
    meter = _meter()
    start, cpu = time.perf_counter(), meter.read()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          env={**tools_env(), **(env or {})}, timeout=3600,
                          preexec_fn=meter.join)  # noqa: PLW1509 - a write, no thread
    return (time.perf_counter() - start, meter.read() - cpu,
            proc.stdout + proc.stderr, proc.returncode)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if "Error" in ln or "error" in ln]
    return lines[-1][:120] if lines else "see its output"


def _count_autograded(course: Path) -> int:
    return len(list((course / "autograded").glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")))


def serial_run(course: Path, label: str, bubblewrap: bool = True) -> Row:
    """One batched ``nbgrader autograde`` of the whole class."""
    env = {} if bubblewrap else {ENV_OFF: "1"}
    seconds, cpu, log, code = _run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT],
                                   course, env)
    graded = _count_autograded(course)
    missing = sorted({p.parent.name for p in (course / "submitted").glob(f"*/{ASSIGNMENT}")}
                     - {p.parent.parent.name for p in
                        (course / "autograded").glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")})
    note = "" if code == 0 else f"nbgrader exited {code}: " + (
        f"not graded: {', '.join(missing)}" if missing else _last_error(log))
    if bubblewrap and NO_SANDBOX in log:
        note = "NO SANDBOX on this machine: limits only"
    return Row(label, seconds, graded, cpu, note)


def _drop_bytecode() -> None:
    """Remove the bytecode of ``bpgrade`` and ``bplib`` in this checkout, as the classic
    path found them in the issue's measurement (a source checkout run with
    ``PYTHONDONTWRITEBYTECODE``); the fast path writes it
    (:func:`bpgrade.pool.compile_packages`)."""
    for package in ("bpgrade", "bplib"):
        for cache in (ROOT / package).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


PATHS = {"classic": ["--classic"], "cold": ["--cold-kernels"], "fast": []}


def parallel_run(course: Path, label: str, jobs: int, path: str = "fast") -> Row:
    """``python -m bpgrade autograde`` on ``jobs`` workers, on one of :data:`PATHS`:
    ``classic``, the path before issue #24 (with no bytecode of ``bpgrade`` and
    ``bplib`` written); ``cold``, the fast path with every kernel started cold;
    ``fast``, the fast path, its kernels forked from each worker's zygote."""
    if path == "classic":
        _drop_bytecode()
    seconds, cpu, log, code = _run([sys.executable, "-m", "bpgrade", "autograde",
                                    ASSIGNMENT, "--jobs", str(jobs), *PATHS[path]], course)
    logs = "".join(p.read_text(errors="replace")
                   for p in (course / ".grading" / ASSIGNMENT).glob("*.log"))
    note = "" if code == 0 else f"exit {code}: " + _last_error(log)
    if NO_SANDBOX in logs:
        note = "NO SANDBOX on this machine: limits only"
    from bpgrade.pool import gradebook_scores

    return Row(label, seconds, _count_autograded(course), cpu, note,
               gradebook_scores(course, ASSIGNMENT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_run(course: Path, label: str, workers: int, folder: Path) -> Row:
    """``python -m bpgrade autograde --scheduler`` on a ``dask scheduler`` and ``workers``
    ``dask worker`` processes started (and awaited) before the clock starts."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    env = {**tools_env(), "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
    meter = _meter()
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], cwd=folder, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=meter.join)]  # noqa: PLW1509
    try:
        for i in range(workers):
            workdir = folder / f"worker{i}"
            workdir.mkdir()
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                 "--memory-limit", "0", "--local-directory", str(workdir)],
                cwd=workdir, env=env, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=meter.join))  # noqa: PLW1509
        with Client(address, timeout=120) as client:
            client.wait_for_workers(workers, timeout=300)
        seconds, cpu, log, code = _run([sys.executable, "-m", "bpgrade", "autograde",
                                        ASSIGNMENT, "--scheduler", address], course)
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    note = "" if code == 0 else f"exit {code}: " + _last_error(log)
    return Row(label, seconds, _count_autograded(course), cpu, note)


def table(rows: list[Row], reference: Row) -> str:
    width = max(48, *(len(r.label) + 2 for r in rows))
    head = (f"{'run':<{width}}{'seconds':>9}{'graded':>8}{'per minute':>12}{'speed-up':>10}"
            f"{'CPU s/sub':>11}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = r.per_minute / reference.per_minute if reference.graded else float("nan")
        line = (f"{r.label:<{width}}{r.seconds:>9.1f}{r.graded:>8}{r.per_minute:>12.1f}"
                f"{ratio:>10.2f}{r.cpu_per_submission:>11.2f}")
        lines.append(line + (f"   ({r.note})" if r.note else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the runs and the ratios the issue sets targets for.

    ``argv`` (``python -m bench.bench_grading_scale --dask-only``): only the three Dask
    LocalCluster rows, classic, cold kernels and fast, side by side (a quick check of
    the fast path);
    ``python -m bench grading_scale`` runs every row.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.bench_grading_scale")
    parser.add_argument("--dask-only", action="store_true",
                        help="only the LocalCluster rows: classic, cold kernels, fast")
    args = parser.parse_args(argv or [])
    jobs = os.cpu_count() or 1
    sandbox = SANDBOX_CONFIG.exists()
    meter = _meter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
            template, mix = make_template(Path(tmp) / "template")
            load = os.getloadavg()[0]
            print(f"{ASSIGNMENT}: {SUBMISSIONS} submissions ({mix}); {jobs} CPUs; "
                  f"load average {load:.1f} at the start; CPU measured by {meter.how}",
                  flush=True)

            def course(name: str, sandboxed: bool) -> Path:
                return configured_copy(template, Path(tmp) / name, sandboxed)

            rows = [] if args.dask_only else [
                serial_run(course("plain", False), "plain nbgrader autograde, serial batch")]
            if sandbox and not args.dask_only:  # alternate, twice each, keep the faster
                runs: dict[bool, list[Row]] = {False: [], True: []}
                for i in range(REPEATS):
                    for bwrap in (False, True):
                        runs[bwrap].append(serial_run(
                            course(f"bwrap-{bwrap}-{i}", True),
                            "sandboxed nbgrader autograde, serial batch" if bwrap else
                            "course pipeline without bubblewrap, serial", bwrap))
                rows += [min(runs[False], key=lambda r: r.seconds),
                         min(runs[True], key=lambda r: r.seconds)]
            kind = "sandboxed" if sandbox else "plain"
            # The path before issue #24 (--classic), the fast path with cold kernels
            # (--cold-kernels) and the fast path (kernels forked from a zygote),
            # alternating in the same run, twice each; the faster of each is shown.
            dask: dict[str, list[Row]] = {path: [] for path in PATHS}
            for i in range(REPEATS):
                for path in PATHS:
                    dask[path].append(parallel_run(
                        course(f"parallel-{path}-{i}", sandbox),
                        f"{kind} bpgrade --jobs {jobs} (LocalCluster), "
                        f"{'fast, cold kernels' if path == 'cold' else path}", jobs, path))
            old, cold, new = (min(dask[p], key=lambda r: r.seconds) for p in PATHS)
            rows += [old, cold, new]
            if not args.dask_only:
                folder = Path(tmp) / "cluster-processes"  # not "cluster": the course copy
                folder.mkdir()
                rows.append(cluster_run(course("cluster", sandbox),
                                        f"{kind} bpgrade --scheduler, {jobs} dask workers, "
                                        "fast", jobs, folder))
    finally:
        meter.close()
    print(table(rows, rows[0]))
    if not sandbox:
        print(f"sandboxed rows skipped: no {SANDBOX_CONFIG.name} in the repository")
    elif not args.dask_only:
        cost = rows[1].per_minute / rows[2].per_minute - 1
        print(f"bubblewrap's cost per submission: {100 * cost:+.0f} % (target: under 20 %); "
              f"the whole sandboxed pipeline against plain nbgrader: "
              f"{100 * (rows[0].per_minute / rows[2].per_minute - 1):+.0f} %")
        print(f"Dask on one machine (fast path) against sandboxed serial: "
              f"{new.per_minute / rows[2].per_minute:.2f}x")
    def cpu(runs: list[Row]) -> float:  # CPU per submission over every run of a path
        return sum(r.cpu for r in runs) / max(sum(r.graded for r in runs), 1)

    print(f"fast path against the classic path (the same run, LocalCluster, {jobs} "
          f"workers, {REPEATS} runs each, alternating): {new.per_minute / old.per_minute:.2f}x "
          f"the submissions per minute (faster runs), "
          f"{cpu(dask['fast']) / cpu(dask['classic']):.2f}x the CPU per submission (all "
          f"runs: {cpu(dask['classic']):.2f} s classic, {cpu(dask['fast']):.2f} s fast); "
          "per minute, " + ", ".join(f"{p} {[round(r.per_minute, 1) for r in dask[p]]}"
                                    for p in PATHS))
    reference = dask["classic"][0].scores
    differ = sorted({f"{r.label} ({student})" for runs in dask.values() for r in runs
                     for student in set(reference) | set(r.scores)
                     if r.scores.get(student) != reference.get(student)})
    print(f"grades, cell by cell, of every LocalCluster run against the first classic run "
          f"({sum(len(v) for v in reference.values())} cells of {len(reference)} students): "
          + ("identical" if not differ else "DIFFERENT: " + "; ".join(differ)))
    print(f"the zygote (fast path, kernels forked) against cold kernels (fast path, "
          f"--cold-kernels; the same run): {new.per_minute / cold.per_minute:.2f}x the "
          f"submissions per minute (faster runs), {cpu(dask['fast']) / cpu(dask['cold']):.2f}x "
          f"the CPU per submission (all runs: {cpu(dask['cold']):.2f} s cold, "
          f"{cpu(dask['fast']):.2f} s forked)")
    pool_rate, pool_cpu = POOL_FIGURE
    print(f"Dask LocalCluster (fast) against the hand-written pool's last figure ({pool_rate} "
          f"per minute, {pool_cpu} CPU s each, --jobs 2 on 2 cores): "
          f"{new.per_minute / pool_rate:.2f}x")
    print(f"{kind} parallel, fast path: {new.per_minute:.0f} submissions per minute on {jobs} "
          f"CPUs, {new.cpu_per_submission:.2f} CPU s per submission (issue #24's goal: at "
          "least 150 per minute and at most 0.5 CPU s, sandboxed, on 2 cores): at most "
          f"{60.0 * jobs / new.cpu_per_submission:.0f} per minute on {jobs} idle CPUs "
          f"(load average {os.getloadavg()[0]:.1f} now; other work lowers every rate above"
          + (")" if meter.folder else " and raises every CPU figure)"))


if __name__ == "__main__":
    main(sys.argv[1:])
