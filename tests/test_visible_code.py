"""What a reader sees of a page's code is what a reader would type.

Every page of the book that is a notebook (a MyST Markdown page with a kernelspec: the
chapters and the FAQ today, any such page tomorrow) is read with MyST-NB's own reader,
so the cells are the ones the build executes. A code cell is **visible** when the site
shows its source, at once or on a click:

* a cell tagged ``remove-cell`` or ``remove-input`` (or ``remove_cell``,
  ``remove_input``), or whose ``mystnb`` options set ``remove_code_source``, is left out
  of the page: MyST-NB drops it (``myst_nb/core/nb_to_tokens.py`` and
  ``core/render.py``), so it is not visible;
* every other cell is visible, ``hide-input`` and ``hide-cell`` included: their source
  is in the page behind a "Show code cell source" toggle, one click away, and the PDF
  prints it in full.

The one slow test below checks this definition against the built site: the visible
cells of each page are exactly the code blocks of its HTML, in order.

A visible cell may not hold

* a ``glue(...)`` call: it publishes a number for the prose and belongs in a removed cell
  after the teaching code;
* a verification ``assert``: an ``assert`` statement, or a call of an ``assert_*``
  function such as ``np.testing.assert_allclose``, in the cell's own flow (at top level,
  in a loop, a ``with`` or an ``if``). A check inside a function the cell defines is part
  of what that function does, and is allowed;
* a line longer than 88 characters, which scrolls sideways on the site and wraps in the
  PDF.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, toc_docnames

MAX_LINE = 88
REMOVING_TAGS = {"remove-cell", "remove_cell", "remove-input", "remove_input"}


def read_notebook(path: Path):
    """The page as MyST-NB reads it, or None if it is not a notebook."""
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text(encoding="utf-8")
    if not is_myst_markdown_notebook(text):
        return None
    return read_myst_markdown_notebook(text, path=path)


def is_visible(cell) -> bool:
    """Whether the site shows the source of this code cell (see the module's docstring)."""
    tags = set(cell.metadata.get("tags", []))
    options = cell.metadata.get("mystnb", {})
    return not (tags & REMOVING_TAGS or options.get("remove_code_source"))


def visible_sources(path: Path) -> list[str]:
    """The sources of the page's visible code cells, in order ([] for a plain page)."""
    nb = read_notebook(path)
    if nb is None:
        return []
    return [c.source for c in nb.cells
            if c.cell_type == "code" and c.source.strip() and is_visible(c)]


def _python(source: str) -> ast.Module | None:
    """The cell parsed as Python (IPython magics and shell lines blanked), or None."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _own_flow(tree: ast.AST):
    """Every node of the cell outside the functions, lambdas and classes it defines."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


@dataclass
class Problems:
    """What a page's visible cells hold that they should not: one entry per line."""

    glue: list[str] = field(default_factory=list)
    asserts: list[str] = field(default_factory=list)
    long_lines: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"glue": len(self.glue), "assert": len(self.asserts),
                "long": len(self.long_lines)}

    def __bool__(self) -> bool:
        return any(self.counts().values())


def problems_in(path: Path) -> Problems:
    """The ``glue(`` calls, verification asserts and long lines of the visible cells."""
    found = Problems()
    for number, source in enumerate(visible_sources(path), start=1):
        lines = source.splitlines()

        def where(lineno: int, number: int = number, lines: list[str] = lines) -> str:
            return f"visible cell {number}, line {lineno}: {lines[lineno - 1].strip()}"

        tree = _python(source)
        if tree is None:  # not Python: fall back to the text
            found.glue += [where(i) for i, line in enumerate(lines, 1)
                           if re.search(r"\bglue\s*\(", line)]
            found.asserts += [where(i) for i, line in enumerate(lines, 1)
                              if re.match(r"\s*assert\b", line)]
        else:
            glue = {node.lineno for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and _called_name(node) == "glue"}
            asserts = {node.lineno for node in _own_flow(tree)
                       if isinstance(node, ast.Assert)
                       or (isinstance(node, ast.Call)
                           and _called_name(node).startswith("assert"))}
            found.glue += [where(i) for i in sorted(glue)]
            found.asserts += [where(i) for i in sorted(asserts)]
        found.long_lines += [f"{where(i)[:60]}... ({len(line)} characters)"
                             for i, line in enumerate(lines, 1) if len(line) > MAX_LINE]
    return found


