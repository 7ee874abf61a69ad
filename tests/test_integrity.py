"""What an exercise forbids comes from the exercise: the instructor's source notebook.

:class:`bpgrade.nbgrader_plugins.CheckIntegrity` reads the ``def`` names of the
source notebook's solution cells and their ``bpgrade.reference`` metadata; the
submission cannot widen or narrow that list (its metadata and its own ``def``
names are not trusted when the source is there). The source notebooks must name
every bplib object that implements a solution function.
"""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

import bplib
from bpgrade import integrity, memo
from bpgrade.nbgrader_plugins import CheckIntegrity

USES_LINEAR = "from bplib import Linear\ndef forward(x):\n    return Linear(2, 2)"

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("ex*/ex*.ipynb"))


def _solution(source: str, grade_id: str, reference: list[str] | None = None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": grade_id, "locked": False,
                                 "schema_version": 3, "solution": True}
    if reference is not None:
        cell.metadata["bpgrade"] = {"reference": reference}
    return cell


def _course(tmp_path: Path, reference: list[str]) -> Path:
    """A course whose source notebook asks for ``forward`` and forbids ``reference``."""
    nb = nbformat.v4.new_notebook(cells=[_solution("def forward(x):\n    return x", "forward",
                                                   reference)])
    folder = tmp_path / "solutions" / "ex99_demo"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "ex99_demo.ipynb")
    return tmp_path


def _run(course: Path, submitted_cells: list, caplog=None):
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.source_directory = "solutions"
    nb = nbformat.v4.new_notebook(cells=submitted_cells)
    resources = {"nbgrader": {"assignment": "ex99_demo", "notebook": "ex99_demo"}}
    out, res = CheckIntegrity(config=config).preprocess(nb, resources)
    return out, res["bpgrade_integrity"]


def test_the_reference_names_of_the_source_notebook_are_refused(tmp_path):
    course = _course(tmp_path, ["Linear"])
    cell = _solution(USES_LINEAR, "forward")
    nb, refused = _run(course, [cell])
    assert refused == ["forward"]
    assert "bplib.Linear" in nb.cells[0].source and "IntegrityError" in nb.cells[0].source


def test_the_submission_cannot_clear_the_list_with_its_own_metadata(tmp_path):
    course = _course(tmp_path, ["Linear"])
    cell = _solution(USES_LINEAR, "forward", reference=[])
    assert _run(course, [cell])[1] == ["forward"]


def test_renaming_the_function_in_the_submission_does_not_unlock_the_reference(tmp_path):
    course = _course(tmp_path, [])
    cell = _solution("import bplib\ndef other(x):\n    return bplib.forward(x)", "forward")
    assert _run(course, [cell])[1] == ["forward"]


def test_a_name_not_in_the_source_is_allowed(tmp_path):
    course = _course(tmp_path, [])
    cell = _solution(USES_LINEAR, "forward")
    assert _run(course, [cell])[1] == []


def test_without_a_source_notebook_the_submission_is_read_and_the_log_says_so(tmp_path, caplog):
    cell = _solution("import bplib\ndef forward(x):\n    return bplib.forward(x)", "forward")
    with caplog.at_level(logging.WARNING):
        _, refused = _run(tmp_path, [cell])
    assert refused == ["forward"]
    assert "no source notebook" in caplog.text


def test_malformed_reference_metadata_is_an_error_that_names_the_key():
    cell = _solution("def f(x):\n    return x", "f", reference="Linear")
    with pytest.raises(ValueError, match="bpgrade.reference"):
        integrity.forbidden_names([cell])


# ---------------------------------------------------------------- the exercises' own lists


def _bplib_objects() -> dict[str, object]:
    names = set(bplib.__all__) | set(bplib._LAZY)
    return {n: getattr(bplib, n) for n in sorted(names)}


