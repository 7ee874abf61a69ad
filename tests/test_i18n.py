"""The Chinese edition's catalogs (locales/zh_CN): complete, up to date with the English
sources, and following the rules of CONTRIBUTING.md (markup carried over, spacing and
punctuation, the glossary's terms)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require, toc_docnames

from tools import i18n


@pytest.fixture(scope="module")
def fresh_pot(tmp_path_factory) -> Path:
    """The messages of the sources as they are now (not the .pot of the last `make`), the
    figures' text and alt texts included, as `python -m tools.i18n gettext` extracts them."""
    out = tmp_path_factory.mktemp("gettext")
    assert i18n.extract(out / "pot", out / "doctrees") == 0
    return out / "pot"


def test_every_page_of_the_book_has_a_catalog(fresh_pot: Path) -> None:
    pots = {p.relative_to(fresh_pot).with_suffix("").as_posix() for p in fresh_pot.rglob("*.pot")}
    assert set(toc_docnames()) <= pots
    missing = [d for d in toc_docnames() if not (i18n.CATALOGS / f"{d}.po").is_file()]
    assert not missing, f"pages without a catalog: {missing}"


def test_every_catalog_is_complete_up_to_date_and_follows_the_rules(fresh_pot: Path) -> None:
    found = i18n.problems(pot_dir=fresh_pot)
    assert not found, (
        f"{len(found)} problem(s) in the Chinese catalogs (see CONTRIBUTING.md; "
        "`python -m tools.i18n gettext`, then `todo`/`fill`):\n" + "\n".join(found[:40]))


def test_msgfmt_counts_every_message_translated_and_none_fuzzy() -> None:
    msgfmt = shutil.which("msgfmt")
    require(None if msgfmt else "msgfmt is missing: apt-get install gettext", "GNU gettext")
    for po in sorted(i18n.CATALOGS.rglob("*.po")):
        run = subprocess.run([msgfmt, "--check-format", "--statistics", "-o", "/dev/null", str(po)],
                             capture_output=True, text=True)
        assert run.returncode == 0, f"{po}: {run.stderr}"
        assert re.fullmatch(r"\d+ translated messages?\.\n", run.stderr), f"{po}: {run.stderr}"


@pytest.mark.slow  # a Sphinx gettext build of a copy of the book
def test_a_new_english_paragraph_is_reported_with_its_page_and_line(tmp_path: Path) -> None:
    """A catalog out of date with its page: the check names the page and the line."""
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "_toc.yml", "references.bib", "intro.md"):
        shutil.copy2(REPO_ROOT / name, book / name)
    for name in ("chapters", "_static", "_ext"):
        shutil.copytree(REPO_ROOT / name, book / name,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    faq = book / "chapters" / "faq.md"
    lines = faq.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("## ")) + 1
    lines[at:at] = ["", "A paragraph nobody has translated yet.", ""]
    faq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = i18n.build("gettext", tmp_path / "pot", tmp_path / "doctrees", None, root=book,
                      extra={"nb_execution_mode": "off"}, strict=False)
    assert code == 0
    found = i18n.problems("chapters/faq", pot_dir=tmp_path / "pot")
    assert found == [f"chapters/faq.md:{at + 2}: untranslated: "
                     "'A paragraph nobody has translated yet.'"], found


# ------------------------------------------------------------- the rules, one by one

MSGID = ("With $x = 1.5$ the loss is {glue:text}`ch04_graph_E:.4f` and the backward pass "
         "of a batch calls `np.mean` {cite:p}`rumelhart1986`; see {doc}`Chapter 3 <03_error>`.")
GOOD = ("取 $x = 1.5$，损失为 {glue:text}`ch04_graph_E:.4f`；一个批量的反向传播调用 `np.mean` "
        "{cite:p}`rumelhart1986`；参见 {doc}`第 3 章 <03_error>`。")


def test_a_correct_translation_passes_every_rule() -> None:
    assert i18n.tokens(MSGID) == i18n.tokens(GOOD)
    assert i18n.spacing_problems(GOOD) == []
    assert i18n.glossary_problems(MSGID, GOOD, i18n.glossary(), set()) == []


