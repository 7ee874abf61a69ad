"""The Chinese edition (中文版): gettext catalogs and the zh_CN build, from the book's sources.

    python -m tools.i18n gettext        # extract the English messages, update locales/zh_CN
    python -m tools.i18n gettext --exercises   # only the exercises' catalogs (no Sphinx)
    python -m tools.i18n html           # build the Chinese edition into _build/html/zh_CN
    python -m tools.i18n check [PAGE]   # every rule a catalog must pass (see problems())
    python -m tools.i18n todo PAGE      # the messages of a page still to translate, as JSON
    python -m tools.i18n fill PAGE F    # merge {msgid: msgstr} from the JSON file F

PAGE is a docname: ``intro``, ``chapters/04_gradients``, or an exercise's source,
``solutions/ex04_backward/ex04_backward`` (its notebook is translated by the same rules:
see the section "the exercises" below). The catalogs are
``locales/zh_CN/LC_MESSAGES/<docname>.po``, one per page, unwrapped (one line per
message). The English sources stay the only sources: code cells, their outputs and the
glued numbers come from the same executed notebooks in both editions.

Docstrings that autodoc pulls into the API page are left out of the catalogs: like the
code they document, they stay in English in both editions.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import io
import json
import os
import re
import shutil
import sys
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
LOCALES = ROOT / "locales"
LANG = "zh_CN"
CATALOGS = LOCALES / LANG / "LC_MESSAGES"
POT = BUILD / "gettext"
GLOSSARY = ROOT / "chapters" / "glossary.md"
ZH_OUT = BUILD / LANG  # the Sphinx output tree; its html/ is copied to _build/html/zh_CN

# Chinese sentences are written in these; CJK covers the Unified Ideographs.
CJK = "\u4e00-\u9fff"
CJK_WORD = re.compile(r"[\u4e00-\u9fffA-Za-z0-9-]*[\u4e00-\u9fff][\u4e00-\u9fffA-Za-z0-9-]*")
FULLWIDTH = "，。；：！？（）、“”‘’《》「」—…"


# ---------------------------------------------------------------- building ----------

def overrides(language: str | None, root: Path = ROOT) -> dict:
    """The Sphinx settings added to those Jupyter Book derives from _config.yml."""
    conf = {
        "external_toc_path": str(root / "_toc.yml"),
        "latex_individualpages": False,
        "nitpicky": True,
        # The English build's executed-notebook cache: nothing runs again.
        "nb_execution_cache_path": str(BUILD / ".jupyter_cache"),
        "locale_dirs": [str(LOCALES)],
        "gettext_compact": False,
        "gettext_uuid": False,
        "gettext_location": True,
        "gettext_additional_targets": ["index", "image", "raw"],
    }
    if language:
        conf.update({
            "language": language,
            "html_title": "反向传播：从前史到微调",
            "html_search_language": "zh",
            # jieba, which splits Chinese text into words for the search index, learns
            # the glossary's terms: 反向传播 is then one word, found as typed.
            "html_search_options": {"dict": str(search_dictionary())},
        })
    return conf


def search_dictionary() -> Path:
    """A jieba user dictionary (``word frequency`` per line) of the glossary's Chinese
    terms, written under _build for the Chinese edition's search index."""
    words = sorted({v for variants in glossary().values() for v in variants
                    if CJK_WORD.fullmatch(v)})
    path = ZH_OUT / "jieba-glossary.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{w} 100000\n" for w in words)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def build(builder: str, outdir: Path, doctrees: Path, language: str | None, *,
          root: Path = ROOT, extra: dict | None = None, strict: bool = True) -> int:
    """One Sphinx build of the book at ``root`` with Jupyter Book's configuration, strict
    as ``jupyter-book build -W -n --keep-going`` unless ``strict`` is false."""
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(
        root, outdir, noconfig=True, path_config=str(root / "_config.yml"),
        confoverrides={**overrides(language, root), **(extra or {})}, doctreedir=doctrees,
        builder=builder, warningiserror=strict, keep_going=True, quiet=not strict,
    )
    if isinstance(result, Exception):
        raise result
    return int(result)


def extract(pot_dir: Path = POT, doctrees: Path = BUILD / ".doctrees-gettext") -> int:
    """The .pot files of every page into _build/gettext, the text of its figures and
    their alt texts included (add_figure_messages)."""
    code = build("gettext", pot_dir, doctrees, None)
    if not code:
        add_figure_messages(pot_dir)
    return code


def _is_docstring_only(message) -> bool:
    # babel splits "bplib/x.py:docstring of bplib.x.f" into ("../../bplib/x.py:docstring",
    # None), ("of", None), ...: a message of a page has a location in a .md file.
    # The grader's own messages (bpgrade.pot) are located in .py and .j2 files, with lines.
    return bool(message.locations) and not any(
        str(path).endswith((".md", ".py", ".j2")) for path, _ in message.locations)


def read_catalog(path: Path):
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f, locale=LANG if path.suffix == ".po" else None)
    for message in catalog:
        _restore_previous_id(message)
    return catalog


PO_STRING = re.compile(r'"((?:\\.|[^"\\])*)"')


def _restore_previous_id(message) -> None:
    """babel writes a fuzzy message's old English (``previous_id``) as ``#| msgid "…"``
    lines but reads them back as translator comments ``| …``, which the next write wraps
    into stray ``# | …`` and ``# word`` lines. Turn them back into ``previous_id`` (a
    fuzzy message) or drop them (a message no longer fuzzy)."""
    from babel.messages.pofile import unescape

    old = [c[1:].strip() for c in message.user_comments if c.startswith("|")]
    if not old:
        return
    message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
    text = " ".join(old)
    if message.fuzzy and text.startswith("msgid ") and not message.previous_id:
        message.previous_id = ["".join(unescape(f'"{s}"')
                                       for s in PO_STRING.findall(text[len("msgid "):]))]


PREVIOUS_ID = re.compile(rb'^#\| msgid ".*(?:\n#\| (?!msg).*)*', re.M)


def _unwrap_previous_ids(po: bytes) -> bytes:
    """babel wraps a fuzzy message's ``#| msgid "…"`` comment at 76 columns even with
    width=0, leaving continuation lines without quotes, which msgfmt rejects as a syntax
    error. Join them back into one ``#| msgid "…"`` line (the wrap broke at spaces)."""
    return PREVIOUS_ID.sub(lambda m: m.group(0).replace(b"\n#| ", b" "), po)


def write_catalog(catalog, path: Path) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    for message in catalog:  # babel guesses "python-format" from "%" or braces: not here
        message.flags -= {"python-format", "python-brace-format"}
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False, include_previous=True,
                 ignore_obsolete=True, sort_output=False)
    tmp.write_bytes(_unwrap_previous_ids(tmp.read_bytes()))
    dates = re.compile(rb'^"(POT-Creation|PO-Revision)-Date: .*$', re.M)
    if path.exists() and dates.sub(b"", path.read_bytes()) == dates.sub(b"", tmp.read_bytes()):
        tmp.unlink()  # only the dates differ: the catalog stays as it is (no churn)
        return
    tmp.replace(path)


