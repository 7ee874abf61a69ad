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
from conftest import REPO_ROOT, toc_docnames
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


def chinese_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(1 for c in letters if CJK.match(c)) / max(1, len(letters))


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
        return [(i.get("src"), i.get("alt") or "") for i in article(page).select("img")]

    # the same values; a translation may put them in another order within a sentence
    assert Counter(glued(zh)) == Counter(glued(en)), (
        f"{docname}: glued numbers differ between the editions")
    assert code(zh) == code(en), f"{docname}: code differs between the editions"
    assert outputs(zh) == outputs(en), f"{docname}: outputs differ between the editions"
    # the same images in the same order, each figure drawn again in Chinese where it has
    # text (test_each_figure_...), every alt text in Chinese where the English has one
    assert len(images(zh)) == len(images(en)), f"{docname}: images differ in number"
    for (_, en_alt), (zh_src, zh_alt) in zip(images(en), images(zh), strict=True):
        assert bool(en_alt) == bool(zh_alt), (docname, zh_src)
        assert not en_alt or chinese_share(zh_alt) > 0.3, (docname, zh_src, zh_alt[:60])
    captions = [c.get_text(" ", strip=True) for c in article(zh).select("figcaption")]
    assert len(captions) == len(article(en).select("figcaption"))
    assert all(chinese_share(c) > 0.3 for c in captions), (docname, captions)
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


def _figure_pages() -> list[str]:
    """The pages whose cells draw figures (the notebooks among the pages of the toc)."""
    from myst_nb.core.read import is_myst_markdown_notebook

    return [d for d in toc_docnames() if (REPO_ROOT / f"{d}.md").is_file()
            and is_myst_markdown_notebook((REPO_ROOT / f"{d}.md").read_text(encoding="utf-8"))]


@pytest.mark.parametrize("docname", _figure_pages())
def test_each_figure_of_a_chinese_page_is_its_chinese_redraw_with_a_chinese_alt_text(
        built_site: Path, zh_site: Path, docname: str) -> None:
    """Every figure a cell drew (found by its PNG in the execution cache) is on the Chinese
    page as a PNG of its own: exactly the figure with its text from the page's catalog,
    drawn with the CJK font (the same bytes as drawing it again here), no English message
    left in it; its alt text is the catalog's Chinese. A figure whose catalog leaves every
    text as it is keeps the English PNG."""
    from tools import i18n

    figures = i18n.course_figures()
    nb = figures.executed_notebook(i18n.BUILD / ".jupyter_cache", REPO_ROOT / f"{docname}.md")
    assert nb is not None, f"{docname}: not in the execution cache: run `make book`"
    captured = figures.figure_outputs(nb)
    catalog = i18n.read_catalog(i18n.CATALOGS / f"{docname}.po")
    translations = {m.id: m.string for m in catalog if m.id and m.string}

    def translate(text: str) -> str:
        return translations.get(text, text)

    en_page, zh_page = built_site / f"{docname}.html", zh_site / f"{docname}.html"
    en_imgs = article(soup(en_page)).select("img")
    zh_imgs = article(soup(zh_page)).select("img")
    assert len(en_imgs) == len(zh_imgs)
    redrawn = 0
    for en_img, zh_img in zip(en_imgs, zh_imgs, strict=True):
        en_file = (en_page.parent / en_img["src"]).resolve()
        zh_file = (zh_page.parent / zh_img["src"]).resolve()
        assert zh_img.get("alt", "") == translate(en_img.get("alt", "")), zh_img["src"]
        entry = captured.get(en_file.stem)
        assert entry is None or "data" in entry, f"{docname}: a figure without its capture"
        if entry is None:  # an image that is not a figure of a cell
            assert zh_file.read_bytes() == en_file.read_bytes()
            continue
        fig = figures.load_figure(entry["data"])
        if not figures.translate_figure(fig, translate):
            assert zh_file.name == en_file.name, f"{docname}: a figure without text redrawn"
            continue
        redrawn += 1
        assert zh_file.name != en_file.name and zh_file.is_file(), zh_img["src"]
        assert zh_file.read_bytes() == figures.render(fig), (
            f"{docname}: {zh_img['src']} is not the figure translated by the catalog")
        english_left = [t for t in figures.figure_texts(fig)
                        if t in translations and translations[t] != t]
        assert not english_left, f"{docname}: English left in a figure: {english_left}"
    assert redrawn == len(captured), (
        f"{docname}: {redrawn} of {len(captured)} figures drawn in Chinese")


FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)")
CODE_DIRECTIVES = {"{code-cell}", "{code-block}", "{code}", "{literalinclude}"}