@pytest.mark.parametrize("broken, kind", [
    (GOOD.replace(" {glue:text}`ch04_graph_E:.4f`", " 0.1234"), "role"),
    (GOOD.replace("ch04_graph_E:.4f", "ch04_graph_E:.2f"), "role"),
    (GOOD.replace("$x = 1.5$", "x = 1.5"), "math"),
    (GOOD.replace("`np.mean`", "np.mean"), "code"),
    (GOOD.replace("<03_error>", "<04_gradients>"), "role"),
])
def test_a_glued_number_math_code_or_target_not_carried_over_is_found(broken, kind) -> None:
    assert i18n.tokens(MSGID)[kind] != i18n.tokens(broken)[kind]


@pytest.mark.parametrize("text, what", [
    ("用NumPy计算", "no space between Chinese and Latin"),
    ("共3层", "no space between Chinese and Latin"),
    ("损失为{glue:text}`k:.4f`。", "no space between Chinese and Latin"),
    ("梯度,然后", "ASCII punctuation"),
    ("梯度.", "ASCII punctuation"),
    ("见(第 3 章)", "ASCII parenthesis"),
    ("梯度， 然后", "a space next to full-width punctuation"),
])
def test_spacing_and_punctuation_faults_are_found(text: str, what: str) -> None:
    found = i18n.spacing_problems(text)
    assert any(what in f for f in found), found


def test_a_glossary_term_translated_another_way_is_found_unless_excepted() -> None:
    rows = i18n.glossary()
    other = GOOD.replace("反向传播", "反向传递")
    assert i18n.glossary_problems(MSGID, other, rows, set()) == [
        "glossary: “backward pass” should be “反向传播 / 反向计算”"]
    assert i18n.glossary_problems(MSGID, other, rows, {"backward pass"}) == []
    # the longest term wins: "mean squared error" needs 均方误差, and 误差 alone is not it
    assert i18n.glossary_problems("the mean squared error", "误差", rows, set())
    assert not i18n.glossary_problems("the mean squared error", "均方误差", rows, set())
    # names and abbreviations may stay in Latin letters
    assert not i18n.glossary_problems("a ReLU layer", "一个 ReLU 层", rows, set())


def test_glossary_exceptions_are_few_and_each_gives_its_reason() -> None:
    exceptions = []
    for po in sorted(i18n.CATALOGS.rglob("*.po")):
        for message in i18n.read_catalog(po):
            for comment in message.user_comments:
                if "glossary-exception" in comment:
                    m = i18n.GLOSSARY_EXCEPTION.search(comment)
                    assert m, f"{po.name}: {comment!r} has no reason (TERM: reason)"
                    exceptions.append((po.name, m.group(1), m.group(2)))
    assert len(exceptions) <= 40, exceptions
    terms = {term.strip().lower() for _, term, _ in exceptions}
    # words with a second, everyday sense; a technical term is never excepted
    assert terms <= {"error", "activation", "bias", "precision", "weight", "batch"}, terms


def test_docstrings_stay_out_of_the_catalogs_and_the_api_page_prose_is_in(fresh_pot) -> None:
    api = i18n.read_catalog(i18n.CATALOGS / "chapters" / "api.po")
    ids = {m.id for m in api if m.id}
    assert any("reference library" in i for i in ids)
    # autodoc's sentences are in the extracted messages, and none reaches the catalog
    docstrings = {m.id for m in i18n.read_catalog(fresh_pot / "chapters" / "api.pot")
                  if m.id and i18n._is_docstring_only(m)}
    assert any(i.startswith("Affine layer") for i in docstrings)
    assert not docstrings & ids
    assert all(any(str(p).endswith(".md") for p, _ in m.locations) for m in api if m.id)


# ------------------------------------------------------------- the check, whole

