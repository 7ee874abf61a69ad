"""The two editions of the book (English, 中文): a Sphinx extension loaded by both builds.

- **Glued numbers survive translation.** Sphinx parses a translated paragraph again, as
  a new document without the notebook's glue data, so MyST-NB's ``{glue:text}`` role
  would find no value (it warns "No key ... found in glue data for this document").
  Here the roles fall back to the glue data MyST-NB wrote for the page when it was
  read (``jupyter_execute/<page>.glue.json``): the same numbers as the English page.
- **A language link** in every page's header goes to the same page in the other
  edition (English at the site's root, Chinese under ``zh_CN/``), with
  ``<link rel="alternate" hreflang>`` in the head.
- **The Chinese edition's own labels** where the theme's catalogs have none or have
  Taiwanese ones: the code-cell toggles ("Show code cell source"), the search box's
  placeholder, the header's buttons and tooltips ("Repository", 打印为 PDF), the
  colour-mode switch, the sidebars' toggles (THEME_ZH).
- **Chinese typography**: a raw HTML block keeps its translation whole (Sphinx would
  parse it as a literal block, leaving "::"); inline math and the punctuation that
  follows it stay on one line (no line starts with ，。；：); emphasis of Chinese text is
  marked for upright rendering with emphasis dots (``course.css``), a Latin-only
  emphasis keeps its italic; textual citations read "McCulloch 和 Pitts", "Rumelhart 等".
- **Chinese figures** (``course_figures.py``): the kernels that execute the chapters
  display each matplotlib figure with its pickle beside the PNG; the Chinese page shows
  the figure drawn again with its text from the page's catalog, in a CJK font, and a
  Chinese alt text. An execution cached without the pickles runs once more; a page read
  from an older execution is read again; the pickles never reach a download.
"""
from __future__ import annotations

import gettext
import hashlib
import json
import os
import re
from pathlib import Path

import course_figures
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

ZH = "zh_CN"
logger = logging.getLogger(__name__)

# myst-nb's toggles: "Show code cell {type}" with type source/output/outputs/content.
PROMPTS_ZH = {
    f"{verb} code cell {kind}": f"{zh_verb}{zh_kind}"
    for verb, zh_verb in (("Show", "显示"), ("Hide", "隐藏"))
    for kind, zh_kind in (("source", "代码"), ("output", "输出"), ("outputs", "输出"),
                          ("content", "代码单元"))
}


def _glue_fallback(document, key):
    """MyST-NB's retrieve_glue_data, also for a translated paragraph's new document."""
    from myst_nb.core.variables import RetrievalError, VariableOutput
    from myst_nb.ext.glue import utils

    if "nb_renderer" in document:
        return utils._course_original_retrieve(document, key)
    env = getattr(document.settings, "env", None)
    data = {}
    if env is not None:
        path = Path(env.app.outdir).parent / "jupyter_execute" / f"{env.docname}.glue.json"
        cache = env.app.__dict__.setdefault("_course_glue", {})
        if path not in cache:
            cache[path] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        data = cache[path]
    if key not in data:
        raise RetrievalError(f"No key {key!r} found in glue data for this document.")
    return VariableOutput(data=data[key]["data"], metadata=data[key].get("metadata", {}),
                          nb_renderer=None, vtype="glue")


def _patch_glue() -> None:
    from myst_nb.ext.glue import directives, roles, utils

    if not hasattr(utils, "_course_original_retrieve"):
        utils._course_original_retrieve = utils.retrieve_glue_data
        for module in (utils, roles, directives):
            if hasattr(module, "retrieve_glue_data"):
                module.retrieve_glue_data = _glue_fallback


class TranslatePrompts(SphinxPostTransform):
    """The code-cell toggles' labels in Chinese (after MyST-NB's HideInputCells, 199)."""

    default_priority = 200
    formats = ("html",)

    def run(self, **kwargs):
        if self.config.language != ZH:
            return
        for node in self.document.findall(nodes.Element):
            for attr in ("prompt_show", "prompt_hide"):
                if node.get(attr) in PROMPTS_ZH:
                    node[attr] = PROMPTS_ZH[node[attr]]