def glue_roles(docname: str) -> list[str]:
    """The keys of the ``{glue:text}`` roles in the page's English source, in order, outside
    code: code cells and literal blocks are skipped, directives (an admonition, a
    dropdown) hold prose and are read."""
    prose, directives, code = [], [], None
    for line in (REPO_ROOT / f"{docname}.md").read_text(encoding="utf-8").splitlines():
        fence = FENCE.match(line)
        if code:  # inside code: only the fence that closes it matters
            if fence and fence.group(1) == code and not fence.group(2):
                code = None
        elif fence and not fence.group(2) and directives and fence.group(1) == directives[-1]:
            directives.pop()  # the end of an admonition, a dropdown ...
        elif fence and fence.group(2).startswith("{") and fence.group(2) not in CODE_DIRECTIVES:
            directives.append(fence.group(1))
        elif fence:
            code = fence.group(1)
        else:
            prose.append(line)
    return re.findall(r"\{glue:text\}`([\w.-]+)", "\n".join(prose))


@pytest.mark.parametrize("docname", toc_docnames())
def test_every_glued_number_of_the_source_reaches_both_editions(
        built_site: Path, zh_site: Path, docname: str) -> None:
    """One number per ``{glue:text}`` role of the English page, in both editions. The glue
    calls live in removed cells (``remove-cell``), which MyST-NB drops from the page but
    whose outputs still carry the values: a number that did not arrive would show as a
    missing span here, in either edition."""
    roles = glue_roles(docname)

    def glued(page):
        return [s.get_text() for s in article(page).select("span.pasted-text")]

    en = glued(soup(built_site / f"{docname}.html"))
    zh = glued(soup(zh_site / f"{docname}.html"))
    assert len(en) == len(roles), (
        f"{docname}: {len(roles)} glue roles in the source, {len(en)} numbers on the page")
    assert Counter(zh) == Counter(en), f"{docname}: the Chinese edition lacks glued numbers"
    assert all(value.strip() for value in en), f"{docname}: an empty glued value"


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


# ------------------------------------------------------------- typography and the theme

def link_targets(site: Path, page_path: Path) -> Counter:
    """Where the article's links go, as paths of the site with the Chinese edition's
    ``zh_CN/`` taken off (and the fragment kept): the same for both editions of a page."""
    out: Counter = Counter()
    for a in article(soup(page_path)).select("a[href]"):
        url = urlsplit(urljoin(page_path.as_uri(), a["href"]))
        if url.scheme != "file":
            out[a["href"]] += 1
            continue
        where = Path(url.path).resolve().relative_to(site.resolve()).as_posix()
        out[where.removeprefix(f"{ZH}/") + (f"#{url.fragment}" if url.fragment else "")] += 1
    return out


@pytest.mark.parametrize("docname", toc_docnames())
def test_raw_html_blocks_and_links_reach_the_chinese_page_whole(
        built_site: Path, zh_site: Path, docname: str) -> None:
    """A raw HTML block (the intro's PDF paragraph) is on the Chinese page as its catalog
    translates it, not as "::" and not dropped; every link of the English page goes to the
    same place on the Chinese one (a block or a citation that vanishes or degrades takes
    its links with it)."""
    from tools import i18n

    en_html = (built_site / f"{docname}.html").read_text(encoding="utf-8")
    zh_html = (zh_site / f"{docname}.html").read_text(encoding="utf-8")
    raw = [m for m in i18n.read_catalog(i18n.CATALOGS / f"{docname}.po")
           if m.id and m.id.lstrip().startswith("<")]
    for message in raw:
        assert message.id.strip() in en_html, f"{docname}: raw block not on the English page"
        assert message.string.strip() in zh_html, (
            f"{docname}: the raw block {message.id[:50]!r} is not on the Chinese page as "
            "translated")
    en_text, zh_text = prose_text(soup(built_site / f"{docname}.html")), prose_text(
        soup(zh_site / f"{docname}.html"))
    assert zh_text.count("::") <= en_text.count("::"), f"{docname}: a stray '::'"
    en_links = link_targets(built_site, built_site / f"{docname}.html")
    zh_links = link_targets(built_site, zh_site / f"{docname}.html")
    assert zh_links == en_links, (f"{docname}: links only in English {dict(en_links - zh_links)},"
                                  f" only in Chinese {dict(zh_links - en_links)}")


def test_the_intro_links_the_pdf_in_both_editions(built_site: Path, zh_site: Path) -> None:
    for page in (built_site / "intro.html", zh_site / "intro.html"):
        targets = link_targets(built_site, page)
        assert targets["book.pdf"] == 1, (page, targets)


