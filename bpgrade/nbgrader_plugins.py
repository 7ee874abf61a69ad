"""The course's nbgrader plug-ins: sandboxed execution, the integrity check, safe feedback.

All three are ordinary nbgrader preprocessors, named in ``nbgrader_config.py`` and
``nbgrader_sandbox.py``:

* :class:`SandboxedExecute`: nbgrader's ``Execute`` in the ``bpgrade-sandbox`` kernel
  (:mod:`bpgrade.kernel`: bubblewrap and resource limits), with Unix-socket transport
  in a private folder per kernel, a cap on each cell's output, a wall-time budget per
  notebook, and a grade (not a crash) when the kernel dies.
* :class:`CheckIntegrity`, run before execution: student cells that tamper with
  modules or use bplib's reference of the function they must write are not run
  (:mod:`bpgrade.integrity`).
* :class:`HideHiddenTests`, run inside ``GenerateFeedback``: nbgrader writes the hidden
  tests back into every autograded notebook and its default feedback renders them
  (upstream issues #917 and #1363). After the grades are read and before the HTML
  export, the lines from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` of
  every instructor's code cell (a locked cell: nbgrader put it back from the
  instructor's copy) are replaced by one comment line, and in those cells an
  error's traceback (whose frames quote the failing source line) is cut down to
  ``ename: evalue``. Printed output is kept. A cell the student wrote is left as it
  is, markers and all (they are the student's text). Only the feedback changes: the
  autograded notebook and the gradebook keep everything.
* :class:`GuardFiles`, :class:`SafeNotebookExporter` and :func:`guard_nbgrader`: no
  link or special file of a submission is followed or opened (:mod:`bpgrade.submission`).
* :class:`SanitizeNotebook`: no script of a submission in the autograded notebook, the
  feedback or the formgrader (:mod:`bpgrade.sanitize`).

This module imports nbgrader; students never need it (:mod:`bpgrade.checks` is
numpy only).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.preprocessors import Preprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearSolutions, Execute, NbGraderPreprocessor
from traitlets import Bool, Enum, Integer, Unicode

from . import language, memo
from .integrity import forbidden_names, refuse_cells
from .kernel import (
    BUDGET_WARNING,
    ENV_CLASSIC,
    ENV_OUTPUT,
    ENV_REQUIRE_BUDGET,
    ENV_ROOT,
    ENV_ZYGOTE,
    GIB,
    KERNEL_NAME,
    MIB,
    WARNING,
    Cgroup,
    Limits,
    budget_file,
    budget_messages,
    budget_problem,
    bwrap_problem,
    death_reason,
    read_budget_file,
)
from .zygote import zygote_for

__all__ = ["CheckIntegrity", "ClearSolutionsInLanguage", "GuardFiles", "HideHiddenTests",
           "RepairNotebook", "SafeNotebookExporter", "SandboxedExecute", "guard_nbgrader",
           "strip_hidden_region"]

HIDDEN_NOTE = "# (hidden tests: not shown in the feedback; their result is below)"


def strip_hidden_region(
    source: str,
    begin: str = "BEGIN HIDDEN TESTS",
    end: str = "END HIDDEN TESTS",
    note: str = HIDDEN_NOTE,
) -> tuple[str, bool]:
    """Remove every hidden-test region from a cell's source.

    Parameters
    ----------
    source : str
        The cell's source.
    begin, end : str
        The delimiters (the lines that contain them are removed too).
    note : str
        The line left where a region was, at the indentation of its ``begin``
        line; an empty string leaves nothing.

    Returns
    -------
    (str, bool)
        The new source and whether a region was removed.

    Raises
    ------
    ValueError
        If a region is opened twice or never closed: the source is left as it
        is and the instructor's notebook must be fixed.
    """
    kept: list[str] = []
    inside = removed = False
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            if inside:
                raise ValueError(f"line {number}: '{begin}' inside a region already open")
            inside = removed = True
            if note:
                kept.append(line[: len(line) - len(line.lstrip())] + note)
        elif end in line and inside:
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"'{begin}' is never closed by '{end}'")
    return "\n".join(kept), removed


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _short_traceback(output: NotebookNode) -> None:
    """Cut an error output's traceback to its last line, ``ename: evalue``.

    When ``evalue`` is empty (nbgrader's ``CellTimeoutError``), a one-line last
    traceback entry that starts with ``ename:`` is kept instead: it is nbgrader's
    own message ("No reply from kernel before timeout"), never test source.
    """
    ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
    last = _ANSI.sub("", (output.get("traceback") or [""])[-1]).strip()
    if not evalue and "\n" not in last and last.startswith(f"{ename}:"):
        evalue = last[len(ename) + 1:].strip()
    output.traceback = [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]


class HideHiddenTests(NbGraderPreprocessor):
    """Remove the hidden tests' source from notebooks before feedback is rendered.

    Register it in ``c.GenerateFeedback.preprocessors`` after ``GetGrades`` and
    before ``CSSHTMLHeaderPreprocessor``. It also lists, at the top, what
    :class:`RepairNotebook` repaired before grading (:func:`add_repair_note`).
    """

    begin_test_delimeter = Unicode(
        "BEGIN HIDDEN TESTS", help="The delimiter that opens a hidden-test region"
    ).tag(config=True)
    end_test_delimeter = Unicode(
        "END HIDDEN TESTS", help="The delimiter that closes a hidden-test region"
    ).tag(config=True)
    note = Unicode(HIDDEN_NOTE, help="The comment left where hidden tests were").tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        """Strip the hidden region of one instructor's code cell and shorten its
        tracebacks; a cell the student wrote (not locked) is left alone: a marker in
        it is the student's text, and a lone one must not stop the feedback."""
        if cell.cell_type != "code" or not utils.is_locked(cell):
            return cell, resources
        cell.source, removed = strip_hidden_region(
            cell.source, self.begin_test_delimeter, self.end_test_delimeter, self.note
        )
        if removed:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    _short_traceback(output)
        return cell, resources

    def preprocess(self, nb, resources):
        """Strip every cell, then list the repairs autograde made at the top
        (:func:`add_repair_note`)."""
        nb, resources = super().preprocess(nb, resources)
        add_repair_note(nb)
        return nb, resources


# ---------------------------------------------------------------------------- execution


def _error_output(ename: str, evalue: str):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])



