"""Every diagnosis has a stable identity: the catalogue, the exception that carries an id,
the book section each id links, and a sample submission that reaches each id.

Fast tests: the catalogue's shape; every id the checks' source names is in it and every
mistake in it is named by the checks; ``str(Diagnosis)`` ends with ``[diagnosis: <id>]``;
every mistake id is declared by a sample in ``tools/samples`` (derived from the catalogue:
a new diagnosis without a sample fails), and each sample, run through its notebook's cells
with the instructor's test cell, fails with the id it declares. The same samples are
graded for real by nbgrader in ``tests/test_pipeline.py``
(``test_each_sample_fails_its_test_cell_with_the_diagnosis_it_declares``).

Slow (needs ``make book``): every catalogue link resolves to a page and an anchor of the
built site, in both editions.
"""

from __future__ import annotations

import ast
import pickle
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from bpgrade.checks import diagnoses as D
from tools import samples as S

ROOT = Path(__file__).resolve().parent.parent
CHECKS = ROOT / "bpgrade" / "checks"
ASSIGNMENTS = sorted(p.name for p in S.HERE.iterdir()
                     if p.is_dir() and p.name.startswith("ex") and any(p.glob("*.py")))
OUTCOMES = {"student-exception", "cell-timeout", "resource-memory", "resource-processes",
            "resource-tmp", "resource-output", "integrity-refusal", "notebook-repaired",
            "late-penalty", "grading-failed"}
MISTAKES = sorted(i for i, e in D.CATALOGUE.items() if e.kind == "mistake")


# --------------------------------------------------------------------------- the catalogue


def test_every_entry_has_a_slug_a_kind_a_message_and_a_section():
    for id_, entry in D.CATALOGUE.items():
        assert entry.id == id_ and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", id_), id_
        assert entry.kind in ("mistake", "outcome"), id_
        assert entry.message and entry.section, id_
        assert re.fullmatch(r"chapters/[a-z0-9_]+\.html#[a-z0-9-]+", entry.url), entry.url


def test_the_outcomes_are_the_contracts():
    assert {i for i, e in D.CATALOGUE.items() if e.kind == "outcome"} == OUTCOMES


def _ids_named_in_the_checks() -> set[str]:
    """Every string constant in the checks' modules (but the catalogue) that is an id."""
    found = set()
    for path in CHECKS.glob("*.py"):
        if path.name == "diagnoses.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value in D.CATALOGUE
                    or re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", node.value)):
                found.add(node.value)
    return found


def test_every_id_the_checks_name_is_in_the_catalogue_and_every_mistake_is_named():
    named = _ids_named_in_the_checks()
    slugs = {n for n in named if n not in D.CATALOGUE}
    assert not slugs, f"ids the checks raise that the catalogue lacks: {sorted(slugs)}"
    unused = set(MISTAKES) - named
    assert not unused, f"catalogue mistakes no check can raise: {sorted(unused)}"


def test_a_diagnosis_is_an_assertion_error_whose_last_line_is_its_id():
    d = D.diagnose("db-wrong-axis", what="linear_backward: db")
    assert isinstance(d, AssertionError) and type(d).__name__ == "Diagnosis"
    lines = str(d).splitlines()
    assert lines[-1] == "[diagnosis: db-wrong-axis]"
    assert lines[0].startswith("linear_backward: db is wrong: it matches dout.sum(axis=1)")
    entry = D.CATALOGUE["db-wrong-axis"]
    assert (d.id, d.url, d.section) == (entry.id, entry.url, entry.section)
    assert lines[-2] == (f'Read: chapter 4, "{entry.section}" in the course book '
                         f"({entry.url})")
    again = pickle.loads(pickle.dumps(d))
    assert str(again) == str(d) and again.id == d.id


def test_outcomes_are_not_raised_as_diagnoses():
    with pytest.raises(ValueError, match="outcome"):
        D.diagnose("cell-timeout")