def test_textual_citations_read_he_and_deng_in_chinese(built_site: Path, zh_site: Path) -> None:
    """{cite:t} names two authors "A 和 B" and three or more "A 等" on Chinese pages;
    the English pages keep "and" and "et al."."""
    def citations(path: Path) -> list[str]:
        return [c.get_text() for c in article(soup(path)).select("span.bibtex-citation")]

    for docname in ("chapters/01_history", "chapters/bibliography"):
        zh, en = citations(zh_site / f"{docname}.html"), citations(built_site / f"{docname}.html")
        assert zh and len(zh) == len(en), (docname, zh, en)
        assert not [c for c in zh if " and " in c or "et al" in c], (docname, zh)
    history = citations(zh_site / "chapters" / "01_history.html")
    assert any(c.startswith("McCulloch 和 Pitts [") for c in history), history
    assert any(c.startswith("Rumelhart 等 [") for c in history), history
    english = citations(built_site / "chapters" / "01_history.html")
    assert any(c.startswith("McCulloch and Pitts [") for c in english), english
    assert any("et al." in c for c in english), english


PUNCTUATION_AFTER = "，。；：、！？）"


@pytest.mark.parametrize("docname", ["chapters/03_error", "chapters/04_gradients"])
def test_inline_math_and_the_punctuation_after_it_are_one_unbreakable_group(
        zh_site: Path, docname: str) -> None:
    """In the HTML: no inline formula is followed by Chinese punctuation outside the
    no-wrap group that keeps them on one line."""
    loose, kept = [], 0
    for math in article(soup(zh_site / f"{docname}.html")).select("span.math"):
        following = math.next_sibling
        text = following if isinstance(following, str) else ""
        in_group = math.parent.name == "span" and "nowrap" in (math.parent.get("class") or [])
        if in_group:
            kept += 1
        elif text[:1] in PUNCTUATION_AFTER and text[:1]:
            loose.append(math.get_text() + text[:3])
    assert not loose, f"{docname}: formulas whose punctuation may start a line: {loose[:5]}"
    assert kept > 5, f"{docname}: only {kept} formulas kept with their punctuation"


def english_labels(html: str) -> list[str]:
    """Tooltips, accessible names and alt texts outside the article that are English: a
    Latin word of three letters or more, other than names the Chinese pages keep. (The
    theme's print-only table of contents, hidden on screen and from screen readers, is
    left out.)"""
    names = {"Binder", "Colab", "JupyterHub", "PDF", "English", "ipynb", "bplib", "Ctrl"}
    page = BeautifulSoup(html, "html.parser")
    for node in page.select("article.bd-article, script, style, nav.language-switch, "
                            ".onlyprint"):
        node.decompose()
    found = []
    for element in page.find_all(True):
        for attr in ("title", "aria-label", "data-bs-title", "alt", "placeholder"):
            words = set(re.findall(r"[A-Za-z]{3,}", element.get(attr) or "")) - names
            if words:
                found.append(f"<{element.name} {attr}={element.get(attr)!r}>")
    return found


def test_the_themes_labels_are_mainland_chinese(zh_site: Path) -> None:
    page = (zh_site / "chapters" / "03_error.html").read_text(encoding="utf-8")
    for english in ("Repository", "Launch on", "Color mode", "Toggle primary sidebar",
                    "System Settings", "列印", "Copyright", "The course authors"):
        assert english not in page, english
    for chinese in ("打印为 PDF", "代码仓库", "在 Binder 上运行", "颜色模式", "作者：本课程作者"):
        assert chinese in page, chinese
    # what is left English is what a11y.js removes or renames once the page runs
    left = english_labels(page)
    assert all("Toggle hidden content" in label or "Sections" in label for label in left), left


# Each span.nowrap whose punctuation is not on the line of its formula: the punctuation's
# middle outside the formula's box, or to its left (on the next line). Returns
# [groups measured, [the groups that broke]].
BROKEN_GROUPS_JS = """() => {
  const broken = []; let measured = 0;
  for (const group of document.querySelectorAll("article span.nowrap")) {
    const math = group.querySelector("mjx-container"), last = group.lastChild;
    if (!math || !last || last.nodeType !== Node.TEXT_NODE || !last.textContent.trim()) continue;
    const range = document.createRange();
    range.setStart(last, 0);
    range.setEnd(last, 1);
    const p = range.getBoundingClientRect(), m = math.getBoundingClientRect();
    if (!p.width || !m.width) continue;  // in a closed dropdown
    measured += 1;
    const middle = (p.top + p.bottom) / 2;
    if (middle < m.top - 1 || middle > m.bottom + 1 || p.left < m.left) {
      broken.push(group.textContent.slice(0, 40));
    }
  }
  return [measured, broken];
}"""


