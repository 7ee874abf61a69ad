"""What of a submission the feedback page and the formgrader may show: never a script.

nbconvert's HTML export (the feedback page, the formgrader's view of an autograded
notebook) copies ``text/html``, ``text/markdown`` and ``application/javascript``
outputs and the HTML inside markdown cells into the page as they are; its
``sanitize_html`` option leaves the markdown alone. A submission controls all of
them: its code prints what it likes (``_repr_html_``), its markdown cells are its own.
In the formgrader such a script runs in the instructor's Jupyter session.

:func:`clean_notebook` makes a notebook safe *by construction*, so that every
renderer shows it safely, whatever its configuration:

* **outputs** keep ``text/plain``, PNG/JPEG/GIF images (valid base64, numeric sizes),
  ``text/html`` cleaned to an allow-list of tags and attributes (:func:`clean_html`:
  no script, event handler, frame, form, style, ``javascript:`` or ``data:`` link),
  ``image/svg+xml`` cleaned to drawing elements (:func:`clean_svg`), and
  ``text/markdown`` and ``text/latex`` only when they render to nothing else;
  ``application/javascript``, widgets and every other type are removed;
* a **markdown cell** whose rendering holds anything outside the allow-list (raw HTML
  with a handler, a ``javascript:`` link, an SVG attachment, TeX that makes links
  ...) is shown as text: its source in a fenced code block, under a line that says so;
  attachments keep raster images only;
* raw cells lose their ``format`` (nbconvert would paste a ``text/html`` one into the
  page), cell tags keep ``[A-Za-z0-9_.-]``, the notebook's metadata keeps the keys
  the grader needs (no widget state, which the page would hand to a widget manager);
* nbgrader's markers in cells a student wrote (``BEGIN HIDDEN TESTS`` ...) are left
  as they are and noted: they are text.

Each change is one line of the student's notes (:data:`bpgrade.submission.NOTES_KEY`).
:class:`bpgrade.nbgrader_plugins.SanitizeNotebook` runs it after the kernel in
autograde (the stored notebook is clean), and again before any HTML export
(``c.HTMLExporter.preprocessors``: the feedback and the formgrader). At render time,
:func:`markdown2html` cleans every markdown cell's HTML once more, and the feedback
page carries a strict Content-Security-Policy (:func:`feedback_head`): three layers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html as htmllib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit
from xml.etree import ElementTree

from jinja2 import pass_context

from .memo import by_source
from .submission import shown

# ------------------------------------------------------------------------- HTML

ALLOWED_TAGS = frozenset("""
a abbr b bdi bdo blockquote br caption cite code col colgroup dd del details dfn div dl
dt em figcaption figure h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q rp rt ruby
s samp small span strong sub summary sup table tbody td tfoot th thead time tr tt u ul
var wbr
""".split())
"""Tags a cleaned page keeps (formatting, tables, images, links)."""
_COMMON_ATTRS = frozenset({"class", "title", "align", "lang", "dir"})
_TAG_ATTRS = {
    "a": {"href"}, "img": {"src", "alt", "width", "height"}, "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"}, "ol": {"start", "type"}, "col": {"span"},
    "colgroup": {"span"}, "details": {"open"}, "time": {"datetime"},
    **{f"h{n}": {"id"} for n in range(1, 7)},  # nbconvert's anchors for headings
}
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"})
"""Images an ``<img>`` may show from a ``data:`` URL (an SVG in an ``<img>`` runs no script)."""
_SIZE = re.compile(r"^\s*\d{1,5}(?:\.\d+)?(?:px|%)?\s*$")
_ID = re.compile(r"^\S{1,200}$")  # a heading anchor: any word, nothing that runs


def _scheme(url: str) -> str | None:
    """The scheme of ``url`` as a browser reads it (control characters and spaces
    dropped), lower case; ``None`` for a relative URL."""
    cleaned = re.sub(r"[\x00-\x20\x7f]", "", htmllib.unescape(url))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", cleaned) is None:
        return None
    return urlsplit(cleaned).scheme.lower() or cleaned.split(":", 1)[0].lower()


def allowed_attribute(tag: str, name: str, value: str) -> bool:
    """May ``tag`` keep the attribute ``name="value"``? (bleach's attribute filter)"""
    name = name.lower()
    if name not in _COMMON_ATTRS and name not in _TAG_ATTRS.get(tag, ()):
        return False
    if name == "href":
        scheme = _scheme(value)
        return scheme is None or scheme in LINK_SCHEMES
    if name == "src":
        scheme = _scheme(value)
        if scheme is None:
            return True
        mime = re.sub(r"\s", "", htmllib.unescape(value))[5:].split(";")[0].split(",")[0]
        return scheme == "data" and mime.lower() in IMAGE_TYPES
    if name in {"width", "height"}:
        return bool(_SIZE.match(value))
    if name == "id":
        return bool(_ID.match(value))
    return True


def clean_html(text: str) -> str:
    """``text`` with every tag and attribute outside :data:`ALLOWED_TAGS` and
    :func:`allowed_attribute` escaped or dropped (bleach, html5lib's parser): it shows
    as text, it never runs."""
    import bleach

    cleaner = bleach.Cleaner(tags=ALLOWED_TAGS, attributes=allowed_attribute,
                             protocols=LINK_SCHEMES | {"data"}, strip=False,
                             strip_comments=True)
    return cleaner.clean(text)


class _Checker(HTMLParser):
    """What :func:`clean_html` would change, named (for the notes); and the text outside
    ``<pre>`` and ``<code>`` (what MathJax reads)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._code = 0

    def handle_data(self, data):
        if not self._code:
            self.text.append(data)

    def _say(self, what: str) -> None:
        if what not in self.problems:
            self.problems.append(what)

    def handle_starttag(self, tag, attrs):
        self._code += tag in ("pre", "code")
        if tag not in ALLOWED_TAGS:
            self._say(f"the element {shown('<' + tag + '>', 30)}")
            return
        for name, value in attrs:
            if not allowed_attribute(tag, name, value or ""):
                if name.lower() in {"href", "src"}:
                    self._say(f"a link to {shown((value or '')[:40], 40)}")
                else:
                    self._say(f"the attribute {shown(name, 30)}")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._code -= tag in ("pre", "code")

    def handle_endtag(self, tag):
        self._code = max(0, self._code - (tag in ("pre", "code")))
        if tag not in ALLOWED_TAGS:
            self._say(f"the element {shown('</' + tag + '>', 30)}")

    def handle_comment(self, data):
        self._say("an HTML comment")

    def handle_decl(self, decl):
        self._say("an HTML declaration")

    def handle_pi(self, data):
        self._say("an HTML processing instruction")

    def unknown_decl(self, data):
        self._say("an HTML declaration")


def html_problems(text: str, math: bool = False) -> list[str]:
    """What in the HTML ``text`` a cleaned page would not keep; with ``math``, also the
    TeX commands (:func:`tex_problems`) in its text outside code; [] when nothing."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    return checker.problems + (tex_problems("".join(checker.text)) if math else [])


# ------------------------------------------------------------------- markdown, TeX

_TEX = re.compile(r"\\(href|url|class|cssId|style|require|html\w*|data|unicode|"
                  r"texttip|toggle|mathtip|action)\b")


def tex_problems(text: str) -> list[str]:
    """TeX commands in ``text`` with which MathJax makes links, loads code or styles
    the page (``\\href``, ``\\require``, ``\\class`` ...)."""
    found = sorted({m.group(1) for m in _TEX.finditer(text)})
    return [f"the TeX command {shown(chr(92) + name, 30)}" for name in found]


def render_markdown(source: str, attachments: dict | None = None) -> str:
    """``source`` rendered as nbconvert's HTML export renders a markdown cell (mistune
    with nbconvert's math, raw HTML kept, attachments inlined as ``data:`` URLs)."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=False, attachments=attachments or {})
    return MarkdownWithMath(renderer=renderer).render(source)


def markdown_problems(source: str, attachments: dict | None = None) -> list[str]:
    """What in a markdown cell a cleaned page would not keep (its rendering checked by
    :func:`html_problems`, its math by :func:`tex_problems`); [] when nothing.

    The answer for a cell without attachments is kept for the next call with the same
    source (:func:`bpgrade.memo.by_source`: most markdown cells of a class's submissions
    are the release's)."""
    if not attachments:
        return list(_plain_markdown_problems(source))
    return _markdown_problems(source, attachments)


@by_source
def _plain_markdown_problems(source: str) -> tuple[str, ...]:
    return tuple(_markdown_problems(source, None))


def _markdown_problems(source: str, attachments: dict | None) -> list[str]:
    try:
        rendered = render_markdown(source, attachments)
    except Exception:  # noqa: BLE001 - a renderer that fails on it: shown as text
        return ["markdown the renderer cannot read"]
    return html_problems(rendered, math=True)


AS_TEXT = ("*The autograder shows this markdown cell as text: it holds {what}, which "
           "the feedback never renders.*")


def as_text(source: str, problems: list[str]) -> str:
    """A markdown cell that shows ``source`` verbatim: a line that says why, then the
    source in a fenced code block longer than any run of backticks in it."""
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", source)), default=0))
    what = ", ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
    return f"{AS_TEXT.format(what=what)}\n\n{fence}text\n{source}\n{fence}"


@pass_context
def markdown2html(context, source: str) -> str:
    """The HTML exporter's ``markdown2html`` filter, cleaned (``c.HTMLExporter.filters``):
    nbconvert's own rendering (attachments, math, heading anchors), then
    :func:`clean_html`; markdown the renderer cannot read is shown as text."""
    cell = context.get("cell", {}) if context else {}
    attachments = cell.get("attachments", {}) if hasattr(cell, "get") else {}
    try:
        rendered = render_markdown(source, clean_attachments(attachments)[0])
    except Exception:  # noqa: BLE001 - e.g. a reference to an attachment dropped above
        return f"<pre>{htmllib.escape(source)}</pre>"  # shown as text, never a failed page
    return clean_html(rendered)


# ------------------------------------------------------------------------ images

_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*$")
RASTER = ("image/png", "image/jpeg", "image/gif")


def valid_base64(data: object) -> bool:
    if not isinstance(data, str) or not _BASE64.match(data):
        return False
    try:
        base64.b64decode(re.sub(r"\s", "", data), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def clean_attachments(attachments) -> tuple[dict, list[str]]:
    """A markdown cell's attachments with raster images only (valid base64)."""
    kept, dropped = {}, []
    for name, bundle in (attachments or {}).items() if isinstance(attachments, dict) else []:
        ok = {m: d for m, d in (bundle or {}).items() if m in RASTER and valid_base64(d)} \
            if isinstance(bundle, dict) else {}
        if ok:
            kept[name] = ok
        else:
            dropped.append(f"the attachment {shown(str(name), 40)}")
    return kept, dropped


SVG_NS, XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE\s+svg\s+PUBLIC\s+\"[^\"\[<>]*\"\s*"
                     r"\"[^\"\[<>]*\"\s*>\s*)?", re.IGNORECASE)
SVG_TAGS = frozenset("""
svg g defs symbol use path rect circle ellipse line polyline polygon text tspan textPath
title desc clipPath mask marker linearGradient radialGradient stop pattern image
""".split())
"""Drawing elements an SVG output keeps (no script, foreignObject, style, animation)."""


def clean_svg(text: str) -> str | None:
    """An ``image/svg+xml`` output with drawing elements only: no ``<script>``,
    ``<foreignObject>``, ``<style>`` or animation, no ``on*`` attribute, links only
    within the picture (``#id``) or to an embedded raster image; ``None`` when it is
    not an SVG document (or declares entities)."""
    if not isinstance(text, str):
        return None
    text = _PROLOG.sub("", text, count=1)  # matplotlib's: <?xml ...?> <!DOCTYPE svg PUBLIC ...>
    if "<!" in text.replace("<![CDATA[", ""):  # a declaration: entities, an internal subset
        return None
    ElementTree.register_namespace("", SVG_NS)
    ElementTree.register_namespace("xlink", XLINK_NS)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    if root.tag != f"{{{SVG_NS}}}svg":
        return None

    def keep(element) -> bool:
        tag = element.tag
        return isinstance(tag, str) and tag.startswith(f"{{{SVG_NS}}}") and \
            tag.split("}", 1)[1] in SVG_TAGS

    def clean(element) -> None:
        for child in list(element):
            if keep(child):
                clean(child)
            else:
                element.remove(child)
        for name in list(element.attrib):
            local = name.split("}", 1)[-1].lower()
            value = element.attrib[name]
            if local.startswith("on") or (local == "style" and "url(" in value.replace(
                    "url(#", "")) or (local == "href" and not (
                    value.startswith("#") or (
                        element.tag.endswith("}image") and re.match(
                            r"^data:image/(png|jpeg|gif);base64,", value)))):
                del element.attrib[name]

    clean(root)
    return ElementTree.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------ outputs

KEPT_AS_IS = frozenset({"text/plain"} | set(RASTER))
CHECKED = frozenset({"text/html", "image/svg+xml", "text/markdown", "text/latex"})


def clean_output(output: dict, where: str) -> tuple[bool, list[str]]:
    """Clean one output in place; ``(keep it?, notes)``."""
    notes = []
    kind = output.get("output_type")
    if kind == "stream":
        if output.get("name") not in ("stdout", "stderr"):
            output["name"] = "stdout"
        return True, notes
    if kind not in ("display_data", "execute_result"):
        return True, notes  # errors: text, escaped by every renderer
    data = output.get("data") or {}
    for mime in list(data):
        value = data[mime]
        if mime in RASTER:
            if not valid_base64(value):
                del data[mime]
                notes.append(f"{where}: an image output that is not valid base64 was removed")
            continue
        if mime == "text/plain" or mime not in CHECKED:
            if mime != "text/plain":
                del data[mime]
                notes.append(f"{where}: an output of type {shown(mime, 50)} was removed "
                             "(the feedback shows no script or widget of a submission)")
            continue
        text = "".join(value) if isinstance(value, list) else str(value)
        if mime == "text/html":
            problems = html_problems(text)
            data[mime] = clean_html(text)  # always: html5lib's reading, not only ours
            if problems:
                notes.append(f"{where}: an HTML output was cleaned (it held "
                             f"{', '.join(problems[:3])})")
        elif mime == "image/svg+xml":
            cleaned = clean_svg(text)
            if cleaned is None:
                del data[mime]
                notes.append(f"{where}: an SVG output that is not a plain SVG picture "
                             "was removed")
            elif cleaned != text:
                data[mime] = cleaned
                notes.append(f"{where}: an SVG output was cleaned (scripts, "
                             "foreignObject, handlers and outside links removed)")
        else:  # text/markdown, text/latex
            problems = (markdown_problems(text) if mime == "text/markdown" else
                        tex_problems(text))
            if problems:
                del data[mime]
                notes.append(f"{where}: a {shown(mime, 20)} output was removed (it held "
                             f"{', '.join(problems[:3])})")
    metadata = output.get("metadata")
    if isinstance(metadata, dict):
        output["metadata"] = {
            mime: {k: v for k, v in meta.items() if k in ("width", "height")
                   and isinstance(v, int | float) and not isinstance(v, bool)}
            for mime, meta in metadata.items() if mime in data and isinstance(meta, dict)}
    if not data:
        return False, notes
    return True, notes


# ----------------------------------------------------------------------- markers

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")


def marker_notes(source: str, where: str) -> list[str]:
    """A note for each nbgrader marker in a cell a student wrote: it is their text."""
    found = [m for m in MARKERS if m in source]
    if not found:
        return []
    names = ", ".join(shown(m) for m in found)
    return [f"{where}: holds nbgrader's marker{'s' if len(found) > 1 else ''} {names}; "
            "the autograder treats it as your text (it hides and removes nothing there)"]


# ---------------------------------------------------------------------- notebooks

NOTEBOOK_METADATA = frozenset({"kernelspec", "language_info", "jupytext", "celltoolbar",
                               "bpgrade_repairs", "bpgrade_notes"})
_TAG = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def is_students(cell) -> bool:
    """A cell a student wrote: any cell nbgrader does not put back from the
    instructor's copy (a solution cell, a cell the student added, an unlocked cell)."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    if not isinstance(meta, dict) or meta.get("solution"):
        return True
    return not (meta.get("grade") or meta.get("locked"))


def clean_notebook(nb) -> list[str]:
    """Make ``nb`` safe to render (see the module's docstring), in place; return the
    notes, one line per change."""
    notes: list[str] = []
    for key in list(nb.get("metadata", {})):
        if key not in NOTEBOOK_METADATA:
            del nb["metadata"][key]
    for number, cell in enumerate(nb.get("cells", []), start=1):
        where = f"cell {number}"
        meta = cell.setdefault("metadata", {})
        tags = meta.get("tags")
        if tags is not None:
            meta["tags"] = [t for t in tags if isinstance(t, str) and _TAG.match(t)] \
                if isinstance(tags, list) else []
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if is_students(cell):
            notes += marker_notes(source, where)
        kind = cell.get("cell_type")
        if kind == "raw":
            meta.pop("format", None)
            meta.pop("raw_mimetype", None)
        if kind in ("markdown", "raw") and "attachments" in cell:
            kept, dropped = clean_attachments(cell.get("attachments"))
            cell["attachments"] = kept
            if dropped:
                notes.append(f"{where}: {', '.join(dropped[:3])} removed (only PNG, "
                             "JPEG and GIF images are kept)")
        if kind == "markdown":  # once shown as text, it stays as it is: a code block
            problems = markdown_problems(source, cell.get("attachments"))
            if problems:
                cell["source"] = as_text(source, problems)
                cell["attachments"] = {}
                notes.append(f"{where}: shown as text, because its markdown holds "
                             f"{', '.join(problems[:3])}")
        elif kind == "code":
            outputs = []
            for output in cell.get("outputs", []):
                keep, said = clean_output(output, where)
                notes += [n for n in said if n not in notes]
                if keep:
                    outputs.append(output)
            cell["outputs"] = outputs
    return notes


# ------------------------------------------------------------------ feedback page


def csp_hash(script: str) -> str:
    """The Content-Security-Policy source that allows the inline script ``script``."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(scripts: list[str]) -> str:
    """The feedback page's policy: its own inline ``scripts`` (by hash) and nothing
    else runs; no request leaves the page (images and fonts: ``data:`` and the page's
    own folder); no frame, form, plug-in or ``<base>``."""
    return ("default-src 'none'; script-src " + " ".join(csp_hash(s) for s in scripts)
            + "; style-src 'unsafe-inline'; img-src data: file: 'self'; "
              "font-src data: file: 'self'; "
              "base-uri 'none'; form-action 'none'; frame-src 'none'; object-src 'none'")