def _names_used(obj) -> set[str]:
    try:
        tree = ast.parse(inspect.getsource(obj).lstrip())
    except (OSError, TypeError):
        return set()
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
    return used


def _implementers(functions: set[str]) -> set[str]:
    """bplib objects that use one of ``functions``, directly or through each other."""
    objects = _bplib_objects()
    uses = {name: _names_used(obj) for name, obj in objects.items()}
    found = {f for f in functions if f in objects}
    changed = True
    while changed:
        changed = False
        for name, used in uses.items():
            if name not in found and used & found:
                found.add(name)
                changed = True
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_each_exercise_forbids_every_bplib_object_that_implements_its_functions(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    functions = set().union(*(integrity.defined_functions(integrity.parse_cell(c.source))
                              for c in cells))
    missing = _implementers(functions & set(_bplib_objects())) - integrity.forbidden_names(cells)
    assert not missing, (f"{path.stem}: bplib's {sorted(missing)} implement a function the "
                         f"students write; list them in the solution cell's bpgrade.reference")


# ----------------------------------------------------------------- kept between notebooks


def _refused(source: str) -> list[list[str]]:
    cells = [{"cell_type": "code", "source": "import numpy as np"},
             {"cell_type": "code", "source": source}]
    return [[str(v) for v in found]
            for _, _, found in integrity.refuse_cells(cells, {"linear_backward"},
                                                      lambda c: True)]


def test_a_cells_analysis_is_kept_for_the_next_notebook_and_is_the_same():
    """A worker grades a class: the analysis of a cell source is kept (issue #24), and
    the answer is what a fresh analysis gives."""
    source = "np.sum = len\nfrom bplib.functional import linear_backward"
    integrity._violations_of.cache_clear()
    first = _refused(source)
    assert integrity._violations_of.cache_info().currsize == 2  # both cells
    assert _refused(source) == first and integrity._violations_of.cache_info().hits == 2
    integrity._violations_of.cache_clear()
    assert _refused(source) == first and len(first[0]) == 2, first


def test_nothing_is_kept_on_the_classic_path():
    """``nbgrader_reuse(fast=False)`` (``--classic``) turns :data:`bpgrade.memo.ON` off:
    every notebook is analysed anew, as before issue #24."""
    from bpgrade.pool import nbgrader_reuse

    integrity._violations_of.cache_clear()
    with nbgrader_reuse({}, keep=False, fast=False):
        assert not memo.ON
        _refused("np.sum = len")
    assert memo.ON and integrity._violations_of.cache_info().currsize == 0
    with nbgrader_reuse({}, keep=False, fast=True):
        _refused("np.sum = len")
    assert integrity._violations_of.cache_info().currsize == 2


def test_a_long_cell_is_analysed_every_time_and_not_kept():
    source = "np.sum = len\n" + "#" * memo.MAX_CHARS
    integrity._violations_of.cache_clear()
    integrity._imports_of.cache_clear()
    assert _refused(source) == _refused(source) and len(_refused(source)[0]) == 1
    assert integrity._violations_of.cache_info().currsize == 1  # "import numpy as np"
    assert integrity._imports_of.cache_info().currsize == 1


def test_the_instructors_notebook_is_read_once_while_it_is_unchanged(tmp_path):
    """``from_source`` keeps what it derives from the instructor's notebook for the next
    student (issue #24) and reads the notebook again once it changed."""
    from bpgrade.nbgrader_plugins import from_source

    path = tmp_path / "ex.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, path)
    reads = []

    def sources(source):
        reads.append(1)
        return tuple(c.source for c in source.cells)

    assert from_source(path, "test", sources) == ("x = 1",)
    assert from_source(path, "test", sources) == ("x = 1",) and len(reads) == 1
    nb.cells.append(nbformat.v4.new_code_cell("y = 2"))
    nbformat.write(nb, path)
    assert from_source(path, "test", sources) == ("x = 1", "y = 2") and len(reads) == 2