@pytest.mark.slow
def test_no_line_begins_with_the_punctuation_after_a_formula(
        visit: Visit, site_url: str) -> None:
    """Chapter 3 in Chinese at widths from a phone's to a desktop's: every formula that
    a ，。；： follows keeps it on its line. With the no-wrap rule switched off, the same
    measurement finds lines that begin with the punctuation (the check can fail)."""
    visit.open(f"{site_url}/{ZH}/chapters/03_error.html")
    visit.typeset_math()

    def broken_over_widths() -> tuple[int, list[str]]:
        measured, found = 0, []
        for width in range(360, 1281, 40):
            visit.page.set_viewport_size({"width": width, "height": 900})
            measured, broken = visit.page.evaluate(BROKEN_GROUPS_JS)
            found += [f"{width}px: {b}" for b in broken]
        return measured, found

    measured, broken = broken_over_widths()
    assert measured > 20, f"only {measured} formulas with punctuation measured"
    assert not broken, broken[:10]
    visit.page.add_style_tag(content=".nowrap { white-space: normal !important; }")
    _, without_rule = broken_over_widths()
    assert without_rule, "without white-space: nowrap no line broke: the check sees nothing"
    assert not visit.errors, visit.errors


EMPHASIS_STYLE_JS = """selector => Array.from(document.querySelectorAll(selector)).map(em => {
  const style = getComputedStyle(em);
  return [em.textContent, style.fontStyle, style.textEmphasisStyle];
})"""


@pytest.mark.slow
def test_chinese_emphasis_is_upright_with_emphasis_dots_and_latin_stays_italic(
        visit: Visit, site_url: str) -> None:
    visit.open(f"{site_url}/{ZH}/chapters/03_error.html")
    chinese = visit.page.evaluate(EMPHASIS_STYLE_JS, "article em.cjk")
    assert len(chinese) > 3, chinese
    for text, font_style, emphasis in chinese:
        assert font_style == "normal" and "dot" in emphasis, (text, font_style, emphasis)
    visit.open(f"{site_url}/{ZH}/intro.html")  # "*gradient descent*（梯度下降）"
    latin = visit.page.evaluate(EMPHASIS_STYLE_JS, "article em:not(.cjk)")
    assert latin and all(s == "italic" and e == "none" for _, s, e in latin), latin
    visit.open(f"{site_url}/chapters/03_error.html")
    english = visit.page.evaluate(EMPHASIS_STYLE_JS, "article em")
    assert english and all(s == "italic" for _, s, _ in english), english


@pytest.mark.slow
def test_the_chinese_pages_controls_have_chinese_names_once_they_run(
        visit: Visit, site_url: str) -> None:
    """After the page's scripts ran (a11y.js names the navigation's arrows and the home
    link, the theme builds its tooltips): no English tooltip or accessible name."""
    for docname in ("chapters/01_history", "chapters/exercises"):
        visit.open(f"{site_url}/{ZH}/{docname}.html")
        visit.page.wait_for_load_state("load")
        assert english_labels(visit.page.content()) == [], docname
        names = visit.page.locator("li.has-children > details > summary").evaluate_all(
            "s => s.map(e => e.getAttribute('aria-label'))")
        assert names and all(n.endswith("的小节") for n in names), names


FIGURES_JS = """() => Array.from(document.querySelectorAll("article img")).map(img => [
  img.getAttribute("src"), img.alt, img.complete && img.naturalWidth, img.naturalHeight])"""


@pytest.mark.slow
@pytest.mark.parametrize("docname", ["chapters/01_history", "chapters/03_error",
                                     "chapters/04_gradients"])
def test_chinese_figures_load_in_chromium_with_chinese_alt_texts_and_are_saved(
        visit: Visit, site_url: str, docname: str) -> None:
    """A reader of the Chinese chapter sees its own PNGs (not the English ones), loaded,
    each with a Chinese alt text; the first figure is saved as a screenshot."""
    visit.open(f"{site_url}/{docname}.html")
    english = visit.page.evaluate(FIGURES_JS)
    visit.open(f"{site_url}/{ZH}/{docname}.html")
    assert not visit.broken_images()
    chinese = visit.page.evaluate(FIGURES_JS)
    assert len(chinese) == len(english) >= 2, (english, chinese)
    for (en_src, _, en_width, _), (zh_src, zh_alt, zh_width, zh_height) in zip(
            english, chinese, strict=True):
        assert zh_width and zh_height and en_width, zh_src
        assert zh_src.rsplit("/", 1)[-1] != en_src.rsplit("/", 1)[-1], zh_src
        assert chinese_share(zh_alt) > 0.3, zh_alt[:60]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"zh_figure_{docname.rsplit('/', 1)[-1]}.png"
    target.unlink(missing_ok=True)
    figure = visit.page.locator("article img").first
    figure.scroll_into_view_if_needed()
    figure.screenshot(path=str(target))
    assert target.stat().st_size > 10_000
    assert not visit.errors and not visit.remote, (visit.errors, visit.remote)
