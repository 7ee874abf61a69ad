"""The built site in a real browser (Debian's Chromium driven by Playwright), fully offline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
TIMEOUT_MS = 30_000


class Visit:
    """A browser tab that records console errors, page errors and requests to other hosts."""

    def __init__(self, browser, base_url: str) -> None:
        self.host = urlsplit(base_url).netloc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.remote: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _only_local(self, route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in {"data", "blob"} or urlsplit(url).netloc == self.host:
            route.continue_()
        else:  # the site must not need the network: record it and refuse it
            self.remote.append(url)
            route.abort()

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def open(self, url: str) -> None:
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"

    def typeset_math(self) -> tuple[int, int, int]:
        """Wait for MathJax's first typeset; return (math elements, mjx-container, mjx-merror)."""
        n_math = self.page.locator(".math").count()
        if n_math:
            self.page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                        "MathJax.startup.promise")
            self.page.evaluate("() => MathJax.startup.promise")
        return (
            n_math,
            self.page.locator("mjx-container").count(),
            self.page.locator("mjx-merror").count(),
        )

    def broken_images(self) -> list[str]:
        """``src`` of every <img> that did not load (naturalWidth 0), lazy ones included."""
        return self.page.evaluate(
            """async () => {
                const imgs = Array.from(document.images);
                imgs.forEach(img => { img.loading = "eager"; });
                await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
                    img.addEventListener("load", done); img.addEventListener("error", done);
                    setTimeout(done, 10000);
                })));
                return imgs.filter(img => !(img.complete && img.naturalWidth > 0))
                           .map(img => img.getAttribute("src"));
            }"""
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, site_url: str) -> Iterator[Visit]:
    tab = Visit(browser, site_url)
    try:
        yield tab
    finally:
        tab.close()


# Every page of both editions is loaded offline (math typeset, images shown, no console
# error) by test_accessibility.py, in the same visit as its axe-core check.


def test_gradients_chapter_renders_and_is_saved_as_a_screenshot(
    visit: Visit, site_url: str
) -> None:
    visit.open(f"{site_url}/chapters/04_gradients.html")
    n_math, n_typeset, _ = visit.typeset_math()
    assert n_typeset >= n_math
    title = visit.page.locator("main h1").first.inner_text()
    assert "Gradient" in title, f"the gradients chapter's title is {title!r}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "gradients.png"
    target.unlink(missing_ok=True)
    png = visit.page.screenshot(path=str(target), full_page=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000


def test_search_for_gradient_lists_the_gradients_chapter(visit: Visit, site_url: str) -> None:
    visit.open(f"{site_url}/search.html?q=gradient")
    results = visit.page.locator("#search-results ul.search li")
    results.first.wait_for(state="visible")
    links = results.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any("04_gradients" in href for href in links), f"search results: {links}"
    assert not visit.remote and not visit.errors, (visit.remote, visit.errors)


# Families that hold CJK glyphs (Noto Sans CJK, Source Han, PingFang, YaHei ...).
CJK_FAMILIES = r"CJK|Han|Hei|Song|Ming|Kai|PingFang|YaHei|WenQuanYi|AR PL"


def platform_fonts(visit: Visit, selector: str) -> list[dict]:
    """The fonts Chromium drew an element's text with, and how many glyphs each
    (DevTools' CSS.getPlatformFontsForNode)."""
    cdp = visit.context.new_cdp_session(visit.page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no element {selector}"
    return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def test_an_english_paragraphs_apostrophe_is_drawn_by_a_latin_font(
    visit: Visit, site_url: str
) -> None:
    """On a Linux reader without Arial or Helvetica the first installed family of the
    font stack draws the English prose: a CJK font would set "course’s" with a
    full-width ’ ("course’ s"). Latin families come first; the paragraph's glyphs,
    its ’ included, are all drawn by one."""
    visit.open(f"{site_url}/chapters/exercises.html")
    text = visit.page.evaluate(
        """() => {
            const p = Array.from(document.querySelectorAll("main p")).find(
                p => p.textContent.includes("\u2019") && !/[\u4e00-\u9fff]/.test(p.textContent));
            if (!p) return null;
            p.id = "latin-probe";
            return p.textContent;
        }"""
    )
    assert text, "no English paragraph with ’ on the exercises page"
    fonts = platform_fonts(visit, "#latin-probe")
    cjk = [f for f in fonts if re.search(CJK_FAMILIES, f["familyName"])]
    assert fonts and not cjk, (fonts, text[:80])
    # the language link "中文" (lang="zh-CN") on the same page is drawn by a CJK font
    chinese = platform_fonts(visit, 'nav.language-switch [lang="zh-CN"]')
    assert chinese and all(re.search(CJK_FAMILIES, f["familyName"]) for f in chinese), chinese