def output_reason(max_bytes: int) -> str:
    """The one-line reason a student reads when a cell printed more than the grader keeps."""
    return (f"your code printed more than {max_bytes // 1024} KiB in one cell (the sandbox's "
            "output limit): the rest was cut and the cell interrupted")


def _message_size(msg: dict) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    data = content.get("data") or {}
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values()) + \
        sum(len(x) for x in content.get("traceback", []))



class QuickKernelManager(AsyncKernelManager):
    """After killing the kernel, check for its end every 10 ms, not every 100 ms."""

    async def _async_wait(self, pollinterval: float = 0.01) -> None:
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))

class ReadyClient(AsyncKernelClient):
    """jupyter_client's client without the 0.2 s of silence it waits for on
    IOPub once the kernel has answered (a quarter of a kernel's start here).
    Nothing is lost: nbclient keeps only the IOPub messages of its own requests."""

    async def wait_for_ready(self, timeout=None):
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # IOPub is connected once it delivers something
                    await self.iopub_channel.get_msg(timeout=0.2)
                except queue.Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` in the ``bpgrade-sandbox`` kernel, with limits.

    Configured in ``nbgrader_sandbox.py``; ``Execute.timeout`` still sets the
    per-cell timeout. The whole sandbox's budget (``memory_budget``, ``max_tasks``:
    a cgroup the launcher makes; ``tmp_size``) and the cell's output (``max_output_bytes``)
    are read back after each cell: a limit the cell reached adds a ``ResourceLimitError``
    output that says which (the class report reads its outcome from it).
    """

    sandbox_kernel = Unicode(KERNEL_NAME, help="Kernel spec of the sandbox").tag(
        config=True)
    course_root = Unicode("", help="The course root, hidden from the kernel").tag(
        config=True)
    memory_limit = Integer(2 * GIB, help="RLIMIT_AS per kernel process (bytes)").tag(
        config=True)
    cpu_limit = Integer(120, help="RLIMIT_CPU per kernel process (s)").tag(config=True)
    file_size_limit = Integer(64 * MIB, help="RLIMIT_FSIZE (bytes)").tag(config=True)
    max_output_bytes = Integer(1 * MIB, help="Output kept per cell (bytes)").tag(
        config=True)
    notebook_time_limit = Integer(300, help="Wall time per notebook (s)").tag(config=True)
    require_sandbox = Bool(False, help="Fail instead of grading unsandboxed").tag(
        config=True)
    memory_budget = Integer(2 * GIB, help="Memory of all the kernel's processes together "
                            "(bytes; a cgroup; 0: none)").tag(config=True)
    max_tasks = Integer(256, help="Processes and threads of the kernel together (a cgroup; "
                        "0: none)").tag(config=True)
    tmp_size = Integer(256 * MIB, help="Size of the sandbox's private /tmp (bytes)").tag(
        config=True)
    require_budget = Bool(False, help="Fail instead of grading without a whole-sandbox "
                          "budget (a cgroup for memory and tasks)").tag(config=True)
    classic_checks = Bool(False, help="The checks' watch runs its exact loop only (the "
                          "path before issue #24, for the benchmark; the same grades)").tag(
                              config=True)
    zygote = Bool(False, help="Fork each kernel from this process's zygote, which has "
                  "imported what every kernel imports, into a sandbox built like a cold "
                  "kernel's (bpgrade/zygote.py; the fast path of `python -m bpgrade "
                  "autograde`); off: every kernel starts cold").tag(config=True)
    # The notebook has run to its end: kill the kernel at once instead of asking it
    # to exit and polling for 0.3 s (its atexit hooks do not count for the grade).
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="How to stop the kernel after the last cell").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", QuickKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        # the language of the checks' messages: the assignment's (ex04_backward_zh is
        # Chinese), never the grading machine's own BPGRADE_LANG
        assignment = ((resources or {}).get("nbgrader") or {}).get("assignment")
        self._language = (language.of_assignment(assignment) if assignment
                          else language.of_notebook(nb))
        limits = Limits(self.memory_limit, self.cpu_limit, self.file_size_limit,
                        self.memory_budget, self.max_tasks, self.tmp_size)
        self._limits, self._dead, self._out_bytes = limits, None, {}
        self._group, self._group_read, self._events = None, False, {}
        self._mechanism = None
        self._deadline = time.monotonic() + self.notebook_time_limit
        self._announce()
        runtime = tempfile.mkdtemp(prefix="bpgrade-kernel-")
        self._runtime = runtime
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self._group is not None:  # the launcher, killed at shutdown, may not have
                self._group.remove()
            shutil.rmtree(runtime, ignore_errors=True)

    def _announce(self) -> None:
        self._sandboxed = False
        try:
            KernelSpecManager().get_kernel_spec(self.sandbox_kernel)
        except NoSuchKernel:
            self.log.warning("SANDBOX OFF: kernel spec %r is not installed (run `make "
                             "setup` or `python -m bpgrade install-kernel "
                             "--sys-prefix`); student code runs UNSANDBOXED and "
                             "UNLIMITED", self.sandbox_kernel)
            return
        self.kernel_name = self.sandbox_kernel
        problem = bwrap_problem()
        self._sandboxed = problem is None
        if problem and self.require_sandbox:
            raise RuntimeError(f"no sandbox: {problem}")
        if problem:
            self.log.warning(WARNING.format(problem))
        if not (self.memory_budget or self.max_tasks):
            mechanism, problem = None, "no memory budget and no task limit are set"
        else:
            mechanism, problem = budget_problem()
        if problem and self.require_budget:
            raise RuntimeError(f"no whole-sandbox budget: {problem}")
        if problem:
            self.log.warning(BUDGET_WARNING.format(problem))
        else:
            self.log.info("sandbox budget by %s: %s of memory over all processes, %d "
                          "processes/threads, /tmp %s", mechanism,
                          f"{self.memory_budget / GIB:g} GiB", self.max_tasks,
                          f"{self.tmp_size / MIB:g} MiB")

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.transport = "ipc"
        km.client_factory = ReadyClient
        km.connection_file = os.path.join(self._runtime, "kernel.json")
        return km

    async def async_start_new_kernel(self, **kwargs):
        env = dict(kwargs.pop("env", None) or os.environ)
        env.update(self._limits.as_env())
        env[ENV_OUTPUT] = str(self.max_output_bytes)
        env.pop(ENV_REQUIRE_BUDGET, None)
        if self.require_budget:
            env[ENV_REQUIRE_BUDGET] = "1"
        env.pop(ENV_CLASSIC, None)
        if self.classic_checks:
            env[ENV_CLASSIC] = "1"
        if self.course_root:
            env[ENV_ROOT] = self.course_root
        env[language.ENV] = getattr(self, "_language", language.ENGLISH)
        env.pop(ENV_ZYGOTE, None)
        if self.zygote and getattr(self, "_sandboxed", False):
            try:
                env[ENV_ZYGOTE] = zygote_for(env).path
            except (OSError, RuntimeError) as exc:
                self.log.warning("bpgrade sandbox: no zygote (%s): the kernel starts cold",
                                 exc)
        await super().async_start_new_kernel(env=env, **kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        left = max(1, int(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        runnable = cell.cell_type == "code" and cell.source.strip()
        if runnable and self._dead is None and time.monotonic() > self._deadline:
            self._dead = (f"the notebook used up its time limit of "
                          f"{self.notebook_time_limit} s")
        if runnable and self._dead:
            cell.outputs = [_error_output("NotRunError", f"not run: {self._dead}")]
            return cell
        if runnable and not self._group_read:
            self._read_group()  # before the first cell: no student code has run yet
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        except CellTimeoutError:  # the reply came, its output did not stop in time
            cell.outputs.append(_error_output(
                "CellTimeoutError", "the cell's output did not stop after the timeout"))
            await self._drain_iopub(min(60.0, self._deadline - time.monotonic()))
        except DeadKernelError:
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            status = process.poll() if process is not None else None
            self._dead = death_reason(status, self._limits, self._final_events())
            self.log.warning("kernel died in cell %d: %s", cell_index, self._dead)
            cell.outputs.append(_error_output("DeadKernelError", self._dead))
            return cell
        if runnable:
            self._budget_reasons(cell, cell_index)
        return cell

    execute_cell = run_sync(async_execute_cell)

    # ------------------------------------------------------------ whole-sandbox budget

    def _budget_path(self):
        return budget_file(os.path.join(self._runtime, "kernel.json"))

    def _read_group(self) -> None:
        """The kernel's cgroup, from the launcher's budget file (read once, before any
        student code runs: the kernel can write to that folder)."""
        self._group_read = True
        info = read_budget_file(self._budget_path())
        group = info.get("group")
        self._group = Cgroup.from_dict(group) if isinstance(group, dict) else None
        self._mechanism = info.get("mechanism")
        if self._group is not None:
            self._events = self._group.events()

    def _final_events(self) -> dict:
        """What the kernel's cgroup reached: the launcher's record once it ended (it
        rewrites the file after the kernel is dead), else the group's counters."""
        info = read_budget_file(self._budget_path())
        events = info.get("events") if info.get("ended") else None
        if not isinstance(events, dict) and self._group is not None:
            events = self._group.events()
        events = {k: v for k, v in (events or {}).items() if isinstance(v, int)}
        return {k: v - self._events.get(k, 0) for k, v in events.items()}

    def _budget_reasons(self, cell, cell_index: int) -> None:
        """After a cell: the limits it reached, as one error line each (so its tests
        score 0 and the feedback says why)."""
        reasons = budget_messages(self._limits)
        found = []
        if self._group is not None:
            events = self._group.events()
            if events.get("oom_kill", 0) > self._events.get("oom_kill", 0):
                found.append(reasons["memory"])
            if events.get("tasks_max", 0) > self._events.get("tasks_max", 0):
                found.append(reasons["tasks"])
            self._events = events
        errors = " ".join(f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
                          if o.get("output_type") == "error")
        if self._limits.tmp_size and ("No space left on device" in errors
                                      or "Errno 28" in errors):
            found.append(reasons["tmp"])
        if self._mechanism == "uid" and (
                "Resource temporarily unavailable" in errors or "Errno 11" in errors):
            found.append(reasons["tasks"])  # RLIMIT_NPROC refused a process or thread
        if self._out_bytes.get(cell_index, 0) > self.max_output_bytes:
            found.append(output_reason(self.max_output_bytes))
        for reason in found:
            self.log.warning("cell %d: %s", cell_index, reason)
            cell.outputs.append(_error_output("ResourceLimitError", reason))

    async def _drain_iopub(self, limit: float) -> None:
        """Drop the rest of a flood of output, so that the next cell's own output
        is not stuck behind it."""
        end = time.monotonic() + max(limit, 1.0)
        while time.monotonic() < end:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=1))
            except queue.Empty:
                return
            if msg["msg_type"] == "status" and \
                    msg["content"].get("execution_state") == "idle":
                return

    def output(self, outs, msg, display_id, cell_index):
        size = _message_size(msg)
        used = self._out_bytes.get(cell_index, 0)
        self._out_bytes[cell_index] = used + size
        if used + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.max_output_bytes:  # first time over: say so, stop the cell
            outs.append(NotebookNode(
                output_type="stream", name="stderr",
                text=f"\n[output cut by the autograder: this cell printed more than "
                     f"{self.max_output_bytes // 1024} KiB; the cell was interrupted]\n"))
            asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
        return None

class ClearSolutionsInLanguage(ClearSolutions):
    """nbgrader's ``ClearSolutions`` with the stub in the assignment's language.

    ``generate_assignment`` of ``ex04_backward_zh`` puts the Chinese stub
    (:data:`bpgrade.language.STUBS`) in the answer cells; every other assignment gets
    ``ClearSolutions.code_stub`` as configured. It takes ``ClearSolutions``' place in
    ``GenerateAssignment.preprocessors`` (``nbgrader_config.py``).
    """

    def preprocess(self, nb, resources):
        assignment = ((resources or {}).get("nbgrader") or {}).get("assignment") or ""
        lang = language.of_assignment(assignment)
        english = self.code_stub
        if lang != language.ENGLISH:
            self.code_stub = {**english, "python": language.STUBS[lang]}
        try:
            return super().preprocess(nb, resources)
        finally:
            self.code_stub = english


def _solution_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and utils.is_solution(c)]


