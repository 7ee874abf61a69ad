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


def _open(browser, page_path: Path) -> dict:
    """Open ``page_path`` offline; return what a student sees and what was asked for."""
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
