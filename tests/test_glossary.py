"""The glossary is the authority for Chinese terms.

Every "English (中文)" pair written on a page of the book must use a Chinese term
that the glossary lists, and where the English words end with a glossary term,
the Chinese must be that term's (one of its variants, written ``A / B`` in the
glossary). So a term is never translated two ways, and a new term cannot be
introduced without its glossary row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.i18n import glossary_table, plural_forms

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "chapters" / "glossary.md"
PAGES = sorted(p for p in [ROOT / "intro.md", *(ROOT / "chapters").glob("*.md")]
               if p != GLOSSARY)
# English words, then a parenthesis (ASCII or full-width) that holds Chinese.
PAIR = re.compile(r"([A-Za-z][A-Za-z\-’']*(?:[ \-][A-Za-z][A-Za-z\-’']*){0,5})\**\s*[(（]"
                  r"([\u4e00-\u9fff][^()（）\n]*?)[)）]")


def glossary() -> dict[str, set[str]]:
    """``{english term: {chinese variants}}`` from the glossary's table."""
    return {re.sub(r"\s*\(.*?\)", "", english).lower(): chinese
            for english, chinese in glossary_table(GLOSSARY)}


def pairs(text: str) -> list[tuple[int, str, str]]:
    """``(line, english words, chinese)`` of every pair in a page's text; a pair may run
    over a line break; fenced blocks (code, directives) are left out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    flat = " ".join(lines)  # one space per line break: offsets map back to lines
    starts, at = [], 0
    for line in lines:
        starts.append(at)
        at += len(line) + 1
    found = []
    for m in PAIR.finditer(flat):
        number = sum(1 for s in starts if s <= m.start(2))
        found.append((number, " ".join(m.group(1).lower().split()), m.group(2).strip()))
    return found


def _ends_with(words: str, term: str) -> bool:
    return any(re.search(rf"(^|[\s\-]){re.escape(form)}$", words)
               for form in plural_forms(term))


def problems(pages: list[Path], rows: dict[str, set[str]]) -> list[str]:
    known = set().union(*rows.values())
    out = []
    for page in pages:
        for line, english, written in pairs(page.read_text(encoding="utf-8")):
            where = f"{page.relative_to(ROOT)}:{line}"
            # "随机梯度下降, SGD": each Chinese part is a term; Latin parts are abbreviations
            parts = [t.strip() for t in re.split(r"[,，、;；]", written)]
            chinese = [t for t in parts if re.search(r"[\u4e00-\u9fff]", t)]
            unknown = [t for t in chinese if t not in known]
            for term in unknown:
                out.append(f"{where}: {term!r} ({english!r}) is not in the glossary")
            if unknown or len(chinese) != 1:
                continue
            # the longest glossary term the English words end with names the term
            terms = [t for t in rows if _ends_with(english, t)]
            term = max(terms, key=len) if terms else None
            if term and chinese[0] not in rows[term]:
                out.append(f"{where}: {term!r} is {chinese[0]!r} here but the glossary says "
                           f"{' / '.join(sorted(rows[term]))}")
    return out


def test_every_chinese_term_of_the_book_is_the_glossarys():
    found = problems(PAGES, glossary())
    assert not found, "\n".join(found)


def test_the_book_has_terms_to_check_and_the_glossary_rows_parse():
    rows = glossary()
    assert len(rows) > 60 and rows["backpropagation"] == {"反向传播"}
    assert sum(len(pairs(p.read_text(encoding="utf-8"))) for p in PAGES) > 50


def test_logit_has_one_chinese_term_and_the_parenthesised_synonym_is_a_variant():
    # one term, not "A / B": softmax logits are not log-odds (对数几率)
    row = re.search(r"^\| logit \| ([^|]*) \|", GLOSSARY.read_text(encoding="utf-8"), re.M)
    assert row and row.group(1) == "logit（未归一化的得分）"
    assert glossary()["logit"] == {"logit（未归一化的得分）", "logit", "未归一化的得分"}
    assert "对数几率" not in set().union(*glossary().values())


@pytest.mark.parametrize(("text", "expected"), [
    ("the **logit** (对数几率) is", "'logit' is '未归一化得分' here"),
    ("a **widget** (小部件) here", "'小部件' ('widget') is not in the glossary"),
])
def test_a_second_translation_or_an_unknown_term_is_reported(tmp_path, text, expected):
    page = tmp_path / "page.md"
    page.write_text(text.replace("对数几率", "未归一化得分") if "logit" in text else text)
    rows = {"logit": {"对数几率"}, "softmax": {"归一化指数函数"}, "x": {"未归一化得分"}}
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = problems([page], rows)
    finally:
        ROOT = saved
    assert any(expected in f for f in found), found
