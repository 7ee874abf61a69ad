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
  every code cell are replaced by one comment line, and in those cells an error's
  traceback (whose frames quote the failing source line) is cut down to
  ``ename: evalue``. Printed output is kept. Only the feedback changes: the
  autograded notebook and the gradebook keep everything.

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
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Enum, Integer, Unicode

from .integrity import (
    defined_functions,
    find_violations,
    forbidden_names,
    imported_names,
    parse_cell,
    replacement_source,
)
from .kernel import (
    ENV_OUTPUT,
    ENV_ROOT,
    GIB,
    KERNEL_NAME,
    MIB,
    WARNING,
    Limits,
    bwrap_problem,
    death_reason,
)

__all__ = ["CheckIntegrity", "HideHiddenTests", "SandboxedExecute", "strip_hidden_region"]

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
    before ``CSSHTMLHeaderPreprocessor``.
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
        """Strip the hidden region of one code cell and shorten its tracebacks."""
        if cell.cell_type != "code":
            return cell, resources
        cell.source, removed = strip_hidden_region(
            cell.source, self.begin_test_delimeter, self.end_test_delimeter, self.note
        )
        if removed:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    _short_traceback(output)
        return cell, resources


# ---------------------------------------------------------------------------- execution


def _error_output(ename: str, evalue: str):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])



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
    per-cell timeout.
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
    # The notebook has run to its end: kill the kernel at once instead of asking it
    # to exit and polling for 0.3 s (its atexit hooks do not count for the grade).
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="How to stop the kernel after the last cell").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", QuickKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        limits = Limits(self.memory_limit, self.cpu_limit, self.file_size_limit)
        self._limits, self._dead, self._out_bytes = limits, None, {}
        self._deadline = time.monotonic() + self.notebook_time_limit
        self._announce()
        runtime = tempfile.mkdtemp(prefix="bpgrade-kernel-")
        self._runtime = runtime
        try:
            return super().preprocess(nb, resources, km)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)

    def _announce(self) -> None:
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
        if problem and self.require_sandbox:
            raise RuntimeError(f"no sandbox: {problem}")
        if problem:
            self.log.warning(WARNING.format(problem))

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
        if self.course_root:
            env[ENV_ROOT] = self.course_root
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
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        except CellTimeoutError:  # the reply came, its output did not stop in time
            cell.outputs.append(_error_output(
                "CellTimeoutError", "the cell's output did not stop after the timeout"))
            await self._drain_iopub(min(60.0, self._deadline - time.monotonic()))
            return cell
        except DeadKernelError:
            process = getattr(getattr(self.km, "provisioner", None), "process", None)
            status = process.poll() if process is not None else None
            self._dead = death_reason(status, self._limits)
            self.log.warning("kernel died in cell %d: %s", cell_index, self._dead)
            cell.outputs.append(_error_output("DeadKernelError", self._dead))
            return cell

    execute_cell = run_sync(async_execute_cell)

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
        info = (resources or {}).get("nbgrader") or {}
        assignment, notebook = info.get("assignment"), info.get("notebook")
        if assignment and notebook:
            coursedir = CourseDirectory(config=self.config)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", assignment),
                        f"{notebook}.ipynb")
            if path.is_file():
                source = nbformat.read(path, as_version=4)
                return [c for c in source.cells if c.cell_type == "code" and utils.is_solution(c)]
            self.log.warning("integrity: no source notebook %s; the exercise's functions are "
                             "read from the submission", path)
        return [c for c in nb.cells if c.cell_type == "code" and utils.is_solution(c)]

    def preprocess(self, nb, resources):
        if not self.enabled:
            return nb, resources
        code = [c for c in nb.cells if c.cell_type == "code"]
        trees = [parse_cell(c.source) for c in code]
        imports: dict[str, str] = {}
        for tree in trees:
            if tree is not None:
                imports.update(imported_names(tree))
        forbidden = forbidden_names(self.source_solution_cells(nb, resources))
        refused = []
        for cell, tree in zip(code, trees, strict=True):
            if (utils.is_grade(cell) and not utils.is_solution(cell)) or utils.is_locked(cell):
                continue
            violations = find_violations(cell.source, forbidden, imports)
            if violations:
                defines = defined_functions(tree) if tree is not None else set()
                cell.metadata["bpgrade_integrity"] = [str(v) for v in violations]
                cell.source = replacement_source(cell.source, violations, defines)
                refused.append(cell.metadata.get("nbgrader", {}).get("grade_id", "?"))
                self.log.warning("integrity: cell %s not run: %s", refused[-1],
                                 "; ".join(map(str, violations)))
        resources.setdefault("bpgrade_integrity", refused)
        return nb, resources
