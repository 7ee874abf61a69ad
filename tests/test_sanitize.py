"""The cleaning of what a submission shows (``bpgrade.sanitize``), case by case, fast.

The end-to-end tests (real nbgrader, Chromium, the real formgrader) are in
``tests/test_safe_feedback.py``; here each rule is checked on its own, with the
spellings a browser accepts and a naive filter misses.
"""

from __future__ import annotations

import jinja2
import nbformat
import pytest
from bs4 import BeautifulSoup

from bpgrade import memo, sanitize

P = "top.PWNED=1"


def _runs(html: str) -> list[str]:
    """What in ``html`` (read by BeautifulSoup, not by the cleaner's parser) could run a
    script or load a page."""
    found = []
    for el in BeautifulSoup(html, "html.parser").find_all(True):
        if el.name in {"script", "iframe", "object", "embed", "meta", "base", "form", "style",
                       "link", "svg", "math", "frame"}:
            found.append(el.name)
        for name, value in el.attrs.items():
            value = " ".join(value) if isinstance(value, list) else value
            if name.startswith("on") or "script:" in value.lower().replace("\t", ""):
                found.append(f"{el.name}[{name}]")
    return found


@pytest.mark.parametrize("html", [
    f'<img src=x onerror="{P}">', f"<script>{P}</script>", f'<svg onload="{P}">',
    f'<a href="javascript:{P}">x</a>', f'<a href="JaVa\tScRiPt:{P}">x</a>',
    f'<a href="&#106;avascript:{P}">x</a>', f'<a href=" javascript:{P}">x</a>',
    f'<iframe srcdoc="<script>{P}</script>"></iframe>',
    '<meta http-equiv="refresh" content="0;url=http://evil.example">',
    f'<details open ontoggle="{P}">x</details>', '<base href="http://evil.example/">',
    '<object data="data:text/html,x"></object>', '<a href="data:text/html,x">x</a>',
    f'<form action="javascript:{P}"><button>b</button></form>',
    f'<math><mtext><table><mglyph><style><img src=x onerror="{P}">',
    f'<noscript><p title="</noscript><img src=x onerror={P}>">',
    f'<!--><img src=x onerror="{P}">-->', '<style>@import url(http://evil.example);</style>',
])
def test_clean_html_leaves_nothing_that_runs(html):
    assert sanitize.html_problems(html), html
    assert _runs(sanitize.clean_html(html)) == []


def test_clean_html_keeps_tables_images_and_links():
    html = ('<table class="dataframe"><tr><th>a</th><td>1</td></tr></table>'
            '<img src="data:image/png;base64,AAAA" alt="plot" width="100">'
            '<a href="https://example.org">site</a> <b>bold</b> <code>x&lt;y</code>')
    assert sanitize.html_problems(html) == []
    cleaned = sanitize.clean_html(html)
    for kept in ('class="dataframe"', 'src="data:image/png;base64,AAAA"',
                 'href="https://example.org"', "<b>bold</b>", "x&lt;y"):
        assert kept in cleaned


def test_markdown_with_html_links_or_tex_links_is_shown_as_text():
    for source in [f'<img src=x onerror="{P}">', f"[x](javascript:{P})", f"<javascript:{P}>",
                   f"$\\href{{javascript:{P}}}{{x}}$", "$\\require{html}$"]:
        problems = sanitize.markdown_problems(source)
        assert problems, source
        fenced = sanitize.as_text(source, problems)
        assert sanitize.markdown_problems(fenced) == [], fenced  # stays as it is
        assert _runs(sanitize.render_markdown(fenced)) == []
    for source in ["The gradient $\\frac{\\partial L}{\\partial w}$, **bold**, `code`",
                   "| a | b |\n|---|---|\n| 1 | 2 |", "A line<br>break", "```\n\\href\n```"]:
        assert sanitize.markdown_problems(source) == [], source


def test_a_fence_is_longer_than_any_run_of_backticks_in_the_source():
    source = "a ```` b\n````\n<script>x</script>"
    fenced = sanitize.as_text(source, ["the element `<script>`"])
    assert "`````text\n" in fenced and _runs(sanitize.render_markdown(fenced)) == []


def test_the_markdown_filter_never_fails_a_page():
    env = jinja2.Environment()
    env.filters["md"] = sanitize.markdown2html
    page = env.from_string("{{ source | md }}")
    svg = {"a.svg": {"image/svg+xml": "PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIj48L3N2Zz4="}}
    html = page.render(source=f'![a](attachment:a.svg) <img src=x onerror="{P}">',
                       cell={"attachments": svg})
    assert _runs(html) == [] and "onerror" in html  # shown as text
    assert 'id="Title"' in page.render(source="# Title", cell={})


