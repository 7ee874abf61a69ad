"""No script of a submission runs in the feedback page or in the formgrader, and nbgrader's
markers in a student's cells are harmless (issue 20, sections 2 and 5).

A real course (``ex05_updates``, released, autograded and fed back with the real
nbgrader and the course's configuration) holds four students:

* ``xss``: a notebook whose outputs and markdown carry every vector below, beside what a
  student needs to see kept: a failing test's message (``adam_update`` is a typical
  mistake), a traceback of the student's own error, a matplotlib plot (PNG), math in a
  markdown cell and in a ``text/latex`` output. The vectors: ``text/html`` (``onerror``,
  ``<script>``, ``<iframe srcdoc>``, a ``javascript:`` link, ``<meta http-equiv=refresh>``,
  inline SVG with ``onload`` and ``<foreignObject>``, ``ontoggle``, ``<object data:>``, a
  ``javascript:`` form, ``<base>``, remote style sheets), ``image/svg+xml`` (``<script>``,
  ``onload``, ``<foreignObject>``, a ``javascript:`` link), ``application/javascript``, a
  ``</script>`` break-out (in a JavaScript output and in a widget view), ``text/markdown``
  and ``text/latex`` (``\\href{javascript:...}``), a PNG output whose data and size break
  out of their attribute, markdown cells the student added and one the student edited
  (raw HTML, ``javascript:`` links and autolinks, ``data:`` links, an SVG attachment,
  TeX ``\\href``), a raw cell in ``text/html`` format, a cell tag that breaks out of its
  attribute, and the notebook's widget state and title;
* ``markers``: the correct notebook with nbgrader's markers in cells the student wrote
  (an unclosed ``### BEGIN HIDDEN TESTS`` in a solution cell, ``### END HIDDEN TESTS``
  and an unclosed ``### BEGIN SOLUTION`` in an added cell, ``BEGIN MARK SCHEME`` in a
  markdown cell);
* ``honest``: the correct notebook;
* ``older``: ``honest`` whose autograded notebook is then replaced by ``xss``'s as an
  older grader (no cleaning) left it, as the formgrader and ``generate_feedback``
  would find a notebook autograded before this course cleaned them.

Each payload sets ``top.PWNED`` (a setter installed before the page loads reports every
assignment at once) or asks for a ``pwned`` URL. Debian's Chromium
(Playwright) opens every feedback page from disk with no network, the same pages with
their Content-Security-Policy removed (the cleaning alone must hold: the policy is a
second layer), and the real formgrader's view of the autograded notebooks, served by a
real Jupyter server with nbgrader's extension: no payload runs, no dangerous element
or attribute is in the page, and no request goes out.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from bpgrade.course import make_course, run_nbgrader, tools_env
from bpgrade.nbgrader_plugins import HideHiddenTests
from bpgrade.sanitize import clean_notebook
from bpgrade.submission import NOTES_KEY
from tools import samples

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
A = "ex05_updates"
P = "top.PWNED=1"
TIMEOUT_MS = 60_000
HTML_VECTORS = [
    f'<img src=x onerror="{P}">',
    f"<script>{P}</script>",
    f'<iframe srcdoc="<script>{P}</script>"></iframe>',
    f'<a class="jslink" href="javascript:{P}">click</a>',
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/pwned-meta">',
    f'<svg onload="{P}"><foreignObject><img src=x onerror="{P}"></foreignObject></svg>',
    f'<details open ontoggle="{P}"><summary>s</summary></details>',
    '<object data="data:text/html;base64,'
    + base64.b64encode(f"<script>{P}</script>".encode()).decode() + '"></object>',
    f'<form action="javascript:{P}"><button class="jsbutton">b</button></form>',
    '<base href="http://127.0.0.1:9/pwned-base/">',
    '<link rel="stylesheet" href="http://127.0.0.1:9/pwned-css">',
    "<style>@import url(http://127.0.0.1:9/pwned-style);</style>",
]
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
       f'width="120" height="40" onload="{P}"><script>{P}</script>'
       '<foreignObject width="100" height="20"><body xmlns="http://www.w3.org/1999/xhtml">'
       f'<img src="x" onerror="{P}"/></body></foreignObject>'
       f'<a xlink:href="javascript:{P}"><text x="5" y="30">click</text></a>'
       '<rect width="10" height="10" fill="red"/></svg>')
SHOWN = [  # (bundle, metadata) the student's code displays (through _repr_mimebundle_)
    ({"text/html": "".join(HTML_VECTORS), "text/plain": "html"}, {}),
    ({"image/svg+xml": SVG, "text/plain": "svg"}, {}),
    ({"application/javascript": P, "text/plain": "js"}, {}),
    ({"application/javascript": f'</script><img src=x onerror="{P}"><script>',
      "application/vnd.jupyter.widget-view+json": {
          "model_id": f'</script><img src=x onerror="{P}"><script>',
          "version_major": 2, "version_minor": 0}, "text/plain": "breakout"}, {}),
    ({"text/markdown": f'<img src=x onerror="{P}"> [x](javascript:{P})', "text/plain": "md"},
     {}),
    ({"text/latex": f"$\\href{{javascript:{P}}}{{click}}$", "text/plain": "latex"}, {}),
    ({"image/png": f"AAAA' onerror='{P}", "text/plain": "png data"}, {}),
    ({"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNg+M8AAAMBAQAY3Y20"
                   "AAAAAElFTkSuQmCC", "text/plain": "png size"},
     {"image/png": {"width": f'1" onerror="{P}', "height": f"1' onerror='{P}"}}),
]
MARKDOWN = [
    f'A note <img src=x onerror="{P}"> and <script>{P}</script>',
    f'[click](javascript:{P}) and <javascript:{P}> and <a href="JaVaScRiPt:{P}">x</a>',
    f'<iframe srcdoc="<script>{P}</script>"></iframe>'
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/pwned-md">',
    f'<svg><foreignObject><img src=x onerror="{P}"></foreignObject></svg>'
    f'<details open ontoggle="{P}">d</details>',
    f"$\\href{{javascript:{P}}}{{math link}}$ and [data](data:text/html;base64,"
    + base64.b64encode(f"<script>{P}</script>".encode()).decode() + ")",
]
PLOT = "import matplotlib.pyplot as plt\nplt.plot([0, 1, 2], [2, 0, 1])\nplt.show()"
SHOW = ("class Show:\n    def __init__(self, bundle, metadata=None):\n"
        "        self.bundle, self.metadata = bundle, metadata\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return self.bundle, (self.metadata or {})\n")
MATH = "The gradient $\\frac{\\partial L}{\\partial w} = 2 x$ of the student's loss."
OWN_ERROR = "raise ValueError('the student own error, shown in full')"


def _mistake(source, release):
    """The ``adam_update`` mistake of ``tools/samples`` (its test fails with a message)."""
    for nb, expected in samples.variants(source, release, A):
        if expected.student.startswith("wrong_adam_update"):
            return nb, expected
    raise AssertionError("no adam_update mistake in tools/samples")


def xss_notebook(source, release):
    nb, _ = _mistake(source, release)
    cells = [nbformat.v4.new_code_cell(SHOW)]
    for bundle, metadata in SHOWN:
        cells.append(nbformat.v4.new_code_cell(f"Show({bundle!r}, {metadata!r})"))
    tagged = nbformat.v4.new_code_cell("print('a tagged cell')")
    tagged.metadata["tags"] = [f"x' onmouseover='{P}", "ok-tag"]
    cells.append(tagged)
    cells += [nbformat.v4.new_markdown_cell(text) for text in MARKDOWN]
    svg_attachment = nbformat.v4.new_markdown_cell("An attached picture: ![a](attachment:a.svg)")
    svg_attachment["attachments"] = {"a.svg": {"image/svg+xml": base64.b64encode(
        SVG.encode()).decode()}}
    cells.append(svg_attachment)
    raw = nbformat.v4.new_raw_cell(f"<script>{P}</script><img src=x onerror=\"{P}\">")
    raw.metadata["format"] = "text/html"
    cells.append(raw)
    # what must stay: a plot, math, a traceback
    cells += [nbformat.v4.new_code_cell(PLOT), nbformat.v4.new_markdown_cell(MATH),
              nbformat.v4.new_code_cell("Show({'text/latex': '$\\\\sqrt{2} \\\\approx 1.414$', "
                                        "'text/plain': 'sqrt 2'})"),
              nbformat.v4.new_code_cell(OWN_ERROR)]
    nb.cells += cells
    edited = next(c for c in nb.cells if c.cell_type == "markdown")
    edited.source += f'\n\nEdited by the student: <img src=x onerror="{P}">'
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {}, "version_major": 2, "version_minor": 0,
        "x": f'</script><img src=x onerror="{P}"><script>'}}
    nb.metadata["title"] = f"</title><script>{P}</script>"
    return nb


def markers_notebook(source, release):
    nb = samples.correct_notebook(source, release)
    first = next(iter(samples.solution_cells(nb).values()))
    first.source += "\n# ### BEGIN HIDDEN TESTS  (pasted from somewhere, never closed)\n"
    nb.cells.append(nbformat.v4.new_code_cell(
        "# ### END HIDDEN TESTS\n# ### BEGIN SOLUTION\nmarker_value = 42\nprint(marker_value)"))
    nb.cells.append(nbformat.v4.new_markdown_cell("My notes. BEGIN MARK SCHEME (not really)"))
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("safe_feedback") / "course", [A], ROOT)
    root = course.root
    course.nbgrader("release", "generate_assignment", A, "--force")
    source = nbformat.read(root / "solutions" / A / f"{A}.ipynb", 4)
    release = nbformat.read(root / "exercises" / A / f"{A}.ipynb", 4)
    notebooks = {"xss": xss_notebook(source, release),
                 "markers": markers_notebook(source, release),
                 "honest": samples.correct_notebook(source, release),
                 "older": samples.correct_notebook(source, release)}
    for student, nb in notebooks.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{A}.ipynb")
        (folder / "timestamp.txt").write_text(samples.TIMESTAMP)
    course.nbgrader("autograde", "autograde", A)
    # "older": the xss notebook as a grader that cleaned nothing left it: its outputs
    # are those the kernel printed for xss before this course's cleaning
    older = root / "autograded" / "older" / A / f"{A}.ipynb"
    raw = nbformat.read(root / "autograded" / "xss" / A / f"{A}.ipynb", 4)
    _unclean(raw, notebooks["xss"])
    os.chmod(older, 0o644)
    nbformat.write(raw, older)
    proc = run_nbgrader(root, "generate_feedback", A, "--force", timeout=600)
    course.logs["feedback"] = proc.stdout + proc.stderr
    _, expected = _mistake(source, release)
    return root, expected


def _unclean(nb, submitted) -> None:
    """Put the raw vectors back into an autograded notebook, as a grader that cleaned
    nothing would have stored them: each ``Show`` cell's output as the kernel displayed
    it, the submitted markdown and raw cells (source, metadata, attachments), the cell
    tags and the notebook's metadata."""
    shown = {f"Show({bundle!r}, {metadata!r})": (bundle, metadata) for bundle, metadata in SHOWN}
    assert len(nb.cells) == len(submitted.cells)
    for cell, original in zip(nb.cells, submitted.cells, strict=True):
        if cell.cell_type == "code" and cell.source in shown:
            bundle, metadata = shown[cell.source]
            cell.outputs = [nbformat.v4.new_output("display_data", data=copy.deepcopy(bundle),
                                                   metadata=copy.deepcopy(metadata))]
        elif cell.cell_type != "code":
            cell.source = original.source
            if "attachments" in original:
                cell["attachments"] = copy.deepcopy(original["attachments"])
        cell.metadata.update(copy.deepcopy({k: v for k, v in original.metadata.items()
                                            if k in ("tags", "format")}))
    nb.metadata.update(copy.deepcopy(submitted.metadata))


