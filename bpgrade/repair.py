"""Notebook repair before grading: a submission's nbgrader metadata, checked against the
instructor's cells.

nbgrader stops on a notebook whose nbgrader metadata does not match its gradebook
(the student then gets 0 for every function): a graded cell the gradebook does
not know ("Cell 'bonus_points' does not exist in the database"), a solution cell
marked as graded, two cells with one ``grade_id`` (a pasted copy of a test cell),
or cells whose metadata an editor dropped (nbgrader issues #1941, #1682, #424).
:func:`repair_notebook` puts such a notebook back in the shape the gradebook
expects, so that the student's score is what the answers earn:

* a graded (or solution, locked, task) cell whose ``grade_id`` the instructor's
  notebook does not have loses its nbgrader metadata: it stays in the notebook, runs
  as an ordinary cell, and is not graded;
* a cell with a known ``grade_id`` whose nbgrader metadata differs from the
  instructor's (a solution cell marked graded, a test cell with other points, a test
  cell marked as a solution) gets the instructor's metadata back;
* of several cells with one ``grade_id`` one keeps it, the others become ordinary
  cells: for a locked cell (a test) the one whose checksum is the instructor's, for
  a solution cell the first one that is answered (its checksum is *not* the
  release's), else the first;
* an instructor's cell that no cell carries is looked for among the unmarked cells of
  the same type: by cell id, then (solution cells) by the top-level functions it
  defines, then by unchanged source; the cell found gets the instructor's metadata;
* a graded cell still missing whose predecessor is missing too (where nbgrader's
  ``add_missing_cells`` fails) is put back from the instructor's copy.

Each repair is one line of the returned list; the nbgrader preprocessor
(:class:`bpgrade.nbgrader_plugins.RepairNotebook`) stores it in the notebook's
metadata under :data:`REPAIRS_KEY`, logs it and lists it in the feedback.

Plain functions over notebook dicts (``nbformat`` nodes or ``dict``); standard
library only, nbgrader is not imported.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .integrity import defined_functions, parse_cell
from .language import N_, joined, text

REPAIRS_KEY = "bpgrade_repairs"
"""Notebook metadata: ``{"bpgrade_repairs": ["one line per repair", ...]}``."""

SCHEMA_VERSION = 3  # nbgrader 0.9's cell metadata


@dataclass(frozen=True)
class InstructorCell:
    """One cell of the instructor's notebook as the gradebook knows it."""

    name: str  # grade_id
    cell_type: str
    source: str
    checksum: str | None
    locked: bool
    grade: bool = False
    solution: bool = False
    task: bool = False
    points: float | None = None
    cell_id: str | None = None  # the nbformat cell id, when known

    @property
    def visible_source(self) -> str:
        """The source as the release shows it: the gradebook keeps a test cell's
        hidden tests, the student's copy never had them."""
        return without_hidden_tests(self.source)

    def checksums(self) -> set[str]:
        """The checksums of this cell unchanged: the gradebook's and the release's."""
        probe = {"cell_type": self.cell_type, "source": self.visible_source,
                 "metadata": {"nbgrader": self.metadata()}}
        return {c for c in (self.checksum, compute_checksum(probe)) if c}

    def unchanged(self, cell) -> bool:
        """Is ``cell``'s source this cell's (with or without the hidden tests)?"""
        text = cell["source"].strip()
        return text in (self.source.strip(), self.visible_source.strip())

    def metadata(self) -> dict:
        """The nbgrader cell metadata of this cell (as ``generate_assignment`` writes it)."""
        meta = {"cell_type": self.cell_type, "grade": self.grade, "grade_id": self.name,
                "locked": self.locked, "schema_version": SCHEMA_VERSION,
                "solution": self.solution}
        if self.task:
            meta["task"] = True
        if self.grade or self.task:
            meta["points"] = self.points
        if self.checksum:
            meta["checksum"] = self.checksum
        return meta


# ------------------------------------------------------------------ the instructor's cells