# One message per rule of problems(), each with one fault; its source line names it. The
# kind is a phrase of the problem's text. "ok" messages must pass every rule. A rule that
# problems() stops applying leaves its fault unreported, and this test fails.
FAULTS = [
    # (kind, English, Chinese)
    ("ok", "The backward pass of a batch.", "一个批量的反向传播。"),
    ("untranslated", "A new paragraph.", ""),
    ("fuzzy", "A changed paragraph.", "一段改过的段落。"),
    ("line break", "A block\n", "一个块"),
    ("role not carried", "It is {glue:text}`k:.2f`.", "它是 0.12。"),
    ("math not carried", "With $x = 1$ here.", "这里 x = 1。"),
    ("code not carried", "Call `np.mean` now.", "现在调用 np.mean。"),
    ("link not carried", "See [the page](other.md).", "见[那一页](page.md)。"),
    ("url not carried", "See https://example.org/a now.", "见 https://example.org/b。"),
    ("no space between Chinese and Latin", "Use NumPy.", "用NumPy。"),
    ("ASCII punctuation", "First, then.", "首先,然后。"),
    ("ASCII parenthesis", "See (chapter 3).", "见(第 3 章)。"),
    ("a space next to full-width", "First, and then.", "首先， 然后。"),
    ("a space before %", "It is 27 % slower.", "它慢 27 %。"),
    ("unit symbol for time", "It takes 15 s.", "它需要 15 s。"),
    ("range written with a dash", "Digits 0–4.", "数字 0–4。"),
    ("glossary", "The backward pass.", "反向传递。"),
    ("ok", "Two runs took 0.2 s.", "两次运行用了 0.2 秒，日志写着“a cell timed out (15 s)”。"),
]


