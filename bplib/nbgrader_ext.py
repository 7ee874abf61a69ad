"""nbgrader plug-ins of the course: feedback that never shows the hidden tests.

nbgrader writes the hidden tests back into every autograded notebook, and its
default ``generate_feedback`` renders that notebook as it is, so the feedback
HTML shows the hidden tests' source (upstream issues #917 and #1363).
:class:`HideHiddenTests` runs inside ``GenerateFeedback`` (see
``nbgrader_config.py``), after the grades are read and before the HTML export:

* in every code cell, the lines from ``### BEGIN HIDDEN TESTS`` to
  ``### END HIDDEN TESTS`` are replaced by one comment line;
* in those cells, an error's traceback (whose frames quote the failing source
  line) is cut down to its last line, ``ename: evalue``, so the student still
  reads what went wrong;
* printed output is kept.

Only the feedback is changed: the autograded notebook and the gradebook keep
everything, so an instructor can still see the tests.

This module imports nbgrader, which is not a dependency of :mod:`bplib` itself;
``import bplib`` never loads it.
"""

from __future__ import annotations

import re

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

__all__ = ["HideHiddenTests", "strip_hidden_region"]

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
