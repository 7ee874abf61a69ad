"""The exercises in Chinese (issue 22): the sibling assignments ``exNN_name_zh``.

Built from the same ``.md`` as the English ones through the catalogs of
``locales/zh_CN/LC_MESSAGES/solutions/`` (``tools.i18n``, ``make exercises``). Fast tests:
each Chinese source notebook has the English one's test cells byte for byte and its
code (only comments, docstrings and message texts differ), is what its catalog builds,
carries its language cell and its Chinese text; its release gives away no solution and
no hidden test and refuses the same bplib references; a translation that would change
code is refused; the catalogs follow the rules. Real nbgrader on both languages is in
``tests/test_pipeline.py`` (the grading demo's course), the student's check in
``tests/test_student_path.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from bpgrade import language
from bpgrade.integrity import forbidden_names
from tools import build_exercises as B
from tools import i18n

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = B.assignments()
PAIRS = [(name, language.sibling(name, "zh_CN")) for name in ENGLISH]
HAN = re.compile(r"[\u4e00-\u9fff]")


def _nb(folder: str, name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and _meta(cell).get("grade") and not _meta(cell).get("solution")


def _without_language_cell(nb) -> list:
    return [c for c in nb.cells if _meta(c).get("grade_id") != "language"]


def han_fraction(text: str) -> float:
    """Chinese characters over the letters and Chinese characters of ``text``, once names
    and numbers are set aside (identifiers, code in backticks, math, numbers, and a
    program's own output quoted in Latin letters, “overflow encountered in exp”, links)."""
    rest = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    rest = re.sub(r"“[^“”\u4e00-\u9fff]*”", " ", rest)  # program output quoted as it is
    rest = re.sub(r"[\w./-]+\.html(?:#[\w-]+)?", " ", rest)  # a link into the book
    rest = re.sub(r"`[^`]*`|\$[^$]*\$|[A-Za-z_][A-Za-z0-9_.]*\(|\b\w*_\w*\b|[0-9.eE+-]+",
                  " ", rest)
    han = len(HAN.findall(rest))
    latin = len(re.findall(r"[A-Za-z]", rest))
    return han / max(1, han + latin)


# ------------------------------------------------------------------------- the notebooks


def test_every_exercise_has_a_chinese_twin_in_solutions_and_in_exercises():
    assert len(PAIRS) == 7
    for name, zh in PAIRS:
        assert B.catalog_path(name, "zh_CN").is_file(), name
        assert B.translations(name) == [zh]
        for folder in ("solutions", "exercises"):
            assert (ROOT / folder / zh / f"{zh}.ipynb").is_file(), f"{folder}/{zh}"


@pytest.mark.parametrize(("name", "zh"), PAIRS)
def test_the_chinese_source_has_the_english_test_cells_byte_for_byte_and_its_code(name, zh):
    english, chinese = _nb("solutions", name), _nb("solutions", zh)
    assert i18n.code_problems(english, chinese) == []
    en_tests = [c.source for c in english.cells if _is_test(c)]
    zh_tests = [c.source for c in chinese.cells if _is_test(c)]
    assert en_tests and zh_tests == en_tests
    en_cells, zh_cells = english.cells, _without_language_cell(chinese)
    assert [c.cell_type for c in zh_cells] == [c.cell_type for c in en_cells]
    assert [c.metadata for c in zh_cells] == [c.metadata for c in en_cells]  # grade ids, points
    # what a student reads is translated: every markdown cell, every docstring hint
    for en, tr in zip(en_cells, zh_cells, strict=True):
        if en.cell_type == "markdown":
            assert tr.source != en.source and han_fraction(tr.source) > 0.3, tr.source[:80]
        elif _meta(en).get("solution"):
            assert '"""' in tr.source and HAN.search(tr.source.split('"""')[1]), tr.source[:80]


@pytest.mark.parametrize(("name", "zh"), PAIRS)
def test_the_chinese_release_has_the_english_test_cells_and_checksums(name, zh):
    english, chinese = _nb("exercises", name), _nb("exercises", zh)
    en = {_meta(c)["grade_id"]: c for c in english.cells if _is_test(c)}
    tr = {_meta(c)["grade_id"]: c for c in chinese.cells if _is_test(c)}
    assert list(tr) == list(en)
    for gid in en:  # nbgrader's checksum covers the source and the grading metadata
        assert tr[gid].source == en[gid].source, gid
        assert _meta(tr[gid]) == _meta(en[gid]), gid
    assert chinese.metadata["bpgrade"] == {"language": "zh_CN"}
    assert language.of_notebook(chinese, f"{zh}.ipynb") == "zh_CN"
    assert language.of_notebook(english, f"{name}.ipynb") == language.ENGLISH


@pytest.mark.parametrize(("name", "zh"), PAIRS)
def test_the_chinese_release_sets_its_language_and_has_the_chinese_stub(name, zh):
    nb = _nb("exercises", zh)
    assert _meta(nb.cells[0])["grade_id"] == "install"
    cell = nb.cells[1]
    assert _meta(cell)["grade_id"] == "language" and _meta(cell)["locked"]
    assert not _meta(cell)["grade"] and "checksum" in _meta(cell)
    namespace: dict = {}
    saved = dict(__import__("os").environ)
    try:
        exec(cell.source, namespace)  # noqa: S102 - the course's own cell
        assert __import__("os").environ[language.ENV] == "zh_CN"
        assert language.current() == "zh_CN"
    finally:
        __import__("os").environ.clear()
        __import__("os").environ.update(saved)
    answers = [c.source for c in nb.cells if _meta(c).get("solution")]
    assert answers and all(language.STUBS["zh_CN"] in re.sub(r"(?m)^ +", "", a) for a in answers)
    assert not any("YOUR CODE HERE" in a for a in answers)


@pytest.mark.parametrize(("name", "zh"), PAIRS)
def test_the_chinese_release_gives_away_no_solution_and_no_hidden_test(name, zh):
    source = _nb("solutions", zh)
    release = (ROOT / "exercises" / zh / f"{zh}.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in release and "HIDDEN TESTS" not in release
    region = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END", re.S)
    public = "\n".join(region.sub("", c.source) for c in source.cells)
    secret = [line.strip() for c in source.cells for _, block in region.findall(c.source)
              for line in block.splitlines() if len(line.strip()) > 12]
    assert secret
    leaked = [s for s in secret if s not in public and s in release]
    assert not leaked, leaked


@pytest.mark.parametrize(("name", "zh"), PAIRS)
def test_the_integrity_check_refuses_the_same_references_in_both_languages(name, zh):
    def refused(nb) -> set[str]:
        return forbidden_names([c for c in nb.cells if _meta(c).get("solution")])

    assert refused(_nb("solutions", zh)) == refused(_nb("solutions", name)) != set()


# ------------------------------------------------------------------------- the catalogs


def test_every_piece_of_every_cell_joins_back_into_the_cell():
    import jupytext

    units = 0
    for docname in i18n.exercise_docnames():
        nb = jupytext.read(ROOT / f"{docname}.md")
        for cell in nb.cells:
            pieces = i18n.cell_units(cell)
            assert "".join(p if isinstance(p, str) else p.original for p in pieces) == cell.source
            units += sum(isinstance(p, i18n.Unit) for p in pieces)
            if _is_test(cell):
                assert pieces == [cell.source]  # never a message in a test cell
    assert units > 150


def test_the_exercise_catalogs_are_complete_and_follow_the_rules(tmp_path):
    found = i18n.exercise_problems(pot_dir=tmp_path / "pot")
    assert not found, "\n".join(found[:40])


def test_a_new_english_sentence_is_reported_then_shown_in_english(tmp_path):
    """An exercise edited in English: check names the line; until it is translated the
    Chinese notebook shows it in English."""
    root = tmp_path / "course"
    md = root / "solutions" / "ex05_updates" / "ex05_updates.md"
    md.parent.mkdir(parents=True)
    text = B.source_path("ex05_updates").read_text(encoding="utf-8")
    at = text.index("## 1. Momentum")
    md.write_text(text[:at] + "A sentence nobody has translated yet.\n\n" + text[at:],
                  encoding="utf-8")
    po = B.catalog_path("ex05_updates", "zh_CN", root)
    po.parent.mkdir(parents=True)
    po.write_bytes(B.catalog_path("ex05_updates", "zh_CN").read_bytes())
    line = text[:at].count("\n") + 1
    found = i18n.exercise_problems("solutions/ex05_updates/ex05_updates", root=root,
                                   pot_dir=tmp_path / "pot",
                                   catalog_dir=root / "locales" / "zh_CN" / "LC_MESSAGES")
    assert found == [f"solutions/ex05_updates/ex05_updates.md:{line}: untranslated: "
                     "'A sentence nobody has translated yet.'"], found
    nb = B.build_translation("ex05_updates", "ex05_updates_zh", root)
    assert any(c.source.startswith("A sentence nobody has translated yet.") for c in nb.cells)


def _translated_with(msgid_part: str, msgstr: str, name: str = "ex01_perceptron"):
    """The Chinese notebook of ``name`` built with one translation replaced."""
    english = B.build_notebook(B.source_path(name))
    docname = f"solutions/{name}/{name}"
    done = i18n.translations(docname)
    [msgid] = [m for m in done if msgid_part in m]
    original = i18n.translations
    i18n.translations = lambda *a, **k: {**done, msgid: msgstr}
    try:
        return english, i18n.translate_notebook(english, docname)
    finally:
        i18n.translations = original


def test_a_translation_that_changes_code_is_refused():
    english, ok = _translated_with("One step of the perceptron rule", "感知机规则的一步。")
    assert i18n.code_problems(english, ok) == []
    # a docstring's translation that closes the string and adds code
    _, bad = _translated_with("One step of the perceptron rule",
                              'x"""\nlr = 0\n"""')
    assert i18n.code_problems(english, bad) == [
        "cell 5 (perceptron_update): its code differs from the English (only comments, "
        "docstrings and message texts may)"]
    # an f-string message that loses a field, or breaks the string
    _, lost = _translated_with("mistakes per epoch", "{name:>3}：每个轮次的出错次数")
    assert "its code differs" in " ".join(i18n.code_problems(english, lost))
    _, broken = _translated_with("mistakes per epoch", '{name}"(')
    assert "not valid Python" in " ".join(i18n.code_problems(english, broken))
    # a test cell edited by hand in a Chinese notebook
    edited = _nb("solutions", "ex01_perceptron_zh")
    test = next(c for c in edited.cells if _is_test(c))
    test.source = test.source.replace("seed=0", "seed=1", 1)
    assert i18n.code_problems(_nb("solutions", "ex01_perceptron"), edited) == [
        "cell 6 (test_perceptron_update): a test cell differs from the English one"]


def test_build_translation_refuses_a_catalog_that_changes_code(monkeypatch):
    docname = "solutions/ex01_perceptron/ex01_perceptron"
    done = i18n.translations(docname)
    [msgid] = [m for m in done if "mistakes per epoch" in m]
    monkeypatch.setattr(i18n, "translations", lambda *a, **k: {**done, msgid: "{mistakes}"})
    with pytest.raises(ValueError, match="changes more than text"):
        B.build_translation("ex01_perceptron", "ex01_perceptron_zh")


# ------------------------------------------------------------------------- the grader


@pytest.mark.slow
def test_the_grader_gives_the_kernel_the_language_of_the_assignment(tmp_path, monkeypatch):
    """The sandboxed kernel of a ``_zh`` assignment has ``BPGRADE_LANG=zh_CN``, any other
    ``en``, whatever the grading machine's own environment says (bubblewrap clears the
    rest of it)."""
    from conftest import require

    from bpgrade import kernel
    from bpgrade.nbgrader_plugins import SandboxedExecute

    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    monkeypatch.setenv(language.ENV, "zh_CN")
    folder = tmp_path / "course" / "submitted" / "ana"
    folder.mkdir(parents=True)
    seen = {}
    for assignment in ("ex04_backward", "ex04_backward_zh"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import os\nprint(os.environ.get('BPGRADE_LANG'))")])
        SandboxedExecute(course_root=str(tmp_path / "course"), timeout=30).preprocess(
            nb, {"metadata": {"path": str(folder)},
                 "nbgrader": {"assignment": assignment, "notebook": assignment}})
        seen[assignment] = nb.cells[0].outputs[0].text.strip()
    assert seen == {"ex04_backward": "en", "ex04_backward_zh": "zh_CN"}


# ------------------------------------------------------------------ the checks' messages

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
SHAPE = re.compile(r"\((?:\d+, )*\d*,?\)")
NAME = re.compile(r"\b[A-Za-z_]\w*_\w*\b|\b[A-Za-z]+\d\w*\b")


def same_facts(english: str, chinese: str) -> list[str]:
    """What differs between the names, numbers and shapes of two messages (empty if
    nothing): the Chinese must say the same things about the same objects."""
    out = []
    for kind, pattern in (("numbers", NUMBER), ("shapes", SHAPE), ("names", NAME)):
        en = sorted(pattern.findall(english.replace("zh_CN/", "")))
        zh = sorted(pattern.findall(chinese.replace("zh_CN/", "")))
        if en != zh:
            out.append(f"{kind}: {en} in English, {zh} in Chinese")
    return out


def test_every_message_the_code_can_give_has_a_chinese_translation(tmp_path):
    """Derived from the code (the catalogue, every N_()/text() of bpgrade, the test cells'
    names and expect() messages), not a list: bpgrade.po translates all of it, by the
    rules, and the compiled table the wheel ships is up to date."""
    found = i18n.bpgrade_problems(pot_dir=tmp_path / "pot")
    assert not found, "\n".join(found[:40])
    assert len(language.table("zh_CN")) > 250


def test_a_new_message_in_the_code_is_reported_untranslated(tmp_path):
    import shutil

    root = tmp_path / "course"
    shutil.copytree(ROOT / "bpgrade", root / "bpgrade",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "bpgrade" / "new.py").write_text(
        'from bpgrade.language import N_\n\nWORDS = N_("a message nobody has translated")\n')
    found = i18n.bpgrade_problems(root=root, pot_dir=tmp_path / "pot")
    assert found == ["../course/bpgrade/new.py:3: untranslated: "
                     "'a message nobody has translated'"], found


def _fields(template: str) -> dict[str, str]:
    names = [m.split("!")[0].split(":")[0].strip("{}")
             for m in i18n.PLACEHOLDER.findall(template)]
    return {name: f" v{i}_{name} " for i, name in enumerate(dict.fromkeys(names))}


def test_every_diagnosis_reads_in_chinese_with_the_same_names_and_numbers():
    from bpgrade.checks import diagnoses as D

    for entry in D.CATALOGUE.values():
        fields = _fields(entry.message)
        english = language.render(entry.message, fields, language.ENGLISH)
        chinese = language.render(entry.message, fields, "zh_CN")
        assert not same_facts(english, chinese), (entry.id, same_facts(english, chinese))
        assert han_fraction(chinese) >= 0.3, (entry.id, chinese)
        where = D.where(entry, "zh_CN")
        assert f"（zh_CN/{entry.url}）" in where and han_fraction(where) >= 0.3, where


def _zh_sample_runs():
    from test_diagnoses import ASSIGNMENTS as SAMPLED

    for assignment in SAMPLED:
        for path in sorted((ROOT / "tools" / "samples" / assignment).glob("*.py")):
            yield pytest.param(assignment, path.stem, id=f"{assignment}/{path.stem}")


@pytest.mark.parametrize(("assignment", "stem"), list(_zh_sample_runs()))
def test_each_sample_fails_in_chinese_as_in_english(assignment, stem, monkeypatch):
    """Every sample mistake, in its Chinese notebook with the Chinese messages and in its
    English one: the same diagnosis, the same names, numbers and shapes, Chinese words."""
    from test_diagnoses import run_test_cell

    from tools import samples as S

    raised = {}
    for lang, name in ((language.ENGLISH, assignment), ("zh_CN", f"{assignment}_zh")):
        monkeypatch.setenv(language.ENV, lang)
        source, release = _nb("solutions", name), _nb("exercises", name)
        student = "wrong_" + stem.replace("--", "_").replace("-", "_")
        [(nb, expected)] = [(nb, e) for nb, e in S.variants(source, release, assignment)
                            if e.student == student]
        raised[lang] = run_test_cell(nb, S.test_cells(source), f"test_{expected.function}")
    english, chinese = str(raised[language.ENGLISH]), str(raised["zh_CN"])
    assert getattr(raised["zh_CN"], "id", None) == raised[language.ENGLISH].id
    assert english.splitlines()[-1] == chinese.splitlines()[-1]  # [diagnosis: <id>]
    # the message (the lines above the section's and the id's) says the same things
    message = "\n".join(chinese.splitlines()[:-2])
    assert not same_facts("\n".join(english.splitlines()[:-2]), message), (english, chinese)
    assert han_fraction(message) >= 0.3, chinese
    assert chinese.splitlines()[-2].endswith(f"（zh_CN/{raised['zh_CN'].url}）"), chinese


def test_every_kind_of_repair_reads_in_chinese_with_the_same_cells_and_names():
    """The repairs bpgrade.repair makes of a broken submission (an unknown graded cell, a
    solution cell marked graded, changed points, a pasted test copy, stripped metadata, a
    deleted test cell) say in Chinese what they say in English."""
    import copy

    from test_repair import (
        added_graded_cell,
        correct_notebook,
        instructor,
        pasted_test_copy,
        solution_marked_graded,
        stripped,
    )

    from bpgrade import repair

    def changed_points(nb):
        nb.cells[[_meta(c).get("grade_id") for c in nb.cells].index(
            "test_linear_backward")].metadata["nbgrader"]["points"] = 300
        return nb

    def deleted(nb):
        names = [_meta(c).get("grade_id") for c in nb.cells]
        i = names.index("test_sigmoid_backward")
        del nb.cells[i - 1:i + 1]
        return nb

    repairs = []
    for breaks in (added_graded_cell, solution_marked_graded, changed_points,
                   pasted_test_copy, stripped, deleted):
        repairs += repair.repair_notebook(breaks(copy.deepcopy(correct_notebook())),
                                          instructor())
    kinds = {r.template for r in repairs}
    assert len(kinds) >= 5, kinds
    for r in repairs:
        english, chinese = str(r), language.render(r, None, "zh_CN")
        assert not same_facts(english, chinese), (english, chinese)
        assert han_fraction(chinese) >= 0.3, chinese
