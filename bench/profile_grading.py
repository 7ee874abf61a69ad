"""Where a sandboxed submission's CPU goes: one worker grading a class, profiled.

    python -m bench.profile_grading [--students 40] [--fast [--cold-kernels]] [--top 25]

The class is the one of ``python -m bench grading_scale`` (``ex04_backward``: the
solution, a blank release, one student per typical mistake, a never-ending one, one
that calls ``os._exit``, the rest copies of the solution). It is graded in this
process with the very functions a Dask worker and the client run
(:func:`bpgrade.pool.grade_task`, then :meth:`bpgrade.pool.Importer.save`), one
student after another, without Dask's own messages; ``--fast`` grades on the fast
path (what ``python -m bpgrade autograde`` does: its kernels forked from a zygote,
:mod:`bpgrade.zygote`; with ``--cold-kernels`` started cold, as
``--cold-kernels`` of ``autograde`` does), otherwise on the path of the issue's first
measurement (``--classic``). The zygote's processes are told apart by the names they
give themselves (``/proc/<pid>/comm``): the zygote (its imports, once per pass), its
minders, the kernels it forks, and the holder bubblewrap runs around each of them.

What is measured, and how:

* **the whole process tree's CPU**, exactly: the script moves itself into a
  ``cpuacct`` cgroup of its own (cgroup v1, where one is mounted and writable) and
  every process it starts, sandboxed kernels included, is counted there;
* **each process's CPU**: a thread reads ``/proc/<pid>/stat`` of every descendant
  every 10 ms (a process is counted at its last reading, so a short-lived one may
  lose up to 10 ms), sorted by what it is: the sandbox launcher (``python -m
  bpgrade kernel``: its interpreter, its cgroup set-up and tear-down), bubblewrap,
  the kernel;
* **the kernel's start-up against its cells**: the kernel's CPU is read when
  nbclient has it ready (before the first cell), and around every cell: solution
  cells (the student's code) apart from test cells (the course's checks calling
  it), and the test cells once more without ``never_ending``'s (its function loops
  in a test cell until the cell's timeout: CPU that depends on the machine's load,
  not on the checks);
* **the worker's and the client's own Python**, by ``cProfile`` with a CPU clock
  (``time.process_time``) in a second, identical pass; cProfile slows what it
  measures, so its shares are scaled to the CPU of the first, unprofiled pass;
* **the kernel's start-up, split**: the interpreter, ``import bpgrade.checks``
  (numpy, bplib), ``import ipykernel``, timed in fresh interpreters outside the
  sandbox (median of five).

It prints a table of CPU seconds per submission. Figures only, no assertion.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPUACCT = Path("/sys/fs/cgroup/cpuacct")
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ process CPU


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (not its children), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


ZYGOTE_KINDS = {"bpgrade-kernel": "kernel", "bpgrade-zygote": "zygote",
                "bpgrade-minder": "minder"}  # the names bpgrade.zygote gives its processes


def kind_of(cmdline: str, comm: str = "") -> str:
    """What a descendant process is, from its name (``/proc/<pid>/comm``: the zygote's
    processes name themselves) and its command line."""
    if comm in ZYGOTE_KINDS:
        return ZYGOTE_KINDS[comm]
    if cmdline.startswith(("bwrap", "/usr/bin/bwrap")):
        return "bwrap"
    if "bpgrade kernel" in cmdline:
        return "launcher"
    if "debugpy" in cmdline or "ipykernel" in cmdline:
        return "kernel"
    if cmdline.split()[:1] == ["cat"] or cmdline.rstrip().endswith("-- cat"):
        return "holder"  # what bubblewrap runs around a kernel forked from the zygote
    if "setpriv" in cmdline:
        return "kernel"  # setpriv execs the kernel: the same process
    return "other: " + cmdline[:60]


class Poller(threading.Thread):
    """Reads the CPU of every descendant of this process every ``interval`` seconds."""

    def __init__(self, interval: float = 0.01):
        super().__init__(daemon=True)
        self.interval, self.stop_flag = interval, threading.Event()
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (kind, last CPU reading)
        self.own = 0.0  # CPU this thread used

    def descendants(self) -> list[int]:
        """This process's descendants, from ``/proc/<pid>/task/<tid>/children``."""
        out, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        kids = [int(c) for c in f.read().split()]
                    out += kids
                    todo += kids
        return out

    def run(self) -> None:
        start = time.thread_time()
        while not self.stop_flag.wait(self.interval):
            for pid in self.descendants():
                cpu = proc_cpu(pid)
                if cpu is not None:  # the command line again: a fork may have exec'd since
                    kind = kind_of(_cmdline(pid), _comm(pid))
                    if kind.startswith("other") and pid in self.seen:
                        kind = self.seen[pid][0]  # a zombie's empty command line
                    self.seen[pid] = (kind, cpu)
        self.own = time.thread_time() - start

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for kind, cpu in self.seen.values():
            out[kind] += cpu
        return dict(out)

    def stop(self) -> None:
        self.stop_flag.set()
        self.join()


