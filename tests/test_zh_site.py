"""The Chinese edition (中文版) as a reader meets it: every page of the book in Chinese
at _build/html/zh_CN, the same code, outputs and glued numbers as the English page, a
language link both ways, the theme's labels in Chinese, Chinese search, math, images and
CJK glyphs in a real browser (Debian's Chromium), offline."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import test_browser
from bs4 import BeautifulSoup
from conftest import toc_docnames
from test_browser import ARTIFACTS, Visit

ZH = "zh_CN"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def zh_site(built_site: Path) -> Path:
    site = built_site / ZH
    assert (site / "index.html").is_file(), f"{site} has no index.html: run `make book`"
    return site


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def article(page: BeautifulSoup):
    return page.select_one("article.bd-article") or page.select_one("main")


def prose_text(page: BeautifulSoup) -> str:
    """The article's text outside code, outputs and math."""
    body = article(page)
    for node in body.select("div.highlight, pre, .math, script, .cell_output, mjx-container, "
                            "span.pasted-text, code, .headerlink"):
        node.decompose()
    return body.get_text(" ")


@pytest.mark.parametrize("docname", toc_docnames())
def test_every_page_is_in_chinese_with_the_english_pages_code_outputs_and_numbers(
        built_site: Path, zh_site: Path, docname: str) -> None:
    en, zh = soup(built_site / f"{docname}.html"), soup(zh_site / f"{docname}.html")
    assert zh.html.get("lang") == "zh-CN" and en.html.get("lang") == "en"

    def glued(page):
        return [s.get_text() for s in article(page).select("span.pasted-text")]

    def code(page):
        return [b.get_text() for b in article(page).select("div.highlight pre")]

    def outputs(page):
        return [o.get_text() for o in article(page).select(".cell_output")]

    def images(page):
        return [i.get("src") for i in article(page).select("img")]

    # the same values; a translation may put them in another order within a sentence
    assert Counter(glued(zh)) == Counter(glued(en)), (
        f"{docname}: glued numbers differ between the editions")
    assert code(zh) == code(en), f"{docname}: code differs between the editions"
    assert outputs(zh) == outputs(en), f"{docname}: outputs differ between the editions"
    assert images(zh) == images(en)
    text = prose_text(zh)
    letters = [c for c in text if c.isalpha()]
    chinese = sum(1 for c in letters if CJK.match(c))
    # the API page is mostly English docstrings, the bibliography the works' titles;
    # every other page is mostly Chinese
    least = 0.01 if docname in ("chapters/api", "chapters/bibliography") else 0.35
    assert chinese / max(1, len(letters)) > least, f"{docname}: {chinese}/{len(letters)} Chinese"

    # no markup left unparsed by a translation (beyond what the English page shows)
    def leftovers(t):
        return Counter(re.findall(r"\*\*|\{(?:glue|cite|doc|ref|numref|download)[^}]*\}`|\$", t))

    extra = leftovers(text) - leftovers(prose_text(en))
    assert not extra, f"{docname}: unrendered markup {dict(extra)}"


@pytest.mark.parametrize("docname", toc_docnames())
def test_the_language_link_goes_to_the_same_page_in_the_other_edition_and_back(
        built_site: Path, zh_site: Path, docname: str) -> None:
    def other(page_path: Path, lang: str) -> Path:
        link = soup(page_path).select_one(f'nav.language-switch a[hreflang="{lang}"]')
        assert link is not None, f"{page_path}: no link to the {lang} edition"
        url = urljoin(page_path.as_uri(), link["href"])
        return Path(urlsplit(url).path)

    en_page, zh_page = built_site / f"{docname}.html", zh_site / f"{docname}.html"
    assert other(en_page, "zh-CN") == zh_page
    assert other(zh_page, "en") == en_page