def page(root: Path, student: str) -> Path:
    return root / "feedback" / student / A / f"{A}.html"


# ------------------------------------------------------------------ the browser

DANGER = r"""() => {
  const bad = [];
  const urlish = ['href', 'src', 'srcdoc', 'action', 'formaction', 'data', 'xlink:href',
                  'content', 'background', 'poster'];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const n = a.name.toLowerCase(), v = a.value;
      if (n.startsWith('on') && /PWNED/.test(v)) bad.push(`${el.tagName} ${n}`);
      if (urlish.includes(n) && (/PWNED|pwned/.test(v) ||
          /^\s*(javascript|vbscript)\s*:|^\s*data:\s*text/i.test(v)))
        bad.push(`${el.tagName} ${n}=${v.slice(0, 60)}`);
    }
    if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'BASE', 'FORM', 'LINK', 'STYLE']
        .includes(el.tagName) && /PWNED|pwned/.test(el.outerHTML))
      bad.push(`${el.tagName} element`);
    if (el.tagName === 'META' && /refresh/i.test(el.getAttribute('http-equiv') || ''))
      bad.push('meta refresh');
    if (el.tagName === 'FOREIGNOBJECT') bad.push('foreignObject');
  }
  return bad;
}"""


def _visit(browser, url: str, *, allow: set[str], headers: dict | None = None) -> dict:
    """Open ``url`` with requests only to the schemes/hosts in ``allow``; click what a
    student would want clicked and hover what has a handler; return what happened."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  extra_http_headers=headers or {})
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []

    def route(r) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in allow or parts.netloc in allow:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    ran: list[str] = []  # every assignment to top.PWNED, reported at once: a navigation
    context.expose_function("reportPwned", lambda v: ran.append(v))  # after it hides nothing
    context.add_init_script("""Object.defineProperty(window, 'PWNED', {configurable: true,
        get() { return undefined; }, set(v) { window.reportPwned(String(v)); }});""")
    context.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => { window.VIOLATIONS = (window.VIOLATIONS || []).concat(
            [e.violatedDirective + ' ' + e.blockedURI]); });""")
    page_ = context.new_page()
    page_.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page_.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page_.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    try:
        page_.goto(url, wait_until="load")
        page_.wait_for_timeout(1500)  # onload, onerror, meta refresh, ontoggle
        landed = page_.url
        danger = page_.evaluate(DANGER)
        for selector in ("a.jslink", "a[href^='javascript' i]", "button.jsbutton",
                         "[onmouseover]", "svg a"):
            for element in page_.locator(selector).all()[:5]:
                with contextlib.suppress(Exception):
                    element.click(timeout=2000, force=True)
                    element.hover(timeout=2000, force=True)
        page_.wait_for_timeout(500)
        violations = page_.evaluate("() => window.VIOLATIONS || []")
        text = page_.evaluate("() => document.body ? document.body.innerText : ''")
        typeset = page_.evaluate("""async () => {
            if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return 0;
            await MathJax.startup.promise; return document.querySelectorAll(
                'mjx-container svg').length; }""")
        plots = page_.evaluate("""() => [...document.querySelectorAll(
            'img[src^="data:image/png"]')].filter(i => i.naturalWidth > 10).length""")
        return {"pwned": ran, "dialogs": dialogs, "outside": outside, "danger": danger,
                "landed": landed, "errors": errors, "violations": violations,
                "text": text, "math": typeset,
                "plots": plots}
    finally:
        context.close()


