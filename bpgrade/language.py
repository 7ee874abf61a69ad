"""The language of an exercise, and of the messages the checks give in it.

Each exercise is an nbgrader assignment in English, ``ex04_backward``, and a sibling
assignment per translation, named with the language's suffix: ``ex04_backward_zh``,
built from the same source through the catalogs of ``locales/zh_CN`` (``make
exercises``), with the English test cells byte for byte. A class gets the English, the
Chinese or both (``chapters/instructor_guide.md``, "Exercises in Chinese").

The checks write their messages in the language of ``BPGRADE_LANG`` (``zh_CN``; unset or
anything else: English). Two things set it, so that no student has to:

* the grader, from the name of the assignment it grades (:func:`of_assignment`), in the
  environment of the kernel it starts (:class:`bpgrade.nbgrader_plugins.SandboxedExecute`,
  the Dask grader through it, ``python -m bpgrade check`` from the notebook);
* in a student's own Jupyter or Colab, the translated notebook's locked ``language``
  cell, right after the install cell.

A grade never depends on it: the test cells, and the checks' verdicts, are the same in
every language; only the words differ. Standard library only (the sandbox launcher and
the student's install import it).
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

ENV = "BPGRADE_LANG"
ENGLISH = "en"
SUFFIXES = {"zh_CN": "_zh"}
"""Each translation's language and the suffix of its assignments' names."""

STUBS = {
    ENGLISH: "# YOUR CODE HERE\nraise NotImplementedError()",
    "zh_CN": "# 在这里写你的代码\nraise NotImplementedError()",
}
"""What stands in an answer cell of a release until the student writes the function:
nbgrader's ``ClearSolutions.code_stub`` of each language (``nbgrader_config.py``)."""


def normalise(value: str | None) -> str:
    """``zh_CN`` for ``zh_CN``, ``zh-CN``, ``zh``, ``zh_CN.UTF-8``; English otherwise."""
    code = (value or "").split(".")[0].replace("-", "_").strip()
    for language in SUFFIXES:
        if code and (code == language or code == language.split("_")[0]):
            return language
    return ENGLISH


def current() -> str:
    """The language of the checks' messages now: ``BPGRADE_LANG``, read on every call (a
    notebook's language cell sets it after the checks are imported)."""
    return normalise(os.environ.get(ENV))


def of_assignment(name: str) -> str:
    """The language of an assignment (or notebook) by its name: ``ex04_backward_zh`` and
    ``ex04_backward_zh.ipynb`` are ``zh_CN``, ``ex04_backward`` is English."""
    stem = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    for language, suffix in SUFFIXES.items():
        if stem.endswith(suffix):
            return language
    return ENGLISH


def base_assignment(name: str) -> str:
    """The English assignment a translation belongs to: ``ex04_backward_zh`` →
    ``ex04_backward``; an English name is its own."""
    language = of_assignment(name)
    return name[:-len(SUFFIXES[language])] if language != ENGLISH else name


def sibling(name: str, language: str) -> str:
    """The assignment of ``name`` in ``language``: ``ex04_backward`` → ``ex04_backward_zh``."""
    base = base_assignment(name)
    return base if language == ENGLISH else base + SUFFIXES[language]


def of_notebook(nb, filename: str = "") -> str:
    """The language of an exercise notebook: its metadata ``bpgrade.language`` (written by
    the build), else its file name (:func:`of_assignment`)."""
    meta = (nb.get("metadata") or {}).get("bpgrade") if hasattr(nb, "get") else None
    if isinstance(meta, dict) and isinstance(meta.get("language"), str):
        return normalise(meta["language"])
    return of_assignment(os.path.basename(filename))


# ------------------------------------------------------------------------ messages

LOCALE = Path(__file__).resolve().parent / "locale"
"""The compiled tables of the course's messages, ``<language>.json`` ``{English: translation}``,
written by ``python -m tools.i18n gettext`` from ``locales/<language>/LC_MESSAGES/bpgrade.po``
and shipped in the wheel: no gettext tooling is needed to read them."""


def N_(message: str) -> str:
    """Mark ``message`` as one to translate (``tools.i18n`` extracts it); returns it as is."""
    return message