def test_clean_svg_keeps_the_drawing_and_drops_what_runs():
    svg = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n<!DOCTYPE svg PUBLIC '
           '"-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
           '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
           f' onload="{P}"><script>{P}</script><g clip-path="url(#c)"><path d="M0 0L1 1" '
           'style="fill:#fff"/></g><foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
           f'<img src="x" onerror="{P}"/></body></foreignObject><a xlink:href="javascript:'
           f'{P}"><text>t</text></a><use xlink:href="#c"/><image xlink:href="http://x/y.png"/>'
           '</svg>')
    cleaned = sanitize.clean_svg(svg)
    assert cleaned is not None and "<path" in cleaned and 'clip-path="url(#c)"' in cleaned
    for gone in ("onload", "script", "foreignObject", "javascript", "http://x"):
        assert gone not in cleaned, gone
    assert sanitize.clean_svg('<!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/'
                              '2000/svg">&a;</svg>') is None
    assert sanitize.clean_svg("<html><script>x</script></html>") is None


def test_clean_output_keeps_text_and_images_and_removes_scripts():
    output = nbformat.v4.new_output("display_data", data={
        "text/plain": "p", "image/png": "iVBORw0KGgo=", "application/javascript": P,
        "application/vnd.jupyter.widget-view+json": {"model_id": "</script>"},
        "text/latex": "$x^2$"}, metadata={"image/png": {"width": '1" onerror="x', "height": 3}})
    keep, notes = sanitize.clean_output(output, "cell 1")
    assert keep and set(output["data"]) == {"text/plain", "image/png", "text/latex"}
    assert output["metadata"] == {"image/png": {"height": 3}}
    assert len(notes) == 2
    bad = nbformat.v4.new_output("display_data", data={"image/png": f"AAAA' onerror='{P}"})
    assert sanitize.clean_output(bad, "cell 2")[0] is False
    stream = nbformat.v4.new_output("stream", name='x" onmouseover="y', text="t")
    sanitize.clean_output(stream, "cell 3")
    assert stream["name"] == "stdout"


def test_clean_notebook_filters_raw_cells_tags_and_metadata_and_notes_markers():
    raw = nbformat.v4.new_raw_cell(f"<script>{P}</script>")
    raw.metadata["format"] = "text/html"
    code = nbformat.v4.new_code_cell("# ### BEGIN HIDDEN TESTS\nx = 1")
    code.metadata["tags"] = [f"x' onmouseover='{P}", "fine-tag"]
    nb = nbformat.v4.new_notebook(cells=[raw, code], metadata={
        "widgets": {"state": "</script>"}, "title": "t",
        "kernelspec": {"name": "python3", "display_name": "Python 3"}})
    notes = sanitize.clean_notebook(nb)
    assert "format" not in raw.metadata and code.metadata["tags"] == ["fine-tag"]
    assert set(nb.metadata) == {"kernelspec"}
    assert notes == ["cell 2: holds nbgrader's marker `BEGIN HIDDEN TESTS`; the autograder "
                     "treats it as your text (it hides and removes nothing there)"]
    assert sanitize.clean_notebook(nb) == notes  # the markers stay noted, nothing else changes


def test_the_policy_allows_exactly_the_pages_own_scripts():
    policy = sanitize.content_security_policy(["a()", "b()"])
    assert policy.count("'sha256-") == 2 and "unsafe-inline" not in policy.split("style-src")[0]
    assert "default-src 'none'" in policy and "base-uri 'none'" in policy


def test_a_markdown_cells_problems_are_kept_for_the_next_notebook_but_not_a_long_ones():
    """A worker sanitises a class: the problems of a markdown source (without
    attachments) are kept (issue #24); they are those of a fresh rendering."""
    source = '<script>alert(1)</script> and <a href="javascript:x">a link</a>'
    sanitize._plain_markdown_problems.cache_clear()
    first = sanitize.markdown_problems(source)
    assert first == sanitize._markdown_problems(source, None) and len(first) >= 2, first
    assert sanitize.markdown_problems(source) == first
    assert sanitize._plain_markdown_problems.cache_info().hits == 1
    long = source + " " * memo.MAX_CHARS
    assert sanitize.markdown_problems(long) == sanitize._markdown_problems(long, None)
    assert sanitize._plain_markdown_problems.cache_info().currsize == 1