def _assert_no_script_ran(seen: dict, url: str) -> None:
    assert seen["pwned"] == [], f"a student's script ran {len(seen['pwned'])} times"
    assert not seen["dialogs"], seen["dialogs"]
    assert not [u for u in seen["outside"] if "pwned" in u], seen["outside"]
    assert not seen["danger"], f"dangerous content left in the page: {seen['danger']}"
    assert seen["landed"] == url, f"the page navigated to {seen['landed']}"


def _without_csp(path: Path, dest: Path) -> Path:
    html, n = re.subn(r"<meta[^>]*Content-Security-Policy[^>]*>", "", path.read_text())
    assert n == 1, "the feedback page has no Content-Security-Policy"
    dest.write_text(html)
    return dest


@pytest.mark.parametrize("student", ["xss", "older"])
def test_no_student_script_runs_in_the_feedback_page(course, browser, student):
    root, _ = course
    url = page(root, student).as_uri()
    seen = _visit(browser, url, allow={"file", "data", "blob"})
    _assert_no_script_ran(seen, url)
    assert seen["outside"] == [], seen["outside"]
    # nothing was left for the Content-Security-Policy to block: the cleaning removed it
    assert seen["violations"] == [], seen["violations"]
    assert not [e for e in seen["errors"] if "Content Security Policy" in e or "uncaught" in e]