def _source_path(config, resources) -> Path | None:
    """The instructor's source notebook of the notebook being converted (in the course's
    ``source_directory``), or ``None`` outside a course."""
    info = (resources or {}).get("nbgrader") or {}
    assignment, notebook = info.get("assignment"), info.get("notebook")
    if not (assignment and notebook):
        return None
    coursedir = CourseDirectory(config=config)
    return Path(coursedir.format_path(coursedir.source_directory, ".", assignment),
                f"{notebook}.ipynb")


_FROM_SOURCE: dict[tuple[str, str], tuple[tuple, object]] = {}


def from_source(path: Path, what: str, derive):
    """``derive(the notebook at path)``, kept for the next student while the file is
    unchanged (its inode, size and modification time): a worker grades a class against
    one instructor's notebook, which nbgrader would otherwise read for each student.
    Read every time when :data:`bpgrade.memo.ON` is false (the classic path)."""
    if not memo.ON:
        return derive(nbformat.read(path, as_version=4))
    stat = path.stat()
    stamp = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    key = (str(path.resolve()), what)
    kept = _FROM_SOURCE.get(key)
    if kept is None or kept[0] != stamp:
        kept = _FROM_SOURCE[key] = (stamp, derive(nbformat.read(path, as_version=4)))
    return kept[1]


