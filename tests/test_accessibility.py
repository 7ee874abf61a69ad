"""Readable by everyone: axe-core in the real browser on every page of the built site, and
a text alternative for every figure.

axe-core comes from npm at set-up time (``make setup`` installs it into ``.venv/node``);
the pages and axe are served locally, nothing is fetched. The theme's controls get their
accessible names from ``_static/a11y.js``; the figures' alt texts are cell metadata of the
chapters (``mystnb: image: alt:``).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import test_browser
from conftest import REPO_ROOT, require, toc_docnames
from test_browser import Visit

# The browser tests' tab that refuses remote hosts (the site and Chromium are conftest's).
visit = test_browser.visit

pytestmark = pytest.mark.slow

AXE = REPO_ROOT / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "axe"
# Pages Sphinx writes besides those of _toc.yml.
GENERATED = ["genindex", "search", "py-modindex"]
# index.html only redirects to intro.html (a meta refresh), which is checked.
REDIRECTS = {"index"}
FAILING_IMPACTS = {"serious", "critical"}


def site_docnames() -> list[str]:
    """Every page of both editions (the Chinese one under zh_CN/)."""
    english = toc_docnames() + GENERATED
    return english + [f"zh_CN/{name}" for name in english]


def _axe_source() -> str:
    require(None if AXE.is_file() else
            f"{AXE} is missing: `make setup` installs it with npm (apt-get install nodejs npm)",
            "axe-core")
    return AXE.read_text(encoding="utf-8")


def run_axe(tab: Visit, url: str, loaded=None) -> list[dict]:
    """axe-core's violations on ``url`` once it has loaded and its math is typeset;
    ``loaded(tab, math)``, if given, checks the page first (``math``: typeset_math's)."""
    tab.open(url)
    math = tab.typeset_math()
    if loaded is not None:
        loaded(tab, math)
    tab.page.add_script_tag(content=_axe_source())
    return tab.page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "),
                                          html: n.html.slice(0, 200)})),
            }));
        }"""
    )


def test_every_page_of_the_site_is_checked(built_site: Path) -> None:
    pages = {p.relative_to(built_site).with_suffix("").as_posix()
             for p in built_site.rglob("*.html")
             if not {"_static", "_sources", "_modules"} & set(p.parts)}
    missed = sorted(pages - set(site_docnames()) - REDIRECTS - {f"zh_CN/{r}" for r in REDIRECTS})
    assert not missed, f"pages the axe check does not visit: {missed}"


def _loads_offline(docname: str):
    """The page as a reader gets it, offline: nothing from other hosts, no console or
    page error, every formula typeset by MathJax, every image shown."""
    def check(tab: Visit, math: tuple[int, int, int]) -> None:
        n_math, n_typeset, n_errors = math
        broken = tab.broken_images()
        assert not tab.remote, f"{docname} requested other hosts: {tab.remote}"
        assert not tab.errors, f"{docname} logged errors:\n" + "\n".join(tab.errors)
        assert n_typeset >= n_math, f"{docname}: {n_math} formulas but {n_typeset} typeset"
        assert n_errors == 0, f"{docname}: MathJax could not parse {n_errors} formula(s)"
        assert not broken, f"{docname}: images that did not load: {broken}"
    return check


# One visit per page of both editions: it loads offline (math, images, no errors), then
# axe-core checks it.
@pytest.mark.parametrize("docname", site_docnames())
def test_page_loads_offline_and_axe_finds_no_serious_or_critical_violation(
    visit: Visit, site_url: str, built_site: Path, docname: str
) -> None:
    if not (built_site / f"{docname}.html").is_file():
        pytest.fail(f"{docname}.html is not in the built site")
    violations = run_axe(visit, f"{site_url}/{docname}.html", _loads_offline(docname))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{docname.replace('/', '__')}.json").write_text(
        json.dumps(violations, indent=1, ensure_ascii=False), encoding="utf-8")
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    assert not failing, f"{docname}: " + "\n".join(
        f"{v['impact']} {v['id']} ({v['help']}): "
        + "; ".join(f"{n['target']} {n['html']!r}" for n in v["nodes"][:3])
        for v in failing
    )
    assert not visit.remote, f"{docname} requested other hosts: {visit.remote}"


class _Images(HTMLParser):
    """``(src, alt)`` of every <img> inside <main>."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "main":
            self.depth += 1
        elif tag == "img" and self.depth:
            found = dict(attrs)
            if "_images/" in (found.get("src") or ""):  # the page's figures, not the icons
                self.images.append((found.get("src") or "", found.get("alt")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "main" and self.depth:
            self.depth -= 1


FIGURE_PAGES = toc_docnames()


@pytest.mark.parametrize("docname", FIGURE_PAGES)
def test_every_figure_has_a_text_alternative_that_describes_it(
    built_site: Path, docname: str
) -> None:
    parser = _Images()
    parser.feed((built_site / f"{docname}.html").read_text(encoding="utf-8"))
    bad = []
    for src, alt in parser.images:
        text = (alt or "").strip()
        # MyST-NB's default alt is the image's own path: a file name says nothing.
        if len(text.split()) < 6 or text == src or text.lower().endswith((".png", ".svg")):
            bad.append(f"{src}: alt={alt!r}")
    assert not bad, (f"{docname}: figures without a description (set `mystnb: image: alt:` "
                     "in the cell's options):\n" + "\n".join(bad))
