"""``make book`` with nothing changed does no work proportional to the site (issue #24, §2).

Fast tests, on small trees in a temporary folder: the wheel's key follows the content of
what the wheel packs (not file names or times), a wheel whose bytes are not the source's
is found, and the Chinese edition's sync into ``_build/html/zh_CN`` writes only the
files that changed and removes the ones Sphinx no longer writes.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tools import bookkey, i18n
from tools import wheel as course_wheel

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ the wheel


@pytest.fixture
def source(tmp_path) -> Path:
    """A copy of what the wheel is built from."""
    for rel in course_wheel.sources(ROOT):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_the_key_covers_the_packages_pyproject_and_readme_and_no_cache():
    names = {rel.as_posix() for rel in course_wheel.sources(ROOT)}
    assert {"pyproject.toml", "README.md", "bplib/__init__.py", "bpgrade/__main__.py",
            "bpgrade/checks/__init__.py"} <= names
    assert any(n.startswith("bpgrade/templates/") for n in names)  # package data
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.split("/")[0] not in ("bplib", "bpgrade")
                and n not in ("pyproject.toml", "README.md")]


def test_the_key_follows_content_not_times_or_caches(source):
    key = course_wheel.source_key(source)
    main = source / "bpgrade" / "__main__.py"
    os.utime(main, ns=(0, 0))  # a checkout or a touch: the same wheel
    (source / "bplib" / "__pycache__").mkdir(exist_ok=True)
    (source / "bplib" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert course_wheel.source_key(source) == key
    original = main.read_bytes()
    main.write_bytes(original.replace(b"return", b"return ", 1))  # one byte more
    assert course_wheel.source_key(source) != key
    main.write_bytes(original)  # reverted: the first wheel again
    assert course_wheel.source_key(source) == key
    (source / "pyproject.toml").write_text(
        (source / "pyproject.toml").read_text().replace('"numpy>=2"', '"numpy>=2.1"'))
    assert course_wheel.source_key(source) != key


def test_the_key_changes_when_a_module_is_renamed(source):
    key = course_wheel.source_key(source)
    (source / "bplib" / "data.py").rename(source / "bplib" / "data2.py")
    assert course_wheel.source_key(source) != key


def test_stale_says_why_until_the_key_beside_the_wheel_is_the_sources(source):
    dist = source / "dist"
    assert "missing" in course_wheel.stale(source, dist)
    wheel = course_wheel.wheel_path(source, dist)
    dist.mkdir()
    wheel.write_bytes(b"not built here")
    assert "missing" in course_wheel.stale(source, dist)  # no key: of unknown source
    key = wheel.with_name(wheel.name + ".source-sha256")
    key.write_text(course_wheel.source_key(source) + "\n")
    assert course_wheel.stale(source, dist) is None
    (source / "bpgrade" / "student.py").write_text("# sabotaged\n")
    assert "another source" in course_wheel.stale(source, dist)


def _zip_of(root: Path, wheel: Path, replace: dict[str, bytes] | None = None,
            skip: str = "") -> Path:
    """A wheel-like zip of the packages at ``root``: the bytes of ``replace`` instead."""
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel in course_wheel.sources(root):
            name = rel.as_posix()
            if rel.parts[0] in course_wheel.PACKAGES and name != skip:
                zf.writestr(name, (replace or {}).get(name, (root / rel).read_bytes()))
        zf.writestr("backprop_course-0.dist-info/METADATA", "Name: backprop-course\n")
    return wheel


def test_differences_finds_a_sabotaged_module_a_missing_one_and_an_extra_one(tmp_path):
    good = _zip_of(ROOT, tmp_path / "good.whl")
    assert course_wheel.differences(good, ROOT) == []
    sabotaged = _zip_of(ROOT, tmp_path / "bad.whl", {
        "bpgrade/student.py": b"import sys\nsys.exit(0)\n"})
    assert course_wheel.differences(sabotaged, ROOT) == [
        "bpgrade/student.py: differs from the source"]
    missing = _zip_of(ROOT, tmp_path / "missing.whl", skip="bplib/data.py")
    assert course_wheel.differences(missing, ROOT) == ["bplib/data.py: not in the wheel"]
    with zipfile.ZipFile(missing, "a") as zf:
        zf.writestr("bplib/gone.py", "x = 1\n")
    assert "bplib/gone.py: not in the source" in course_wheel.differences(missing, ROOT)


@pytest.mark.slow
def test_a_built_wheel_is_the_source_byte_for_byte_and_is_built_once(source):
    dist = source / "dist"
    wheel, built = course_wheel.ensure(source, dist)
    assert built and course_wheel.differences(wheel, source) == []
    first = wheel.stat()
    again, built = course_wheel.ensure(source, dist)
    assert again == wheel and not built
    assert (wheel.stat().st_ino, wheel.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    (source / "bpgrade" / "student.py").write_text(
        (source / "bpgrade" / "student.py").read_text() + "\n# changed\n")
    wheel, built = course_wheel.ensure(source, dist)
    assert built and course_wheel.differences(wheel, source) == []
    assert not list(dist.parent.glob("wheel.*"))  # no work folder left behind


# ------------------------------------------------------- the Chinese edition's sync


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def _read(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in root.rglob("*") if p.is_file()}


def test_sync_copies_everything_once_then_only_what_changed(tmp_path):
    src, dst = tmp_path / "zh_CN" / "html", tmp_path / "html" / "zh_CN"
    _tree(src, {"index.html": "首页", "chapters/a.html": "一", "chapters/b.html": "二",
                "_static/x.css": "body{}", ".buildinfo": "config hash"})
    assert i18n.sync(src, dst, ignore={".buildinfo"}) == (4, 0)
    assert _read(dst) == {k: v for k, v in _read(src).items() if k != ".buildinfo"}

    untouched = {n: (dst / n).stat() for n in ("index.html", "chapters/b.html")}
    assert i18n.sync(src, dst, ignore={".buildinfo"}) == (0, 0)  # nothing changed

    (src / "chapters" / "a.html").write_text("一（改）", encoding="utf-8")  # edited
    (src / "chapters" / "b.html").touch()  # rewritten by Sphinx with the same bytes
    os.utime(src / "chapters" / "b.html", ns=(1, 10**18))
    (src / "_static" / "x.css").unlink()  # no longer built
    _tree(src, {"chapters/c.html": "三"})  # new
    assert i18n.sync(src, dst, ignore={".buildinfo"}) == (2, 1)
    assert _read(dst) == {k: v for k, v in _read(src).items() if k != ".buildinfo"}
    # the unchanged pages were not written again (same inode, same bytes); the touched
    # one got the new time only, so that the next sync compares it by its stat
    for name, before in untouched.items():
        assert (dst / name).stat().st_ino == before.st_ino
    assert (dst / "chapters" / "b.html").stat().st_mtime_ns == 10**18
    assert not (dst / "_static" / "x.css").exists() and (dst / "_static").is_dir()
    assert not [p for p in dst.rglob(".*.part")]


def test_sync_replaces_a_folder_by_a_file_and_removes_an_emptied_folder(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src, {"a/inner.html": "x", "b/keep.html": "y"})
    i18n.sync(src, dst)
    shutil.rmtree(src / "a")
    _tree(src, {"a": "now a file"})
    shutil.rmtree(src / "b")
    assert i18n.sync(src, dst) == (1, 1)
    assert _read(dst) == {"a": "now a file"} and not (dst / "b").exists()


def test_the_chinese_build_writes_outside_the_english_site():
    """MyST-NB writes ``jupyter_execute/`` beside Sphinx's output folder: the Chinese
    build's output folder is ``_build/zh_CN/html``, not inside ``_build/html``."""
    site = ROOT / "_build" / "html"
    assert i18n.ZH_OUT / "html" != site / i18n.LANG
    assert site not in (i18n.ZH_OUT / "html").parents
    assert site not in (i18n.ZH_OUT / "html").parent.parents


