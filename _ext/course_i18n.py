"""The two editions of the book (English, 中文): a Sphinx extension loaded by both builds.

- **Glued numbers survive translation.** Sphinx parses a translated paragraph again, as
  a new document without the notebook's glue data, so MyST-NB's ``{glue:text}`` role
  would find no value (it warns "No key ... found in glue data for this document").
  Here the roles fall back to the glue data MyST-NB wrote for the page when it was
  read (``jupyter_execute/<page>.glue.json``): the same numbers as the English page.
- **A language link** in every page's header goes to the same page in the other
  edition (English at the site's root, Chinese under ``zh_CN/``), with
  ``<link rel="alternate" hreflang>`` in the head.
- **The Chinese edition's own labels** where the theme's catalogs have none: the
  code-cell toggles ("Show code cell source"), the search box's placeholder.
"""
from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

ZH = "zh_CN"

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


# Labels of sphinx-book-theme's header buttons that its Chinese catalog lacks.
BUTTONS_ZH = {"Open issue": "创建议题"}


def _translate_buttons(buttons) -> None:
    for button in buttons or []:
        if isinstance(button, dict):
            if button.get("text") in BUTTONS_ZH:
                button["text"] = BUTTONS_ZH[button["text"]]
            _translate_buttons(button.get("buttons"))


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
        from sphinx.locale import init as init_locale
        from sphinx.util.i18n import docname_to_domain

        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [str(Path(self.env.srcdir, d)) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption and catalog.gettext(caption) != caption:
                toctree["caption"] = toctree["rawcaption"] = catalog.gettext(caption)


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


def config_inited(app: Sphinx, config) -> None:
    options = dict(config.html_theme_options or {})
    end = list(options.get("article_header_end") or ["article-header-buttons.html"])
    if "language-switch.html" not in end:
        end.insert(0, "language-switch.html")
    options["article_header_end"] = end
    if config.language == ZH:
        options["search_bar_text"] = "搜索本书……"
        options["extra_footer"] = "<p>本书代码以 MIT 许可证发布。用 Jupyter Book 离线构建。</p>"
        config.togglebutton_hint = "点击显示"
        config.togglebutton_hint_hide = "点击隐藏"
    config.html_theme_options = options
    templates = Path(__file__).resolve().parent / "templates"
    config.templates_path = [*config.templates_path, str(templates)]


def setup(app: Sphinx) -> dict:
    _patch_glue()
    app.connect("config-inited", config_inited, priority=900)
    # after sphinx-book-theme's own handler, which adds the header buttons
    app.connect("html-page-context", page_context, priority=900)
    app.add_post_transform(TranslatePrompts)
    app.add_transform(TranslateTocCaptions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