def instructor_cells_from_gradebook(notebook, ids: dict[str, str] | None = None
                                    ) -> list[InstructorCell]:
    """The cells of a gradebook notebook (``Gradebook.find_notebook(...)``), in the
    instructor's order. ``ids`` maps grade_id to nbformat cell id (the gradebook does
    not keep those; :func:`cell_ids` of the source notebook gives them)."""
    ids = ids or {}
    grades = {c.name: c for c in notebook.grade_cells}
    solutions = {c.name for c in notebook.solution_cells}
    tasks = {c.name: c for c in notebook.task_cells}
    cells = []
    for sc in notebook.source_cells:
        graded = grades.get(sc.name)
        task = tasks.get(sc.name)
        points = graded.max_score if graded is not None else (
            task.max_score if task is not None else None)
        cells.append(InstructorCell(
            name=sc.name, cell_type=sc.cell_type, source=sc.source, checksum=sc.checksum,
            locked=bool(sc.locked), grade=graded is not None, solution=sc.name in solutions,
            task=task is not None, points=float(points) if points is not None else None,
            cell_id=ids.get(sc.name)))
    return cells


def instructor_cells_from_notebook(nb) -> list[InstructorCell]:
    """The instructor's cells read from a notebook's own metadata (the release in
    ``exercises/``, whose cells carry their checksums; or the source notebook)."""
    cells = []
    for cell in nb["cells"]:
        meta = _nbgrader(cell)
        if not _flagged(meta) or not meta.get("grade_id"):
            continue
        grade, solution = bool(meta.get("grade")), bool(meta.get("solution"))
        locked = _locked(meta)
        points = meta.get("points")
        ic = InstructorCell(
            name=meta["grade_id"], cell_type=cell["cell_type"], source=cell["source"],
            checksum=None, locked=locked, grade=grade, solution=solution,
            task=bool(meta.get("task")), points=float(points) if points is not None else None,
            cell_id=cell.get("id"))
        cells.append(_with_checksum(ic, meta.get("checksum")))
    return cells


def _with_checksum(ic: InstructorCell, checksum: str | None) -> InstructorCell:
    from dataclasses import replace

    if not checksum:
        probe = {"cell_type": ic.cell_type, "source": ic.source,
                 "metadata": {"nbgrader": ic.metadata()}}
        checksum = compute_checksum(probe)
    return replace(ic, checksum=checksum)


def cell_ids(nb) -> dict[str, str]:
    """``{grade_id: cell id}`` of a notebook's nbgrader cells."""
    out = {}
    for cell in nb["cells"]:
        gid = _nbgrader(cell).get("grade_id")
        if gid and cell.get("id"):
            out[gid] = cell["id"]
    return out


# ------------------------------------------------------------------------------ helpers


def without_hidden_tests(source: str, begin: str = "BEGIN HIDDEN TESTS",
                         end: str = "END HIDDEN TESTS") -> str:
    """``source`` without its hidden-test regions, as nbgrader's ``ClearHiddenTests``
    writes the release (unchanged when the regions are malformed)."""
    kept, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                return source
            inside = True
        elif end in line:
            inside = False
        elif not inside:
            kept.append(line)
    return source if inside else "\n".join(kept)