# ------------------------------------------------------------- the site as a whole


@pytest.fixture
def course_tree(tmp_path) -> Path:
    """A small course under git: a page, a catalog, an extension, a test, an ignored
    file, and both editions' index pages as if built."""
    import subprocess

    files = {"intro.md": "# Intro\n", "locales/zh_CN/LC_MESSAGES/intro.po": 'msgid ""\n',
             "_ext/ext.py": "x = 1\n", "tests/test_x.py": "def test(): pass\n",
             ".gitignore": "_build/\n*.log\n", "build.log": "noise\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for out in bookkey.OUTPUTS:
        (tmp_path / out).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / out).write_text("<html></html>")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    return tmp_path


def test_the_site_is_fresh_only_after_a_build_of_these_very_sources(course_tree):
    assert not bookkey.fresh(course_tree)  # never built
    bookkey.write(course_tree)
    assert bookkey.fresh(course_tree)
    for edit in ("intro.md", "locales/zh_CN/LC_MESSAGES/intro.po", "_ext/ext.py"):
        before = (course_tree / edit).read_text()
        (course_tree / edit).write_text(before + "more\n")
        assert not bookkey.fresh(course_tree), edit
        (course_tree / edit).write_text(before)  # reverted: the same content again
        assert bookkey.fresh(course_tree), edit
    (course_tree / "intro.md").write_text("# Intra\n")  # the same size, other bytes
    assert not bookkey.fresh(course_tree)
    (course_tree / "intro.md").write_text("# Intro\n")
    (course_tree / "chapters").mkdir()
    (course_tree / "chapters" / "new.md").write_text("# New\n")  # untracked, not ignored
    assert not bookkey.fresh(course_tree)
    (course_tree / "chapters" / "new.md").unlink()
    assert bookkey.fresh(course_tree)


def test_ignored_files_and_times_do_not_make_the_site_stale(course_tree):
    bookkey.write(course_tree)
    (course_tree / "build.log").write_text("other noise\n")
    os.utime(course_tree / "intro.md", (1, 1))
    assert bookkey.fresh(course_tree)


def test_a_missing_edition_or_key_makes_the_site_stale(course_tree):
    bookkey.write(course_tree)
    (course_tree / "_build/html/zh_CN/index.html").unlink()
    assert not bookkey.fresh(course_tree)
    (course_tree / "_build/html/zh_CN/index.html").write_text("<html></html>")
    assert bookkey.fresh(course_tree)
    (course_tree / "_build/.book-sha256").unlink()
    assert not bookkey.fresh(course_tree)
