"""The Chinese edition's catalogs (locales/zh_CN): complete, up to date with the English
sources, and following the rules of CONTRIBUTING.md (markup carried over, spacing and
punctuation, the glossary's terms)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require, toc_docnames

from tools import i18n


@pytest.fixture(scope="module")
def fresh_pot(tmp_path_factory) -> Path:
    """The messages of the sources as they are now (not the .pot of the last `make`)."""
    out = tmp_path_factory.mktemp("gettext")
    assert i18n.build("gettext", out / "pot", out / "doctrees", None) == 0
    return out / "pot"


def test_every_page_of_the_book_has_a_catalog(fresh_pot: Path) -> None:
    pots = {p.relative_to(fresh_pot).with_suffix("").as_posix() for p in fresh_pot.rglob("*.pot")}
    assert set(toc_docnames()) <= pots
    missing = [d for d in toc_docnames() if not (i18n.CATALOGS / f"{d}.po").is_file()]
    assert not missing, f"pages without a catalog: {missing}"


def test_every_catalog_is_complete_up_to_date_and_follows_the_rules(fresh_pot: Path) -> None:
    found = i18n.problems(pot_dir=fresh_pot)
    assert not found, (
        f"{len(found)} problem(s) in the Chinese catalogs (see CONTRIBUTING.md; "
        "`python -m tools.i18n gettext`, then `todo`/`fill`):\n" + "\n".join(found[:40]))


def test_msgfmt_counts_every_message_translated_and_none_fuzzy() -> None:
    msgfmt = shutil.which("msgfmt")
    require(None if msgfmt else "msgfmt is missing: apt-get install gettext", "GNU gettext")
    for po in sorted(i18n.CATALOGS.rglob("*.po")):
        run = subprocess.run([msgfmt, "--check-format", "--statistics", "-o", "/dev/null", str(po)],
                             capture_output=True, text=True)
        assert run.returncode == 0, f"{po}: {run.stderr}"
        assert re.fullmatch(r"\d+ translated messages?\.\n", run.stderr), f"{po}: {run.stderr}"


def test_a_new_english_paragraph_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    """A catalog out of date with its page: the check names the page and the line."""
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "_toc.yml", "references.bib", "intro.md"):
        shutil.copy2(REPO_ROOT / name, book / name)
    for name in ("chapters", "_static", "_ext"):
        shutil.copytree(REPO_ROOT / name, book / name,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    faq = book / "chapters" / "faq.md"
    lines = faq.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("## ")) + 1
    lines[at:at] = ["", "A paragraph nobody has translated yet.", ""]
    faq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = i18n.build("gettext", tmp_path / "pot", tmp_path / "doctrees", None, root=book,
                      extra={"nb_execution_mode": "off"}, strict=False)
    assert code == 0
    found = i18n.problems("chapters/faq", pot_dir=tmp_path / "pot")
    assert found == [f"chapters/faq.md:{at + 2}: untranslated: "
                     "'A paragraph nobody has translated yet.'"], found


# ------------------------------------------------------------- the rules, one by one

MSGID = ("With $x = 1.5$ the loss is {glue:text}`ch04_graph_E:.4f` and the backward pass "
         "of a batch calls `np.mean` {cite:p}`rumelhart1986`; see {doc}`Chapter 3 <03_error>`.")
GOOD = ("取 $x = 1.5$，损失为 {glue:text}`ch04_graph_E:.4f`；一个批量的反向传播调用 `np.mean` "
        "{cite:p}`rumelhart1986`；参见 {doc}`第 3 章 <03_error>`。")


def test_a_correct_translation_passes_every_rule() -> None:
    assert i18n.tokens(MSGID) == i18n.tokens(GOOD)
    assert i18n.spacing_problems(GOOD) == []
    assert i18n.glossary_problems(MSGID, GOOD, i18n.glossary(), set()) == []


@pytest.mark.parametrize("broken, kind", [
    (GOOD.replace(" {glue:text}`ch04_graph_E:.4f`", " 0.1234"), "role"),
    (GOOD.replace("ch04_graph_E:.4f", "ch04_graph_E:.2f"), "role"),
    (GOOD.replace("$x = 1.5$", "x = 1.5"), "math"),
    (GOOD.replace("`np.mean`", "np.mean"), "code"),
    (GOOD.replace("<03_error>", "<04_gradients>"), "role"),
])
def test_a_glued_number_math_code_or_target_not_carried_over_is_found(broken, kind) -> None:
    assert i18n.tokens(MSGID)[kind] != i18n.tokens(broken)[kind]


@pytest.mark.parametrize("text, what", [
    ("用NumPy计算", "no space between Chinese and Latin"),
    ("共3层", "no space between Chinese and Latin"),
    ("损失为{glue:text}`k:.4f`。", "no space between Chinese and Latin"),
    ("梯度,然后", "ASCII punctuation"),
    ("梯度.", "ASCII punctuation"),
    ("见(第 3 章)", "ASCII parenthesis"),
    ("梯度， 然后", "a space next to full-width punctuation"),
])
def test_spacing_and_punctuation_faults_are_found(text: str, what: str) -> None:
    found = i18n.spacing_problems(text)
    assert any(what in f for f in found), found


def test_a_glossary_term_translated_another_way_is_found_unless_excepted() -> None:
    rows = i18n.glossary()
    other = GOOD.replace("反向传播", "反向传递")
    assert i18n.glossary_problems(MSGID, other, rows, set()) == [
        "glossary: “backward pass” should be “反向传播 / 反向计算”"]
    assert i18n.glossary_problems(MSGID, other, rows, {"backward pass"}) == []
    # the longest term wins: "mean squared error" needs 均方误差, and 误差 alone is not it
    assert i18n.glossary_problems("the mean squared error", "误差", rows, set())
    assert not i18n.glossary_problems("the mean squared error", "均方误差", rows, set())
    # names and abbreviations may stay in Latin letters
    assert not i18n.glossary_problems("a ReLU layer", "一个 ReLU 层", rows, set())


def test_glossary_exceptions_are_few_and_each_gives_its_reason() -> None:
    exceptions = []
    for po in sorted(i18n.CATALOGS.rglob("*.po")):
        for message in i18n.read_catalog(po):
            for comment in message.user_comments:
                if "glossary-exception" in comment:
                    m = i18n.GLOSSARY_EXCEPTION.search(comment)
                    assert m, f"{po.name}: {comment!r} has no reason (TERM: reason)"
                    exceptions.append((po.name, m.group(1), m.group(2)))
    assert len(exceptions) <= 40, exceptions
    terms = {term.strip().lower() for _, term, _ in exceptions}
    # words with a second, everyday sense; a technical term is never excepted
    assert terms <= {"error", "activation", "bias", "precision", "weight", "batch"}, terms


def test_docstrings_stay_out_of_the_catalogs_and_the_api_page_prose_is_in(fresh_pot) -> None:
    api = i18n.read_catalog(i18n.CATALOGS / "chapters" / "api.po")
    ids = {m.id for m in api if m.id}
    assert any("reference library" in i for i in ids)
    # autodoc's sentences are in the extracted messages, and none reaches the catalog
    docstrings = {m.id for m in i18n.read_catalog(fresh_pot / "chapters" / "api.pot")
                  if m.id and i18n._is_docstring_only(m)}
    assert any(i.startswith("Affine layer") for i in docstrings)
    assert not docstrings & ids
    assert all(any(str(p).endswith(".md") for p, _ in m.locations) for m in api if m.id)


# ------------------------------------------------------------- the check, whole

# One message per rule of problems(), each with one fault; its source line names it. The
# kind is a phrase of the problem's text. "ok" messages must pass every rule. A rule that
# problems() stops applying leaves its fault unreported, and this test fails.
FAULTS = [
    # (kind, English, Chinese)
    ("ok", "The backward pass of a batch.", "一个批量的反向传播。"),
    ("untranslated", "A new paragraph.", ""),
    ("fuzzy", "A changed paragraph.", "一段改过的段落。"),
    ("line break", "A block\n", "一个块"),
    ("role not carried", "It is {glue:text}`k:.2f`.", "它是 0.12。"),
    ("math not carried", "With $x = 1$ here.", "这里 x = 1。"),
    ("code not carried", "Call `np.mean` now.", "现在调用 np.mean。"),
    ("link not carried", "See [the page](other.md).", "见[那一页](page.md)。"),
    ("url not carried", "See https://example.org/a now.", "见 https://example.org/b。"),
    ("no space between Chinese and Latin", "Use NumPy.", "用NumPy。"),
    ("ASCII punctuation", "First, then.", "首先,然后。"),
    ("ASCII parenthesis", "See (chapter 3).", "见(第 3 章)。"),
    ("a space next to full-width", "First, and then.", "首先， 然后。"),
    ("a space before %", "It is 27 % slower.", "它慢 27 %。"),
    ("unit symbol for time", "It takes 15 s.", "它需要 15 s。"),
    ("range written with a dash", "Digits 0–4.", "数字 0–4。"),
    ("glossary", "The backward pass.", "反向传递。"),
    ("ok", "Two runs took 0.2 s.", "两次运行用了 0.2 秒，日志写着“a cell timed out (15 s)”。"),
]


def _small_catalogs(tmp_path: Path, faults, headings) -> tuple[Path, Path]:
    """A source page, its .pot and a catalog holding ``faults`` (line i + 1 is the i-th
    message), and one page per entry of ``headings`` with a heading "Check yourself"
    translated as given; plus a page whose catalog is missing."""
    from babel.messages.catalog import Catalog

    src, pot_dir, po_dir = tmp_path / "src", tmp_path / "pot", tmp_path / "po"
    for d in (src, pot_dir, po_dir):
        d.mkdir(parents=True)
    pages = {"faults": [(en, zh, "fuzzy" if kind == "fuzzy" else None)
                        for kind, en, zh in faults]}
    for i, chinese in enumerate(headings):
        pages[f"h{i}"] = [("Check yourself", chinese, None)]
    pages["orphan"] = [("A page nobody has translated.", None, None)]
    for name, messages in pages.items():
        lines = [("## " + en if en == "Check yourself" else en.strip())
                 for en, _, _ in messages]
        (src / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        pot, po = Catalog(locale=None), Catalog(locale="zh_CN")
        for number, (en, zh, flag) in enumerate(messages, start=1):
            where = [(f"../src/{name}.md", number)]
            pot.add(en, locations=where)
            if zh is not None:
                po.add(en, zh, locations=where, flags=[flag] if flag else [])
        i18n.write_catalog(pot, pot_dir / f"{name}.pot")
        if name != "orphan":
            i18n.write_catalog(po, po_dir / f"{name}.po")
    return pot_dir, po_dir


def test_the_check_applies_every_rule_to_a_catalog_with_one_fault_of_each_kind(
        tmp_path: Path) -> None:
    pot_dir, po_dir = _small_catalogs(tmp_path, FAULTS, ["自测", "自测", "自我检测"])
    found = i18n.problems(pot_dir=pot_dir, catalog_dir=po_dir)
    by_line: dict[str, list[str]] = {}
    for line in found:
        where, _, text = line.partition(": ")
        by_line.setdefault(where, []).append(text)
    for number, (kind, en, _) in enumerate(FAULTS, start=1):
        reported = by_line.pop(f"faults.md:{number}", [])
        if kind == "ok":
            assert not reported, (en, reported)
        else:
            assert reported and all(kind in r for r in reported), (kind, en, reported)
    # the repeated heading: the page that departs from the other two is named
    assert [t for t in by_line.pop("h2.md:1")] == [
        "the heading 'Check yourself' is “自我检测” here and “自测” on 2 other page(s): "
        "a repeated heading has one translation"]
    # a page without a catalog
    assert by_line.pop("orphan") == [f"no catalog {po_dir / 'orphan.po'}"]
    assert not by_line, by_line


def test_checking_one_page_still_compares_its_headings_with_every_other_page(
        tmp_path: Path) -> None:
    pot_dir, po_dir = _small_catalogs(tmp_path, FAULTS[:1], ["自测", "自测", "自我检测"])
    assert i18n.problems("h0", pot_dir=pot_dir, catalog_dir=po_dir) == []
    assert len(i18n.problems("h2", pot_dir=pot_dir, catalog_dir=po_dir)) == 1
    # one translation everywhere: nothing to report
    pot_dir, po_dir = _small_catalogs(tmp_path / "same", FAULTS[:1], ["自测", "自测"])
    assert i18n.problems(pot_dir=pot_dir, catalog_dir=po_dir) == [
        f"orphan: no catalog {po_dir / 'orphan.po'}"]
