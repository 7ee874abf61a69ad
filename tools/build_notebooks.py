"""Build the ``.ipynb`` twin of every chapter, for the site's Colab and Binder buttons.

The chapters are MyST Markdown notebooks (``chapters/NN_name.md``). Jupyter Book's
launch buttons send Colab and Binder the page's source file, and Colab cannot open a
``.md`` (jupyter-book issue #752). sphinx-book-theme uses ``<page>.ipynb`` instead when
that file exists beside the page's source, so this tool writes, for every page of
``_toc.yml`` whose ``.md`` is a notebook (a jupytext header with a kernelspec),
``<page>.ipynb`` beside it: the same cells (jupytext), no outputs, cell ids
``<stem>-00``, ``<stem>-01`` ..., the same bytes every time, and one first cell that
installs the course's package where it is missing (Colab; Binder has it already) and
stands in for MyST-NB's ``glue`` where MyST-NB is missing. Beside it goes the Chinese
edition's twin, ``<page>.zh_CN.ipynb`` (the prose of the page's Chinese catalog,
``locales/zh_CN/LC_MESSAGES/<page>.po``, the same code), which the Chinese pages' buttons
open (``_ext/course_i18n.py``): after a translator edits a catalog, run this tool again.
It also writes ``binder/requirements.txt``: what the chapters and exercises import, at
the versions of ``requirements.lock``.

The services read the repository, so the ``.ipynb`` files are committed; the book
itself never builds them (``_config.yml`` excludes ``chapters/*.ipynb``). Run from the
repository root::

    python -m tools.build_notebooks            # write the notebooks that changed
    python -m tools.build_notebooks --check    # exit 1, one line per stale notebook
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

from tools.build_exercises import build_notebook as _build_notebook
from tools.build_exercises import notebook_text

ROOT = Path(__file__).resolve().parent.parent
SETUP_SOURCE = """\
# Run this cell first. Where the course's library is missing (on Colab, for example) it
# installs it from the course's repository; on Binder it is already installed.
try:
    import bplib

    bplib.linear_forward  # the course's bplib, not the unrelated package of that name
except (ImportError, AttributeError):
    __import__("sys").modules.pop("bplib", None)  # forget a wrong bplib imported above
    %pip install --quiet "backprop-course @ git+{url}@{branch}"
try:
    import myst_nb  # noqa: F401  (the book's glue)
except ImportError:  # outside the book, glue(name, value) only shows the value
    import sys
    import types

    from IPython.display import display as _display

    def _glue(name, variable, display=True):
        if display:
            _display(variable)

    sys.modules["myst_nb"] = types.ModuleType("myst_nb")
    sys.modules["myst_nb"].glue = _glue