def _small_catalogs(tmp_path: Path, faults, headings) -> tuple[Path, Path]:
    """A source page, its .pot and a catalog holding ``faults`` (line i + 1 is the i-th
    message), and one page per entry of ``headings`` with a heading "Check yourself"
    translated as given; plus a page whose catalog is missing."""
    from babel.messages.catalog import Catalog

    src, pot_dir, po_dir = tmp_path / "src", tmp_path / "pot", tmp_path / "po"
    for d in (src, pot_dir, po_dir):
        d.mkdir(parents=True)
    pages = {"faults": [(en, zh, "fuzzy" if kind == "fuzzy" else None)
                        for kind, en, zh in faults]}
    for i, chinese in enumerate(headings):
        pages[f"h{i}"] = [("Check yourself", chinese, None)]
    pages["orphan"] = [("A page nobody has translated.", None, None)]
    for name, messages in pages.items():
        lines = [("## " + en if en == "Check yourself" else en.strip())
                 for en, _, _ in messages]
        (src / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        pot, po = Catalog(locale=None), Catalog(locale="zh_CN")
        for number, (en, zh, flag) in enumerate(messages, start=1):
            where = [(f"../src/{name}.md", number)]
            pot.add(en, locations=where)
            if zh is not None:
                po.add(en, zh, locations=where, flags=[flag] if flag else [])
        i18n.write_catalog(pot, pot_dir / f"{name}.pot")
        if name != "orphan":
            i18n.write_catalog(po, po_dir / f"{name}.po")
    return pot_dir, po_dir


def test_the_check_applies_every_rule_to_a_catalog_with_one_fault_of_each_kind(
        tmp_path: Path) -> None:
    pot_dir, po_dir = _small_catalogs(tmp_path, FAULTS, ["自测", "自测", "自我检测"])
    found = i18n.problems(pot_dir=pot_dir, catalog_dir=po_dir)
    by_line: dict[str, list[str]] = {}
    for line in found:
        where, _, text = line.partition(": ")
        by_line.setdefault(where, []).append(text)
    for number, (kind, en, _) in enumerate(FAULTS, start=1):
        reported = by_line.pop(f"faults.md:{number}", [])
        if kind == "ok":
            assert not reported, (en, reported)
        else:
            assert reported and all(kind in r for r in reported), (kind, en, reported)
    # the repeated heading: the page that departs from the other two is named
    assert [t for t in by_line.pop("h2.md:1")] == [
        "the heading 'Check yourself' is “自我检测” here and “自测” on 2 other page(s): "
        "a repeated heading has one translation"]
    # a page without a catalog
    assert by_line.pop("orphan") == [f"no catalog {po_dir / 'orphan.po'}"]
    assert not by_line, by_line


def test_checking_one_page_still_compares_its_headings_with_every_other_page(
        tmp_path: Path) -> None:
    pot_dir, po_dir = _small_catalogs(tmp_path, FAULTS[:1], ["自测", "自测", "自我检测"])
    assert i18n.problems("h0", pot_dir=pot_dir, catalog_dir=po_dir) == []
    assert len(i18n.problems("h2", pot_dir=pot_dir, catalog_dir=po_dir)) == 1
    # one translation everywhere: nothing to report
    pot_dir, po_dir = _small_catalogs(tmp_path / "same", FAULTS[:1], ["自测", "自测"])
    assert i18n.problems(pot_dir=pot_dir, catalog_dir=po_dir) == [
        f"orphan: no catalog {po_dir / 'orphan.po'}"]


# ------------------------------------------------------------- the workflow's files

OLD_ENGLISH = ("An old paragraph, long enough that its old English is wrapped over several"
               ' comment lines, with $a \\cdot b$, a "quotation" and a back\\slash in it.')


def _body(path: Path) -> list[str]:
    """The catalog's lines after its header (the header has comments of its own)."""
    return path.read_text(encoding="utf-8").split("\n\n", 1)[1].splitlines()


def test_a_fuzzy_messages_old_english_survives_updates_and_fill_removes_it(
        tmp_path: Path, monkeypatch) -> None:
    """babel reads the ``#| msgid`` lines of a fuzzy message back as translator comments:
    rewritten, they turned into stray ``# | …`` and ``# word`` lines that stayed in the
    catalog after the message was translated."""
    from babel.messages.catalog import Catalog

    pot_dir, po_dir = tmp_path / "pot", tmp_path / "po"
    monkeypatch.setattr(i18n, "POT", pot_dir)
    monkeypatch.setattr(i18n, "CATALOGS", po_dir)
    pot, po = Catalog(locale=None), Catalog(locale="zh_CN")
    for catalog in (pot, po):
        catalog.add("Kept.", "保留。" if catalog is po else "", locations=[("../p.md", 1)],
                    user_comments=["glossary-exception: kept: a reason"] if catalog is po else [])
    pot.add("A new paragraph.", locations=[("../p.md", 3)])
    po.add("A new paragraph.", "一段旧译文。", locations=[("../p.md", 3)], flags=["fuzzy"],
           previous_id=[OLD_ENGLISH])
    i18n.write_catalog(pot, pot_dir / "p.pot")
    i18n.write_catalog(po, po_dir / "p.po")
    written = _body(po_dir / "p.po")
    # longer than babel's 76 columns, yet one quoted line: wrapped, msgfmt refuses the file
    assert len(OLD_ENGLISH) > 76
    from babel.messages.pofile import escape
    previous = [line for line in written if line.startswith("#|")]
    assert previous == [f"#| msgid {escape(OLD_ENGLISH)}"]
    if shutil.which("msgfmt"):
        subprocess.run(["msgfmt", "--check-format", "-o", "/dev/null", str(po_dir / "p.po")],
                       check=True, capture_output=True)
    # read and written again (an update with nothing new, twice): the same lines
    for _ in range(2):
        i18n.update()
        assert _body(po_dir / "p.po") == written
        message = i18n.read_catalog(po_dir / "p.po")["A new paragraph."]
        assert message.fuzzy and message.previous_id == [OLD_ENGLISH]
        assert message.user_comments == []
    # translated: no trace of the old English, the translator's comment kept
    assert i18n.fill("p", {"A new paragraph.": "一段新译文。"}) == 1
    comments = [line for line in _body(po_dir / "p.po")
                if line.startswith("#") and not line.startswith("#:")]
    assert comments == ["# glossary-exception: kept: a reason"]


# ------------------------------------------------------------- the figures' text

figures = i18n.course_figures()


def _figure_with_text_everywhere():
    """A figure with text in each place a chapter puts it, drawn without pyplot."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(8, 3))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.bar(["weights", "biases", "W1"], [3, 2, 1], label="worst error")
    left.set_title("Gradient check")
    left.set_ylabel("log10 relative error")
    left.legend()
    right.plot(np.arange(5), np.arange(5) ** 2, label="$x^2$")
    right.plot(np.arange(5), np.arange(5), label="training loss")
    right.set_xticks([0, 2, 4], ["start", "middle", "end"])
    right.yaxis.set_major_formatter(FuncFormatter(lambda v, pos: f"{v:g} steps"))
    right.set_xlabel("$x_1$")
    right.annotate("the minimum", xy=(0, 0), xytext=(1, 10), arrowprops={"arrowstyle": "->"})
    right.text(3, 3, "1e-05")
    right.legend()
    fig.suptitle("Two panels, 2 axes")
    return fig


def test_every_text_of_a_figure_is_found_and_its_translation_replaces_it_everywhere() -> None:
    """Titles, axis labels, legends, annotations, category, fixed and formatted tick
    labels are found; numbers, math and symbols like W1 are not for translation."""
    fig = _figure_with_text_everywhere()
    found = figures.figure_texts(fig)
    expected = {"Gradient check", "log10 relative error", "worst error", "weights", "biases",
                "training loss", "start", "middle", "end", "the minimum",
                "Two panels, 2 axes"}
    steps = {t for t in found if re.fullmatch(r"-?[\d.]+ steps", t)}  # FuncFormatter's
    assert set(found) == expected | steps and len(steps) >= 3, found
    assert len(found) == len(set(found)), found
    assert not set(found) & {"W1", "$x^2$", "$x_1$", "1e-05"}, found
    assert all(figures.is_message(t) for t in found)
    table = {text: f"译{k}" for k, text in enumerate(found)}
    assert figures.translate_figure(fig, lambda t: table.get(t, t))
    fig.canvas.draw()  # the formatters write the tick labels again
    from matplotlib.text import Text

    shown = {t.get_text() for t in fig.findobj(Text) if figures._shown(t)}
    assert not shown & set(found), f"left in English: {shown & set(found)}"
    assert {"W1", "$x^2$", "$x_1$", "1e-05"} <= shown
    assert {table[t] for t in expected} <= shown and {table[t] for t in steps} & shown
    # nothing changes when the catalog has no translation (the English PNG is kept)
    assert not figures.translate_figure(_figure_with_text_everywhere(), lambda t: t)


def test_a_figure_comes_back_from_its_capture_detached_from_pyplot_or_says_why_not() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    fig, ax = plt.subplots()
    ax.set_title("captured")
    bundle = figures._figure_bundle(fig)
    plt.close(fig)
    before = plt.get_fignums()
    back = figures.load_figure(bundle[figures.MIME])
    assert type(back) is Figure and plt.get_fignums() == before
    assert figures.figure_texts(back) == ["captured"]
    # something that cannot be pickled: an error the build reports, not a silent English
    fig2 = Figure()
    fig2.gca().set_title("unpicklable")
    fig2.unpicklable = lambda: None
    assert list(figures._figure_bundle(fig2)) == [figures.ERROR_MIME]
    assert "pickle" in figures._figure_bundle(fig2)[figures.ERROR_MIME]["error"].lower()


NOTEBOOK_CELLS = [
    "import matplotlib.pyplot as plt\n"
    "fig, (a, b) = plt.subplots(1, 2)\n"
    "a.set_title('loss per epoch')\n"
    "b.set_xlabel('epoch')\n"
    "fig.tight_layout(pad=2)\n"
    "plt.show()",
    "print(sorted(k for k in globals() if not k.startswith('_')))",
]


@pytest.mark.slow
def test_a_kernel_of_the_books_profile_displays_each_figure_with_its_pickle_and_no_more(
        tmp_path: Path, monkeypatch) -> None:
    """A real kernel, started as the book's build starts the chapters' kernels (IPYTHONDIR
    pointing at the profile the extension writes): the figure's PNG is the same as
    without the profile, its pickle is beside it and remembers tight_layout(pad=2), and
    the chapter's namespace holds the same names."""
    import nbclient
    import nbformat

    def run(profile: bool):
        if profile:
            monkeypatch.setenv("IPYTHONDIR", str(figures.kernel_profile(tmp_path / "ipython")))
        else:
            monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "plain"))
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbclient.execute(nb, cwd=str(tmp_path), timeout=120)
        return nb

    plain, captured = run(False), run(True)
    plain_data = [o for o in plain.cells[0].outputs if "data" in o][0]["data"]
    data = [o for o in captured.cells[0].outputs if "data" in o][0]["data"]
    assert figures.MIME not in plain_data and figures.MIME in data
    assert data["image/png"] == plain_data["image/png"]
    assert plain.cells[1].outputs[0]["text"] == captured.cells[1].outputs[0]["text"]
    fig = figures.load_figure(data[figures.MIME])
    assert figures.figure_texts(fig) == ["loss per epoch", "epoch"]
    assert getattr(fig, figures.TIGHT) == ((), {"pad": 2})
    entry = next(iter(figures.figure_outputs(captured).values()))
    assert entry["cell"] == 0 and "data" in entry and not figures.lacks_capture(captured)
    assert figures.lacks_capture(plain)


