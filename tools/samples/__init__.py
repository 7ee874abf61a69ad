"""Build the sample submissions from the released notebooks, so they never drift from them.

Students (one folder each in ``submitted/``):

- ``correct``: every stub of the release replaced by the instructor's solution
  region (from the source notebook, matched by ``grade_id``);
- ``blank``: the release as it is;
- ``wrong_<snippet>``: ``correct``, except one solution cell whose stub is replaced
  by the body stored in ``tools/samples/<assignment>/<grade_id>[--<slug>].py``
  (a typical mistake; its first comment line says which, and a line
  ``# diagnosis: <id>`` names the diagnosis of :mod:`bpgrade.checks.diagnoses` that the
  test cell of that function must fail with). A snippet with the line
  ``# replaces: cell`` is the whole cell instead (for a mistake outside the stub, such as
  a changed forward half or an import below the function); one with the line
  ``# callers: unaffected`` breaks its own function's test only (its mistake does not
  show in the functions that call it, e.g. ReLU's mask at exactly 0);
- ``never_ending``: ``correct``, except that the first solution cell's body loops
  forever when called (``never_ending/in_function.py``) and the last solution
  cell starts with a top-level infinite loop (``never_ending/top_level.py``),
  so the function it defines is never defined.

Expected grades come from the source notebook, not from running anything: a test
cell fails when it mentions a name defined in a broken solution cell, where a
solution cell is broken if it was replaced by a mistake or loop, or if its
solution mentions a name defined in a broken cell (it calls the student's code).
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
STUB_FIRST_LINE = "# YOUR CODE HERE"
STUB_SECOND_LINE = "raise NotImplementedError()"
TIMESTAMP = "2026-01-15 12:00:00.000000 UTC"  # nbgrader reads submitted/<s>/<a>/timestamp.txt
REGION_SEPARATOR = "# --- next solution region ---"
_DEF = re.compile(r"^(?:def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)


@dataclass
class Expected:
    """What one sample submission should score: per test cell, pass or fail."""

    student: str
    assignment: str
    description: str
    broken: set[str] = field(default_factory=set)  # solution cells' grade_ids
    failing: set[str] = field(default_factory=set)  # test cells' grade_ids
    points: dict[str, float] = field(default_factory=dict)  # test grade_id -> points
    diagnosis: str = ""  # the id the test cell of the broken function fails with
    function: str = ""  # the grade_id of the broken solution cell (its test: test_<it>)

    @property
    def score(self) -> float:
        """Points of the test cells expected to pass."""
        return sum(p for g, p in self.points.items() if g not in self.failing)

    @property
    def max_score(self) -> float:
        """Points of every autograded test cell."""
        return sum(self.points.values())


# ----------------------------------------------------------------------------- cells


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def solution_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """Code cells marked ``solution`` (autograded answers), by ``grade_id``, in order."""
    return {
        _meta(c)["grade_id"]: c
        for c in nb.cells
        if c.cell_type == "code" and _meta(c).get("solution")
    }


def test_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """Autograder test cells (``grade`` and not ``solution``), by ``grade_id``."""
    return {
        _meta(c)["grade_id"]: c
        for c in nb.cells
        if c.cell_type == "code" and _meta(c).get("grade") and not _meta(c).get("solution")
    }


def defined_names(source: str) -> set[str]:
    """Top-level names a cell defines (``def``, ``class``, ``name = ...``)."""
    return {a or b for a, b in _DEF.findall(source)}


def _mentions(source: str, names: set[str]) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", source) for n in names)


def solution_regions(source: str) -> list[str]:
    """The dedented text of each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region."""
    regions, current = [], None
    for line in source.split("\n"):
        if "BEGIN SOLUTION" in line:
            current = []
        elif "END SOLUTION" in line:
            regions.append(textwrap.dedent("\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return regions


def fill_stubs(source: str, bodies: list[str | None]) -> str:
    """Replace the i-th ``# YOUR CODE HERE / raise NotImplementedError()`` stub by ``bodies[i]``.

    Each body is indented like its stub; ``None`` leaves that stub in place.
    """
    lines, out, k, i = source.split("\n"), [], 0, 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == STUB_FIRST_LINE and lines[i + 1:i + 2] and (
            lines[i + 1].strip() == STUB_SECOND_LINE
        ):
            body = bodies[k] if k < len(bodies) else None
            k += 1
            if body is None:
                out.extend(lines[i:i + 2])
            else:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(textwrap.indent(body.strip("\n"), indent).split("\n"))
            i += 2
        else:
            out.append(line)
            i += 1
    if len(bodies) > k:
        raise ValueError(f"the cell has {k} stub(s) but {len(bodies)} bodies were given")
    return "\n".join(out)


# ------------------------------------------------------------------------- expectations


def broken_closure(source_nb, broken: set[str], callers_fail: bool = True) -> set[str]:
    """Solution cells that fail because they are broken or call a broken cell's names
    (only the broken ones when ``callers_fail`` is false)."""
    if not callers_fail:
        return set(broken)
    sols = solution_cells(source_nb)
    names = {g: defined_names(c.source) for g, c in sols.items()}
    result, grew = set(broken), True
    while grew:
        grew = False
        for g, cell in sols.items():
            if g in result:
                continue
            solution_text = "\n".join(solution_regions(cell.source))
            if _mentions(solution_text, set().union(*(names[b] for b in result))):
                result.add(g)
                grew = True
    return result


def expect(source_nb, assignment: str, student: str, broken: set[str], description: str,
           callers_fail: bool = True):
    """The expected grades of a submission whose solution cells ``broken`` are wrong."""
    sols = solution_cells(source_nb)
    closure = broken_closure(source_nb, broken, callers_fail)
    bad_names = set().union(set(), *(defined_names(sols[g].source) for g in closure))
    tests = test_cells(source_nb)
    return Expected(
        student=student,
        assignment=assignment,
        description=description,
        broken=closure,
        failing={g for g, c in tests.items() if _mentions(c.source, bad_names)},
        points={g: float(_meta(c).get("points", 0)) for g, c in tests.items()},
    )


# ------------------------------------------------------------------------ submissions


@dataclass
class Snippet:
    """A sample mistake: what it does, its code, the diagnosis it earns."""

    description: str
    bodies: list[str]  # one per stub of the cell, or the whole cell when ``whole``
    diagnosis: str = ""
    whole: bool = False
    callers_fail: bool = True


_HEADER = ("# ruff:", "# diagnosis:", "# replaces:", "# callers:")


def read_snippet(path: Path) -> Snippet:
    """A snippet file: its first comment line describes it; ``# diagnosis: <id>`` and
    ``# replaces: cell`` are read and left out of the code; bodies split at
    REGION_SEPARATOR."""
    lines = path.read_text().split("\n")
    meta = {line.split(":", 1)[0][2:]: line.split(":", 1)[1].strip()
            for line in lines if line.startswith(_HEADER[1:])}
    text = "\n".join(line for line in lines if not line.startswith(_HEADER))
    first = text.lstrip().split("\n", 1)[0]
    description = first.lstrip("# ").strip() if first.startswith("#") else path.stem
    return Snippet(description, [b.strip("\n") for b in text.split(REGION_SEPARATOR)],
                   meta.get("diagnosis", ""), meta.get("replaces") == "cell",
                   meta.get("callers") != "unaffected")


def _snippet(path: Path) -> tuple[str, list[str]]:
    """(description, bodies) of a snippet file."""
    snippet = read_snippet(path)
    return snippet.description, snippet.bodies


def _correct_sources(source_nb, release_nb) -> dict[str, str]:
    """Release solution cells with every stub replaced by the instructor's solution."""
    src = solution_cells(source_nb)
    return {g: fill_stubs(c.source, solution_regions(src[g].source))
            for g, c in solution_cells(release_nb).items()}