def update(pot_dir: Path = POT) -> list[Path]:
    """Bring every catalog up to date with the freshly extracted .pot files (of the
    pages, or of the exercises: ``pot_dir``).

    Messages kept from before stay translated; a changed English message whose old
    translation is close becomes *fuzzy* (to revise), a new one untranslated; messages
    no longer in the sources are dropped. Autodoc's docstrings are left out."""
    from babel.messages.catalog import Catalog

    written = []
    for pot_path in sorted(pot_dir.rglob("*.pot")):
        docname = pot_path.relative_to(pot_dir).with_suffix("").as_posix()
        template = read_catalog(pot_path)
        for message in list(template):
            if message.id and _is_docstring_only(message):
                del template[message.id]
        po_path = CATALOGS / f"{docname}.po"
        if po_path.exists():
            catalog = read_catalog(po_path)
        else:
            catalog = Catalog(locale=LANG, domain=docname, project="backprop-course",
                              copyright_holder="The course authors")
        # a message still fuzzy from the last update keeps its old English (babel's
        # update sets previous_id only for a message it makes fuzzy now)
        before = {m.id: m.previous_id for m in catalog if m.id and m.fuzzy and m.previous_id}
        catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
        for message in catalog:
            if message.id in before and message.fuzzy and not message.previous_id:
                message.previous_id = before[message.id]
        catalog.revision_date = catalog.creation_date = template.creation_date
        write_catalog(catalog, po_path)
        written.append(po_path)
    return written


def html() -> int:
    """The Chinese edition: _build/zh_CN/html, then synced into _build/html/zh_CN.

    Sphinx builds it outside the English site (MyST-NB writes its ``jupyter_execute/``
    beside the output folder, which inside _build/html would put it into the English
    site); :func:`sync` then copies only what changed, so a rebuild with nothing changed
    writes almost nothing."""
    code = build("html", ZH_OUT / "html", ZH_OUT / ".doctrees", LANG)
    if code:
        return code
    site = BUILD / "html" / LANG
    written, removed = sync(ZH_OUT / "html", site, ignore={".buildinfo"})
    print(f"{site.relative_to(ROOT)}: {written} file(s) written, {removed} removed")
    return 0


def sync(source: Path, target: Path, ignore: set[str] = frozenset()) -> tuple[int, int]:
    """Make ``target`` a copy of ``source``, writing only the files that differ, and
    return (files written, paths removed).

    A file whose size and modification time match is taken as unchanged (copies keep
    the time); one whose time differs but whose bytes are the same only gets the time.
    Each written file is copied beside its place and renamed over it, so that a reader
    of ``target`` (a server, a test) never sees half a file. Names in ``ignore`` are
    neither copied nor kept."""
    import filecmp

    written = removed = 0
    target.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, set[str]] = {}
    for folder, dirs, files in os.walk(source):
        here = Path(folder)
        there = target / here.relative_to(source)
        dirs[:] = [d for d in dirs if d not in ignore]
        names = {n for n in files if n not in ignore} | set(dirs)
        wanted[there] = names
        for d in dirs:
            if (there / d).is_file() or (there / d).is_symlink():
                (there / d).unlink()
            (there / d).mkdir(exist_ok=True)
        for name in names - set(dirs):
            src, dst = here / name, there / name
            a = src.stat()
            try:
                b = dst.lstat()
            except FileNotFoundError:
                b = None
            if b is not None and dst.is_file() and not dst.is_symlink():
                if a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns:
                    continue
                if a.st_size == b.st_size and filecmp.cmp(src, dst, shallow=False):
                    os.utime(dst, ns=(a.st_atime_ns, a.st_mtime_ns))
                    continue
            elif b is not None:
                _remove(dst)
            part = there / f".{name}.part"
            shutil.copy2(src, part)
            part.replace(dst)
            written += 1
    for folder, dirs, files in os.walk(target, topdown=True):
        here = Path(folder)
        keep = wanted.get(here, set())
        for name in [*dirs, *files]:
            if name not in keep:
                _remove(here / name)
                removed += 1
        dirs[:] = [d for d in dirs if d in keep]
    return written, removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# ---------------------------------------------------------------- checking ----------

ROLE = re.compile(r"(?<!`)\{([\w:.-]+)\}`([^`]*)`")
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(?:\\.|[^$\\])+?\$")
CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
URL = re.compile(r"https?://[^\s)>\]]+")
# A role whose text may be translated while its target may not: {ref}`title <target>`.
TITLED = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
TRANSLATABLE_TITLE_ROLES = {"ref", "doc", "numref", "term", "download"}
# A str.format field of a message the code fills in (the grader's messages, an exercise's
# f-string): ``{fn}``, ``{x:.3f}``. Copied unchanged, like code.
PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*(?:\[[^{}\]]*\])?(?:![rsa])?(?::[^{}]*)?\}")


def tokens(text: str) -> dict[str, list[str]]:
    """What a translation must carry over unchanged: roles (a titled cross-reference's
    target only), math, inline code, link targets and URLs."""
    roles = []

    def _role(m):
        name, body = m.group(1), m.group(2)
        t = TITLED.match(body)
        if name in TRANSLATABLE_TITLE_ROLES and t:
            body = "<" + t.group(2) + ">"
        roles.append(f"{{{name}}}{body}")
        return " "

    rest = ROLE.sub(_role, text)
    display = DISPLAY_MATH.findall(rest)
    rest = DISPLAY_MATH.sub(" ", rest)
    code = [m.group(2) for m in CODE.finditer(rest)]
    rest = CODE.sub(" ", rest)
    math = INLINE_MATH.findall(rest)
    rest = INLINE_MATH.sub(" ", rest)
    fields = PLACEHOLDER.findall(rest)
    rest = PLACEHOLDER.sub(" ", rest)
    links = LINK.findall(rest)
    urls = URL.findall(LINK.sub(" ", rest))
    return {"role": sorted(roles), "math": sorted(display + math), "code": sorted(code),
            "field": sorted(fields), "link": sorted(links), "url": sorted(urls)}


def prose(text: str) -> str:
    """The text with roles, math, code, links' targets and URLs replaced by a marker
    that counts as Latin text (so that spacing next to them is checked too)."""
    rest = ROLE.sub("\x00", text)
    rest = DISPLAY_MATH.sub("\x00", rest)
    rest = CODE.sub("\x00", rest)
    rest = INLINE_MATH.sub("\x00", rest)
    rest = PLACEHOLDER.sub("\x00", rest)
    rest = LINK.sub("]", rest)
    rest = URL.sub("\x00", rest)
    return rest


# A quotation in Latin letters inside Chinese text (a log line quoted exactly, so that a
# reader can search for it): English text, like code.
LATIN_QUOTE = re.compile(r"“[^“”\u4e00-\u9fff]*”")
# The typography rules of CONTRIBUTING.md, each a pattern on a translation's prose (roles,
# math, code and Latin quotations replaced by \x00, which counts as Latin text).
LATIN = r"[A-Za-z0-9\x00]"
NUMBER = r"(?:[0-9]|\x00)"
SPACING_RULES = [
    (rf"[{CJK}]{LATIN}|{LATIN}[{CJK}]", "no space between Chinese and Latin text"),
    (rf"[{CJK}][,;:!?]|[{CJK}]\.(?!\.)|[{CJK}]\s+[,;:!?。，]|[,;:!?]\s*[{CJK}]",
     "ASCII punctuation (or a space before punctuation) in a Chinese sentence"),
    (rf"\([{CJK}]|[{CJK}]\)", "ASCII parenthesis around Chinese text (use （ ）)"),
    (rf"[{FULLWIDTH}] +(?=\S)|(?<=\S) +[，。；：！？、）」》”]",
     "a space next to full-width punctuation"),
    (rf"{NUMBER}\s+%", "a space before % (write 27%)"),
    (rf"{NUMBER}\s*(?:ms|s|min|h)(?![A-Za-z0-9])",
     "a unit symbol for time in Chinese text (write 秒, 毫秒, 分钟, 小时)"),
    (rf"{NUMBER}\s*[–—~～]\s*{NUMBER}", "a range written with a dash (write 0 到 4)"),
]


def spacing_problems(msgstr: str) -> list[str]:
    """The spacing, punctuation, unit and range rules of CONTRIBUTING.md, on one
    translation."""
    text = prose(msgstr).replace("**", "").replace("*", "")
    text = re.sub(r"\[([^\]]*)\]", r"\1", text)  # link text counts as running text
    text = LATIN_QUOTE.sub("“\x00”", text)
    out = []
    for pattern, what in SPACING_RULES:
        for m in re.finditer(pattern, text):
            seg = text[max(0, m.start() - 8): m.end() + 8].replace("\x00", "‹…›")
            out.append(f"{what}: “{seg}”")
    return out


