"""The feedback a student opens from disk, with no network: the math is typeset.

nbgrader's feedback template loads MathJax 2.7.7 from a public CDN; the course replaces
that with MathJax 3 inlined into the page (``bpgrade/templates/feedback/``). The pages
come from the real course that ``tests/test_lms.py`` grades (same process, built once);
each is opened as a file in Debian's Chromium driven by Playwright, with every request
that is not to the file itself refused and recorded.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_lms import SUBMISSIONS, _score, graded_course

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000
LATE = ("bob", "ex03_error")  # 25 hours late, a page full of \partial
ON_TIME = ("alice", "ex03_error")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return graded_course(tmp_path_factory)


def _open(browser, page_path: Path, extra: str | None = None) -> dict:
    """Open ``page_path`` offline; return what a student sees and what was asked for (and
    what the script ``extra`` returns, run once the math is typeset)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    context.set_default_timeout(TIMEOUT_MS)
    remote: list[str] = []
    errors: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in {"file", "data", "blob"}:
            route.continue_()
        else:
            remote.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("request", lambda r: None if urlsplit(r.url).scheme in {"file", "data", "blob"}
            else remote.append(r.url))
    try:
        page.goto(page_path.as_uri(), wait_until="load")
        typeset = page.evaluate("""async () => {
            if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return false;
            await MathJax.startup.promise; return true; }""")
        return {
            "typeset": typeset,
            "containers": page.locator("mjx-container").count(),
            "svg": page.locator("mjx-container svg").count(),
            "merror": page.locator("mjx-merror").count(),
            "text": page.evaluate("() => document.body.innerText"),
            "remote": sorted(set(remote)),
            "errors": errors,
            "extra": page.evaluate(extra) if extra else None,
        }
    finally:
        context.close()


def _page(course, who) -> Path:
    student, a = who
    return course.root / "feedback" / student / a / f"{a}.html"


def test_feedback_source_loads_nothing_from_a_cdn(course):
    for student, a in SUBMISSIONS:
        html = _page(course, (student, a)).read_text()
        assert "cdnjs.cloudflare.com" not in html and "MathJax.js" not in html, (student, a)
        assert "<script src=" not in html.replace(" ", ""), (student, a)


@pytest.mark.parametrize("who", [LATE, ON_TIME], ids=["late", "on_time"])
def test_feedback_math_is_typeset_offline_with_no_request_leaving_the_file(course, browser, who):
    seen = _open(browser, _page(course, who))
    assert seen["remote"] == [], f"the feedback asked the network for {seen['remote']}"
    assert seen["typeset"], "MathJax did not start"
    # ex03_error's text has many formulas; each becomes an SVG in an mjx-container
    assert seen["containers"] >= 10 and seen["svg"] >= 10, seen["containers"]
    assert seen["merror"] == 0
    for raw in ("\\partial", "\\frac", "$$", "\\mathrm"):
        assert raw not in seen["text"], f"raw LaTeX {raw!r} visible in the feedback"
    assert not seen["errors"], seen["errors"]


def test_late_penalty_is_visible_in_the_late_students_feedback_only(course, browser):
    late, on_time = _open(browser, _page(course, LATE)), _open(browser, _page(course, ON_TIME))
    shown = re.findall(r"Late submission penalty \(Score: -([0-9.]+)\)", late["text"])
    assert shown and float(shown[0]) == pytest.approx(round(_score(course, *LATE)[1], 2))
    assert float(shown[0]) > 0
    assert "Late submission penalty" not in on_time["text"]


# ------------------------------------------------------------------ a Chinese feedback page

CHINESE = ("fang", "ex03_error_zh")  # ex03_error in Chinese, mse_loss without its 1/2
# Every heading and label of the page, then each distinct Chinese character of the page
# drawn on a canvas in the font the page gives it, compared with what the browser draws
# for characters no font has (U+E000, U+0378): the same pixels mean a missing-glyph box.
PAGE_WORDS = """() => {
  const labels = Array.from(document.querySelectorAll(
      'h1, h2, h3, h4, h5, h6, .nbgrader-label, #toc li, .panel-heading .pull-right, b'))
      .map(e => e.innerText.trim()).filter(t => t);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 64;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (c, font) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = '40px ' + font;
    ctx.fillText(c, 4, 48);
    return ctx.getImageData(0, 0, 64, 64).data.join(',');
  };
  const missing = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const font = getComputedStyle(node.parentElement).fontFamily;
    const boxes = [draw('\uE000', font), draw('\u0378', font)];
    for (const c of node.textContent) {
      if (!/[\u4e00-\u9fff\uff01-\uff5e\u3001-\u303f\u201c\u201d]/.test(c) ||
          seen.has(c + font)) continue;
      seen.add(c + font);
      const pixels = draw(c, font);
      if (boxes.includes(pixels) || !/[1-9]/.test(pixels)) missing.push(c);
    }
  }
  return {lang: document.documentElement.lang, labels, missing, chars: seen.size};
}"""
ENGLISH_LABEL = re.compile(r"\b(Score|Test cell|Comments?|Top|Student's|Grade cell|Task|"
                           r"Late submission|Written response|free-response)\b")


def test_a_chinese_feedback_page_reads_in_chinese_offline(course, browser):
    """The student who works in Chinese opens their feedback from disk, with no network:
    the math is typeset, every heading and label is Chinese, the failing check's message
    too, and every Chinese character has a glyph (no boxes)."""
    from test_zh_exercises import han_fraction

    seen = _open(browser, _page(course, CHINESE), PAGE_WORDS)
    assert seen["remote"] == [] and not seen["errors"], seen
    assert seen["typeset"] and seen["svg"] >= 10 and seen["merror"] == 0
    for raw in ("\\partial", "\\frac", "$$"):
        assert raw not in seen["text"], f"raw LaTeX {raw!r} visible in the feedback"
    extra = seen["extra"]
    assert extra["lang"] == "zh-CN"
    assert len(extra["labels"]) >= 8
    for label in extra["labels"]:
        assert not ENGLISH_LABEL.search(label) and re.search(r"[\u4e00-\u9fff]", label), label
    assert extra["chars"] > 200 and extra["missing"] == [], extra["missing"]
    [failure] = [line for line in seen["text"].splitlines() if "Diagnosis:" in line]
    assert "它正是漏掉 1/2 时得到的结果" in failure, failure
    assert han_fraction(failure.split("Diagnosis:", 1)[1]) >= 0.3, failure
