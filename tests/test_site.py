"""The built site (_build/html, from `make book`): complete, offline, and free of solutions."""

from __future__ import annotations

import functools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import REPO_ROOT, toc_docnames

# They read the built book, which `make test` builds first; `make test-fast` skips them.
pytestmark = pytest.mark.slow

# Pages that Sphinx writes besides the table of contents.
SPHINX_PAGES = {"index", "genindex", "search", "py-modindex"}
# nbgrader's markers: none of them may reach a reader, in a page or a download.
NBGRADER_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "### BEGIN",
    "### END",
)
# The pages that explain the exercises may name the markers in their prose.
EXERCISE_PAGES = {"chapters/exercises", "chapters/student_guide", "chapters/instructor_guide"}
VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
    "param", "source", "track", "wbr",
}


class PageScan(HTMLParser):
    """One pass over a page: the URLs it loads, its text, its code cells and its outputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []  # (tag, url) of everything fetched on load
        self.text: list[str] = []
        self.cell_code: list[str] = []  # executed code, myst-nb's div.cell_input
        self.cell_output: list[str] = []  # its outputs, div.cell_output
        self.error_outputs = 0  # myst-nb renders an exception as div.output.traceback
        self.inline_script: list[str] = []
        self.captions: list[str] = []  # the sidebar's part captions, span.caption-text
        self.math_elements = 0
        self._stack: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        rel = set(a.get("rel", "").lower().split())
        if tag in {"script", "img", "iframe", "source", "embed", "audio", "video"} and a.get("src"):
            self.loads.append((tag, a["src"]))
        if tag == "link" and rel & {"stylesheet", "preload", "modulepreload", "icon", "manifest"}:
            self.loads.append((tag, a.get("href", "")))
        if tag == "object" and a.get("data"):
            self.loads.append((tag, a["data"]))
        if "traceback" in classes or {"output", "error"} <= classes:
            self.error_outputs += 1
        if "math" in classes:
            self.math_elements += 1
        if tag not in VOID_TAGS:
            self._stack.append((tag, classes))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        in_scope = set().union(*(c for _, c in self._stack)) if self._stack else set()
        tags = {t for t, _ in self._stack}
        if "cell_input" in in_scope:
            self.cell_code.append(data)
        if "cell_output" in in_scope:
            self.cell_output.append(data)
        if "script" in tags or "style" in tags:
            self.inline_script.append(data)
        if self._stack and "caption-text" in self._stack[-1][1]:
            self.captions.append(data.strip())


@functools.cache
def scan(path: Path) -> PageScan:
    """The page parsed once per test session (the tests only read the result)."""
    page = PageScan()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def html_pages(site: Path) -> list[Path]:
    """Every HTML page of the site (not the theme's templates under _static)."""
    return sorted(p for p in site.rglob("*.html")
                  if "_static" not in p.relative_to(site).parts[:2])  # zh_CN/_static too


def docname(site: Path, page: Path) -> str:
    return page.relative_to(site).with_suffix("").as_posix()


def markers_in(text: str) -> list[str]:
    return [m for m in NBGRADER_MARKERS if m in text]


def test_every_page_in_the_toc_was_built(built_site: Path) -> None:
    missing = [d for d in toc_docnames() if not (built_site / f"{d}.html").is_file()]
    assert not missing, f"pages in _toc.yml with no HTML in {built_site}: {missing}"


def test_the_toc_has_the_fixed_pages_in_order() -> None:
    course = [f"chapters/{n}" for n in (
        "01_history", "02_forward", "03_error", "04_gradients", "05_updates", "06_keras",
        "07_applications",
    )]
    exercises = ["chapters/exercises", "chapters/student_guide", "chapters/instructor_guide",
                 "chapters/security", "chapters/scaling"]
    reference = ["chapters/glossary", "chapters/faq", "chapters/api", "chapters/bibliography"]
    assert toc_docnames() == ["intro", *course, *exercises, *reference]


def test_the_navigation_shows_the_three_parts_in_order(built_site: Path) -> None:
    assert scan(built_site / "intro.html").captions == ["The course", "Exercises", "Reference"]


def test_course_chapters_are_numbered_one_to_seven_and_nothing_else_is(built_site: Path) -> None:
    numbers = {}
    for name in toc_docnames():
        html = (built_site / f"{name}.html").read_text(encoding="utf-8")
        found = re.search(r'<h1><span class="section-number">(\d+)\. </span>', html)
        numbers[name] = int(found.group(1)) if found else None
    course = toc_docnames()[1:8]
    assert [numbers[n] for n in course] == list(range(1, 8)), numbers
    assert all(numbers[n] is None for n in numbers if n not in course), numbers


def test_only_pages_of_the_toc_are_built(built_site: Path) -> None:
    allowed = set(toc_docnames()) | SPHINX_PAGES
    allowed |= {f"zh_CN/{name}" for name in allowed}  # the Chinese edition, the same pages
    names = [docname(built_site, p) for p in html_pages(built_site)]
    extra = [n for n in names if n not in allowed
             and not n.removeprefix("zh_CN/").startswith("_modules/")]
    assert not extra, f"pages outside _toc.yml were built (exercises? solutions?): {extra}"
    for folder in ("exercises", "solutions", "tests", "bench"):
        assert not (built_site / folder).exists(), f"{folder}/ was copied into the site"


def test_no_page_shows_nbgrader_markers_or_stub_code(built_site: Path) -> None:
    problems = []
    for page in html_pages(built_site):
        name, scanned = docname(built_site, page), scan(page)
        code, outputs = "".join(scanned.cell_code), "".join(scanned.cell_output)
        for where, text in (("a code cell", code), ("a cell output", outputs)):
            problems += [f"{name}: {m!r} in {where}" for m in markers_in(text)]
        if "raise NotImplementedError" in code:
            problems.append(f"{name}: an exercise stub (raise NotImplementedError) in a code cell")
        if name not in EXERCISE_PAGES:
            prose = " ".join("".join(scanned.text).split())
            problems += [f"{name}: {m!r} in the page" for m in markers_in(prose)]
    assert not problems, "solution material reached the site:\n" + "\n".join(problems)


def test_no_download_contains_solutions_or_hidden_tests(built_site: Path) -> None:
    sources = built_site / "_sources"
    problems = []
    for path in sorted(sources.rglob("*.ipynb")):
        name = path.relative_to(sources).with_suffix("").as_posix()
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" or name not in EXERCISE_PAGES:
                problems += [f"{name}.ipynb: {m!r}" for m in markers_in(src)]
            if cell["cell_type"] == "code" and "raise NotImplementedError" in src:
                problems.append(f"{name}.ipynb: an exercise stub in a code cell")
    for path in sorted(sources.rglob("*.md")):
        name = path.relative_to(sources).with_suffix("").as_posix()
        if name not in EXERCISE_PAGES:
            problems += [f"{name}.md: {m!r}" for m in markers_in(path.read_text(encoding="utf-8"))]
    # Files offered with {download} (the student notebooks of exercises/): stubs, no solutions.
    for path in sorted((built_site / "_downloads").rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            name = path.relative_to(built_site).as_posix()
            problems += [f"{name}: {m!r}" for m in markers_in(text)]
    assert not problems, "downloads contain solution material:\n" + "\n".join(problems)


def test_no_download_carries_the_figures_pickles(built_site: Path) -> None:
    """The executed notebooks offered for download (both editions) hold each figure's PNG
    and not the pickle the Chinese figures are drawn from (build data, and a pickle is
    code a reader must never be asked to load)."""
    from tools import i18n

    mimes = i18n.course_figures().CAPTURE_MIMES
    notebooks = sorted(built_site.glob("_sources/**/*.ipynb")) + sorted(
        built_site.glob("zh_CN/_sources/**/*.ipynb"))
    assert len(notebooks) >= 14, notebooks
    carrying = [p.relative_to(built_site).as_posix() for p in notebooks
                if any(m in p.read_text(encoding="utf-8") for m in mimes)]
    assert not carrying, f"figure pickles in downloads: {carrying}"


def test_no_script_or_stylesheet_is_loaded_from_another_host(built_site: Path) -> None:
    remote = []
    for page in html_pages(built_site):
        scanned = scan(page)
        for tag, url in scanned.loads:
            parts = urlsplit(url)
            if parts.netloc or (parts.scheme and parts.scheme != "data") or url.startswith("//"):
                remote.append(f"{docname(built_site, page)}: <{tag}> {url}")
        # sphinx-thebe always writes this constant; thebe is fetched only when a reader presses
        # "Live Code", a button that exists only with launch_buttons.thebe (checked below).
        inline = re.sub(r'const THEBE_JS_URL = "[^"]*"', "", "".join(scanned.inline_script))
        if "thebe-launch-button" in page.read_text(encoding="utf-8"):
            remote.append(f"{docname(built_site, page)}: a thebe button (loads thebe from unpkg)")
        for needle in ("//cdn.", "cdnjs.", "jsdelivr", "unpkg.com", "url(http"):
            if needle in inline:
                remote.append(f"{docname(built_site, page)}: inline code mentions {needle!r}")
    assert not remote, "the site must work offline, but it loads:\n" + "\n".join(remote)


def test_mathjax_is_served_from_the_site_itself(built_site: Path) -> None:
    mathjax = built_site / "_static" / "mathjax"
    assert (mathjax / "tex-chtml.js").stat().st_size > 100_000
    fonts = mathjax / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), f"MathJax's fonts are not in {fonts}"
    pages_with_math = 0
    for page in html_pages(built_site):
        scanned = scan(page)
        if not scanned.math_elements:
            continue
        pages_with_math += 1
        scripts = [
            (page.parent / urlsplit(url).path).resolve()
            for tag, url in scanned.loads if tag == "script" and "mathjax" in url.lower()
        ]
        # each edition serves its own copy (the Chinese one under zh_CN/_static)
        edition = built_site / "zh_CN" if docname(built_site, page).startswith("zh_CN/") \
            else built_site
        own = edition / "_static" / "mathjax" / "tex-chtml.js"
        assert scripts == [own.resolve()], (
            f"{docname(built_site, page)} has math but loads MathJax from {scripts}"
        )
    assert pages_with_math >= 1, "no page has math: is the intro's formula gone?"


def test_no_executed_cell_shows_an_error(built_site: Path) -> None:
    errors = []
    for page in html_pages(built_site):
        scanned = scan(page)
        if scanned.error_outputs:
            errors.append(f"{docname(built_site, page)}: {scanned.error_outputs} error output(s)")
        if "Traceback (most recent call last)" in "".join(scanned.cell_output):
            errors.append(f"{docname(built_site, page)}: a traceback printed in an output")
    assert not errors, "\n".join(errors)


def test_downloads_offer_the_notebook_and_its_markdown_source(built_site: Path) -> None:
    sources = built_site / "_sources"
    notebooks = [d for d in toc_docnames() if _is_notebook(d)]
    assert notebooks, "no chapter is an executable MyST notebook"
    for name in notebooks:
        html = (built_site / f"{name}.html").read_text(encoding="utf-8")
        for suffix in (".ipynb", ".md"):
            assert (sources / f"{name}{suffix}").is_file(), f"no {name}{suffix} to download"
            assert f"_sources/{name}{suffix}" in html, (
                f"{name}.html has no download link to its {suffix}"
            )


def test_pages_link_to_the_course_repository_and_launchers(built_site: Path) -> None:
    html = (built_site / "chapters" / "04_gradients.html").read_text(encoding="utf-8")
    assert "https://github.com/backprop-course/backprop-course" in html
    assert "https://mybinder.org/v2/gh/backprop-course/backprop-course/main" in html
    assert "https://colab.research.google.com/github/backprop-course/backprop-course/" in html
    # No JupyterHub button until an instructor sets launch_buttons.jupyterhub_url
    # (tests/test_launch.py checks every launch link).
    assert "/hub/user-redirect/git-pull?repo=" not in html


def _is_notebook(name: str) -> bool:
    from myst_nb.core.read import is_myst_markdown_notebook

    path = REPO_ROOT / f"{name}.md"
    return path.is_file() and is_myst_markdown_notebook(path.read_text(encoding="utf-8"))


def test_a_no_change_rebuild_would_execute_nothing(built_site: Path, repo_root: Path) -> None:
    """Every executable chapter, as it is now, matches an executed notebook in the cache."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook

    cache_dir = repo_root / "_build" / ".jupyter_cache"
    assert cache_dir.is_dir(), f"no execution cache at {cache_dir}: is execute_notebooks cache?"
    cache = get_cache(str(cache_dir))
    notebooks = [d for d in toc_docnames() if _is_notebook(d)]
    assert notebooks, "no chapter is an executable MyST notebook"
    stale = []
    for name in notebooks:
        path = repo_root / f"{name}.md"
        nb = read_myst_markdown_notebook(path.read_text(encoding="utf-8"), path=path)
        try:
            cache.match_cache_notebook(nb)
        except KeyError:
            stale.append(name)
    assert not stale, f"these chapters changed since `make book` or were never cached: {stale}"


def test_the_bibliography_lists_every_entry_of_references_bib(
    built_site: Path, repo_root: Path
) -> None:
    from pybtex.database import parse_file

    entries = parse_file(str(repo_root / "references.bib")).entries
    page = scan(built_site / "chapters" / "bibliography.html")
    text = " ".join("".join(page.text).replace("\u2013", "-").split()).lower()
    html = (built_site / "chapters" / "bibliography.html").read_text(encoding="utf-8")
    assert html.count('role="doc-biblioentry"') == len(entries)
    for key, entry in entries.items():
        title = " ".join(entry.fields["title"].replace("{", "").replace("}", "").split())
        assert title.lower() in text, f"{key}: title {title!r} is not on the page"
        assert entry.fields["year"] in text, f"{key}: year missing"


def test_the_bibliography_has_the_checked_facts_not_the_wrong_versions(built_site: Path) -> None:
    page = scan(built_site / "chapters" / "bibliography.html")
    text = " ".join("".join(page.text).replace("\u2013", "-").split())
    for fact in ("5(4):115-133", "65(6):386-408", "Part 4, 96-104", "323(6088):533-536",
                 "16(2):146-160", "30(10):947-954", "arXiv:1412.6980", "TR-47"):
        assert fact in text, f"{fact!r} is not in the bibliography"
    for wrong in ("48(3)", "501-510", "350-363"):
        assert wrong not in text, f"a known wrong citation ({wrong}) is in the bibliography"


def test_the_api_page_documents_both_packages_from_their_docstrings(built_site: Path) -> None:
    """The reference page is generated from the code: bplib's functions and the checks of
    bpgrade that the exercises' test cells call (an autodoc that failed leaves no entry)."""
    from bpgrade import checks

    html = (built_site / "chapters" / "api.html").read_text(encoding="utf-8")
    for name in ("bplib.functional.linear_backward", "bplib.optim.adam_update",
                 *(f"bpgrade.checks.{n}" for n in checks.__all__)):
        assert f'id="{name}"' in html, f"the API page has no entry for {name}"