# The theme's labels in the Chinese edition, where sphinx-book-theme's and
# pydata-sphinx-theme's catalogs have none (English on the page) or a Taiwanese one
# (列印成 PDF). They are looked up before the theme's own catalogs, by Sphinx's and the
# theme's gettext alike; our copies of three theme templates (_ext/templates) look up
# the theme's hard-coded English with course_label().
THEME_ZH = {
    "Print to PDF": "打印为 PDF",
    "Repository": "代码仓库",
    "Source repository": "代码仓库",
    "Source repositories": "代码仓库",
    "Open issue": "创建议题",
    "Launch interactive content": "在线运行本页",
    "logo": "标志",
    "Color mode": "颜色模式",
    "Light": "浅色",
    "Dark": "深色",
    "System Settings": "跟随系统",
    "Toggle primary sidebar": "显示或隐藏目录栏",
    "Toggle secondary sidebar": "显示或隐藏本页目录",
    "Main": "课程目录",
    "Link to this heading": "链接到本标题",
    "© Copyright %(copyright)s.": "© %(copyright)s 版权所有。",
}
# "Launch on" + " Binder" is built in Python: the whole tooltip is translated here.
LAUNCH_ON = re.compile(r"^Launch on (\S+)$")


class _Overrides(gettext.NullTranslations):
    """THEME_ZH first, then the catalog it stands in front of (its fallback)."""

    def gettext(self, message):
        if message in THEME_ZH:
            return THEME_ZH[message]
        return super().gettext(message)


def _install_theme_labels(app: Sphinx, chinese: bool) -> None:
    """Put THEME_ZH in front of Sphinx's own translator (the templates' _(), which the
    html builder installs from ``app.translator``) and of the book theme's catalog; in
    an English build, take them away again (one process may build both editions)."""
    from sphinx import locale

    for key in (("general", "sphinx"), ("general", "booktheme")):
        current = locale.translators.get(key)
        if isinstance(current, _Overrides):
            current = current._fallback
        if chinese and current is not None:
            wrapper = _Overrides()
            wrapper.add_fallback(current)
            locale.translators[key] = wrapper
        elif current is not None:
            locale.translators[key] = current
    app.translator = locale.translators.get(("general", "sphinx"), app.translator)


def _translate_buttons(buttons) -> None:
    for button in buttons or []:
        if isinstance(button, dict):
            for field in ("text", "tooltip"):
                value = button.get(field)
                if value in THEME_ZH:
                    button[field] = THEME_ZH[value]
                elif isinstance(value, str) and LAUNCH_ON.match(value):
                    button[field] = LAUNCH_ON.sub(r"在 \1 上运行", value)
            _translate_buttons(button.get("buttons"))


def _launch_twin(buttons, pagename: str, srcdir: Path, language: str = ZH) -> None:
    """The Chinese page's Colab, Binder and JupyterHub buttons open the chapter's Chinese
    twin, ``<page>.zh_CN.ipynb`` (``python -m tools.build_notebooks``), where the theme
    sends the English ``<page>.ipynb``; a page without a twin keeps its link, and the
    download buttons (the executed notebook of the build) are left alone."""
    english, twin = f"{pagename}.ipynb", f"{pagename}.{language}.ipynb"
    if not (srcdir / twin).is_file():
        return
    for group in buttons or []:
        if isinstance(group, dict) and group.get("label") == "launch-buttons":
            for button in group.get("buttons") or []:
                url = button.get("url") if isinstance(button, dict) else None
                if isinstance(url, str) and english in url:
                    button["url"] = url.replace(english, twin)


def _page_catalog(transform: SphinxTransform):
    """The page's Chinese catalog (``locales/zh_CN/LC_MESSAGES/<page>.mo``), or None."""
    from sphinx.locale import init as init_locale
    from sphinx.util.i18n import docname_to_domain

    domain = docname_to_domain(transform.env.docname, transform.config.gettext_compact)
    dirs = [str(Path(transform.env.srcdir, d)) for d in transform.config.locale_dirs]
    catalog, found = init_locale(dirs, transform.config.language, domain)
    return catalog if found else None