@contextlib.contextmanager
def cpuacct_group():
    """Move this process (and so every process it starts) into a new cpuacct cgroup;
    yield a function that returns the group's CPU seconds, or None where there is none."""
    folder = CPUACCT / f"bpgrade-profile-{os.getpid()}"
    try:
        before = (CPUACCT / "cgroup.procs").exists() and open(
            "/proc/self/cgroup").read()
        folder.mkdir()
        (folder / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        yield lambda: None
        return
    try:
        yield lambda: int((folder / "cpuacct.usage").read_text()) / 1e9
    finally:
        parent = next((line.split(":", 2)[2] for line in (before or "").splitlines()
                       if line.split(":")[1].split(",").count("cpuacct")), "/")
        with contextlib.suppress(OSError):
            (CPUACCT / parent.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))
        with contextlib.suppress(OSError):
            folder.rmdir()


# ------------------------------------------------------------------ kernel hooks


class KernelClock:
    """The kernel's CPU when it is ready and around each cell, by cell kind."""

    def __init__(self):
        self.ready = 0.0  # CPU of the kernel process when nbclient had it ready
        self.cells: dict[str, float] = defaultdict(float)  # "solution"/"tests"/"other"
        self.student: dict[str, float] = defaultdict(float)  # student -> CPU of its cells
        self.by: dict[tuple[str, str], float] = defaultdict(float)  # (student, kind) -> CPU
        self.kernels = 0
        self._pid: int | None = None
        self._at: float | None = None

    def kernel_pid(self, executor) -> int | None:
        process = getattr(getattr(executor.km, "provisioner", None), "process", None)
        if process is None:
            return None
        from bpgrade import zygote

        if executor.zygote and zygote._ZYGOTES:  # the newest kernel a zygote forked
            kernels = [pid for z in zygote._ZYGOTES.values() for pid in _tree(z.proc.pid)
                       if _comm(pid) == "bpgrade-kernel"]
            return max(kernels, key=_started, default=None)
        todo, found = [process.pid], None
        while todo:  # the launcher's descendants: bwrap, its init, the kernel
            pid = todo.pop()
            if kind_of(_cmdline(pid)) == "kernel":
                found = pid
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    todo += [int(c) for c in
                             open(f"/proc/{pid}/task/{task}/children").read().split()]
        return found

    def install(self) -> None:
        from jupyter_core.utils import run_sync
        from nbgrader import utils

        from bpgrade.nbgrader_plugins import SandboxedExecute

        clock, start_client = self, SandboxedExecute.async_start_new_kernel_client
        execute_cell = SandboxedExecute.async_execute_cell

        async def started(executor):
            kc = await start_client(executor)
            clock._pid = clock.kernel_pid(executor)
            clock.kernels += 1
            clock.ready += (proc_cpu(clock._pid) or 0.0) if clock._pid else 0.0
            return kc

        async def cell_run(executor, cell, cell_index, *args, **kwargs):
            before = proc_cpu(clock._pid) if clock._pid else None
            try:
                return await execute_cell(executor, cell, cell_index, *args, **kwargs)
            finally:
                after = proc_cpu(clock._pid) if clock._pid else None
                if before is not None and after is not None:
                    kind = ("solution" if utils.is_solution(cell) else
                            "tests" if utils.is_grade(cell) else "other")
                    clock.cells[kind] += after - before
                    student = executor.resources.get("nbgrader", {}).get("student", "?")
                    clock.student[student] += after - before
                    clock.by[student, kind] += after - before

        SandboxedExecute.async_start_new_kernel_client = started
        SandboxedExecute.start_new_kernel_client = run_sync(started)
        SandboxedExecute.async_execute_cell = cell_run
        SandboxedExecute.execute_cell = run_sync(cell_run)