@pytest.mark.parametrize("student", ["xss", "older"])
def test_the_cleaning_alone_holds_without_the_content_security_policy(
        course, browser, student, tmp_path):
    root, _ = course
    bare = _without_csp(page(root, student), tmp_path / f"{student}.html")
    seen = _visit(browser, bare.as_uri(), allow={"file", "data", "blob"})
    _assert_no_script_ran(seen, bare.as_uri())


def test_the_feedback_keeps_test_results_tracebacks_plots_and_math(course, browser):
    root, expected = course
    seen = _visit(browser, page(root, "xss").as_uri(), allow={"file", "data", "blob"})
    nb = nbformat.read(root / "autograded" / "xss" / A / f"{A}.ipynb", 4)
    failed = [o for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
              in expected.failing for o in c.outputs if o.output_type == "error"]
    assert failed, "the mistake failed no test"
    message = f"{failed[0].ename}: {failed[0].evalue}".split("\n")[0].strip()
    assert message in seen["text"], f"the failing test's message {message!r} is missing"
    assert "ValueError: the student own error, shown in full" in seen["text"]
    assert "Traceback" in seen["text"] or "raise ValueError" in seen["text"]
    assert seen["plots"] >= 1, "the matplotlib plot (PNG) is not shown"
    assert seen["math"] >= 3, "the student's math (markdown and text/latex) is not typeset"
    assert "Notes from the autograder" in seen["text"]
    assert "shown as text" in seen["text"]
    # the vectors are visible as text to the instructor, not lost
    assert "onerror" in seen["text"] and "javascript:" in seen["text"]


