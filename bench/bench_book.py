"""Cost of ``make book``: each step's clean build against its rebuild with nothing changed.

The repository's tracked files (``git ls-files``: no ``_build``, no ``.venv``) are copied
to a temporary folder, and the three steps of ``make book`` are timed there, each with
the command the Makefile runs:

- wheel: ``python -m tools.wheel`` (the course's wheel, which the exercises page links);
- English: ``jupyter-book build . --builder html -W -n --keep-going`` (``_build/html``);
- Chinese (中文版): ``python -m tools.i18n html`` (``_build/zh_CN/html``, synced into
  ``_build/html/zh_CN``).

Three rounds of the three steps:

1. clean: no ``_build``, so every chapter is executed, every page of both editions
   written and the wheel built;
2. no change: the same sources again, which should execute nothing (jupyter-cache),
   write no page (Sphinx's environment), build no wheel and copy no Chinese page;
3. prose edit: one sentence appended to ``intro.md``, a Markdown-only change.

A row per step prints the three times and the ratios no-change / clean and
prose-edit / clean, measured in the same run; the last row is ``make book`` whole.
Target: a no-change ``make book`` (wheel and both editions) in at most 5 s, and each
edition's no-change rebuild at most 0.1 of its clean build. Figures only: nothing here
asserts a time.

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
TARGET_RATIO = 0.1
TARGET_SECONDS = 5.0


def copy_repository(destination: Path) -> None:
    """Copy the tracked files of the repository into ``destination``."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def steps(book: Path) -> dict[str, list[str]]:
    """``make book``'s commands, in its order."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return {
        "wheel": [sys.executable, "-m", "tools.wheel"],
        "English": [str(jupyter_book), "build", str(book), "--builder", "html", "-W", "-n",
                    "--keep-going"],
        "Chinese": [sys.executable, "-m", "tools.i18n", "html"],
    }


def run(name: str, command: list[str], book: Path) -> float:
    """Run one step in ``book``; print what it did; return its seconds."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=book, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    if name == "wheel":
        print(f"   {name:8s} {log.strip().splitlines()[-1] if log.strip() else '?'}")
    else:
        executed = log.count("Executing notebook using")
        changed = re.search(r"updating environment: (.*)", log)
        written = re.search(r"\d+ file\(s\) written, \d+ removed", log)
        print(f"   {name:8s} {executed} notebook(s) executed; environment: "
              f"{changed.group(1).strip() if changed else '?'}"
              + (f"; {written.group(0)}" if written else ""))
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-15:] + result.stderr.splitlines()[-5:])
        print(f"   ({name} exited {result.returncode}; its timing still counts)\n{tail}")
    return seconds


def one_round(label: str, book: Path) -> dict[str, float]:
    print(f"{label}:", flush=True)
    times = {name: run(name, command, book) for name, command in steps(book).items()}
    times["make book"] = sum(times.values())
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_book_") as tmp:
        book = Path(tmp)
        copy_repository(book)
        clean = one_round("clean (no _build)", book)
        again = one_round("no change", book)
        with (book / "intro.md").open("a", encoding="utf-8") as intro:
            intro.write("\nOne more sentence, to time a prose-only edit.\n")
        prose = one_round("prose edit (intro.md)", book)
    print(f"\n{'step':12s} {'clean s':>9s} {'no-change s':>12s} {'prose-edit s':>13s} "
          f"{'no-change/clean':>16s} {'prose/clean':>12s}")
    for name in clean:
        print(f"{name:12s} {clean[name]:9.1f} {again[name]:12.2f} {prose[name]:13.2f} "
              f"{again[name] / clean[name]:16.3f} {prose[name] / clean[name]:12.3f}")
    for name in ("English", "Chinese"):
        ratio = again[name] / clean[name]
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(f"{name}: no-change / clean {ratio:.3f} ({verdict} the target <= {TARGET_RATIO})")
    total = again["make book"]
    verdict = "meets" if total <= TARGET_SECONDS else "MISSES"
    print(f"make book with nothing changed: {total:.1f} s ({verdict} the target "
          f"<= {TARGET_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
