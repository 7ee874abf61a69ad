"""nbgrader configuration fragment: sandboxed, limited, integrity-checked autograding.

Loaded by ``nbgrader_config.py`` (``load_subconfig``), so that plain
``nbgrader autograde <assignment>`` in the course root gets every protection:

* each notebook runs in the ``bpgrade-sandbox`` kernel (``make setup`` installs it;
  ``python -m bpgrade install-kernel --sys-prefix`` does it by hand): bubblewrap
  with a read-only system, no network, a private ``/tmp`` and process tree, and of
  the course root only the submission's own folder;
* limits per kernel: memory, CPU time, file size; per cell: output size; per
  notebook: wall time; a kernel that dies gets a grade and a reason, not a crash;
* before execution, CheckIntegrity refuses student cells that rebind module
  attributes or use bplib's reference of a function the student must write
  (what the exercise asks for is read from its source notebook in ``solutions/``);
* deleted test cells are put back from the instructor's copy;
* first of all, RepairNotebook repairs nbgrader metadata that does not match the
  gradebook (bpgrade/repair.py), so such a notebook is graded instead of failing;
* after the kernel, SanitizeNotebook cleans what the notebook shows (outputs, markdown,
  metadata) so that no script of it runs in the feedback or the formgrader;
* before that, nothing of a submission but its folders and regular files is opened:
  links, hard links, pipes, devices and sockets are set aside before nbgrader copies
  the submission's files (``refuse_special_files``, nbgrader's pre-convert hook), the
  notebook and ``timestamp.txt`` are read without following links, and GuardFiles
  puts the reasons in the student's notes (bpgrade/submission.py).

Without bubblewrap (or user namespaces) autograde logs
``WARNING: NO SANDBOX for student code (...)`` and goes on with the limits only.
See ``chapters/security.md`` for what is and is not protected.
"""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from bpgrade.nbgrader_plugins import (
    CheckIntegrity,
    GuardFiles,
    RepairNotebook,
    SandboxedExecute,
    SanitizeNotebook,
    guard_nbgrader,
)

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

# A submission is data: its links, hard links, pipes, devices and sockets are never
# followed or opened. Before nbgrader copies a submission's files (shutil.copy follows
# links) the hook renames each such entry to <name>.bpgrade-refused, which
# c.CourseDirectory.ignore (nbgrader_config.py) keeps nbgrader away from; the notebook
# is read without following links (an empty notebook is graded in place of one that is
# not a regular file), and so is timestamp.txt, wherever nbgrader reads it.
c.Autograde.pre_convert_hook = "bpgrade.submission.refuse_special_files"
c.Autograde.exporter_class = "bpgrade.nbgrader_plugins.SafeNotebookExporter"
guard_nbgrader()

# The folder of this file is the course root: the kernel must not see it.
c.SandboxedExecute.course_root = os.path.dirname(os.path.abspath(__file__))

c.SandboxedExecute.memory_limit = 2 * 1024**3  # bytes of address space per kernel process
c.SandboxedExecute.cpu_limit = 120  # CPU seconds per kernel process
c.SandboxedExecute.file_size_limit = 64 * 1024**2  # largest file a kernel may write (/tmp)
c.SandboxedExecute.max_output_bytes = 1024**2  # output kept per cell; the cell is interrupted
c.SandboxedExecute.notebook_time_limit = 300  # wall seconds per notebook, all cells together
# Set to True to refuse grading where bubblewrap cannot run (instead of a warning).
c.SandboxedExecute.require_sandbox = False
# The budget of the whole sandbox (every process of the kernel together), enforced by a
# cgroup per kernel (v2, else v1); the per-process memory_limit above is a second line.
c.SandboxedExecute.memory_budget = 2 * 1024**3  # bytes of memory, all processes together
c.SandboxedExecute.max_tasks = 256  # processes and threads, all together
c.SandboxedExecute.tmp_size = 256 * 1024**2  # bytes the private /tmp holds (a tmpfs)
# Set to True to refuse grading where no cgroup can hold the budget (instead of a warning).
c.SandboxedExecute.require_budget = False

# Before nbgrader's own sanitizing: a submission whose nbgrader metadata does not match
# the gradebook (an extra graded cell, a solution cell marked graded, a pasted copy of a
# test cell, metadata an editor dropped) is repaired, not failed (bpgrade/repair.py).
c.Autograde.sanitize_preprocessors = [
    GuardFiles,  # the refused entries, in the student's notes; nbgrader's copies of them gone
    RepairNotebook,
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    OverwriteCells,
    CheckCellMetadata,
    SanitizeNotebook,  # the notebook nbgrader writes before running it holds no script
]

c.Autograde.autograde_preprocessors = [
    CheckIntegrity,  # before execution: refused cells are replaced by a raise
    SandboxedExecute,
    SanitizeNotebook,  # what the kernel printed: no script, no unsafe HTML (bpgrade/sanitize.py)
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# A deleted (or un-marked) test cell is put back from the instructor's copy and graded.
c.OverwriteCells.add_missing_cells = True
