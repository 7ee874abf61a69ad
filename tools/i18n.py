"""The Chinese edition (中文版): gettext catalogs and the zh_CN build, from the book's sources.

    python -m tools.i18n gettext        # extract the English messages, update locales/zh_CN
    python -m tools.i18n html           # build the Chinese edition into _build/html/zh_CN
    python -m tools.i18n check [PAGE]   # every rule a catalog must pass (see problems())
    python -m tools.i18n todo PAGE      # the messages of a page still to translate, as JSON
    python -m tools.i18n fill PAGE F    # merge {msgid: msgstr} from the JSON file F

PAGE is a docname: ``intro``, ``chapters/04_gradients``. The catalogs are
``locales/zh_CN/LC_MESSAGES/<docname>.po``, one per page, unwrapped (one line per
message). The English sources stay the only sources: code cells, their outputs and the
glued numbers come from the same executed notebooks in both editions.

Docstrings that autodoc pulls into the API page are left out of the catalogs: like the
code they document, they stay in English in both editions.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
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
    return bool(message.locations) and not any(
        str(path).endswith(".md") for path, _ in message.locations)


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


def write_catalog(catalog, path: Path) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    for message in catalog:  # babel guesses "python-format" from "%" or braces: not here
        message.flags -= {"python-format", "python-brace-format"}
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False, include_previous=True,
                 ignore_obsolete=True, sort_output=False)
    dates = re.compile(rb'^"(POT-Creation|PO-Revision)-Date: .*$', re.M)
    if path.exists() and dates.sub(b"", path.read_bytes()) == dates.sub(b"", tmp.read_bytes()):
        tmp.unlink()  # only the dates differ: the catalog stays as it is (no churn)
        return
    tmp.replace(path)


def update() -> list[Path]:
    """Bring every catalog up to date with the freshly extracted .pot files.

    Messages kept from before stay translated; a changed English message whose old
    translation is close becomes *fuzzy* (to revise), a new one untranslated; messages
    no longer in the sources are dropped. Autodoc's docstrings are left out."""
    from babel.messages.catalog import Catalog

    written = []
    for pot_path in sorted(POT.rglob("*.pot")):
        docname = pot_path.relative_to(POT).with_suffix("").as_posix()
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
    links = LINK.findall(rest)
    urls = URL.findall(LINK.sub(" ", rest))
    return {"role": sorted(roles), "math": sorted(display + math), "code": sorted(code),
            "link": sorted(links), "url": sorted(urls)}


def prose(text: str) -> str:
    """The text with roles, math, code, links' targets and URLs replaced by a marker
    that counts as Latin text (so that spacing next to them is checked too)."""
    rest = ROLE.sub("\x00", text)
    rest = DISPLAY_MATH.sub("\x00", rest)
    rest = CODE.sub("\x00", rest)
    rest = INLINE_MATH.sub("\x00", rest)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("gettext", help="extract the messages and update the catalogs")
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
        code = extract()
        if not code:
            for path in update():
                print(path.relative_to(ROOT))
        return code
    if a.command == "html":
        return html()
    if a.command == "check":
        found = problems(a.page)
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
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