def _nbgrader(cell) -> dict:
    meta = (cell.get("metadata") or {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _flagged(meta: dict) -> bool:
    """Does nbgrader treat a cell with this metadata as one of its own?"""
    return any(bool(meta.get(k)) for k in ("grade", "solution", "locked", "task"))


def _locked(meta: dict) -> bool:
    """nbgrader's ``utils.is_locked``: a solution never is, a graded cell always is."""
    if meta.get("solution"):
        return False
    return bool(meta.get("grade")) or bool(meta.get("locked"))


def compute_checksum(cell) -> str:
    """nbgrader's ``utils.compute_checksum`` (0.9), over a plain dict."""
    meta = _nbgrader(cell)
    grade, solution, locked = bool(meta.get("grade")), bool(meta.get("solution")), \
        _locked(meta)
    m = hashlib.md5()  # noqa: S324 - nbgrader's checksum, not a security measure
    for part in (cell["source"], cell["cell_type"], str(grade), str(solution), str(locked),
                 meta.get("grade_id", "")):
        m.update(part.encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def shown(name) -> str:
    """A grade_id as it appears in a repair line: only ``[A-Za-z0-9_.-]``, at most 40
    characters (the line ends up in the student's feedback)."""
    text = _SAFE.sub("?", str(name))
    return f"'{text[:40]}{'...' if len(text) > 40 else ''}'"


def _set_metadata(cell, ic: InstructorCell) -> None:
    cell["metadata"]["nbgrader"] = ic.metadata()


def _unmark(cell) -> None:
    cell["metadata"].pop("nbgrader", None)


def _differences(meta: dict, ic: InstructorCell) -> list[str]:
    """What in a known cell's nbgrader metadata is not the instructor's."""
    want = ic.metadata()
    diffs = []
    for key in ("grade", "solution", "locked", "task"):
        got, wanted = (_locked(meta), _locked(want)) if key == "locked" else (
            bool(meta.get(key)), bool(want.get(key)))
        if got != wanted:
            diffs.append(text("{key}={got} (instructor: {wanted})", key=key, got=got,
                              wanted=wanted))
    if ic.grade or ic.task:
        try:
            got = float(meta.get("points"))
        except (TypeError, ValueError):
            got = None
        if got != ic.points:
            diffs.append(text("points={got} (instructor: {wanted})",
                              got=_short(meta.get("points")), wanted=format(ic.points, "g")))
    return diffs


def _short(value) -> str:
    return _SAFE.sub("?", str(value))[:20]


# ------------------------------------------------------------------------------ repairs


def drop_unknown(nb, known: Iterable[str]) -> list[str]:
    """Unmark nbgrader cells whose grade_id the instructor's notebook does not have
    (or that have none)."""
    known = set(known)
    repairs = []
    for number, cell in enumerate(nb["cells"], start=1):
        meta = _nbgrader(cell)
        if "nbgrader" in (cell.get("metadata") or {}) and not _flagged(meta) \
                and meta.get("grade_id") not in known:
            _unmark(cell)  # inert metadata: nothing to report
            continue
        if not _flagged(meta):
            continue
        gid = meta.get("grade_id")
        if gid in known:
            continue
        what = N_("graded cell") if meta.get("grade") else (
            N_("solution cell") if meta.get("solution") else N_("locked cell"))
        name = shown(gid) if gid else N_("without a grade_id")
        _unmark(cell)
        repairs.append(text("cell {n}: {what} {name} is not in the instructor's notebook; it "
                            "is not graded (kept as an ordinary cell)", n=number, what=what,
                            name=name))
    return repairs


def reset_changed(nb, instructor: dict[str, InstructorCell]) -> list[str]:
    """Give cells with a known grade_id the instructor's nbgrader metadata where
    theirs differs (flags or points)."""
    repairs = []
    for number, cell in enumerate(nb["cells"], start=1):
        meta = _nbgrader(cell)
        ic = instructor.get(meta.get("grade_id")) if _flagged(meta) else None
        if ic is None:
            continue
        diffs = _differences(meta, ic)
        if diffs:
            _set_metadata(cell, ic)
            changes = joined(diffs, N_(", "))
            repairs.append(text("cell {n} {name}: its nbgrader metadata was changed "
                                "({changes}); reset to the instructor's", n=number,
                                name=shown(ic.name), changes=changes))
    return repairs


def deduplicate(nb, instructor: dict[str, InstructorCell]) -> list[str]:
    """Keep one cell per grade_id; the others become ordinary cells."""
    groups: dict[str, list[int]] = {}
    for index, cell in enumerate(nb["cells"]):
        meta = _nbgrader(cell)
        if _flagged(meta) and meta.get("grade_id") in instructor:
            groups.setdefault(meta["grade_id"], []).append(index)
    repairs = []
    for gid, indices in groups.items():
        if len(indices) < 2:
            continue
        ic = instructor[gid]
        sums = ic.checksums()
        typed = [i for i in indices if nb["cells"][i]["cell_type"] == ic.cell_type] or indices
        same = [i for i in typed if compute_checksum(nb["cells"][i]) in sums]
        if ic.solution:  # the answered one (an unchanged stub matches the checksum)
            keep = next((i for i in typed if i not in same), typed[0])
        else:
            keep = same[0] if same else typed[0]
        for i in indices:
            if i != keep:
                _unmark(nb["cells"][i])
        others = [str(i + 1) for i in indices if i != keep]
        rest = (text("cell {n} is an ordinary cell now", n=others[0]) if len(others) == 1
                else text("cells {cells} are ordinary cells now", cells=", ".join(others)))
        repairs.append(text("{gid} was on {count} cells: cell {keep} is graded as {gid}, "
                            "{rest}", gid=shown(gid), count=len(indices), keep=keep + 1,
                            rest=rest))
    return repairs


def _candidates(nb) -> list[int]:
    return [i for i, cell in enumerate(nb["cells"]) if not _flagged(_nbgrader(cell))]


def restore_stripped(nb, instructor: list[InstructorCell]) -> list[str]:
    """Give the instructor's metadata back to unmarked cells that are an instructor's
    cell no cell carries: by cell id, then by the functions defined, then by source."""
    present = {_nbgrader(c).get("grade_id") for c in nb["cells"] if _flagged(_nbgrader(c))}
    missing = [ic for ic in instructor if ic.name not in present]
    free = _candidates(nb)
    cells = nb["cells"]
    found: dict[str, tuple[int, str]] = {}

    def claim(ic: InstructorCell, test, how: str) -> None:
        for i in free:
            if cells[i]["cell_type"] == ic.cell_type and test(cells[i]):
                found[ic.name] = (i, how)
                free.remove(i)
                return

    for ic in missing:
        if ic.cell_id:
            claim(ic, lambda c, ic=ic: c.get("id") == ic.cell_id, N_("its cell id"))
    for ic in missing:
        if ic.name in found or ic.locked or ic.cell_type != "code":
            continue
        wanted = _defines(ic.source)
        if wanted:
            claim(ic, lambda c, w=wanted: w <= _defines(c["source"]),
                  text("the function(s) it defines ({names})", names=", ".join(sorted(wanted))))
    for ic in missing:
        if ic.name not in found:
            claim(ic, ic.unchanged, N_("its unchanged source"))
    repairs = []
    by_name = {ic.name: ic for ic in instructor}
    for name, (i, how) in sorted(found.items(), key=lambda kv: kv[1][0]):
        cells[i].setdefault("metadata", {})
        _set_metadata(cells[i], by_name[name])
        repairs.append(text("cell {n}: its nbgrader metadata was missing; matched to the "
                            "instructor's cell {name} by {how}", n=i + 1, name=shown(name),
                            how=how))
    return repairs


def put_back_missing(nb, instructor: list[InstructorCell]) -> list[str]:
    """Put back a graded cell that no cell carries when nbgrader cannot: its
    ``add_missing_cells`` inserts it after the instructor's cell before it and
    fails (``KeyError``) when that one is not a graded or solution cell of the
    submission. Here it goes after the last cell of the instructor's cells before
    it. The source is the instructor's; nbgrader puts back every other missing cell
    itself."""
    cells = nb["cells"]

    def carried(kinds: tuple[str, ...]) -> set[str]:
        return {m.get("grade_id") for c in cells
                if any((m := _nbgrader(c)).get(k) for k in kinds)}

    present, graded = carried(("grade", "solution", "locked", "task")), carried(
        ("grade", "solution"))
    with_ids = any(c.get("id") for c in cells)
    repairs = []
    for pos, ic in enumerate(instructor):
        if not ic.grade or ic.name in present or pos == 0 or instructor[pos - 1].name in graded:
            continue
        earlier = {x.name for x in instructor[:pos]}
        at = max((i + 1 for i, c in enumerate(cells)
                  if _flagged(m := _nbgrader(c)) and m.get("grade_id") in earlier), default=0)
        cell = {"cell_type": ic.cell_type, "source": ic.source,
                "metadata": {"deletable": False, "editable": False,
                             "nbgrader": ic.metadata()}}
        if ic.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        if with_ids:
            cell["id"] = "restored-" + _SAFE.sub("-", ic.name)[:48]
        cells.insert(at, cell)
        present.add(ic.name)
        graded.add(ic.name)
        repairs.append(text("cell {n}: the graded cell {name} was missing (and so was the "
                            "cell before it); put back from the instructor's copy", n=at + 1,
                            name=shown(ic.name)))
    return repairs


def _defines(source: str) -> set[str]:
    tree = parse_cell(source)
    return defined_functions(tree) if tree is not None else set()


def repair_notebook(nb, instructor: list[InstructorCell]) -> list[str]:
    """Repair ``nb`` (in place) against the instructor's cells; return one line per
    repair (empty when nothing was wrong)."""
    by_name = {ic.name: ic for ic in instructor}
    for cell in nb["cells"]:
        if "metadata" not in cell:
            cell["metadata"] = {}
        if "nbgrader" in cell["metadata"] and not isinstance(cell["metadata"]["nbgrader"],
                                                             dict):
            del cell["metadata"]["nbgrader"]
    repairs = drop_unknown(nb, by_name)
    repairs += reset_changed(nb, by_name)
    repairs += deduplicate(nb, by_name)
    repairs += restore_stripped(nb, instructor)
    repairs += put_back_missing(nb, instructor)
    return repairs