def glossary_table(path: Path = GLOSSARY) -> list[tuple[str, set[str]]]:
    """``(English cell, {Chinese variants})`` of each row of the glossary's table. The
    variants are the Chinese cell's ``A / B``, and of a term with a parenthesised
    synonym, ``logit（未归一化的得分）``, the whole, the term and the synonym. The
    authority for terms: the Chinese edition's check and tests/test_glossary.py both
    read it through here."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("English", "") or set(cells[0]) <= {"-"}:
            continue
        chinese = {v.strip() for v in cells[1].split("/") if v.strip()}
        for v in list(chinese):
            m = re.match(r"^(.*?)（(.*)）$", v)
            if m:
                chinese |= {m.group(1).strip(), m.group(2).strip()}
        rows.append((cells[0], chinese))
    return rows


def glossary() -> dict[str, set[str]]:
    """``{english term: {Chinese variants}}`` from the glossary's table; a row
    ``backpropagation (BP)`` gives ``backpropagation`` and ``BP``."""
    rows: dict[str, set[str]] = {}
    for cell, chinese in glossary_table():
        english = re.sub(r"\s*\(.*?\)", "", cell)
        rows[english] = chinese
        abbr = re.search(r"\(([A-Z]{2,5})\)", cell)
        if abbr:
            rows[abbr.group(1)] = chinese
    return rows


def plural_forms(term: str) -> list[str]:
    """The term, lower-cased, and its English plurals (-s, -es, -y → -ies)."""
    low = term.lower()
    forms = [low, low + "s", low + "es"]
    if low.endswith("y"):
        forms.append(low[:-1] + "ies")
    return forms


def _keeps_latin(term: str, variants: set[str]) -> bool:
    """Names and abbreviations (ReLU, Adam, SGD, sigmoid) may stay in Latin letters."""
    return (any(c.isupper() for c in term)
            or any(re.search(r"[A-Za-z]", v) for v in variants)
            or term in {"sigmoid", "softmax", "tanh", "logit"})


GLOSSARY_EXCEPTION = re.compile(r"glossary-exception:\s*([^:]+?)\s*:\s*(\S.*)")


def glossary_problems(msgid: str, msgstr: str, rows: dict[str, set[str]],
                      excepted: set[str]) -> list[str]:
    """For each glossary term in the English prose (longest terms first, so that
    "mean squared error" is not also "error"), the translation holds one of its
    Chinese variants, or keeps a name or abbreviation in Latin letters."""
    source = " " + re.sub(r"\s+", " ", prose(msgid).replace("\x00", " ")).lower() + " "
    target = msgstr.lower()
    out = []
    for term in sorted(rows, key=len, reverse=True):
        for form in sorted(plural_forms(term), key=len, reverse=True):
            pat = re.compile(rf"(?<![\w-]){re.escape(form)}(?![\w-])")
            if not pat.search(source):
                continue
            source = pat.sub(" ◆ ", source)
            variants = rows[term]
            ok = any(v.lower() in target for v in variants) or (
                _keeps_latin(term, variants)
                and re.search(rf"(?<![A-Za-z]){re.escape(term.lower())}", target))
            if not ok and term.lower() not in excepted:
                out.append(f"glossary: “{term}” should be “{' / '.join(sorted(variants))}”")
            break
    return out


def _source_lines(path: Path) -> list[str]:
    if path not in _SOURCE_LINES:
        _SOURCE_LINES[path] = (path.read_text(encoding="utf-8").splitlines()
                               if path.is_file() else [])
    return _SOURCE_LINES[path]


_SOURCE_LINES: dict[Path, list[str]] = {}
HEADING = re.compile(r"#{1,6}\s")


def is_heading(message, pot_dir: Path) -> bool:
    """Whether the message is a Markdown heading (``## Check yourself``) of its page: its
    source line, which the .pot names relative to ``pot_dir``, starts with ``#``."""
    for path, line in message.locations:
        if line and str(path).endswith(".md"):
            lines = _source_lines((pot_dir / path).resolve())
            if 0 < line <= len(lines) and HEADING.match(lines[line - 1]):
                return True
    return False


def heading_problems(headings: dict[str, dict[str, list[tuple[str, str]]]],
                     docname: str | None = None) -> list[str]:
    """A heading that repeats across pages ("Check yourself") has one translation: every
    place that departs from the most common one is a problem. ``headings`` maps the
    English heading to ``{translation: [(page, where), ...]}``."""
    out = []
    for english, by_chinese in headings.items():
        if len(by_chinese) < 2:
            continue
        best = max(by_chinese, key=lambda chinese: len(by_chinese[chinese]))
        for chinese, places in by_chinese.items():
            if chinese == best:
                continue
            out += [f"{where}: the heading {english!r} is “{chinese}” here and “{best}” on"
                    f" {len(by_chinese[best])} other page(s): a repeated heading has one"
                    " translation" for page, where in places if docname in (None, page)]
    return out


def problems(docname: str | None = None, *, pot_dir: Path = POT,
             catalog_dir: Path = CATALOGS) -> list[str]:
    """Every rule, as one line per problem, naming the page and line of the source.

    - every message of the extracted .pot is in the catalog, translated, not fuzzy;
    - a translation keeps the message's roles, math, code, link targets and URLs;
    - Chinese and Latin text are separated by one space, Chinese sentences use
      full-width punctuation, no space before %, time units in Chinese, ranges with 到
      (CONTRIBUTING.md);
    - glossary terms are translated as the glossary says, unless the message carries a
      translator comment ``glossary-exception: TERM: reason``;
    - a heading that repeats across pages is translated the same way on every page
      (read from every catalog, also when one page is checked);
    - a figure's text keeps the English text's numbers (figure_problems).
    """
    rows = glossary()
    pots = sorted(pot_dir.rglob("*.pot"))
    if not pots:
        return [f"no .pot files in {pot_dir}: run python -m tools.i18n gettext"]
    out = []
    headings: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for pot_path in pots:
        name = pot_path.relative_to(pot_dir).with_suffix("").as_posix()
        mine = docname in (None, name)
        po_path = catalog_dir / f"{name}.po"
        if not po_path.exists():
            if mine:
                out.append(f"{name}: no catalog {po_path}")
            continue
        catalog = read_catalog(po_path)
        for message in read_catalog(pot_path):
            if not message.id or _is_docstring_only(message):
                continue
            # locations are relative to the .pot's folder: name the page's own source
            # (Sphinx gives table cells no line: "page.md (a table cell)")
            where = ", ".join((f"{name}.md" if str(p).endswith(f"{name}.md") else str(p))
                              + (f":{n}" if n else " (a table cell)")
                              for p, n in message.locations) or name
            have = catalog.get(message.id)
            if have is not None and have.string and is_heading(message, pot_dir):
                headings.setdefault(message.id, {}).setdefault(have.string, []).append(
                    (name, where))
            if not mine:
                continue
            if have is None or not have.string:
                out.append(f"{where}: untranslated: {message.id[:70]!r}")
                continue
            if have.fuzzy:
                out.append(f"{where}: fuzzy (revise, then remove the fuzzy flag):"
                           f" {message.id[:60]!r}")
            for side, test in (("ends", str.endswith), ("starts", str.startswith)):
                if test(message.id, "\n") != test(have.string, "\n"):
                    out.append(f"{where}: the English {side} with a line break and the"
                               " translation does not, or the other way round (msgfmt refuses it)")
            src, dst = tokens(message.id), tokens(have.string)
            for kind in src:
                if src[kind] != dst[kind]:
                    missing = [t for t in src[kind] if t not in dst[kind]]
                    extra = [t for t in dst[kind] if t not in src[kind]]
                    out.append(f"{where}: {kind} not carried over unchanged:"
                               f" missing {missing[:3]}, extra {extra[:3]}")
            if message.id.strip() == have.string.strip():
                continue  # math or code only: copied as it is
            out += [f"{where}: {p}" for p in spacing_problems(have.string)]
            excepted = {m.group(1).strip().lower() for c in have.user_comments
                        for m in [GLOSSARY_EXCEPTION.search(c)] if m}
            out += [f"{where}: {p}"
                    for p in glossary_problems(message.id, have.string, rows, excepted)]
            if FIGURE_TEXT in message.auto_comments:
                out += [f"{where}: {p}" for p in figure_problems(message.id, have.string)]
    return out + heading_problems(headings, docname)


# ---------------------------------------------------------------- figures ----------

# The extracted comment of a figure's messages in the .pot and the catalogs.
FIGURE_TEXT = "figure text"
FIGURE_ALT = "figure alt text"


def course_figures():
    """``_ext/course_figures.py``, the Chinese figures' module the book's build uses
    (the extension folder is not a package)."""
    folder = str(ROOT / "_ext")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import course_figures as module

    return module


def figure_messages(nb) -> list[tuple[int, str, str]]:
    """``(source line, message, comment)`` for the figures of an executed notebook: the
    alt text of each cell that shows an image, then the text of each of its figures
    (titles, axis labels, legends, annotations, tick labels that are words), at the line
    of the cell (``{code-cell}``) in the page's source."""
    figures = course_figures()
    lines = nb["metadata"].get("source_map", [])
    by_cell: dict[int, list[dict]] = {}
    for entry in figures.figure_outputs(nb).values():
        by_cell.setdefault(entry["cell"], []).append(entry)
    out = []
    for index, cell in enumerate(nb["cells"]):
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if not images:
            continue
        line = lines[index] if index < len(lines) else 0
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")
        if alt:
            out.append((line, alt, FIGURE_ALT))
        for entry in sorted(by_cell.get(index, []), key=lambda e: e["output"]):
            if "data" in entry:
                fig = figures.load_figure(entry["data"])
                out += [(line, text, FIGURE_TEXT) for text in figures.figure_texts(fig)]
    return out


def _page_line(message, source: str) -> int | None:
    return next((n for p, n in message.locations if str(p) == source and n), None)


def add_figure_messages(pot_dir: Path = POT, root: Path = ROOT,
                        cache_dir: Path = BUILD / ".jupyter_cache") -> int:
    """Add to each page's .pot the messages of its figures (figure_messages), read from
    the page's execution in the cache that the gettext build has just used, each placed
    among the page's messages at the line of its cell. Returns how many were added."""
    from babel.messages.catalog import Message
    from myst_nb.core.read import is_myst_markdown_notebook

    added = 0
    for pot_path in sorted(pot_dir.rglob("*.pot")):
        docname = pot_path.relative_to(pot_dir).with_suffix("").as_posix()
        page = root / f"{docname}.md"
        if not page.is_file() or not is_myst_markdown_notebook(page.read_text("utf-8")):
            continue
        nb = course_figures().executed_notebook(cache_dir, page)
        found = figure_messages(nb) if nb is not None else []
        if not found:
            continue
        template = read_catalog(pot_path)
        own = [m for m in template if m.id]
        source = next((str(p) for m in own for p, _ in m.locations
                       if str(p).endswith(f"{docname}.md")),
                      os.path.relpath(page, pot_path.parent))
        pending: list[Message] = []
        for line, text, comment in found:
            message = template.get(text) or next((m for m in pending if m.id == text), None)
            if message is None:
                message = Message(text)
                pending.append(message)
                added += 1
            if (source, line) not in message.locations:
                message.locations.append((source, line))
            if comment not in message.auto_comments:
                message.auto_comments.append(comment)
        order = []
        for message in own:
            line = _page_line(message, source)
            while pending and line is not None and _page_line(pending[0], source) < line:
                order.append(pending.pop(0))
            order.append(message)
        order += pending
        for message in own:
            del template[message.id]
        for message in order:
            template[message.id] = message
        write_catalog(template, pot_path)
    return added


NUMBER_IN_TEXT = re.compile(r"\d+(?:\.\d+)?")


def figure_problems(msgid: str, msgstr: str) -> list[str]:
    """A figure's text keeps the numbers of the English (an axis range, a slope, a year):
    the figure shows them, and the English one does."""
    english = sorted(NUMBER_IN_TEXT.findall(prose(msgid)))
    chinese = sorted(NUMBER_IN_TEXT.findall(prose(msgstr)))
    if english != chinese:
        return [f"figure text: the numbers {english} are {chinese} in the translation"]
    return []


def todo(docname: str) -> dict[str, str]:
    """``{msgid: current msgstr}`` of the page's messages not done (untranslated or fuzzy)."""
    catalog = read_catalog(CATALOGS / f"{docname}.po")
    return {m.id: m.string for m in catalog if m.id and (not m.string or m.fuzzy)}


def fill(docname: str, translations: dict[str, str]) -> int:
    """Merge ``{msgid: msgstr}`` into the page's catalog (clearing fuzzy flags)."""
    path = CATALOGS / f"{docname}.po"
    catalog = read_catalog(path)
    done = 0
    for msgid, msgstr in translations.items():
        message = catalog.get(msgid)
        if message is None:
            raise SystemExit(f"{docname}: no message {msgid[:70]!r} in {path}")
        message.string = msgstr
        message.flags.discard("fuzzy")
        message.previous_id = []
        done += 1
    write_catalog(catalog, path)
    return done


# ------------------------------------------------------------ the exercises ----------
#
# The exercise notebooks, solutions/exNN_name/exNN_name.md, are translated through the same
# workflow, catalogs and rules as the pages: one catalog per exercise,
# locales/zh_CN/LC_MESSAGES/solutions/exNN_name/exNN_name.po. Its messages are what a
# student reads: the markdown (each paragraph, heading, list item and table cell), and of
# every code cell but the test cells, the comments, the docstrings and the text of the
# messages a cell prints or raises (print(...), raise X(...), assert ..., "..."). Test cells,
# the code, grade ids and points are not translated: the Chinese notebook's test cells are
# the English ones byte for byte, and its code is the English code (code_problems checks
# both). The regions a student never sees (solutions, hidden tests) are left out.

EXERCISE_POT = BUILD / "gettext-exercises"
NBGRADER_MARKER = re.compile(r"#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\b")
PRAGMA = re.compile(r"#\s*(noqa|type:|ruff:|pragma|fmt:|-\*-)")
MD_FENCE = re.compile(r"^[ \t]*(```|~~~)")
MD_HEADING = re.compile(r"^(#{1,6}[ \t]+)(.*?)([ \t]*)$")
MD_ITEM = re.compile(r"^([ \t]*(?:[-*+]|\d+[.)])[ \t]+)(.*)$")
TABLE_RULE = re.compile(r"^\s*:?-+:?\s*$")


@dataclass
class Unit:
    """One message of an exercise: the English ``msgid`` and how a translation replaces
    ``original`` (the exact source text it stands for) in its cell."""

    msgid: str
    original: str
    line: int  # 0-based, within the cell's source
    kind: str  # markdown, comment, docstring, string, f-string
    render: Callable[[str], str]


def _has_prose(text: str) -> bool:
    """Whether there is something to translate: a word outside math, code and roles."""
    return re.search(r"[A-Za-z]{2,}", prose(text).replace("\x00", " ")) is not None


def _unit(pieces: list, text: str, line: int, kind: str = "markdown",
          render: Callable[[str], str] | None = None, msgid: str | None = None) -> None:
    msgid = " ".join(part.strip() for part in text.split("\n")) if msgid is None else msgid
    if msgid.strip() and _has_prose(msgid):
        pieces.append(Unit(msgid, text, line, kind, render or (lambda s: s)))
    else:
        pieces.append(text)


def _table_row(pieces: list, row: str, line: int) -> None:
    cells = re.split(r"(?<!\\)(\|)", row)
    if all(TABLE_RULE.match(c) or c in ("|", "") or not c.strip() for c in cells):
        pieces.append(row)
        return
    for cell in cells:
        m = re.match(r"^(\s*)(.*?)(\s*)$", cell, re.S)
        if cell == "|" or not m.group(2):
            pieces.append(cell)
            continue
        pieces.append(m.group(1))
        _unit(pieces, m.group(2), line)
        pieces.append(m.group(3))


def markdown_units(source: str) -> list:
    """A markdown cell as pieces: literal text (``str``) and :class:`Unit` messages (a
    heading, a paragraph, a list item, a table cell); math blocks and fenced blocks are
    literal. ``"".join`` of the pieces' text is the source."""
    lines = source.split("\n")
    pieces: list = []

    def starts_block(line: str) -> bool:
        s = line.lstrip()
        return (not s or bool(MD_FENCE.match(line)) or s.startswith(("$$", "|"))
                or bool(MD_HEADING.match(line)) or bool(MD_ITEM.match(line)))

    i = 0
    while i < len(lines):
        line, sep = lines[i], "\n" if i < len(lines) - 1 else ""
        stripped = line.strip()
        if not stripped:
            j = i + 1
        elif MD_FENCE.match(line):
            fence, j = MD_FENCE.match(line).group(1), i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence):
                j += 1
            j += 1
        elif stripped.startswith("$$"):
            j = i + 1
            if not (len(stripped) > 2 and stripped.endswith("$$")):
                while j < len(lines) and not lines[j].rstrip().endswith("$$"):
                    j += 1
                j += 1
        elif stripped.startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                _table_row(pieces, lines[j], j)
                if j < len(lines) - 1:
                    pieces.append("\n")
                j += 1
            i = j
            continue
        elif MD_HEADING.match(line):
            m = MD_HEADING.match(line)
            pieces.append(m.group(1))
            _unit(pieces, m.group(2), i)
            pieces.append(m.group(3) + sep)
            i += 1
            continue
        else:
            m = MD_ITEM.match(line)
            j = i + 1
            while j < len(lines) and not starts_block(lines[j]):
                j += 1
            if m:
                pieces.append(m.group(1))
                _unit(pieces, "\n".join([m.group(2), *lines[i + 1:j]]), i)
            else:
                _unit(pieces, "\n".join(lines[i:j]), i)
            pieces.append("\n" if j < len(lines) else "")
            i = j
            continue
        j = min(j, len(lines))
        pieces.append("\n".join(lines[i:j]) + ("\n" if j < len(lines) else ""))
        i = j
    return pieces