class CheckIntegrity(NbGraderPreprocessor):
    """Refuse student cells that tamper with modules or use bplib's reference.

    Student cells are code cells that are neither test cells nor locked (those
    are restored from the instructor's copy). What the exercise asks for is read
    from the instructor's source notebook of the assignment
    (:func:`bpgrade.integrity.forbidden_names` of its solution cells); only when
    that notebook cannot be found (a notebook graded outside a course) are the
    submission's own solution cells used, and the log says so.
    """

    enabled = Bool(True, help="Check student cells before execution").tag(config=True)

    def source_solution_cells(self, nb, resources) -> list:
        """The solution cells of the instructor's notebook, else of ``nb``."""
        path = _source_path(self.config, resources)
        if path is not None and path.is_file():
            return _solution_cells(nbformat.read(path, as_version=4))
        if path is not None:
            self.log.warning("integrity: no source notebook %s; the exercise's functions are "
                             "read from the submission", path)
        return _solution_cells(nb)

    def forbidden(self, nb, resources) -> set[str]:
        """:func:`~bpgrade.integrity.forbidden_names` of :meth:`source_solution_cells`;
        of the instructor's notebook, read once while it is unchanged."""
        path = _source_path(self.config, resources)
        if path is not None and path.is_file():
            return set(from_source(path, "forbidden", lambda source: frozenset(
                forbidden_names(_solution_cells(source)))))
        return forbidden_names(self.source_solution_cells(nb, resources))

    def preprocess(self, nb, resources):
        if not self.enabled:
            return nb, resources
        forbidden = self.forbidden(nb, resources)
        refused = []
        def is_student_cell(c) -> bool:  # test cells and locked cells are restored anyway
            return not ((utils.is_grade(c) and not utils.is_solution(c)) or utils.is_locked(c))

        assignment = ((resources or {}).get("nbgrader") or {}).get("assignment")
        lang = language.of_assignment(assignment) if assignment else language.of_notebook(nb)
        for _, cell, violations in refuse_cells(nb.cells, forbidden, is_student_cell, lang):
            cell.metadata["bpgrade_integrity"] = [str(v) for v in violations]
            refused.append(cell.metadata.get("nbgrader", {}).get("grade_id", "?"))
            self.log.warning("integrity: cell %s not run: %s", refused[-1],
                             "; ".join(map(str, violations)))
        resources.setdefault("bpgrade_integrity", refused)
        return nb, resources


