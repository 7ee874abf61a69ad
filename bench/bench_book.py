"""Cost of building the book: a clean build against a no-change rebuild.

The book's sources (``_config.yml``, ``_toc.yml``, ``intro.md``, ``references.bib``,
``chapters/``, ``_static/``, and ``exercises/`` for its downloads) are copied to a
temporary folder, and ``make book``'s command is timed there three times:

1. clean: no ``_build``, so every chapter is executed and every page written;
2. no change: the same sources again, which should execute nothing (jupyter-cache)
   and write nothing (Sphinx's environment);
3. prose edit: one sentence appended to ``intro.md``, a Markdown-only change.

Target: the no-change rebuild takes at most 0.1 of the clean build. Figures only:
nothing here asserts a time.

Run: ``python -m bench book`` (or ``python bench/bench_book.py``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# exercises/ holds the student notebooks that chapters/exercises.md offers as downloads;
# the book's exclude patterns keep them out of the pages.
SOURCES = ("_config.yml", "_toc.yml", "intro.md", "references.bib", "chapters", "_static",
           "exercises")
TARGET_RATIO = 0.1


def copy_book(destination: Path) -> None:
    """Copy the book's sources (not the build, exercises or solutions) into ``destination``."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns(
                "__pycache__", ".ipynb_checkpoints"))
        elif source.is_file():
            shutil.copy2(source, destination / name)


def build(book: Path) -> tuple[float, int]:
    """Run ``make book``'s command on ``book``; return (seconds, exit code)."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(book), "--builder", "html", "-W", "-n",
               "--keep-going"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=book, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    executed = log.count("Executing notebook using")
    changed = re.search(r"updating environment: (.*)", log)
    print(f"   {executed} notebook(s) executed; environment: "
          f"{changed.group(1).strip() if changed else '?'}")
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-15:] + result.stderr.splitlines()[-5:])
        print(f"   (the build exited {result.returncode}; its timing still counts)\n{tail}")
    return seconds, result.returncode


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_book_") as tmp:
        book = Path(tmp)
        copy_book(book)
        clean, _ = build(book)
        print(f"clean build            {clean:8.1f} s", flush=True)
        again, _ = build(book)
        print(f"no-change rebuild      {again:8.1f} s", flush=True)
        with (book / "intro.md").open("a", encoding="utf-8") as intro:
            intro.write("\nOne more sentence, to time a prose-only edit.\n")
        prose, _ = build(book)
        print(f"prose-edit rebuild     {prose:8.1f} s", flush=True)
    ratio = again / clean
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"no-change / clean      {ratio:8.3f}  ({verdict} the target <= {TARGET_RATIO})")
    print(f"prose-edit / clean     {prose / clean:8.3f}")


if __name__ == "__main__":
    main()