FORBIDDEN = {"script", "iframe", "object", "embed", "meta", "base", "form", "style", "link",
             "foreignobject", "frame", "frameset", "applet", "svg", "math", "template"}


def _dangers(html: str) -> list[str]:
    """Elements and attributes that can run a script or load something, found by
    BeautifulSoup (another parser than the cleaner's)."""
    from bs4 import BeautifulSoup

    found = []
    for element in BeautifulSoup(html, "html.parser").find_all(True):
        if element.name.lower() in FORBIDDEN:
            found.append(f"<{element.name}>")
        for name, value in element.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            if name.lower().startswith("on") or re.match(
                    r"\s*(javascript|vbscript|data:\s*text)", value, re.IGNORECASE):
                found.append(f"<{element.name} {name}={value[:40]}>")
    return found


def test_the_autograded_notebook_is_clean_by_construction(course):
    """Whatever renders the stored notebook (the formgrader, nbconvert, another tool)
    finds nothing in its outputs or markdown that runs or loads anything."""
    from bpgrade.sanitize import render_markdown

    root, _ = course
    nb = nbformat.read(root / "autograded" / "xss" / A / f"{A}.ipynb", 4)
    assert clean_notebook(copy.deepcopy(nb)) == [], "cleaning the stored notebook changed it"
    assert set(nb.metadata) <= {"kernelspec", "language_info", "jupytext", NOTES_KEY,
                                "bpgrade_repairs"}
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "markdown":
            found += [f"cell {number}: {d}" for d in _dangers(render_markdown(
                cell.source, cell.get("attachments")))]
        if cell.cell_type == "raw":
            assert not {"format", "raw_mimetype"} & set(cell.metadata), number
        for tag in cell.metadata.get("tags", []):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+", tag), tag
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert set(data) <= {"text/plain", "text/html", "image/png", "image/svg+xml",
                                 "text/latex"}, (number, set(data))
            for mime in ("text/html", "image/svg+xml"):
                if mime in data:
                    found += [f"cell {number} {mime}: {d}" for d in _dangers(data[mime])
                              if d != "<svg>" or mime == "text/html"]
            if "image/svg+xml" in data:
                assert "foreignObject" not in data["image/svg+xml"]
            if "image/png" in data:
                assert re.fullmatch(r"[A-Za-z0-9+/=\s]+", data["image/png"]), number
            for meta in output.get("metadata", {}).values():
                assert all(isinstance(v, int | float) for v in meta.values()), meta
    assert not found, found
    notes = nb.metadata[NOTES_KEY]
    for expected in ("HTML output was cleaned", "SVG output was cleaned",
                     "`application/javascript` was removed", "shown as text",
                     "`text/latex` output was removed", "not valid base64"):
        assert any(expected in n for n in notes), (expected, notes)