def notebook_pages() -> list[str]:
    """The docnames of the book's pages that are notebooks, in reading order."""
    return [name for name in toc_docnames()
            if (REPO_ROOT / f"{name}.md").is_file()
            and read_notebook(REPO_ROOT / f"{name}.md") is not None]


def test_every_page_with_code_cells_is_checked() -> None:
    pages = notebook_pages()
    chapters = [f"chapters/0{n}_" for n in range(1, 8)]
    assert all(any(p.startswith(c) for p in pages) for c in chapters), pages
    assert "chapters/faq" in pages
    # a page with code cells that is not a notebook would not execute: none may exist
    for name in toc_docnames():
        path = REPO_ROOT / f"{name}.md"
        if path.is_file() and name not in pages:
            text = re.sub(r"(?ms)^(`{4,}).*?^\1", "", path.read_text(encoding="utf-8"))
            assert "```{code-cell}" not in text, f"{name} has code cells but no kernelspec"


@pytest.mark.parametrize("docname", notebook_pages())
def test_visible_code_cells_hold_no_glue_no_assert_and_no_long_line(docname: str) -> None:
    found = problems_in(REPO_ROOT / f"{docname}.md")
    assert not found, (
        f"{docname}.md: {found.counts()} in visible code cells; move glue(...) and the "
        f"checks into a following cell tagged remove-cell, and keep lines to {MAX_LINE} "
        "characters:\n  " + "\n  ".join(found.glue + found.asserts + found.long_lines))


BROKEN_PAGE = """\
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

# A page that breaks every rule once, and hides the same things correctly

```{code-cell} ipython3
x = 1
glue("x", x, display=False)
assert x == 1
np.testing.assert_allclose(x, 1)
y = "a line that is far too long for the page, so it scrolls sideways on the site, ....."
```

```{code-cell} ipython3
:tags: [hide-input]
for k in range(2):
    assert k < 2
```

```{code-cell} ipython3
def check(a):
    assert a > 0          # a function's own check: allowed
    return a


z = lambda: glue("z", 1)  # a glue call anywhere counts
```

```{code-cell} ipython3
:tags: [remove-cell]
glue("x", x, display=False)
assert x == 1
```

```{code-cell} ipython3
:tags: [remove-input]
glue("y", y)
```

```{code-cell} ipython3
---
mystnb:
  remove_code_source: true
---
assert x == 1
```

````md
```{code-cell} ipython3
glue("inside a literal block: not a cell", 1)
```
````
"""


def test_the_check_counts_each_problem_of_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    assert len(visible_sources(page)) == 3
    found = problems_in(page)
    assert found.counts() == {"glue": 2, "assert": 3, "long": 1}, found
    assert found.glue[0].startswith("visible cell 1, line 2:")
    assert found.asserts[2].startswith("visible cell 2, line 2:")


@pytest.mark.slow
@pytest.mark.parametrize("docname", notebook_pages())
def test_visible_means_what_the_built_page_shows(built_site: Path, docname: str) -> None:
    """The cells counted as visible are exactly the code blocks of the built page."""
    from bs4 import BeautifulSoup

    page = BeautifulSoup((built_site / f"{docname}.html").read_text(encoding="utf-8"),
                         "html.parser")
    shown = [block.get_text().strip() for block in page.select("div.cell_input pre")]
    expected = [source.strip() for source in visible_sources(REPO_ROOT / f"{docname}.md")]
    assert shown == expected, f"{docname}: the site shows other code cells than counted"