# ------------------------------------------------------------------------------ repair


class RepairNotebook(NbGraderPreprocessor):
    """Repair a submission's nbgrader metadata against the gradebook before nbgrader
    sanitizes it (:mod:`bpgrade.repair`).

    Register it first in ``c.Autograde.sanitize_preprocessors``. Each repair is logged
    (warning), and the list is stored in the notebook's metadata under
    ``bpgrade_repairs`` (for :class:`ListRepairs` in the feedback and the class
    report); a value a student put there is replaced. The instructor's cells come
    from the gradebook (what nbgrader checks against); their cell ids from the
    source notebook in ``solutions/`` when it is there.
    """

    def instructor_cells(self, resources) -> list | None:
        from nbgrader.api import Gradebook, MissingEntry

        from .repair import cell_ids, instructor_cells_from_gradebook

        info = (resources or {}).get("nbgrader") or {}
        assignment, notebook, db_url = (info.get("assignment"), info.get("notebook"),
                                        info.get("db_url"))
        if not (assignment and notebook and db_url):
            self.log.warning("repair: no gradebook for this notebook; not checked")
            return None
        ids: dict[str, str] = {}
        path = _source_path(self.config, resources)
        if path is not None and path.is_file():
            ids = dict(from_source(path, "cell ids", cell_ids))
        with Gradebook(db_url) as gb:
            try:
                source = gb.find_notebook(notebook, assignment)
            except MissingEntry:
                self.log.warning("repair: notebook %s of %s is not in the gradebook",
                                 notebook, assignment)
                return None
            return instructor_cells_from_gradebook(source, ids)

    def preprocess(self, nb, resources):
        from .repair import REPAIRS_KEY, repair_notebook

        nb.metadata.pop(REPAIRS_KEY, None)
        instructor = self.instructor_cells(resources)
        if instructor is None:
            return nb, resources
        repairs = repair_notebook(nb, instructor)
        if repairs:  # repair.py writes plain dicts; nbgrader reads attributes
            nb.cells = [nbformat.from_dict(cell) for cell in nb.cells]
        info = resources.get("nbgrader") or {}
        for line in repairs:
            self.log.warning("repair: %s/%s: %s", info.get("student", "?"),
                             info.get("notebook", "?"), line)
        if repairs:
            nb.metadata[REPAIRS_KEY] = repairs
        resources["bpgrade_repairs"] = repairs
        return nb, resources