def test_the_themes_labels_are_in_chinese(built_site: Path, zh_site: Path) -> None:
    page = (zh_site / "chapters" / "01_history.html").read_text(encoding="utf-8")
    english = (built_site / "chapters" / "01_history.html").read_text(encoding="utf-8")
    assert "Show code cell source" in english and "Show code cell source" not in page
    assert "显示代码" in page
    assert "搜索" in page and "Search this book" not in page
    assert "上一页" in page and "下一页" in page
    assert "Open issue" in english and "Open issue" not in page and "创建议题" in page
    # the parts of the navigation (toctree captions, which the toc extension inserts late)
    captions = [c.get_text() for c in soup(zh_site / "intro.html").select(".caption-text")]
    assert captions[:3] == ["课程", "练习", "参考"], captions
    assert "反向传播：从前史到微调" in page


def test_the_chinese_search_index_splits_words_with_jieba(zh_site: Path) -> None:
    text = (zh_site / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(text[text.index("(") + 1: text.rindex(")")])["terms"]
    # jieba splits the text into words (梯度, not 梯 and 度); the glossary's terms are
    # words of its dictionary, so 反向传播 is one (jieba alone cuts it in two)
    assert "梯度" in terms and "反向" in terms
    for term in ("反向传播", "链式法则", "梯度下降", "计算图"):
        assert term in terms, term


# ------------------------------------------------------------- in a real browser

# The browser tests' tab (Chromium and the served site are conftest's). Every Chinese page
# is loaded offline, its math typeset and images shown, by test_accessibility.py.
visit = test_browser.visit


@pytest.mark.slow
def test_a_reader_clicks_to_english_and_back(visit: Visit, site_url: str) -> None:
    visit.open(f"{site_url}/{ZH}/chapters/04_gradients.html")
    visit.page.locator('nav.language-switch a[hreflang="en"]').first.click()
    visit.page.wait_for_load_state("load")
    assert visit.page.url == f"{site_url}/chapters/04_gradients.html"
    assert visit.page.locator("html").get_attribute("lang") == "en"
    visit.page.locator('nav.language-switch a[hreflang="zh-CN"]').first.click()
    visit.page.wait_for_load_state("load")
    assert visit.page.url == f"{site_url}/{ZH}/chapters/04_gradients.html"
    assert "梯度" in visit.page.locator("main h1").first.inner_text()
    assert not visit.errors and not visit.remote, (visit.errors, visit.remote)


@pytest.mark.slow
def test_chinese_search_finds_backpropagation_on_the_right_pages(
        visit: Visit, site_url: str) -> None:
    visit.open(f"{site_url}/{ZH}/search.html?q=反向传播")
    results = visit.page.locator("#search-results ul.search li")
    results.first.wait_for(state="visible")
    links = results.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    pages = {re.sub(r"\.html.*$", "", h) for h in links}
    for expected in ("chapters/01_history", "chapters/04_gradients", "intro"):
        assert any(p.endswith(expected) for p in pages), f"{expected} not in {sorted(pages)}"
    assert not visit.remote and not visit.errors, (visit.remote, visit.errors)


@pytest.mark.slow
def test_chinese_text_is_drawn_with_a_cjk_font_and_saved_as_a_screenshot(
        visit: Visit, site_url: str) -> None:
    """No missing-glyph boxes: Chromium reports which font drew each glyph of the first
    paragraph (DevTools' CSS.getPlatformFontsForNode); a CJK font must draw them all."""
    visit.open(f"{site_url}/{ZH}/intro.html")
    cdp = visit.context.new_cdp_session(visit.page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "main p"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cjk_families = r"CJK|Han|Hei|Song|Ming|PingFang|YaHei|WenQuanYi"
    cjk_glyphs = sum(f["glyphCount"] for f in fonts if re.search(cjk_families, f["familyName"]))
    first = visit.page.locator("main p").first.inner_text()
    assert len(CJK.findall(first)) > 20, first
    assert cjk_glyphs >= len(CJK.findall(first)), (fonts, first[:80])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "zh_intro.png"
    target.unlink(missing_ok=True)
    png = visit.page.screenshot(path=str(target), full_page=False)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
