"""The launch buttons: every Colab, Binder and JupyterHub link of the built site opens a
notebook of the repository, the chapters' notebooks are what their ``.md`` builds, and
Binder's requirements install into a fresh venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest
import yaml
from conftest import REPO_ROOT, require

from tools import build_notebooks, i18n

CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
LAUNCH = CONFIG.get("launch_buttons") or {}
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
ORG_REPO = urlsplit(REPO_URL).path.strip("/")  # "backprop-course/backprop-course"
BRANCH = CONFIG["repository"].get("branch") or "main"
# What each service opens: a Jupyter notebook.
OPENS = {".ipynb"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def launch_links(html: str) -> dict[str, list[str]]:
    """The launch links of one page, by service, each as the repository path it opens."""
    parser = _Links()
    parser.feed(html)
    found: dict[str, list[str]] = {"colab": [], "binder": [], "jupyterhub": []}
    for href in parser.hrefs:
        url = urlsplit(href)
        query = parse_qs(url.query)
        if url.netloc == "colab.research.google.com":
            prefix = f"/github/{ORG_REPO}/blob/{BRANCH}/"
            assert url.path.startswith(prefix), f"Colab link to another repository: {href}"
            found["colab"].append(url.path.removeprefix(prefix))
        elif url.path.endswith("/hub/user-redirect/git-pull"):
            assert query.get("repo") == [REPO_URL], f"JupyterHub link, other repository: {href}"
            ui, _, rest = query["urlpath"][0].partition("/tree/")
            found["jupyterhub"].append(rest.removeprefix(ORG_REPO.split("/")[1] + "/"))
        elif "/v2/gh/" in url.path:
            assert url.path.endswith(f"/v2/gh/{ORG_REPO}/{BRANCH}"), href
            ui, _, rest = query["urlpath"][0].partition("/tree/")
            found["binder"].append(rest)
    return found


def site_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


# ------------------------------------------------------------------ the notebooks and config


def test_committed_chapter_notebooks_and_binder_requirements_are_current() -> None:
    problems = build_notebooks.problems()
    assert not problems, ("stale; run `python -m tools.build_notebooks`:\n"
                          + "\n".join(problems))


def test_every_notebook_page_has_a_notebook_and_the_book_does_not_build_them() -> None:
    sources = build_notebooks.notebook_sources()
    assert {s.stem for s in sources} >= {"01_history", "04_gradients", "07_applications"}
    for source in sources:
        nb = build_notebooks.build_notebook(source)
        assert nb.cells[0].cell_type == "code" and "%pip install" in nb.cells[0].source
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    patterns = CONFIG.get("exclude_patterns") or []
    assert "chapters/*.ipynb" in patterns, "the book would build each chapter twice"


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_each_chapters_chinese_twin_runs_the_same_code_with_every_paragraph_in_chinese(
) -> None:
    """``<page>.zh_CN.ipynb``: the English twin's cells in the same order, the code the
    same (the set-up cell's comment aside), every prose message of its markdown in the
    page's Chinese translation, nothing left in English that the catalog translates."""
    twins = {t: s for t, (s, lang) in build_notebooks.targets().items() if lang == "zh_CN"}
    assert {t.name for t in twins} >= {"02_forward.zh_CN.ipynb", "06_keras.zh_CN.ipynb"}
    for target, source in twins.items():
        docname = source.relative_to(REPO_ROOT).with_suffix("").as_posix()
        english = build_notebooks.build_notebook(source)
        chinese = nbformat.read(target, as_version=4)
        assert [c.cell_type for c in chinese.cells] == [c.cell_type for c in english.cells]
        setup_en, setup_zh = english.cells[0].source, chinese.cells[0].source
        assert setup_zh.split("try:", 1)[1] == setup_en.split("try:", 1)[1]
        assert CJK.search(setup_zh.split("try:", 1)[0]), setup_zh
        for en, zh in zip(english.cells[1:], chinese.cells[1:], strict=True):
            if en.cell_type == "code":
                assert zh.source == en.source, (target.name, en.source[:200])
        translated = i18n.translations(docname)
        missing: list[str] = []
        i18n.translate_chapter(english, docname, missing=missing)
        assert not missing, (target.name, missing[:5])
        prose = [p for c in english.cells if c.cell_type == "markdown"
                 for p in i18n.page_units(c.source) if isinstance(p, i18n.Unit)]
        assert len(prose) > 20, target.name
        text = "\n".join(c.source for c in chinese.cells if c.cell_type == "markdown")
        for unit in prose:  # each paragraph, heading, item and box title, in Chinese
            assert translated[unit.msgid] in text, (target.name, unit.msgid[:120])
            if CJK.search(translated[unit.msgid]) and len(unit.original) > 30:
                assert unit.original not in text, (target.name, unit.original[:120])


def test_page_units_translate_a_boxs_title_and_body_and_keep_its_options_and_code() -> None:
    source = ("Intro line.\n\n````{admonition} Where it goes wrong\n:class: warning\n"
              "A body paragraph.\n\n```python\nx = 1  # not prose\n```\n````\n"
              ":::{note}\nA note.\n:::\n(ch-label)=\n## A heading")
    pieces = i18n.page_units(source)
    assert i18n._text(pieces) == source
    units = [p.msgid for p in pieces if isinstance(p, i18n.Unit)]
    assert units == ["Intro line.", "Where it goes wrong", "A body paragraph.", "A note.",
                     "A heading"]


def test_the_chinese_pages_launch_buttons_open_the_twin_and_leave_the_downloads() -> None:
    sys.path.insert(0, str(REPO_ROOT / "_ext"))
    import course_i18n

    page = "chapters/02_forward"
    colab = f"https://colab.research.google.com/github/o/r/blob/main/{page}.ipynb"
    download = f"../_sources/{page}.ipynb"
    buttons = [{"label": "download-buttons", "buttons": [{"url": download}]},
               {"label": "launch-buttons", "buttons": [{"url": colab}]}]
    course_i18n._launch_twin(buttons, page, REPO_ROOT)
    assert buttons[1]["buttons"][0]["url"] == colab.replace(".ipynb", ".zh_CN.ipynb")
    assert buttons[0]["buttons"][0]["url"] == download
    course_i18n._launch_twin(buttons, "intro", REPO_ROOT)  # no twin: nothing changes
    assert buttons[0]["buttons"][0]["url"] == download


def test_jupyterhub_button_is_off_unless_a_real_hub_is_set() -> None:
    hub = str(LAUNCH.get("jupyterhub_url") or "")
    assert "example." not in hub, f"_config.yml has a placeholder JupyterHub: {hub}"
    assert hub == "" or urlsplit(hub).scheme == "https", hub


# ------------------------------------------------------------------ the built site


@pytest.mark.slow
def test_every_launch_link_opens_a_notebook_of_the_repository(built_site: Path) -> None:
    pages = {p.relative_to(built_site).with_suffix("").as_posix(): p
             for p in site_pages(built_site)}
    bad, seen = [], {"colab": 0, "binder": 0, "jupyterhub": 0}
    for name, page in pages.items():
        for service, paths in launch_links(page.read_text(encoding="utf-8")).items():
            seen[service] += len(paths)
            for rel in paths:
                target = REPO_ROOT / rel
                if target.suffix not in OPENS:
                    bad.append(f"{name}: {service} opens {rel}, which it cannot open")
                elif not target.is_file():
                    bad.append(f"{name}: {service} opens {rel}, not in the repository")
    assert not bad, "\n".join(bad)
    # Every notebook page offers Colab and Binder, on its own notebook; a page of the
    # Chinese edition, on its Chinese twin.
    for source in build_notebooks.notebook_sources():
        docname = source.relative_to(REPO_ROOT).with_suffix("").as_posix()
        for page, want in ((docname, f"{docname}.ipynb"),
                           (f"zh_CN/{docname}", f"{docname}.zh_CN.ipynb")):
            links = launch_links(pages[page].read_text(encoding="utf-8"))
            assert links["colab"] == [want] and links["binder"] == [want], (page, links)
    assert bool(seen["jupyterhub"]) == bool(LAUNCH.get("jupyterhub_url")), seen


# ------------------------------------------------------------------ Binder's environment


def _fresh_venv(tmp_path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    return tmp_path / "venv" / "bin" / "python"


def _pypi_reachable() -> str | None:
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=10).close()
    except OSError as exc:
        return f"pypi.org:443 is unreachable ({exc})"
    return None


@pytest.mark.slow
def test_binder_requirements_resolve_in_a_fresh_venv(tmp_path: Path) -> None:
    require(_pypi_reachable(), "the package index (PyPI)")
    python = _fresh_venv(tmp_path)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
         "-r", str(REPO_ROOT / "binder" / "requirements.txt")],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_binder_environment_installs_and_runs_a_chapter(tmp_path: Path) -> None:
    """What Binder does (requirements, then postBuild), then a chapter's notebook runs."""
    require(_pypi_reachable(), "the package index (PyPI)")
    python = _fresh_venv(tmp_path)
    # --no-compile: pip would byte-compile every module of JAX, SciPy, scikit-learn and
    # Matplotlib (most of this test's time); Python compiles what the chapter imports.
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-compile"]
    proc = subprocess.run(pip + ["-r", str(REPO_ROOT / "binder" / "requirements.txt")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # binder/postBuild itself, in a copy of what it installs (the checkout stays clean).
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "bplib", "bpgrade"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, checkout / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)
    env = dict(os.environ, PATH=f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(REPO_ROOT / "binder" / "postBuild")], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    script = (
        "import nbformat, sys\n"
        "from nbclient import NotebookClient\n"
        "import bplib, bpgrade.checks, keras, jax, sklearn, matplotlib, myst_nb\n"
        "nb = nbformat.read(sys.argv[1], 4)\n"
        "NotebookClient(nb, timeout=300, kernel_name='python3',\n"
        "               resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
    )
    # Through binder/start, as Binder runs a session; the chapter with the most imports
    # (Keras on JAX). ipykernel's own kernelspec "python3" is the venv's interpreter.
    chapter = REPO_ROOT / "chapters" / "06_keras.ipynb"
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run(["bash", str(REPO_ROOT / "binder" / "start"), str(python), "-c",
                           script, str(chapter), str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_launch_links_parser_reads_the_themes_urls() -> None:
    """The parser itself, on the URLs sphinx-book-theme writes (so a miss cannot pass)."""
    html = (
        f'<a href="https://mybinder.org/v2/gh/{ORG_REPO}/{BRANCH}?urlpath=lab/tree/'
        'chapters/x.md">b</a>'
        f'<a href="https://colab.research.google.com/github/{ORG_REPO}/blob/{BRANCH}/'
        'chapters/x.md">c</a>'
        f'<a href="https://hub.example.edu/hub/user-redirect/git-pull?repo={REPO_URL}'
        f'&urlpath=lab/tree/{ORG_REPO.split("/")[1]}/chapters/x.ipynb&branch={BRANCH}">j</a>'
    )
    assert launch_links(html) == {"colab": ["chapters/x.md"], "binder": ["chapters/x.md"],
                                  "jupyterhub": ["chapters/x.ipynb"]}
