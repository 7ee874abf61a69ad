"""Whether the built site is up to date with its sources: ``make book`` with nothing changed.

    python -m tools.bookkey --fresh   # exit 0 if both editions were built from these sources
    python -m tools.bookkey --write   # after a successful build: remember what it was built from

Both Sphinx builds are incremental already, but each starts Sphinx, reads every doctree
and checks every page (some five seconds an edition) even when nothing changed. The key
is a SHA-256 of the *content* (and names) of every file of the course: each file git
knows of, tracked or untracked but not ignored (``git ls-files -co --exclude-standard``);
without git, every file under the course root but ``.git``, ``.venv``, ``_build`` and
caches. So any edit (a page, a catalog, an extension, a static file, ``bplib``, the lock
file; a test too, which costs one incremental build that writes nothing) makes the next
``make book`` build, and a ``touch``, a checkout of the same content or an ignored file
does not. The key is written only after both editions were built
(``_build/.book-sha256``); the site is stale too when either edition's index page is gone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tools.wheel import content_key

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / "_build" / ".book-sha256"
OUTPUTS = ("_build/html/index.html", "_build/html/zh_CN/index.html")
WALK_SKIP = {".git", ".venv", "_build", "__pycache__", ".pytest_cache",
             ".ipynb_checkpoints", "node_modules"}


def inputs(root: Path = ROOT) -> list[str]:
    """The course's files, relative to ``root``, sorted."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                                cwd=root, capture_output=True, check=True).stdout
        names = [n for n in listed.decode("utf-8", "surrogateescape").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(root).as_posix() for p in root.rglob("*")
                 if p.is_file() and not WALK_SKIP.intersection(p.relative_to(root).parts)]
    return sorted(n for n in names if (root / n).is_file())


def key(root: Path = ROOT) -> str:
    return content_key(root, inputs(root))


def fresh(root: Path = ROOT, stamp: Path | None = None) -> bool:
    """True when both editions exist and were built from sources with this key."""
    stamp = stamp or root / STAMP.relative_to(ROOT)
    if not all((root / out).is_file() for out in OUTPUTS) or not stamp.is_file():
        return False
    return stamp.read_text(encoding="ascii").strip() == key(root)


def write(root: Path = ROOT, stamp: Path | None = None) -> None:
    stamp = stamp or root / STAMP.relative_to(ROOT)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key(root) + "\n", encoding="ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bookkey",
                                     description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--fresh", action="store_true",
                        help="exit 0 if the site is up to date, 1 if it must be built")
    action.add_argument("--write", action="store_true",
                        help="remember the sources' key (after a successful build)")
    args = parser.parse_args(argv)
    if args.write:
        write()
        return 0
    if fresh():
        print("The book is up to date: no source changed since it was last built "
              "(tools/bookkey.py).")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