class TranslateRawBlocks(SphinxTransform):
    """A raw HTML block (the intro's PDF paragraph) in its Chinese translation, whole.

    Sphinx translates a raw block like a literal block: it parses ``"::\n\n" + msgstr``
    as reStructuredText-in-MyST and keeps the first paragraph, ``::``, as the block's
    text, so the Chinese page showed "::" and lost the link. Here, after Sphinx has
    marked the block translatable (PreserveTranslatableMessages, 10) and before it
    translates the page (Locale, 20), the block gets its translation as it is and stops
    being translatable."""

    default_priority = 15

    def apply(self, **kwargs) -> None:
        if self.config.language != ZH:
            return
        blocks = [n for n in self.document.findall(nodes.raw) if n.get("translatable")]
        catalog = _page_catalog(self) if blocks else None
        if catalog is None:
            return
        for block in blocks:
            message = block.rawsource or block.astext()
            translated = catalog.gettext(message)
            if translated and translated != message:
                block.children = []
                block += nodes.Text(translated)
                block.rawsource = translated
                block["translatable"] = False
                block["translated"] = True


class TranslateTocCaptions(SphinxTransform):
    """The captions of the parts ("The course", "Exercises", "Reference") in Chinese.

    sphinx-external-toc inserts the toctrees (priority 100) after Sphinx has translated
    the page (Locale, 20), so their captions, although they are in the root page's
    catalog, would stay English in the navigation."""

    default_priority = 101

    def apply(self, **kwargs) -> None:
        if self.config.language != ZH:
            return
        from sphinx import addnodes

        catalog = _page_catalog(self)
        if catalog is None:
            return
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption and catalog.gettext(caption) != caption:
                toctree["caption"] = toctree["rawcaption"] = catalog.gettext(caption)


# Punctuation that must not begin a line (closing) or end one (opening), Chinese and
# Latin: kept on the line of the formula next to it.
CLOSING = "，。；：、！？）」』》〉】”’…,.;:!?)"
OPENING = "（「『《〈【“‘("
CJK = re.compile(r"[\u3400-\u9fff]")


class KeepMathWithPunctuation(SphinxPostTransform):
    """Inline math and the punctuation right after (or right before) it in one
    ``<span class="nowrap">``: MathJax typesets a formula as an inline block, and a
    browser breaks between it and a following "，", so that a line began with "，"."""

    default_priority = 400
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for math in list(self.document.findall(nodes.math)):
            parent = math.parent
            if parent is None:
                continue
            at = parent.index(math)
            after = parent[at + 1] if at + 1 < len(parent) else None
            before = parent[at - 1] if at > 0 else None
            closing = opening = ""
            if isinstance(after, nodes.Text):
                closing = re.match(f"[{re.escape(CLOSING)}]*", str(after)).group()
            if isinstance(before, nodes.Text):
                opening = re.search(f"[{re.escape(OPENING)}]*$", str(before)).group()
            if not closing and not opening:
                continue
            group = nodes.inline("", "", classes=["nowrap"])
            if opening:
                parent.replace(before, nodes.Text(str(before)[: -len(opening)]))
                group += nodes.Text(opening)
            parent.replace(math, group)
            group += math
            if closing:
                parent.replace(after, nodes.Text(str(after)[len(closing):]))
                group += nodes.Text(closing)


class MarkChineseEmphasis(SphinxPostTransform):
    """``<em class="cjk">`` for emphasis that holds Chinese text: Chinese has no italic,
    so course.css sets it upright with emphasis dots; Latin emphasis stays italic. Late
    (after the bibliography and citations are rendered), in both editions."""

    default_priority = 900
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for em in self.document.findall(nodes.emphasis):
            if CJK.search(em.astext()) and "cjk" not in em["classes"]:
                em["classes"].append("cjk")


# ---------------------------------------------------------------- figures ----------

def _patch_figure_mimes() -> None:
    """MyST-NB draws the PNG of a figure output and passes over its capture
    (``course_figures.CAPTURE_MIMES``) without the warning "skipping unknown output
    mime type", which a strict build would turn into an error."""
    from myst_nb.core.render import NbElementRenderer

    for name in ("render_mime_type", "render_mime_type_inline"):
        original = getattr(NbElementRenderer, name)
        if getattr(original, "_course", False):
            continue

        def render(self, data, _original=original):
            if data.mime_type in course_figures.CAPTURE_MIMES:
                return []
            return _original(self, data)

        render._course = True
        setattr(NbElementRenderer, name, render)


