"""The PDF of the book (`make pdf`, which `make test` runs): read back with pdftotext.

Every page of the table of contents, the Chinese terms of the glossary, chapter 4's
corrected worked example with the numbers bplib computes, no raw LaTeX, English
punctuation spaced as English (xeCJK treats ’ and — as Chinese unless told not to),
and the link from the site's intro page.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import REPO_ROOT, SITE_DIR, require, toc_docnames

import bplib
from bplib import functional as F

pytestmark = pytest.mark.slow

PDF = REPO_ROOT / "_build" / "pdf" / "book.pdf"
TEX_DEBS = (
    "texlive-xetex latexmk texlive-latex-extra texlive-fonts-recommended "
    "texlive-lang-chinese texlive-science fonts-freefont-otf fonts-noto-cjk poppler-utils"
)
# LaTeX commands that the book's math uses: in the PDF's text they may appear only in
# code (a Python string such as r"$\partial L$"), never in prose, where math is typeset.
LATEX_COMMAND = re.compile(
    r"\\(partial|frac|tfrac|mathrm|mathbf|top|begin|end|left|right|sum|prod|cdot|"
    r"leftarrow|rightarrow|varepsilon|epsilon|theta|eta|sigma|nabla|sqrt|text|odot|"
    r"operatorname|bmatrix|tag|label)\b"
)


def _problem() -> str | None:
    missing = [tool for tool in ("xelatex", "latexmk", "pdftotext", "pdfinfo", "pdfimages")
               if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found: apt-get install {TEX_DEBS}, then make pdf"
    return None


@pytest.fixture(scope="module")
def pdf() -> Path:
    """``_build/pdf/book.pdf``; the test fails in CI (skips elsewhere) without TeX Live."""
    require(_problem(), "XeLaTeX and poppler-utils (the PDF of the book)")
    if not PDF.is_file():
        pytest.fail(f"{PDF} is missing: run `make pdf` (`make test` does it).", pytrace=False)
    return PDF


@functools.cache
def _pdftotext(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture(scope="module")
def text(pdf: Path) -> str:
    return _pdftotext(pdf)


def squash(s: str) -> str:
    """No whitespace at all: line breaks fall anywhere in the PDF, even inside Chinese terms."""
    return re.sub(r"\s+", "", s)


def first_heading(docname: str) -> str:
    """A page's title: its first ``# `` heading, without Markdown marks."""
    source = (REPO_ROOT / docname).with_suffix(".md").read_text(encoding="utf-8")
    match = re.search(r"^# (.+)$", source, flags=re.M)
    assert match, f"{docname}.md has no '# ' heading"
    return re.sub(r"[`*]", "", match.group(1)).strip()


def glossary_chinese_terms() -> list[str]:
    """The 中文 column of the glossary's table."""
    terms = []
    for line in (REPO_ROOT / "chapters" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and re.search(r"[\u4e00-\u9fff]", cells[1]):
            if cells[1] != "中文":
                terms.append(cells[1])
    return terms


def test_page_count_is_sane(pdf: Path) -> None:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, flags=re.M).group(1))
    # 185 pages when this test was written; a PDF of the title page alone, or one that
    # repeats the book, is not the book.
    assert 100 <= pages <= 400, f"book.pdf has {pages} pages"


def test_every_page_of_the_toc_is_in_the_pdf(text: str) -> None:
    flat = squash(text)
    missing = {}
    for docname in toc_docnames():
        title = squash(first_heading(docname))
        # The table of contents names a chapter once; its heading and running heads again.
        if flat.count(title) < 2:
            missing[docname] = (first_heading(docname), flat.count(title))
    assert not missing, f"titles found fewer than twice (title, count): {missing}"


def test_chinese_glossary_terms(text: str) -> None:
    terms = glossary_chinese_terms()
    assert len(terms) >= 40, terms  # the parse found the table
    flat = squash(text)
    missing = [t for t in terms if squash(t) not in flat]
    assert not missing, f"Chinese terms of the glossary missing from the PDF: {missing}"
    for term in ("反向传播", "梯度下降", "损失函数", "链式法则"):
        assert term in flat


def _as_text(a: np.ndarray) -> str:
    """As chapter 4 glues a small array: [[0.5, 0.5], [0, 0]]."""
    rounded = np.round(np.asarray(a, dtype=float), 10) + 0.0
    return np.array2string(rounded, separator=", ",
                           formatter={"float_kind": lambda v: f"{v:g}"}).replace("\n", "")