"""
# The set-up cell of the Chinese twins: the same code, its two comment lines in Chinese.
SETUP_COMMENT_ZH = """\
# 请先运行本单元格。缺少本课程的库时（例如在 Colab 上），它从课程的仓库安装；
# 在 Binder 上已经装好。
"""
LANGUAGES = ("zh_CN",)  # the editions with a twin of each chapter notebook

# What the chapters and the exercises import (bplib itself comes from binder/postBuild);
# binder/requirements.txt pins them to the versions of requirements.lock.
BINDER_PACKAGES = ("numpy", "matplotlib", "scikit-learn", "threadpoolctl", "keras", "jax",
                   "jaxlib", "myst-nb", "jupytext", "ipykernel", "nbclient")
BINDER_REQUIREMENTS = "binder/requirements.txt"
BINDER_HEADER = """\
# What Binder installs to run every chapter and exercise (bplib: binder/postBuild).
# Written by `python -m tools.build_notebooks` from requirements.lock: do not edit.
"""


def _config(root: Path) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as docnames (``chapters/04_gradients``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                names.append(str(Path(entry["file"]).with_suffix("")))
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk(toc.get("parts", []) + toc.get("chapters", []))
    return names


def is_notebook(source: Path) -> bool:
    """Whether ``source`` (a ``.md``) is a MyST notebook: a front matter with a kernelspec."""
    text = source.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return False
    end = text.find("\n---", 4)
    header = yaml.safe_load(text[4:end]) if end > 0 else None
    return isinstance(header, dict) and "kernelspec" in header


def notebook_sources(root: Path = ROOT) -> list[Path]:
    """The ``.md`` pages of the book that are notebooks, in reading order."""
    sources = [root / f"{name}.md" for name in toc_pages(root)]
    return [s for s in sources if s.is_file() and is_notebook(s)]


def target_path(source: Path, language: str | None = None) -> Path:
    """``chapters/NN_name.ipynb``, or its twin in ``language``: ``NN_name.zh_CN.ipynb``."""
    return source.with_suffix(f".{language}.ipynb" if language else ".ipynb")


def docname(source: Path, root: Path = ROOT) -> str:
    return source.relative_to(root).with_suffix("").as_posix()


def catalog_dir(language: str, root: Path = ROOT) -> Path:
    return root / "locales" / language / "LC_MESSAGES"


def catalog_path(source: Path, language: str, root: Path = ROOT) -> Path:
    return catalog_dir(language, root) / f"{docname(source, root)}.po"


def targets(root: Path = ROOT) -> dict[Path, tuple[Path, str | None]]:
    """Every notebook this tool writes: ``{target: (source page, language)}``; a twin only
    where the page has a catalog in that language."""
    out: dict[Path, tuple[Path, str | None]] = {}
    for source in notebook_sources(root):
        out[target_path(source)] = (source, None)
        for language in LANGUAGES:
            if catalog_path(source, language, root).is_file():
                out[target_path(source, language)] = (source, language)
    return out


def setup_cell_source(root: Path = ROOT) -> str:
    """The first cell: install ``backprop-course`` from the repository of ``_config.yml``."""
    repository = _config(root).get("repository") or {}
    url = str(repository.get("url", "")).rstrip("/")
    if not url:
        raise ValueError("_config.yml has no repository: url (the notebooks install from it)")
    return SETUP_SOURCE.format(url=url, branch=repository.get("branch") or "main")


def build_notebook(source: Path, root: Path = ROOT,
                   language: str | None = None) -> nbformat.NotebookNode:
    """The notebook that ``source`` describes, deterministically, with the set-up cell first
    (the exercises' builder, which lays out notebooks the same way); in ``language``, the
    page's translation (:func:`tools.i18n.translate_chapter`)."""
    setup = setup_cell_source(root).rstrip("\n")
    if language is None:
        return _build_notebook(source, first_cell=setup)
    from tools import i18n

    english_comment = SETUP_SOURCE.split("try:")[0]
    setup = SETUP_COMMENT_ZH + setup.removeprefix(english_comment)
    nb = _build_notebook(source, first_cell=setup)
    return i18n.translate_chapter(nb, docname(source, root), language,
                                  catalog_dir=catalog_dir(language, root))


def binder_requirements(root: Path = ROOT) -> str:
    """``binder/requirements.txt``: :data:`BINDER_PACKAGES` at their versions in the lock."""
    pins = {}
    for line in (root / "requirements.lock").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith((" ", "#")):
            pins[name.lower()] = version.split(";")[0].strip()
    missing = [name for name in BINDER_PACKAGES if name not in pins]
    if missing:
        raise ValueError(f"requirements.lock pins no {', '.join(missing)}")
    return BINDER_HEADER + "".join(f"{name}=={pins[name]}\n" for name in BINDER_PACKAGES)


def build(root: Path = ROOT) -> list[Path]:
    """Write every chapter's ``.ipynb`` (and Binder's requirements) that is stale."""
    written = []
    target, text = root / BINDER_REQUIREMENTS, binder_requirements(root)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target)
    for target, (source, language) in targets(root).items():
        text = notebook_text(build_notebook(source, root, language))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8", newline="\n")
            written.append(target)
    return written


def problems(root: Path = ROOT) -> list[str]:
    """One line per stale file: a chapter notebook missing, stale or without its ``.md``,
    or Binder's requirements not those of the lock (empty if none)."""
    found = []
    requirements = root / BINDER_REQUIREMENTS
    if not requirements.is_file():
        found.append(f"{BINDER_REQUIREMENTS}: missing, requirements.lock builds it")
    elif requirements.read_text(encoding="utf-8") != binder_requirements(root):
        found.append(f"{BINDER_REQUIREMENTS}: not the versions of requirements.lock")
    wanted = targets(root)
    for target, (source, language) in wanted.items():
        rel = target.relative_to(root).as_posix()
        built = f"{source.name}" + (f" and its {language} catalog" if language else "")
        if not target.is_file():
            found.append(f"{rel}: missing, {built} build it")
        elif target.read_text(encoding="utf-8") != notebook_text(
                build_notebook(source, root, language)):
            found.append(f"{rel}: not what {built} build")
    for extra in sorted((root / "chapters").glob("*.ipynb")):
        if extra not in wanted:
            found.append(f"{extra.relative_to(root).as_posix()}: no notebook page builds it "
                         "(delete it)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_notebooks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed notebook is stale")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        for line in found:
            print(line)
        if found:
            print("run `python -m tools.build_notebooks` and commit the notebooks")
        return 1 if found else 0
    for path in build():
        print(f"wrote {path.relative_to(ROOT).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