def _catalog_gettext(docname: str):
    catalog = i18n.read_catalog(i18n.CATALOGS / f"{docname}.po")

    def translate(text: str) -> str:
        message = catalog.get(text)
        return message.string if message is not None and message.string else text

    return translate


def _chapter_figures(docname: str) -> list:
    nb = figures.executed_notebook(i18n.BUILD / ".jupyter_cache", REPO_ROOT / f"{docname}.md")
    require(None if nb is not None else "run `make book`", f"the executed {docname}")
    return [figures.load_figure(e["data"]) for e in figures.figure_outputs(nb).values()]


def test_a_chapters_chinese_figure_has_a_glyph_for_every_character() -> None:
    """The timeline of chapter 1 (15 sentences), translated by its catalog: every
    character has a glyph in the font matplotlib resolves for its text (no box). With
    only a Latin font the same check finds the Chinese characters (it can fail)."""
    fig = _chapter_figures("chapters/01_history")[0]
    assert figures.translate_figure(fig, _catalog_gettext("chapters/01_history"))
    texts = " ".join(figures.figure_texts(fig))
    assert len(re.findall(r"[\u4e00-\u9fff]", texts)) > 100, texts[:200]
    assert figures.missing_glyphs(fig) == []
    latin = figures.missing_glyphs(fig, rc={"font.sans-serif": ["DejaVu Sans"]})
    assert len(latin) > 100 and all(re.match(r"'[\u4e00-\u9fff（），：；、《》]'", m)
                                    for m in latin), latin[:5]