REPAIR_NOTE = ("**Before grading, the autograder repaired this notebook's grading "
               "information.** Your answers were graded as usual; these cells were "
               "changed:")
NOTES_NOTE = ("**Notes from the autograder** (what it did with your submission besides "
              "grading it):")


def _inert(line: str) -> str:
    """A note line as markdown that renders as text: HTML and link brackets escaped
    outside its code spans (the notes put names a student chose in code spans)."""
    import html

    parts = str(line).replace("\n", " ").split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code span at all
        parts = ["'".join(parts)]
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\[\]\\])", r"\\\1", html.escape(parts[i], quote=False))
    return "`".join(parts)


def add_repair_note(nb) -> bool:
    """Put, in a markdown cell at the top of ``nb``, the list of repairs
    :class:`RepairNotebook` made (the autograded notebook's ``bpgrade_repairs``
    metadata) and the student's notes (``bpgrade_notes``: refused files, cleaned
    output ...); called by :class:`HideHiddenTests` in ``GenerateFeedback``. Returns
    whether there was anything to say."""
    import html

    from .repair import REPAIRS_KEY
    from .submission import NOTES_KEY

    repairs = nb.metadata.get(REPAIRS_KEY) or []
    notes = nb.metadata.get(NOTES_KEY) or []
    lines: list[str] = []
    if isinstance(repairs, list) and repairs:
        lines += [REPAIR_NOTE, ""] + [f"- {html.escape(str(r), quote=False)}" for r in repairs]
    if isinstance(notes, list) and notes:
        lines += ([""] if lines else []) + [NOTES_NOTE, ""] + [f"- {_inert(n)}" for n in notes]
    if not lines:
        return False
    cell = nbformat.v4.new_markdown_cell("\n".join(lines))
    cell.metadata[REPAIRS_KEY] = True
    nb.cells.insert(0, cell)
    return True