def test_the_catalogue_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        D.CATALOGUE["db-wrong-axis"] = None  # type: ignore[index]


# --------------------------------------------------------------------------- the samples


def _samples() -> list[tuple[str, Path, S.Snippet]]:
    return [(a, p, S.read_snippet(p)) for a in ASSIGNMENTS
            for p in sorted((S.HERE / a).glob("*.py"))]


def test_every_sample_declares_one_diagnosis_of_the_catalogue():
    for assignment, path, snippet in _samples():
        assert snippet.diagnosis in D.CATALOGUE, f"{assignment}/{path.name}: " \
            f"'# diagnosis: {snippet.diagnosis}' is not an id of the catalogue"
        assert D.CATALOGUE[snippet.diagnosis].kind == "mistake", path.name


def test_every_mistake_of_the_catalogue_has_a_sample():
    declared = {s.diagnosis for _, _, s in _samples()}
    missing = sorted(set(MISTAKES) - declared)
    assert not missing, ("diagnoses without a sample submission in tools/samples "
                         f"(add one with a '# diagnosis: <id>' line): {missing}")


def _notebooks(assignment: str):
    source = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb",
                           as_version=4)
    release = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb",
                            as_version=4)
    return source, release


def run_test_cell(nb, source_tests: dict, target: str) -> BaseException | None:
    """Run the student's notebook ``nb`` in a fresh namespace as the grader would, with the
    instructor's version of the test cell ``target`` (hidden tests included) and no other
    test cell; return what ``target`` raised (``None`` if it passed)."""
    ns: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        gid = meta.get("grade_id")
        is_test = meta.get("grade") and not meta.get("solution")
        if is_test and gid != target:
            continue
        code = source_tests[gid].source if is_test else cell.source
        try:
            exec(compile(code, gid or "cell", "exec"), ns)  # noqa: S102 - the course's own
        except Exception as exc:  # noqa: BLE001 - a student's cell may fail; the target says
            if gid == target:
                return exc
        if gid == target:
            return None
    raise AssertionError(f"no test cell {target}")


def _cases():
    for assignment in ASSIGNMENTS:
        for path in sorted((S.HERE / assignment).glob("*.py")):
            yield pytest.param(assignment, path.stem, id=f"{assignment}/{path.stem}")


@pytest.mark.parametrize(("assignment", "stem"), list(_cases()))
def test_each_sample_fails_its_own_test_cell_with_the_diagnosis_it_declares(assignment, stem):
    source, release = _notebooks(assignment)
    tests = S.test_cells(source)
    student = "wrong_" + stem.replace("--", "_").replace("-", "_")
    [(nb, expected)] = [(nb, e) for nb, e in S.variants(source, release, assignment)
                        if e.student == student]
    raised = run_test_cell(nb, tests, f"test_{expected.function}")
    assert raised is not None, f"{assignment}/{stem}: its test cell passed"
    got = getattr(raised, "id", f"{type(raised).__name__}: {raised}")
    assert got == expected.diagnosis, f"{assignment}/{stem}: {raised}"


# --------------------------------------------------------------------------- the links


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids |= {v for k, v in attrs if k == "id" and v}


def _ids_of(path: Path) -> set[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.ids


@pytest.mark.slow
@pytest.mark.parametrize("edition", ["", "zh_CN"])
def test_every_catalogue_link_is_a_page_and_an_anchor_of_the_built_site(built_site, edition):
    root = built_site / edition if edition else built_site
    if edition and not (root / "index.html").is_file():
        pytest.fail(f"{root} has no index.html: `make book` builds both editions")
    ids: dict[str, set[str]] = {}
    broken = []
    for entry in D.CATALOGUE.values():
        page, anchor = entry.url.split("#")
        if page not in ids:
            ids[page] = _ids_of(root / page) if (root / page).is_file() else set()
        if anchor not in ids[page]:
            broken.append(f"{entry.id}: {entry.url}")
    assert not broken, f"links of the catalogue that the built site lacks: {broken}"