class Text(str):
    """A message, or a piece of one, that can be said in another language: the English
    (the string itself) and what it is made of, a template and its fields.

    >>> t = text("the new {name}", name="w")
    >>> str(t), t.template, t.fields
    ('the new w', 'the new {name}', {'name': 'w'})
    """

    template: str
    fields: dict

    def __new__(cls, template: str, **fields):
        self = super().__new__(cls, template.format(**fields) if fields else template)
        self.template, self.fields = template, fields
        return self


def joined(items, separator: str = ", ") -> Text:
    """``separator.join(items)`` that :func:`say` translates item by item (and the
    separator: ``", "`` is ``、`` in Chinese)."""
    items = list(items)
    value = Text(separator.join(str(i) for i in items))
    value.items, value.separator = items, separator
    return value


def text(template: str, **fields) -> Text:
    """``template.format(**fields)`` that :func:`say` can translate as a whole
    (``tools.i18n`` extracts the template)."""
    return Text(template, **fields)


@functools.cache
def table(language: str) -> dict[str, str]:
    """The compiled table of ``language`` (empty for English, or when there is none)."""
    path = LOCALE / f"{language}.json"
    if language == ENGLISH or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def translate(message: str, language: str | None = None) -> str:
    """``message`` in ``language`` (default :func:`current`): its translation, or itself."""
    language = language or current()
    if language == ENGLISH:
        return str(message)
    return table(language).get(str(message), str(message))


def say(value, language: str | None = None):
    """``value`` in ``language``: a :class:`Text` by its template and its fields, a string
    by :func:`translate`; anything else (a number, a shape) as it is."""
    language = language or current()
    if language == ENGLISH or not isinstance(value, str):
        return value
    if isinstance(value, Text) and getattr(value, "items", None) is not None:
        return translate(value.separator, language).join(
            str(say(item, language)) for item in value.items)
    if isinstance(value, Text) and value.fields:
        return translate(value.template, language).format(
            **{k: say(v, language) for k, v in value.fields.items()})
    return translate(value, language)


def render(template: str, fields: dict | None = None, language: str | None = None) -> str:
    """A whole message: ``template`` filled with ``fields``, in ``language`` (default
    :func:`current`), its spacing tidied. The names and numbers in the fields are the same
    in every language; only the words around them change."""
    language = language or current()
    if isinstance(template, Text) and fields is None:
        template, fields = template.template, template.fields
    fields = fields or {}
    if language == ENGLISH:
        return template.format(**fields) if fields else str(template)
    message = say(Text(template, **fields), language) if fields else translate(template, language)
    return tidy(message, language)


_HAN = "\u4e00-\u9fff"
_FULL_OPEN = "（“‘《「"
_FULL_CLOSE = "，。；：！？、）”’》」"


def tidy(message: str, language: str = "zh_CN") -> str:
    """The spacing of CONTRIBUTING.md in a Chinese message put together from pieces: no space
    between two Chinese characters or next to full-width punctuation, one space between a
    Chinese character and Latin text or a number."""
    if language == ENGLISH:
        return message
    m = re.sub(rf"(?<=[{_HAN}]) +(?=[{_HAN}])", "", message)
    m = re.sub(rf" +(?=[{_FULL_OPEN}{_FULL_CLOSE}])|(?<=[{_FULL_OPEN}{_FULL_CLOSE}]) +", "", m)
    m = re.sub(rf"(?<=[{_HAN}])(?=[A-Za-z0-9`'\"(\[{{<=+\-*/])", " ", m)
    return re.sub(rf"(?<=[A-Za-z0-9`'\")\]}}>%])(?=[{_HAN}])", " ", m)


# ------------------------------------------------------------------------ feedback pages


def feedback_language(resources) -> str:
    """The language of a feedback page: its assignment's (``resources["nbgrader"]``, as
    nbgrader gives it to the exporter), English when there is none."""
    info = (resources or {}).get("nbgrader") or {}
    return of_assignment(str(info.get("assignment") or info.get("notebook") or ""))


def feedback_words(message: str, resources, **fields) -> str:
    """The ``words`` filter of the feedback template (``bpgrade/templates/feedback``):
    ``message`` (a ``str.format`` template) filled with ``fields``, in the page's language."""
    return render(message, fields or None, feedback_language(resources))


def feedback_lang(resources) -> str:
    """The feedback page's ``lang`` attribute: ``en``, ``zh-CN``."""
    return feedback_language(resources).replace("_", "-")