# ------------------------------------------------------------- files of a submission


class SanitizeNotebook(Preprocessor):
    """Make a notebook safe to render as HTML (:func:`bpgrade.sanitize.clean_notebook`:
    outputs, markdown, raw cells, tags, metadata) and add what it changed to the
    student's notes.

    In ``c.Autograde.autograde_preprocessors`` right after the kernel (the stored
    autograded notebook is clean) and at the end of ``sanitize_preprocessors`` (the
    notebook nbgrader writes before running it is too); in
    ``c.HTMLExporter.preprocessors`` (the feedback and the formgrader clean whatever
    they render, an older autograded notebook included). An nbconvert preprocessor
    (not nbgrader's: the formgrader's exporter configures those with options this one
    has no use for).
    """

    enabled = Bool(True, help="Clean the notebook").tag(config=True)

    def preprocess(self, nb, resources):
        from .sanitize import clean_notebook
        from .submission import add_notes

        notes = clean_notebook(nb)
        info = (resources or {}).get("nbgrader") or {}
        for line in notes:
            self.log.warning("sanitized: %s/%s: %s", info.get("student", "?"),
                             info.get("notebook", "?"), line)
        add_notes(nb, notes)
        return nb, resources


class GuardFiles(NbGraderPreprocessor):
    """Say, in the notes of every notebook of a submission, which of its entries the
    grader refused (:mod:`bpgrade.submission`), and make sure nbgrader's copies of
    them are gone before any code runs.

    Register it first in ``c.Autograde.sanitize_preprocessors`` (it runs once per
    notebook, before the notebook is executed). The refusals are those of the
    submission folder as it is now (``refuse_special_files``, nbgrader's
    ``pre_convert_hook``, set them aside before nbgrader copied anything) and those the
    Dask client refused (:func:`bpgrade.submission.read_record`). If the hook did not
    run, nbgrader copied such an entry into ``autograded/``: the copy is deleted here.
    The notes replace any ``bpgrade_notes`` the submission carried.
    """

    def preprocess(self, nb, resources):
        from .submission import NOTES_KEY, add_notes, notebook_notes, read_record, scan

        nb.metadata.pop(NOTES_KEY, None)
        info = (resources or {}).get("nbgrader") or {}
        student, assignment, notebook = (info.get("student"), info.get("assignment"),
                                         info.get("notebook"))
        if not (student and assignment and notebook):
            return nb, resources
        coursedir = CourseDirectory(config=self.config)
        folder = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
        refused = scan(folder.parent.parent, (folder.parent.name, folder.name)).refused
        seen = {r.path for r in refused}
        refused += [r for r in read_record(Path(coursedir.root), assignment, student)
                    if r.path not in seen]
        dest = Path(coursedir.format_path(coursedir.autograded_directory, student, assignment))
        for r in refused:
            copy = dest / r.path
            if r.path != "." and not r.path.endswith(".ipynb") and os.path.lexists(copy) \
                    and not copy.is_dir():
                copy.unlink()
                self.log.warning("refused: %s/%s: removed nbgrader's copy of %s", student,
                                 assignment, r.path)
        lines = notebook_notes(refused, notebook)
        for line in lines:
            self.log.warning("refused: %s/%s: %s", student, assignment, line)
        add_notes(nb, lines)
        return nb, resources