def test_figure_messages_sit_at_their_cells_lines_among_the_pages_messages(
        fresh_pot: Path) -> None:
    """Each figure's text and alt text is a message of its page, located at the line of
    its ``{code-cell}``, between the page's messages before and after that line."""
    pages = 0
    for docname in toc_docnames():
        template = i18n.read_catalog(fresh_pot / f"{docname}.pot")
        own = [m for m in template if m.id]
        if not any(i18n.FIGURE_TEXT in m.auto_comments for m in own):
            continue
        pages += 1
        lines = (REPO_ROOT / f"{docname}.md").read_text(encoding="utf-8").splitlines()

        def first_line(message, page=f"{docname}.md"):
            return next((n for p, n in message.locations if str(p).endswith(page) and n),
                        None)

        alts = [m for m in own if i18n.FIGURE_ALT in m.auto_comments]
        assert alts, f"{docname}: no alt text among its figure messages"
        for k, message in enumerate(own):
            if not {i18n.FIGURE_TEXT, i18n.FIGURE_ALT} & set(message.auto_comments):
                continue
            at = [n for p, n in message.locations if str(p).endswith(f"{docname}.md") and n
                  and lines[n - 1].startswith("```{code-cell}")]
            assert at, (docname, message.id, message.locations)
            line = at[0]
            # a message only a figure has sits after the page's text before its cell and
            # before the text after it (Sphinx's own lines are not all in order: a table's
            # cells carry the line of the block that holds the table)
            if any(str(p).endswith(".md") and n != line for p, n in message.locations):
                continue
            before = [first_line(m) for m in own[:k] if first_line(m) is not None]
            after = next((first_line(m) for m in own[k + 1:] if first_line(m) is not None
                          and not {i18n.FIGURE_TEXT, i18n.FIGURE_ALT} & set(m.auto_comments)),
                         None)
            assert not before or before[-1] <= line, (docname, message.id, before[-1], line)
            assert after is None or after > line, (docname, message.id, after, line)
    assert pages >= 7, pages