def _variant(release_nb, sources: dict[str, str]):
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if cell.cell_type == "code" and _meta(cell).get("solution") and gid in sources:
            cell.source = sources[gid]
    return nb


def correct_notebook(source_nb, release_nb):
    """The release with the instructor's solution in every answer cell."""
    return _variant(release_nb, _correct_sources(source_nb, release_nb))


def variants(source_nb, release_nb, assignment: str, corpus: Path = HERE):
    """Yield ``(notebook, Expected)`` for every sample student of one assignment."""
    sols = list(solution_cells(release_nb))
    correct = _correct_sources(source_nb, release_nb)
    yield _variant(release_nb, correct), expect(
        source_nb, assignment, "correct", set(), "the instructor's solution")
    yield nbformat.from_dict(release_nb), expect(
        source_nb, assignment, "blank", set(sols), "the release, untouched")
    for path in sorted((corpus / assignment).glob("*.py")):
        gid = path.stem.split("--")[0]
        if gid not in correct:
            raise ValueError(f"{path}: no solution cell with grade_id {gid!r} in {assignment}")
        snippet = read_snippet(path)
        release_cell = solution_cells(release_nb)[gid]
        student = "wrong_" + path.stem.replace("--", "_").replace("-", "_")
        cell = snippet.bodies[0] if snippet.whole else fill_stubs(release_cell.source,
                                                                  snippet.bodies)
        expected = expect(source_nb, assignment, student, {gid}, snippet.description,
                          snippet.callers_fail)
        expected.diagnosis, expected.function = snippet.diagnosis, gid
        yield _variant(release_nb, dict(correct, **{gid: cell})), expected
    loop_desc, loop_body = _snippet(corpus / "never_ending" / "in_function.py")
    top_desc, top_code = _snippet(corpus / "never_ending" / "top_level.py")
    first, last = sols[0], sols[-1]
    release_first = solution_cells(release_nb)[first]
    sources = dict(correct)
    sources[first] = fill_stubs(release_first.source, loop_body)
    sources[last] = top_code[0] + "\n" + sources[last]
    yield _variant(release_nb, sources), expect(
        source_nb, assignment, "never_ending", {first, last}, f"{loop_desc}; {top_desc}")


def build(source_dir: Path, release_dir: Path, submitted_dir: Path,
          assignments: list[str], corpus: Path = HERE) -> list[Expected]:
    """Write ``submitted/<student>/<assignment>/`` for every sample student and assignment.

    Parameters
    ----------
    source_dir, release_dir : Path
        The course's ``solutions/`` and ``exercises/`` (after ``generate_assignment``).
    submitted_dir : Path
        The course's ``submitted/``; created as needed.
    assignments : list of str
        Assignment names; the notebook of each is ``<name>/<name>.ipynb``.

    Returns
    -------
    list of Expected
        One per written submission.
    """
    expected = []
    for a in assignments:
        source_nb = nbformat.read(source_dir / a / f"{a}.ipynb", as_version=4)
        release_nb = nbformat.read(release_dir / a / f"{a}.ipynb", as_version=4)
        for nb, exp in variants(source_nb, release_nb, a, corpus):
            dest = submitted_dir / exp.student / a
            shutil.copytree(release_dir / a, dest, dirs_exist_ok=True)
            nbformat.write(nb, dest / f"{a}.ipynb")
            (dest / "timestamp.txt").write_text(TIMESTAMP)
            expected.append(exp)
    return expected