MYST_DIRECTIVE = re.compile(r"^([ \t]*)(`{3,}|:{3,})\{([\w:.-]+)\}([ \t]*)(.*?)([ \t]*)$")
MYST_OPTION = re.compile(r"^[ \t]*:[\w-]+:")
MYST_TARGET = re.compile(r"^\([\w:.-]+\)=$")  # (label)= before a heading: not prose
LITERAL_DIRECTIVES = {"code-block", "code", "code-cell", "eval-rst", "math", "raw",
                      "bibliography", "literalinclude", "glue:figure", "glue:math"}


def page_units(source: str) -> list:
    """A markdown cell of a chapter as pieces, like :func:`markdown_units`, and inside a
    MyST directive (```` ```{admonition} Title ````, ``:::{note}``, ``{dropdown}``) the
    title and the body are messages too, as Sphinx's gettext builder extracts them (the
    option lines and the bodies of code, math and reST directives stay literal).
    ``"".join`` of the pieces' text is the source."""
    lines = source.split("\n")
    pieces: list = []
    start = i = 0

    def flush(end: int) -> None:  # lines[start:end], plain markdown, then its newline
        if end > start:
            text = "\n".join(lines[start:end])
            pieces.extend(p.original if isinstance(p, Unit) and MYST_TARGET.match(p.msgid)
                          else p for p in markdown_units(text))
            if end < len(lines):
                pieces.append("\n")

    while i < len(lines):
        m = MYST_DIRECTIVE.match(lines[i])
        if not m:
            if MD_FENCE.match(lines[i]):  # a plain fenced block: skip to its end
                fence = MD_FENCE.match(lines[i]).group(1)
                i += 1
                while i < len(lines) and not lines[i].lstrip().startswith(fence):
                    i += 1
            i += 1
            continue
        flush(i)
        indent, fence, name, gap, title, tail = m.groups()
        close = re.compile(rf"^[ \t]*{re.escape(fence)}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        pieces.append(f"{indent}{fence}{{{name}}}{gap}")
        if name in LITERAL_DIRECTIVES or not title:
            pieces.append(title)
        else:
            _unit(pieces, title, i)
        pieces.append(tail + ("\n" if i + 1 < len(lines) else ""))
        k = i + 1
        while k < j and MYST_OPTION.match(lines[k]):
            pieces.append(lines[k] + "\n")
            k += 1
        body = "\n".join(lines[k:j])
        if k < j:
            if name in LITERAL_DIRECTIVES:
                pieces.append(body)
            else:
                pieces.extend(page_units(body))
            pieces.append("\n" if j < len(lines) else "")
        if j < len(lines):
            pieces.append(lines[j] + ("\n" if j + 1 < len(lines) else ""))
        i = start = j + 1
    flush(len(lines))
    return pieces


def _text(pieces: list) -> str:
    return "".join(p if isinstance(p, str) else p.original for p in pieces)


def _offsets(source: str) -> list[int]:
    starts, at = [], 0
    for line in source.split("\n"):
        starts.append(at)
        at += len(line) + 1
    return starts


def _literal_parts(token: str) -> tuple[str, str, str]:
    """``(prefix, quote, content)`` of a string literal token."""
    m = re.match(r'^([A-Za-z]*)("""|\'\'\'|"|\')', token)
    prefix, quote = m.group(1), m.group(2)
    return prefix, quote, token[len(prefix) + len(quote):-len(quote)]


def _split_for_width(text: str, width: int) -> list[str]:
    """``text`` cut into pieces about ``width`` columns wide (a Chinese character is two),
    after a full-width punctuation mark, a space or between two Chinese characters; never
    inside inline code, an f-string's ``{…}`` field or a word, nor after a backslash."""
    def cjk(ch: str) -> bool:
        return "\u2e80" <= ch <= "\uffef"

    out, current, used, depth, code = [], "", 0, 0, False
    for i, ch in enumerate(text):
        current += ch
        used += 2 if cjk(ch) else 1
        depth += (ch == "{") - (ch == "}")
        code ^= ch == "`"
        nxt = text[i + 1] if i + 1 < len(text) else ""
        breakable = ch in FULLWIDTH or ch == " " or (cjk(ch) and cjk(nxt))
        if (used >= width and nxt and breakable and depth == 0 and not code
                and nxt not in FULLWIDTH):
            out.append(current)
            current, used = "", 0
    if current:
        out.append(current)
    return out


def _string_render(tokens: list[tokenize.TokenInfo], f: bool) -> Callable[[str], str]:
    first = tokens[0]
    multi_line = tokens[-1].end[0] > first.start[0]
    width = max(len(_literal_parts(t.string)[2]) for t in tokens) + 2
    prefix = "f" if f else ""

    def render(msgstr: str) -> str:
        parts = _split_for_width(msgstr, width) if multi_line else [msgstr]
        return ("\n" + " " * first.start[1]).join(f'{prefix}"{p}"' for p in parts)
    return render


def _docstring_render(token: tokenize.TokenInfo) -> tuple[str, Callable[[str], str]]:
    prefix, quote, content = _literal_parts(token.string)
    lines = content.split("\n")
    own_line_close = len(lines) > 1 and not lines[-1].strip()
    body = lines[:-1] if own_line_close else lines
    indent = " " * token.start[1]
    msgid = "\n".join([body[0]] + [x[len(indent):] if x.startswith(indent) else x.strip()
                                   for x in body[1:]]).strip("\n")

    def render(msgstr: str) -> str:
        text = ("\n").join(msgstr.split("\n")[:1] + [indent + x if x else ""
                                                     for x in msgstr.split("\n")[1:]])
        return f"{prefix}{quote}{text}" + (f"\n{indent}" if own_line_close else "") + quote
    return msgid, render


def message_nodes(tree: ast.AST) -> tuple[list[ast.expr], list[ast.expr]]:
    """``(docstrings, messages)`` of a cell's syntax tree: the docstring of the cell, of
    each function and class, and the text a cell gives ``print``, ``raise X(...)`` or
    ``assert ..., "..."``: the nodes a translation may change."""
    docs, messages = [], []

    def is_text(node) -> bool:
        return isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant) and isinstance(node.value, str))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docs.append(body[0].value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "print":
            messages += [a for a in node.args if is_text(a)]
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            messages += [a for a in node.exc.args if is_text(a)]
        elif isinstance(node, ast.Assert) and node.msg is not None and is_text(node.msg):
            messages.append(node.msg)
    return docs, messages


def code_units(source: str) -> list:
    """A code cell (not a test cell) as pieces: literal text and :class:`Unit` messages
    (comments, docstrings, the text of printed and raised messages), outside the regions
    a student never sees (solutions, hidden tests)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    hidden, inside = set(), False
    for row, line in enumerate(source.split("\n"), start=1):
        marker = NBGRADER_MARKER.search(line)
        if marker:
            inside = marker.group(1) == "BEGIN"
            hidden.add(row)
        elif inside:
            hidden.add(row)
    starts = _offsets(source)

    def at(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    def char_col(node_line: int, byte_col: int) -> int:
        return len(source.split("\n")[node_line - 1].encode()[:byte_col].decode())

    spans: list[tuple[int, int, str, str, int, Callable[[str], str] | None]] = []
    docs, messages = message_nodes(ast.parse(source))
    strings = [t for t in tokens if t.type == tokenize.STRING]
    for kind, nodes in (("docstring", docs), ("string", messages)):
        for node in nodes:
            begin = (node.lineno, char_col(node.lineno, node.col_offset))
            end = (node.end_lineno, char_col(node.end_lineno, node.end_col_offset))
            own = [t for t in strings if t.start >= begin and t.end <= end]
            if not own or own[0].start[0] in hidden:
                continue
            parts = [_literal_parts(t.string) for t in own]
            if any(set(p[0].lower()) & {"b", "r"} for p in parts):
                continue
            if kind == "docstring":
                msgid, render = _docstring_render(own[0])
            else:
                f = any("f" in p[0].lower() for p in parts)
                if f and any("f" not in p[0].lower() and ("{" in p[2] or "}" in p[2])
                             for p in parts):
                    raise ValueError(f"line {begin[0]}: a message joins an f-string and a "
                                     "plain string with braces: write it as one f-string")
                msgid, render = "".join(p[2] for p in parts), _string_render(own, f)
                kind = "f-string" if f else "string"
            spans.append((at(own[0].start), at(own[-1].end), msgid, kind, begin[0] - 1, render))
    comments = [t for t in tokens if t.type == tokenize.COMMENT
                and not NBGRADER_MARKER.match(t.string) and not PRAGMA.match(t.string)
                and t.start[0] not in hidden]
    groups: list[list[tokenize.TokenInfo]] = []
    for t in comments:
        whole_line = not t.line[:t.start[1]].strip()
        prev = groups[-1][-1] if groups else None
        if (prev is not None and whole_line and not prev.line[:prev.start[1]].strip()
                and prev.start[0] == t.start[0] - 1 and prev.start[1] == t.start[1]):
            groups[-1].append(t)
        else:
            groups.append([t])
    for group in groups:
        marker = re.match(r"#+\s*", group[0].string).group(0)
        msgid = " ".join(t.string[len(re.match(r"#+\s*", t.string).group(0)):].strip()
                         for t in group)
        spans.append((at(group[0].start), at(group[-1].end), msgid, "comment",
                      group[0].start[0] - 1, lambda s, marker=marker: marker + s))
    pieces: list = []
    done = 0
    for begin, end, msgid, kind, line, render in sorted(spans):
        if begin < done:
            continue
        pieces.append(source[done:begin])
        _unit(pieces, source[begin:end], line, kind, render, msgid=msgid)
        done = end
    pieces.append(source[done:])
    return [p for p in pieces if not (isinstance(p, str) and not p)]


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def cell_units(cell) -> list:
    """The pieces of one cell (:func:`markdown_units`, :func:`code_units`); a test cell is
    one literal piece: it is never translated."""
    if cell.cell_type == "markdown":
        return markdown_units(cell.source)
    if cell.cell_type == "code" and not _is_test_cell(cell):
        return code_units(cell.source)
    return [cell.source]


def exercise_docnames(root: Path = ROOT) -> list[str]:
    """``solutions/exNN_name/exNN_name`` of every exercise written as text."""
    return sorted(p.relative_to(root).with_suffix("").as_posix()
                  for p in (root / "solutions").glob("ex[0-9][0-9]_*/ex[0-9][0-9]_*.md")
                  if p.stem == p.parent.name)


def exercise_template(docname: str, root: Path = ROOT, pot_dir: Path = EXERCISE_POT):
    """The catalog template (babel) of one exercise: its messages, each located at its
    line of the ``.md`` (a path relative to ``pot_dir``, as Sphinx writes them)."""
    import jupytext
    from babel.messages.catalog import Catalog

    md = root / f"{docname}.md"
    text = md.read_text(encoding="utf-8")
    where = Path(os.path.relpath(md, pot_dir)).as_posix()
    template = Catalog(domain=docname, project="backprop-course",
                       copyright_holder="The course authors")
    template.creation_date = datetime.datetime.fromtimestamp(
        md.stat().st_mtime, datetime.UTC).replace(second=0, microsecond=0)
    at = 0
    for cell in jupytext.reads(text, fmt="md:myst").cells:
        found = text.find(cell.source, at)
        first = text.count("\n", 0, found) + 1 if found >= 0 else 0
        at = found + len(cell.source) if found >= 0 else at
        for piece in cell_units(cell):
            if isinstance(piece, Unit):
                comments = (["f-string: keep each {...} field exactly as it is"]
                            if piece.kind == "f-string" else [])
                old = template.get(piece.msgid)
                if old is not None:
                    old.locations.append((where, first + piece.line))
                else:
                    template.add(piece.msgid, locations=[(where, first + piece.line)],
                                 auto_comments=comments)
    return template


def extract_exercises(root: Path = ROOT, pot_dir: Path = EXERCISE_POT) -> list[Path]:
    """The .pot of every exercise into ``pot_dir`` (``solutions/exNN_name/exNN_name.pot``)."""
    from babel.messages.pofile import write_po

    written = []
    for docname in exercise_docnames(root):
        path = pot_dir / f"{docname}.pot"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, exercise_template(docname, root, pot_dir), width=0,
                     omit_header=False, sort_output=False)
        written.append(path)
    return written


def translations(docname: str, catalog_dir: Path = CATALOGS) -> dict[str, str]:
    """``{msgid: msgstr}`` of an exercise's catalog: translated, not fuzzy (as Sphinx, a
    fuzzy or missing translation leaves the English in place)."""
    path = catalog_dir / f"{docname}.po"
    if not path.is_file():
        return {}
    return {m.id: m.string for m in read_catalog(path)
            if m.id and m.string and not m.fuzzy}


LANGUAGE_CELL = {
    "zh_CN": ("# 本笔记本的检查用中文给出消息（评分时也是中文）。\n"
              "import os\n\n"
              'os.environ["BPGRADE_LANG"] = "zh_CN"'),
}
"""The one cell a translated notebook adds, after the install cell: it sets the language
of the checks' messages in the student's own Jupyter or Colab (the grader sets the same
variable itself, from the assignment's name: bpgrade/language.py)."""


def _translated(pieces: list, done: dict[str, str], missing: list | None) -> str:
    """The text of ``pieces`` with each message replaced by its translation in ``done``
    (one the same as the English keeps the source as written); ``missing`` (a list)
    collects the messages ``done`` has no translation of."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif piece.msgid in done and done[piece.msgid] != piece.msgid:
            out.append(piece.render(done[piece.msgid]))
        else:
            out.append(piece.original)
            if piece.msgid not in done and missing is not None:
                missing.append(piece.msgid)
    return "".join(out)

def translate_notebook(nb, docname: str, language: str = LANG, *,
                       catalog_dir: Path = CATALOGS, missing: list | None = None):
    """The notebook ``nb`` (built from ``<docname>.md``) in ``language``: every message
    replaced by its translation, the language cell added after the install cell, the
    notebook's metadata ``bpgrade.language`` set. Cell ids are left to the caller.
    ``missing`` (a list) collects the messages left in English."""
    import copy

    import nbformat

    done = translations(docname, catalog_dir)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.source = _translated(cell_units(cell), done, missing)
    at = next((i + 1 for i, c in enumerate(nb.cells)
               if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "install"), 0)
    cell = nbformat.v4.new_code_cell(LANGUAGE_CELL[language])
    cell.metadata["nbgrader"] = {"grade": False, "grade_id": "language", "locked": True,
                                 "schema_version": 3, "solution": False}
    nb.cells.insert(at, cell)
    nb.metadata["bpgrade"] = {"language": language}
    return nb


def translate_chapter(nb, docname: str, language: str = LANG, *,
                      catalog_dir: Path = CATALOGS, missing: list | None = None):
    """The chapter notebook ``nb`` (built from ``<docname>.md``) in ``language``: the prose
    of every markdown cell (:func:`page_units`) replaced by the page's translation, the
    one the Chinese edition of the site shows; code cells as they are (both editions run
    the same code). ``missing`` (a list) collects the messages left in English."""
    import copy

    done = translations(docname, catalog_dir)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        cell.source = _translated(page_units(cell.source), done, missing)
    nb.metadata["bpgrade"] = {"language": language}
    return nb


def _code_shape(source: str) -> str:
    """The code of a cell with what a translation may change taken out (comments,
    docstrings, the text of printed and raised messages; of an f-string, its fields
    are kept, in any order), as the dump of its syntax tree."""
    tree = ast.parse(source)
    docs, messages = message_nodes(tree)
    changeable = {id(n) for n in docs + messages}

    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node):
            return ast.Constant("…") if id(node) in changeable else node

        def visit_JoinedStr(self, node):
            if id(node) not in changeable:
                return self.generic_visit(node)
            fields = sorted(ast.dump(v) for v in node.values
                            if isinstance(v, ast.FormattedValue))
            return ast.Constant("… " + " ".join(fields))

    return ast.dump(Blank().visit(tree))


def code_problems(english, translated) -> list[str]:
    """How a translated exercise notebook departs from its English one beyond its text,
    one line each (empty if it does not): its cells are the English ones, in order, plus
    the language cell; each cell's type and metadata are the same; each test cell is the
    English one byte for byte; every other code cell has the same code (comments,
    docstrings and message texts aside)."""
    cells = [c for c in translated.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != "language"]
    out = []
    if len(cells) != len(english.cells):
        return [f"{len(cells)} cells besides the language cell; the English has "
                f"{len(english.cells)}"]
    for i, (en, tr) in enumerate(zip(english.cells, cells, strict=True)):
        gid = en.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        label = f"cell {i}" + (f" ({gid})" if gid else "")
        if en.cell_type != tr.cell_type or en.metadata != tr.metadata:
            out.append(f"{label}: its type or metadata differs")
        elif en.cell_type == "code" and _is_test_cell(en) and en.source != tr.source:
            out.append(f"{label}: a test cell differs from the English one")
        elif en.cell_type == "code":
            try:
                same = _code_shape(en.source) == _code_shape(tr.source)
            except SyntaxError as exc:
                out.append(f"{label}: the translation is not valid Python ({exc.msg}, "
                           f"line {exc.lineno})")
                continue
            if not same:
                out.append(f"{label}: its code differs from the English (only comments, "
                           "docstrings and message texts may)")
    return out


def update_exercises(root: Path = ROOT) -> list[Path]:
    """Extract the exercises' messages and bring their catalogs up to date (as
    :func:`update` does for the pages)."""
    extract_exercises(root)
    return update(EXERCISE_POT)


def exercise_problems(docname: str | None = None, *, root: Path = ROOT,
                      pot_dir: Path = EXERCISE_POT, catalog_dir: Path = CATALOGS) -> list[str]:
    """Every rule of :func:`problems` on the exercises' catalogs (extracted afresh from the
    sources), and :func:`code_problems` of each exercise as its catalog translates it."""
    if docname and not docname.startswith("solutions/"):
        return []
    extract_exercises(root, pot_dir)
    out = problems(docname, pot_dir=pot_dir, catalog_dir=catalog_dir)
    from tools.build_exercises import build_notebook

    for name in exercise_docnames(root):
        if docname in (None, name):
            english = build_notebook(root / f"{name}.md")
            translated = translate_notebook(english, name, catalog_dir=catalog_dir)
            out += [f"{name}.md: {p}" for p in code_problems(english, translated)]
    return out


# ------------------------------------------------------------ the grader's messages ----------
#
# What bpgrade says to a student, in one catalog, locales/zh_CN/LC_MESSAGES/bpgrade.po: the
# message of every diagnosis (bpgrade.checks.diagnoses.CATALOGUE), the names of the book's
# pages it links, every text marked in bpgrade's code (N_("...") and text("...", ...) of
# bpgrade.language), the names the exercises' test cells give the checks ("the new w") and
# the messages of their own checks (expect(condition, "...", ...)), the labels of the
# feedback page ("..." | words in bpgrade/templates),
# and the titles of the sections the diagnoses link that their page's catalog does not
# hold verbatim. All of it is found in the code, never listed by hand. Compiled into
# bpgrade/locale/<language>.json, which the wheel ships (numpy-only students read it with
# json), together with the section titles' translations from the pages' catalogs.

BPGRADE_POT = BUILD / "gettext-bpgrade"
BPGRADE_DOMAIN = "bpgrade"


def _babel_messages(path: Path) -> list[tuple[str, int]]:
    """``(message, line)`` of every ``N_("...")`` and ``text("...", ...)`` in a module."""
    from babel.messages.extract import extract_python

    with path.open("rb") as f:
        return [(m if isinstance(m, str) else m[0], line) for line, _, m, _ in
                extract_python(f, {"N_": None, "text": (1,)}, [], {"encoding": "utf-8"})
                if m]


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    return 0


def _test_cell_labels(root: Path) -> list[tuple[str, str, int]]:
    """``(text, .md path, line)`` of the words test cells give the checks: the names
    (``check_value(w, [0.5], "the new w", "perceptron_update")``) and the messages of
    their own checks (``expect(cond, "w has shape {shape}; expected (2,)", shape=...)``)."""
    import jupytext

    out = []
    for docname in exercise_docnames(root):
        md = root / f"{docname}.md"
        text_ = md.read_text(encoding="utf-8")
        for cell in jupytext.reads(text_, fmt="md:myst").cells:
            if cell.cell_type != "code" or not _is_test_cell(cell):
                continue
            first = text_.count("\n", 0, max(0, text_.find(cell.source))) + 1
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and (node.func.id.startswith("check_") or node.func.id == "expect"):
                    out += [(a.value, md, first + a.lineno - 1) for a in node.args
                            if isinstance(a, ast.Constant) and isinstance(a.value, str)
                            and " " in a.value]
    return out


def section_translation(title: str, url: str, lang: str = LANG,
                        catalog_dir: Path = CATALOGS) -> str | None:
    """The translation of a section's title in its page's catalog (``url`` is relative to
    the book's root), or ``None`` if the catalog does not hold it verbatim."""
    path = catalog_dir / (url.split(".html")[0] + ".po")
    if not path.is_file():
        return None
    message = read_catalog(path).get(title)
    return message.string if message is not None and message.string and not message.fuzzy \
        else None


def bpgrade_template(root: Path = ROOT, pot_dir: Path = BPGRADE_POT):
    """The catalog template of the grader's messages, each located in the code."""
    from babel.messages.catalog import Catalog

    from bpgrade.checks import diagnoses

    template = Catalog(domain=BPGRADE_DOMAIN, project="backprop-course",
                       copyright_holder="The course authors")

    def add(message: str, path: Path, line: int, comment: str = "") -> None:
        where = (Path(os.path.relpath(path, pot_dir)).as_posix(), line)
        old = template.get(message)
        if old is not None:
            old.locations.append(where)
        else:
            template.add(message, locations=[where],
                         auto_comments=[comment] if comment else [])

    catalogue = Path(diagnoses.__file__)
    for entry in diagnoses.CATALOGUE.values():
        add(entry.message, catalogue, _line_of(catalogue, f'("{entry.id}"'),
            f"diagnosis {entry.id}: keep each {{field}} exactly")
        if section_translation(entry.section, entry.url) is None:
            add(entry.section, catalogue, _line_of(catalogue, entry.url.split("#")[-1]),
                f"the title of the section {entry.url}")
    for page in diagnoses._PAGES.values():
        add(page, catalogue, _line_of(catalogue, f'"{page}"'), "a page of the book")
    for path in sorted((root / "bpgrade").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "language import" not in source:  # text() elsewhere is not ours (SQLAlchemy's)
            continue
        for message, line in _babel_messages(path):
            add(message, path, line, "keep each {field} exactly"
                if PLACEHOLDER.search(message) else "")
    for label, md, line in _test_cell_labels(root):
        add(label, md, line, "a name a test cell gives a check")
    for path in sorted((root / "bpgrade" / "templates").rglob("*.j2")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for label in re.findall(r'"([^"]+)" \| words\b', line):
                add(label, path, i, "a label of the feedback page")
    return template


def extract_bpgrade(root: Path = ROOT, pot_dir: Path = BPGRADE_POT) -> Path:
    """``bpgrade.pot`` into ``pot_dir``."""
    from babel.messages.pofile import write_po

    path = pot_dir / f"{BPGRADE_DOMAIN}.pot"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, bpgrade_template(root, pot_dir), width=0, omit_header=False,
                 sort_output=False)
    return path


def compiled_table(lang: str = LANG, catalog_dir: Path = CATALOGS) -> dict[str, str]:
    """``{English: translation}`` the grader reads: the translated (not fuzzy) messages of
    ``bpgrade.po``, and the diagnoses' section titles from the pages' catalogs."""
    from bpgrade.checks import diagnoses

    out = {}
    path = catalog_dir / f"{BPGRADE_DOMAIN}.po"
    if path.is_file():
        out = {m.id: m.string for m in read_catalog(path)
               if m.id and m.string and not m.fuzzy}
    for entry in diagnoses.CATALOGUE.values():
        title = section_translation(entry.section, entry.url, lang, catalog_dir)
        if title:
            out[entry.section] = title
    return dict(sorted(out.items()))


def table_text(table: dict[str, str]) -> str:
    return json.dumps(table, ensure_ascii=False, indent=0, sort_keys=True) + "\n"


def table_path(lang: str = LANG, root: Path = ROOT) -> Path:
    """``bpgrade/locale/<lang>.json``, the compiled table in the package."""
    return root / "bpgrade" / "locale" / f"{lang}.json"


def compile_bpgrade(lang: str = LANG, root: Path = ROOT) -> Path:
    """Write ``bpgrade/locale/<lang>.json`` from the catalogs (only if it changed)."""
    path, text_ = table_path(lang, root), table_text(compiled_table(lang))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text_:
        path.write_text(text_, encoding="utf-8")
    return path


def update_bpgrade(root: Path = ROOT) -> list[Path]:
    """Extract the grader's messages, update ``bpgrade.po``, compile the table."""
    extract_bpgrade(root)
    return update(BPGRADE_POT) + [compile_bpgrade(root=root)]


def bpgrade_problems(docname: str | None = None, *, root: Path = ROOT,
                     pot_dir: Path = BPGRADE_POT, catalog_dir: Path = CATALOGS) -> list[str]:
    """Every rule of :func:`problems` on ``bpgrade.po`` (extracted afresh from the code);
    a translation that drops, adds or renames a ``{field}`` (``str.format`` would fail or
    lose a number: :func:`tokens`' fields); a section title with no translation; a stale
    compiled table."""
    if docname not in (None, BPGRADE_DOMAIN):
        return []
    extract_bpgrade(root, pot_dir)
    out = problems(BPGRADE_DOMAIN, pot_dir=pot_dir, catalog_dir=catalog_dir)
    table = compiled_table(LANG, catalog_dir)
    from bpgrade.checks import diagnoses

    out += [f"{entry.id}: its section “{entry.section}” has no translation"
            for entry in diagnoses.CATALOGUE.values() if entry.section not in table]
    if catalog_dir == CATALOGS and (not table_path(LANG, root).is_file() or
                                    table_path(LANG, root).read_text(encoding="utf-8")
                                    != table_text(table)):
        out.append(f"{table_path(LANG, root).relative_to(root)} is stale: run "
                   "python -m tools.i18n gettext")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("gettext", help="extract the messages and update the catalogs")
    g.add_argument("--exercises", action="store_true",
                   help="only the exercises' catalogs (no Sphinx run)")
    sub.add_parser("html", help="build the Chinese edition")
    c = sub.add_parser("check", help="check the catalogs against the sources")
    c.add_argument("page", nargs="?")
    t = sub.add_parser("todo", help="messages still to translate, as JSON")
    t.add_argument("page")
    f = sub.add_parser("fill", help="merge translations from a JSON file")
    f.add_argument("page")
    f.add_argument("file")
    a = p.parse_args(argv)
    if a.command == "gettext":
        code = 0 if a.exercises else extract()
        if not code:
            for path in ([] if a.exercises else update() + update_bpgrade()) + \
                    update_exercises():
                print(path.relative_to(ROOT))
        return code
    if a.command == "html":
        return html()
    if a.command == "check":
        exercise = (a.page or "").startswith("solutions/")
        found = ([] if exercise or a.page == BPGRADE_DOMAIN else problems(a.page)) + \
            exercise_problems(a.page) + bpgrade_problems(a.page)
        for line in found:
            print(line)
        print(f"{len(found)} problem(s)", file=sys.stderr)
        return 1 if found else 0
    if a.command == "todo":
        json.dump(todo(a.page), sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    if a.command == "fill":
        data = json.loads(Path(a.file).read_text(encoding="utf-8"))
        print(f"{fill(a.page, data)} message(s) written")
        if a.page == BPGRADE_DOMAIN:
            print(compile_bpgrade().relative_to(ROOT))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