def test_chapter_4_corrected_example_numbers(text: str) -> None:
    """The worked example's numbers, computed here with bplib as chapter 4 computes them,
    in the section of the PDF that redoes the example (glued into the prose)."""
    x = np.array([[1.0, 2.0]])
    net = {"W1": np.ones((2, 2)), "b1": np.zeros(2), "W2": np.ones((2, 1)), "b2": np.zeros(1)}
    t = np.array([[1.0]])
    a1, cache1 = F.linear_forward(x, net["W1"], net["b1"])
    h, cache_relu = F.relu_forward(a1)
    y, cache2 = F.linear_forward(h, net["W2"], net["b2"])
    E, dy = F.mse_loss(y, t)
    dh, dW2, db2 = F.linear_backward(dy, cache2)
    _, dW1, db1 = F.linear_backward(F.relu_backward(dh, cache_relu), cache1)
    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    new = {k: bplib.sgd_update(net[k], grads[k], 0.1) for k in net}
    a_new = F.relu_forward(F.linear_forward(x, new["W1"], new["b1"])[0])[0]
    y_new = F.linear_forward(a_new, new["W2"], new["b2"])[0]
    E_new = F.mse_loss(y_new, t)[0]

    flat = squash(text)
    heading = squash("worked example, done correctly")
    start = flat.find(heading, flat.find(heading) + 1)  # the second: the first is the TOC
    assert start > 0, "chapter 4's worked example section is not in the PDF"
    end = flat.find(squash("Gradient checking"), start)
    section = flat[start:end if end > start else None]
    expected = {
        "E": f"{E:.1f}",
        "dE/dW2": f"{dW2[0, 0]:.0f}",
        "dE/dW1": _as_text(dW1),
        "dE/db1": _as_text(db1),
        "new W1": _as_text(new["W1"]),
        "new b1": _as_text(new["b1"]),
        "new W2": _as_text(new["W2"]),
        "new b2": _as_text(new["b2"]),
        "y after one step": f"{y_new[0, 0]:.2f}",
        "E after one step": f"{E_new:.4f}",
    }
    assert expected["dE/dW1"] == "[[5, 5], [10, 10]]"  # the helper formats as the chapter does
    missing = {k: v for k, v in expected.items() if squash(v) not in section}
    assert not missing, f"numbers of the corrected example missing from its section: {missing}"


def test_figures_and_math(pdf: Path, text: str) -> None:
    """Every figure of the site's chapters is an image in the PDF, and the math is typeset
    (unicode-math: ∂ comes out as U+1D715, italic letters as mathematical italics)."""
    site_images = set()
    for page in (SITE_DIR / "chapters").glob("*.html"):
        site_images |= set(re.findall(r'<img[^>]*src="[^"]*_images/([^"]+)"',
                                      page.read_text(encoding="utf-8")))
    assert site_images, "the site's chapters have no figures: is _build/html built?"
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], check=True,
                             capture_output=True, text=True).stdout.splitlines()[2:]
    images = [row for row in listing if row.split()[2] == "image"]  # not their alpha masks
    assert len(images) >= len(site_images), (len(images), sorted(site_images))
    assert text.count("\U0001d715") >= 50, "few partial derivatives typeset"
    assert squash("out = 𝑥𝑊 + 𝑏") in squash(text)  # the intro's display equation


def test_no_raw_latex_in_the_prose(text: str) -> None:
    """Math is typeset: a LaTeX command may appear only in code, on a line with a Python
    string (Sphinx turns the prose's straight quotes into curly ones)."""
    leaked = [line for line in text.splitlines()
              if LATEX_COMMAND.search(line) and not re.search(r"[\"']", line)]
    assert not leaked, f"raw LaTeX in the PDF's text: {leaked[:10]}"
    assert "$$" not in text


def test_english_punctuation_is_not_spaced_as_chinese(text: str) -> None:
    assert "article’s" in text
    assert not re.findall(r"\w’\s+s\b", text), re.findall(r".{20}\w’\s+s\b.{10}", text)[:5]
    # "ingredients — a unit": xeCJK would eat the space after a dash it takes for Chinese.
    assert " — " in text
    glued = re.findall(r"\w —\w", text)
    assert not glued, glued[:10]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def test_the_site_links_the_pdf(pdf: Path) -> None:
    page = SITE_DIR / "intro.html"
    assert page.is_file(), f"{page} is missing: run `make book`"
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    links = [h for h in parser.hrefs if urlsplit(h).path.endswith("book.pdf")]
    assert links, "the intro page has no link to book.pdf"
    for href in links:
        assert not urlsplit(href).scheme, f"{href}: the PDF is served by the site itself"
        target = (page.parent / urlsplit(href).path).resolve()
        assert target.is_file(), f"{href} on the intro page resolves to {target}: missing"
        assert target.read_bytes() == pdf.read_bytes(), f"{target} is not _build/pdf/book.pdf"