def test_markers_in_a_students_cells_are_harmless_and_noted(course):
    root, _ = course
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        got = {s: gb.find_submission(A, s).score for s in ("markers", "honest")}
        max_score = gb.find_assignment(A).max_score
    assert got == {"markers": max_score, "honest": max_score}
    html = page(root, "markers").read_text()
    assert "BEGIN HIDDEN TESTS  (pasted from somewhere, never closed)" in html
    assert "marker_value" in html and "MARK SCHEME" in html
    nb = json.loads((root / "autograded" / "markers" / A / f"{A}.ipynb").read_text())
    notes = nb["metadata"][NOTES_KEY]
    assert any("`BEGIN HIDDEN TESTS`" in n and "your text" in n for n in notes), notes
    assert any("`BEGIN SOLUTION`" in n and "`END HIDDEN TESTS`" in n for n in notes), notes
    assert "Notes from the autograder" in html


def test_hide_hidden_tests_strips_instructor_cells_only():
    test = nbformat.v4.new_code_cell("check()\n### BEGIN HIDDEN TESTS\nsecret()\n"
                                     "### END HIDDEN TESTS")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                 "grade_id": "t", "points": 1, "schema_version": 3}
    student = nbformat.v4.new_code_cell("x = 1\n# ### BEGIN HIDDEN TESTS")
    student.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                    "grade_id": "s", "schema_version": 3}
    added = nbformat.v4.new_code_cell("### END HIDDEN TESTS\n### BEGIN HIDDEN TESTS\ny = 2")
    nb = nbformat.v4.new_notebook(cells=[test, student, added])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    assert "secret" not in nb.cells[0].source
    assert nb.cells[1].source == "x = 1\n# ### BEGIN HIDDEN TESTS"
    assert nb.cells[2].source == "### END HIDDEN TESTS\n### BEGIN HIDDEN TESTS\ny = 2"


# ----------------------------------------------------------------- the formgrader


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """A Jupyter server with nbgrader's formgrader in the course root (the real one)."""
    root, _ = course
    port, token = _free_port(), os.urandom(12).hex()
    log = tmp_path_factory.mktemp("formgrader") / "server.log"
    env = tools_env()
    env["JUPYTER_CONFIG_DIR"] = str(log.parent / "config")  # nothing of this machine's
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root",
             f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
             "--ServerApp.open_browser=False"],
            cwd=root, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while b"is running at" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _submission_id(root: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(A, A, student).id


@pytest.mark.parametrize("student", ["xss", "older"])
def test_no_student_script_runs_in_the_formgraders_view(course, formgrader, browser, student):
    root, _ = course
    base, token = formgrader
    url = f"{base}/formgrader/submissions/{_submission_id(root, student)}/"
    host = urlsplit(base).netloc
    seen = _visit(browser, url, allow={host, "data", "blob"},
                  headers={"Authorization": f"token {token}"})
    _assert_no_script_ran(seen, url)
    assert "ex05_updates" in seen["text"], seen["text"][:500]  # the page really rendered
    assert "onerror" in seen["text"]  # the instructor still sees what was attempted