def test_the_check_reports_a_figure_text_whose_numbers_changed(tmp_path: Path) -> None:
    """problems() applies the figure rule to the messages the .pot marks as figure text
    (and not to prose, whose numbers may be written in words)."""
    from babel.messages.catalog import Catalog

    pot_dir, po_dir = tmp_path / "pot", tmp_path / "po"
    (tmp_path / "p.md").write_text("a\nb\nc\n", encoding="utf-8")
    pot, po = Catalog(locale=None), Catalog(locale="zh_CN")
    rows = [("learning rate too small (0.02)", "学习率太小（0.2）", [i18n.FIGURE_TEXT]),
            ("forward difference (slope 1.00)", "前向差分（斜率 1.00）", [i18n.FIGURE_TEXT]),
            ("Ten epochs, 0.02 each.", "十个轮次，每个 0.02。", [])]
    for line, (en, zh, comments) in enumerate(rows, start=1):
        pot.add(en, locations=[("../p.md", line)], auto_comments=comments)
        po.add(en, zh, locations=[("../p.md", line)])
    i18n.write_catalog(pot, pot_dir / "p.pot")
    i18n.write_catalog(po, po_dir / "p.po")
    assert i18n.problems(pot_dir=pot_dir, catalog_dir=po_dir) == [
        "p.md:1: figure text: the numbers ['0.02'] are ['0.2'] in the translation"]


PAGE_WITH_A_FIGURE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page with a figure

```{code-cell} ipython3
import matplotlib.pyplot as plt
import numpy as np

fig, ax = plt.subplots()
ax.plot(np.random.default_rng().random(3))
ax.set_title("random points")
plt.show()
```
"""


@pytest.mark.slow
def test_an_execution_cached_without_captures_runs_once_more_and_a_new_one_is_read_again(
        tmp_path: Path, monkeypatch) -> None:
    """A one-page book whose cache holds an execution made before the captures existed:
    the build runs the page once more (now with its figure's pickle), the next build runs
    and reads nothing, and after the cache gets another execution of the page (as the
    English build gives the Chinese one) the page is read again and shows it."""
    import nbclient
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from myst_nb.core.read import read_myst_markdown_notebook

    book, cache_dir, out = tmp_path / "book", tmp_path / "cache", tmp_path / "out"
    book.mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(REPO_ROOT / name, book / name)
    for name in ("_static", "_ext"):
        shutil.copytree(REPO_ROOT / name, book / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\n", encoding="utf-8")
    page = book / "intro.md"
    page.write_text(PAGE_WITH_A_FIGURE, encoding="utf-8")

    def execute_into_cache(profile: bool) -> None:
        folder = figures.kernel_profile(tmp_path / "ipython") if profile else tmp_path / "plain"
        monkeypatch.setenv("IPYTHONDIR", str(folder))
        nb = read_myst_markdown_notebook(PAGE_WITH_A_FIGURE, path=page)
        nbclient.execute(nb, cwd=str(book), timeout=120, record_timing=False)
        get_cache(str(cache_dir)).cache_notebook_bundle(
            CacheBundleIn(nb, str(page)), check_validity=False, overwrite=True)

    def build() -> str:
        assert i18n.build("html", out / "html", out / "doctrees", None, root=book, strict=False,
                          extra={"nb_execution_cache_path": str(cache_dir)}) == 0
        html = (out / "html" / "intro.html").read_text(encoding="utf-8")
        return re.search(r'<img[^>]+src="(_images/[^"]+)"', html).group(1)

    def cached():
        found = figures.cached_execution(cache_dir, page)
        assert found is not None
        return found[2], figures.executed_notebook(cache_dir, page)

    execute_into_cache(profile=False)
    assert figures.lacks_capture(cached()[1])
    monkeypatch.delenv("IPYTHONDIR")
    first_src = build()
    digest, nb = cached()
    assert not figures.lacks_capture(nb), "the build did not run the page again"
    assert Path(first_src).stem in figures.figure_outputs(nb)
    doctree = out / "doctrees" / "intro.doctree"
    read_at = doctree.stat().st_mtime_ns
    assert build() == first_src and cached()[0] == digest, "a second build ran the page"
    assert doctree.stat().st_mtime_ns == read_at, "a second build read the page again"
    execute_into_cache(profile=True)  # another execution: other random points
    monkeypatch.delenv("IPYTHONDIR")
    new_digest, nb = cached()
    assert new_digest != digest
    new_src = build()
    assert doctree.stat().st_mtime_ns != read_at, "the page was not read again"
    assert new_src != first_src and Path(new_src).stem in figures.figure_outputs(nb)