def _executes(app: Sphinx) -> bool:
    return app.config.nb_execution_mode == "cache"


def capture_figures_in_kernels(app: Sphinx) -> None:
    """The chapters' kernels (started by this process, which they inherit the environment
    of) load course_figures' IPython extension, through a profile under the build folder;
    the reader's own IPython settings are not involved."""
    if app.config.nb_execution_mode == "off":
        return
    folder = course_figures.kernel_profile(Path(app.outdir).parent / ".ipython")
    app._course_ipythondir = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(folder)


def _notebook_source(app: Sphinx, docname: str) -> Path | None:
    from myst_nb.core.read import is_myst_markdown_notebook

    path = Path(app.env.doc2path(docname))
    if path.suffix == ".md" and path.is_file() and is_myst_markdown_notebook(
            path.read_text(encoding="utf-8")):
        return path
    return None


def _cache_dir(app: Sphinx) -> str:
    return app.env.mystnb_config.execution_cache_path


def reread_pages_executed_again(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Before the pages are read: a page whose cached execution has no figure captures
    (it was cached before they existed) loses it and runs once more, also when Sphinx
    reads the page anyway; a page that Sphinx would not read is read again when it was
    read from another execution than the cache holds now (the English build ran it
    again: the Chinese edition must show the same outputs)."""
    if not _executes(app):
        return []
    read = env.__dict__.setdefault("course_executions", {})
    again = []
    for docname in sorted(env.found_docs - removed):
        path = _notebook_source(app, docname)
        found = course_figures.cached_execution(_cache_dir(app), path) if path else None
        if found is None or read.get(docname) == found[2]:
            continue
        cache, record, _ = found
        if course_figures.lacks_capture(cache.get_cache_bundle(record.pk).nb):
            logger.info(f"{docname}: its cached execution has no figure captures: it runs"
                        " once more")
            cache.remove_cache(record.pk)
        if docname not in added | changed:
            again.append(docname)
    return again


def _executed_notebook(app: Sphinx, docname: str):
    """The page's executed notebook, from the cache (the outputs both editions show), or
    None for a page that is not a notebook or was not executed."""
    path = _notebook_source(app, docname)
    return course_figures.executed_notebook(_cache_dir(app), path) if path else None


def note_execution(app: Sphinx, doctree) -> None:
    """Remember which execution the page was read from; a figure output without its
    capture is a warning (the strict build fails), not a figure left in English."""
    docname = app.env.docname
    path = _notebook_source(app, docname) if _executes(app) else None
    found = course_figures.cached_execution(_cache_dir(app), path) if path else None
    if found is None:
        return
    app.env.__dict__.setdefault("course_executions", {})[docname] = found[2]
    nb = course_figures.executed_notebook(_cache_dir(app), path)
    lines = nb.metadata.get("source_map", [])
    for entry in course_figures.figure_outputs(nb).values():
        if "data" not in entry:
            why = entry.get("error", "no capture: the kernel ran without course_figures")
            line = lines[entry["cell"]] if entry["cell"] < len(lines) else None
            logger.warning(f"this figure cannot be drawn in Chinese: {why}",
                           location=(docname, line))


def merge_executions(app: Sphinx, env, docnames, other) -> None:
    env.__dict__.setdefault("course_executions", {}).update(
        {d: v for d, v in getattr(other, "course_executions", {}).items() if d in docnames})


def purge_execution(app: Sphinx, env, docname) -> None:
    env.__dict__.setdefault("course_executions", {}).pop(docname, None)


class TranslateAltTexts(SphinxTransform):
    """Every image's alt text in its translation from the page's catalog (a figure's alt
    text is there through tools.i18n; a ``{figure}``'s through Sphinx's extraction).

    Sphinx's Locale transform translates the alt text only of an image that is not also
    a message of its own: a ``{figure}`` or ``{image}`` is one (``.. image:: path``, as
    "image" is a gettext target), and its translation, the same path, marks the image
    translated in the first phase, so that the second skips its alt text, which stayed
    English on the Chinese page (WCAG 3.1.2)."""

    default_priority = 25

    def apply(self, **kwargs) -> None:
        if self.config.language != ZH:
            return
        images = [n for n in self.document.findall(nodes.image) if n.get("alt")]
        catalog = _page_catalog(self) if images else None
        for image in images if catalog is not None else ():
            image["alt"] = catalog.gettext(image["alt"])


class ChineseFigures(SphinxTransform):
    """On a Chinese page, each figure that a cell drew: its text replaced by the page's
    catalog (course_figures.translate_figure), drawn again with a CJK font into the
    folder where MyST-NB writes the PNGs, the image pointed at it. A figure whose text
    the catalog leaves as it is (numbers only, or names) keeps the English PNG. Before
    Sphinx collects the images (doctree-read), so the new PNG is copied to _images like
    any other. (Its alt text: TranslateAltTexts.)"""

    default_priority = 30

    def apply(self, **kwargs) -> None:
        if self.config.language != ZH:
            return
        images = list(self.document.findall(nodes.image))
        catalog = _page_catalog(self) if images else None
        if catalog is None:
            return
        nb = _executed_notebook(self.app, self.env.docname) if _executes(self.app) else None
        figures = course_figures.figure_outputs(nb) if nb else {}
        if figures:  # a change to how figures are drawn redraws them
            self.env.note_dependency(course_figures.__file__)
        folder = Path(self.env.mystnb_config.output_folder)
        for image in images:
            entry = figures.get(Path(image["uri"]).stem)
            if entry is None or "data" not in entry:
                continue
            fig = course_figures.load_figure(entry["data"])
            if not course_figures.translate_figure(fig, catalog.gettext):
                continue
            missing = course_figures.missing_glyphs(fig)
            if missing:
                logger.warning(f"the Chinese figure would draw boxes for {missing[:5]}",
                               location=image)
            png = course_figures.render(fig)
            target = folder / f"{hashlib.sha256(png).hexdigest()}.png"
            if not target.exists():
                target.write_bytes(png)
            image["uri"] = "/" + os.path.relpath(target.resolve(), self.app.srcdir)


def strip_figure_captures(app: Sphinx, exception) -> None:
    """The notebooks the site offers for download (``_sources/<page>.ipynb``, copies of
    the executed notebooks) without the figures' pickles; the kernels' environment as it
    was."""
    if hasattr(app, "_course_ipythondir"):
        if app._course_ipythondir is None:
            os.environ.pop("IPYTHONDIR", None)
        else:
            os.environ["IPYTHONDIR"] = app._course_ipythondir
    sources = Path(app.outdir) / "_sources"
    if app.builder.format == "html" and sources.is_dir():
        for path in sorted(sources.rglob("*.ipynb")):
            course_figures.strip_notebook(path)


def dedupe_citation_refs(app: Sphinx, env) -> list[str]:
    """Sphinx parses a translated paragraph again (twice), and each parse of a
    ``{cite:t}`` role notes the same citation reference (same page, same id) with
    sphinxcontrib-bibtex once more: the bibliography then showed three back-links
    "(1,2,3)" to one citation. Before sphinxcontrib-bibtex uses them (its env-updated
    handler has the default priority, 500), each is kept once."""
    if app.config.language != ZH:
        return []
    domain = env.get_domain("cite")
    seen, kept = set(), []
    for ref in domain.citation_refs:
        key = (ref.docname, ref.citation_ref_id, tuple(t.key for t in ref.targets))
        if key not in seen:
            seen.add(key)
            kept.append(ref)
    domain.data["citation_refs"] = kept
    return []


def _register_chinese_citations() -> None:
    """The reference style ``author_year_zh``: sphinxcontrib-bibtex's author-year with
    "McCulloch 和 Pitts [1943]" and "Rumelhart 等 [1986]" for {cite:t}."""
    from dataclasses import dataclass, field

    from pybtex.richtext import Text
    from sphinxcontrib.bibtex.plugin import register_plugin
    from sphinxcontrib.bibtex.style.referencing import PersonStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def chinese_persons() -> PersonStyle:
        return PersonStyle(sep="、", sep2=" 和 ", last_sep=" 和 ", other=Text(" 等"))

    @dataclass
    class ChineseAuthorYearReferenceStyle(AuthorYearReferenceStyle):
        person: PersonStyle = field(default_factory=chinese_persons)

    # (a second call, in the same process, keeps the first registration)
    register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_zh",
                    ChineseAuthorYearReferenceStyle)


def _relative_root(pagename: str) -> str:
    return "../" * pagename.count("/")


def language_links(app: Sphinx, pagename: str) -> list[tuple[str, str, str, bool]]:
    """``(label, hreflang, href, current)`` for each edition of the page."""
    here = app.config.language or "en"
    up, same = _relative_root(pagename), f"{pagename.rsplit('/', 1)[-1]}.html"
    if here == ZH:
        english, chinese = f"../{up}{pagename}.html", same
    else:
        english, chinese = same, f"{up}{ZH}/{pagename}.html"
    return [("English", "en", english, here != ZH), ("中文", "zh-CN", chinese, here == ZH)]


def page_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    links = language_links(app, pagename)
    context["course_language_links"] = links
    alternates = "".join(
        f'<link rel="alternate" hreflang="{lang}" href="{href}" />\n'
        for _, lang, href, current in links if not current)
    context["metatags"] = context.get("metatags", "") + alternates
    if app.config.language == ZH:
        _translate_buttons(context.get("header_buttons"))
        _launch_twin(context.get("header_buttons"), pagename, Path(app.srcdir))


def label_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """``course_label(text)``: the theme's hard-coded English in our copies of its
    templates, in the edition's language (not ``_()``, which the gettext builder would
    extract into a catalog of its own). Before pydata-sphinx-theme renders the
    templates (its handler has the default priority, 500)."""
    chinese = app.config.language == ZH
    context["course_label"] = (lambda text: THEME_ZH.get(text, text)) if chinese else str


def config_inited(app: Sphinx, config) -> None:
    options = dict(config.html_theme_options or {})
    end = list(options.get("article_header_end") or ["article-header-buttons.html"])
    if "language-switch.html" not in end:
        end.insert(0, "language-switch.html")
    options["article_header_end"] = end
    chinese = config.language == ZH
    if chinese:
        options["search_bar_text"] = "搜索本书……"
        options["extra_footer"] = "<p>本书代码以 MIT 许可证发布。用 Jupyter Book 离线构建。</p>"
        config.togglebutton_hint = "点击显示"
        config.togglebutton_hint_hide = "点击隐藏"
        config.author = "本课程作者"
        if config.bibtex_reference_style == "author_year":
            config.bibtex_reference_style = "author_year_zh"
    config.html_theme_options = options
    _install_theme_labels(app, chinese)
    # before the themes' own templates: ours replace a few of theirs (see templates/)
    templates = str(Path(__file__).resolve().parent / "templates")
    config.templates_path = [templates, *(p for p in config.templates_path if p != templates)]


def setup(app: Sphinx) -> dict:
    _patch_glue()
    _patch_figure_mimes()
    _register_chinese_citations()
    # after MyST-NB's own builder-inited handler, which sets the cache and output folders
    app.connect("builder-inited", capture_figures_in_kernels, priority=900)
    app.connect("env-get-outdated", reread_pages_executed_again)
    app.connect("env-merge-info", merge_executions)
    app.connect("env-purge-doc", purge_execution)
    app.connect("doctree-read", note_execution)
    app.connect("build-finished", strip_figure_captures)
    app.add_transform(TranslateAltTexts)
    app.add_transform(ChineseFigures)
    app.connect("config-inited", config_inited, priority=900)
    # after sphinx-book-theme's own handler, which adds the header buttons
    app.connect("html-page-context", page_context, priority=900)
    app.connect("html-page-context", label_context, priority=100)
    app.connect("env-updated", dedupe_citation_refs, priority=400)
    app.add_post_transform(TranslatePrompts)
    app.add_post_transform(KeepMathWithPunctuation)
    app.add_post_transform(MarkChineseEmphasis)
    app.add_transform(TranslateRawBlocks)
    app.add_transform(TranslateTocCaptions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