class SafeNotebookExporter(NotebookExporter):
    """nbconvert's ``NotebookExporter`` (what nbgrader's autograde reads notebooks with)
    reading the notebook file with :func:`bpgrade.submission.read_file`: never through
    a link, never blocking on a pipe. A notebook that is not a regular file with one
    link is read as :data:`bpgrade.submission.PLACEHOLDER` (an empty notebook: every
    test of it fails) and :class:`GuardFiles` says why.
    ``c.Autograde.exporter_class = "bpgrade.nbgrader_plugins.SafeNotebookExporter"``."""

    def from_filename(self, filename, resources=None, **kw):
        import datetime

        from .submission import PLACEHOLDER, read_file

        data, what = read_file(filename)
        resources = ResourcesDict() if resources is None else resources
        if not resources.get("metadata"):
            resources["metadata"] = ResourcesDict()
        path, basename = os.path.split(filename)
        resources["metadata"]["name"] = os.path.splitext(basename)[0]
        resources["metadata"]["path"] = path
        today = datetime.datetime.now(tz=datetime.UTC)
        resources["metadata"]["modified_date"] = today.strftime("%B %-d, %Y")
        if data is None:
            self.log.warning("%s: %s; graded as an empty notebook", filename, what)
            data = PLACEHOLDER.encode()
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        return self.from_notebook_node(nb, resources, **kw)


def safe_timestamp(self, dest_path: str):
    """nbgrader's ``CourseDirectory.get_existing_timestamp``, reading ``timestamp.txt``
    with :func:`bpgrade.submission.read_file`: one that is a link, a pipe or a device is
    no timestamp (a warning), instead of being followed or blocking autograde."""
    from .submission import read_file

    path = os.path.join(dest_path, "timestamp.txt")
    if not os.path.lexists(path):
        return None
    data, what = read_file(path)
    if data is None:
        self.log.warning("Ignored timestamp file %s: it is %s", path, what)
        return None
    timestamp = data.decode("utf-8", errors="replace").strip()
    if not timestamp:
        self.log.warning("Empty timestamp file: %s", path)
        return None
    try:
        return utils.parse_utc(timestamp)
    except ValueError:
        self.fail(f"Invalid timestamp string: {path}")


def guard_nbgrader() -> None:
    """Make nbgrader read ``timestamp.txt`` with :func:`safe_timestamp` (nbgrader reads
    it before any hook runs, and the formgrader reads it too); ``nbgrader_sandbox.py``
    calls this."""
    CourseDirectory.get_existing_timestamp = safe_timestamp