def _tree(pid: int) -> list[int]:
    """``pid``'s descendants."""
    out, todo = [], [pid]
    while todo:
        with contextlib.suppress(OSError):
            p = todo.pop()
            for task in os.listdir(f"/proc/{p}/task"):
                kids = [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
                out += kids
                todo += kids
    return out


def _started(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    return int(data[data.rindex(b")") + 2:].split()[19])


# ------------------------------------------------------------------ the class


CLIENT_WALL: list[float] = []  # wall seconds of the client's writes, per pass


def grade_class(template: Path, folder: Path, profile: cProfile.Profile | None,
                fast: bool, zygote: bool = True) -> tuple[float, float, int]:
    """Grade every student of a copy of ``template`` in this process, as the workers and
    the client do; return (worker CPU, client CPU, students) of this thread."""
    import shutil

    from bpgrade import pool
    from bpgrade.course import tools_on_path

    course = folder / "course"
    shutil.copytree(template, course)
    pool._worker_folder = lambda: folder  # the private course, where a Dask worker keeps it
    if fast:  # what grade_class does on the fast path
        pool.compile_packages()
    else:  # as the issue measured it: a checkout without the packages' bytecode
        from bench.bench_grading_scale import _drop_bytecode

        _drop_bytecode()
    assignment = "ex04_backward"
    students = pool.submitted_students(course, assignment)
    url, course_id = pool.course_settings(course)
    importer = pool.Importer(course, assignment, pool.with_busy_timeout(url), course_id)
    importer.one_transaction = fast
    files = pool.course_files(course, assignment)
    worker = client = 0.0
    old_cwd = os.getcwd()
    os.chdir(folder)
    results = []
    try:
        with tools_on_path():
            for student in students:
                task = pool.make_task(course, assignment, student, files, 600, fast, zygote)
                t = time.process_time()
                if profile:
                    profile.enable()
                result = pool.grade_task(task)
                if profile:
                    profile.disable()
                worker += time.process_time() - t
                results.append((student, result))
            t, wall = time.process_time(), time.perf_counter()
            if profile:
                profile.enable()
            with pool.nbgrader_reuse({}, keep=False, fast=fast):
                for student, result in results:
                    if result["outcome"]["status"] == "graded":
                        importer.save(student, result)
            if profile:
                profile.disable()
            client += time.process_time() - t
            CLIENT_WALL.append(time.perf_counter() - wall)
    finally:
        os.chdir(old_cwd)
        pool._PRIVATE.clear()
        from bpgrade import zygote as zygotes

        zygotes.stop_all()  # the next pass starts its own, as a new worker would
    return worker, client, len(students)


def groups() -> list[tuple[str, object]]:
    """(label, function) of the inclusive costs shown, in order."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert.preprocessors import ExecutePreprocessor
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import BaseConverter
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades

    from bpgrade import nbgrader_plugins as plugins
    from bpgrade import pool

    return [
        ("worker: one student (pool._grade_in)", pool._grade_in),
        ("  private course and app (once per worker)", pool._private_course),
        ("  nbgrader Autograde (converter, all of it)", BaseConverter.start),
        ("    converter set-up (BaseConverter.__init__)", BaseConverter.__init__),
        ("    init_assignment (gradebook: student, submission)", Autograde.init_assignment),
        ("    RepairNotebook", plugins.RepairNotebook.preprocess),
        ("    CheckIntegrity", plugins.CheckIntegrity.preprocess),
        ("    SanitizeNotebook (both passes)", plugins.SanitizeNotebook.preprocess),
        ("    SandboxedExecute (client side of the kernel)", plugins.SandboxedExecute.preprocess),
        ("      start the kernel and wait till ready", NotebookClient.async_start_new_kernel),
        ("      run the cells (client side)", ExecutePreprocessor.preprocess_cell),
        ("    SaveAutoGrades (both sides)", SaveAutoGrades.preprocess),
        ("    AssignLatePenalties (both sides)", AssignLatePenalties.preprocess),
        ("  notebook validation (nbformat.validate)", nbformat.validate),
        ("  notebook read (nbformat.read)", nbformat.read),
        ("  notebook write (nbformat.write)", nbformat.write),
        ("  Gradebook() opened (nbgrader.api)", Gradebook.__init__),
        ("  result: the autograded files (pool._tree)", pool._tree),
        ("client: Importer.save (gradebook writes)", pool.Importer.save),
    ]


def inclusive(stats: pstats.Stats, function) -> float:
    """Cumulative time of ``function`` in ``stats`` (outermost calls only)."""
    code = getattr(function, "__code__", None) or function.__wrapped__.__code__
    key = (code.co_filename, code.co_firstlineno, code.co_name)
    entry = stats.stats.get(key)
    return entry[3] if entry else 0.0


BUCKETS = [  # exclusive time by the file a function lives in
    ("sqlalchemy / sqlite (gradebooks)", ("sqlalchemy/", "sqlite3/", "nbgrader/api.py")),
    ("JSON schema / notebook validation", ("jsonschema", "nbformat/validator", "referencing/",
                                           "fastjsonschema", "rpds")),
    ("nbformat / json (read, write, copy)", ("nbformat/", "json/")),
    ("kernel protocol (zmq, jupyter_client, asyncio)", ("zmq/", "jupyter_client/",
                                                        "asyncio/", "nbclient/", "tornado/")),
    ("traitlets / configuration", ("traitlets/",)),
    ("nbgrader (converters, preprocessors, utils)", ("nbgrader/",)),
    ("nbconvert", ("nbconvert/",)),
    ("bpgrade (plug-ins, pool, integrity, sanitize)", ("bpgrade/",)),
    ("subprocess, os, shutil, pathlib", ("subprocess.py", "shutil.py", "pathlib.py", "os.py",
                                         "<built-in method posix", "<built-in method _posix")),
    ("bleach / html5lib (sanitize)", ("bleach/", "html5lib/", "tinycss2")),
    ("logging", ("logging/",)),
]


def buckets(stats: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (path, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        where = f"{path} {func}"
        label = next((lab for lab, frags in BUCKETS if any(f in where for f in frags)),
                     "other Python / builtins")
        out[label] += tt
    return out


def startup_split(reps: int = 5) -> dict[str, float]:
    """CPU of a fresh interpreter, of ``import bpgrade.checks`` and of ``import
    ipykernel.kernelapp`` (outside the sandbox), median of ``reps``."""
    code = ("import time, sys; sys.modules['debugpy'] = None; t0 = time.process_time(); "
            "import bpgrade.checks; t1 = time.process_time(); "
            "import ipykernel.kernelapp; t2 = time.process_time(); "
            "print(t0, t1 - t0, t2 - t1)")
    rows = []
    for _ in range(reps):
        before = os.times()
        out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.split()
        after = os.times()
        whole = (after.children_user + after.children_system
                 - before.children_user - before.children_system)
        boot, checks, ipk = map(float, out)
        rows.append((whole - checks - ipk, checks, ipk))
    return {"interpreter start and exit": statistics.median(r[0] for r in rows),
            "import bpgrade.checks (numpy, bplib)": statistics.median(r[1] for r in rows),
            "import ipykernel.kernelapp": statistics.median(r[2] for r in rows)}


def main(argv: list[str] | None = None) -> None:
    from bench.bench_grading_scale import make_template

    parser = argparse.ArgumentParser(prog="python -m bench.profile_grading")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--fast", action="store_true", help="grade with the fast path")
    parser.add_argument("--cold-kernels", action="store_true",
                        help="with --fast: start every kernel cold, not from the zygote")
    parser.add_argument("--top", type=int, default=0, help="also print cProfile's top N")
    args = parser.parse_args(argv)
    clock = KernelClock()
    clock.install()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        template, mix = make_template(Path(tmp) / "template", args.students)
        kernels = "" if not args.fast else (", cold kernels" if args.cold_kernels else
                                            ", kernels forked from a zygote")
        print(f"ex04_backward, {args.students} students ({mix}); "
              f"{'fast' if args.fast else 'old'} path{kernels}; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        with cpuacct_group() as tree_cpu:
            poller = Poller()
            poller.start()
            t0, tree0 = time.perf_counter(), tree_cpu()
            own0 = time.process_time()
            worker, client, n = grade_class(template, Path(tmp) / "pass1", None, args.fast,
                                            not args.cold_kernels)
            own = time.process_time() - own0
            wall, tree = time.perf_counter() - t0, tree_cpu()
            poller.stop()
            tree = tree - tree0 - poller.own if tree is not None and tree0 is not None else None
        procs = poller.totals()
        kernel_ready, cells, kernels = clock.ready, dict(clock.cells), clock.kernels
        profile = cProfile.Profile(time.process_time)
        pworker, pclient, _ = grade_class(template, Path(tmp) / "pass2", profile, args.fast,
                                          not args.cold_kernels)
    stats = pstats.Stats(profile)
    split = startup_split()
    scale = (worker + client) / max(pworker + pclient, 1e-9)

    def line(label: str, seconds: float, note: str = "") -> str:
        return f"{label:<58}{seconds / n:>8.3f}{100 * seconds / total:>7.0f} %" + (
            f"   {note}" if note else "")

    others = sum(v for k, v in procs.items() if k.startswith("other"))
    total = (own - poller.own) + sum(procs.values())
    print(f"\n{n} students graded in {wall:.1f} s; {kernels} kernels started")
    print(f"{'CPU per submission':<58}{'s':>8}{'share':>9}")
    print(line("whole process tree (cpuacct cgroup), without the poller", tree or float("nan"),
               "" if tree is not None else "no writable cpuacct cgroup here"))
    print(line("sum of the parts below", total))
    print(line("worker's own Python (grade_task)", worker))
    print(line("client's own Python (Importer.save)", client,
               f"wall {CLIENT_WALL[0] / n:.3f} s per student: the client writes alone"))
    print(line("kernel launcher (python -m bpgrade kernel, cgroup set-up)",
               procs.get("launcher", 0.0)))
    print(line("bubblewrap", procs.get("bwrap", 0.0)))
    if "zygote" in procs or "holder" in procs:
        print(line("zygote: its imports, once per worker (bpgrade.zygote)",
                   procs.get("zygote", 0.0)))
        print(line("zygote's minders (fork, setns, the kernel's status)",
                   procs.get("minder", 0.0)))
        print(line("holder (what bubblewrap runs around a forked kernel)",
                   procs.get("holder", 0.0)))
    kernel = procs.get("kernel", 0.0)
    print(line("kernel process, whole", kernel))
    print(line("  start-up, until nbclient has it ready", kernel_ready))
    for label, seconds in split.items():
        print(line(f"    {label} (outside the sandbox)", seconds * kernels))
    print(line("  solution cells (the student's code)", cells.get("solution", 0.0)))
    print(line("  test cells (the checks calling it)", cells.get("tests", 0.0)))
    looping = clock.by.get(("never_ending", "tests"), 0.0)
    print(line("    without never_ending's (it loops till the cell timeout)",
               cells.get("tests", 0.0) - looping))
    print(line("  other cells", cells.get("other", 0.0)))
    costly = sorted(clock.student.items(), key=lambda kv: -kv[1])[:2]
    for student, seconds in costly:
        print(line(f"    of all the cells above: {student}", seconds))
    print(line("  shutdown and the rest", kernel - kernel_ready - sum(cells.values())))
    if others:
        print(line("other descendants", others))
    print(f"\nWorker and client Python by cProfile (CPU clock), scaled by {scale:.2f} to the "
          "unprofiled pass; inclusive, so nested rows overlap:")
    for label, function in groups():
        print(line(label, scale * inclusive(stats, function)))
    print("\nThe same, exclusive time by library:")
    for label, seconds in sorted(buckets(stats).items(), key=lambda kv: -kv[1]):
        print(line(label, scale * seconds))
    if args.top:
        stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
