"""The course's wheel (``bplib`` and ``bpgrade`` only), rebuilt only when what it packs changed.

    python -m tools.wheel           # build _build/dist/<wheel> unless it is up to date
    python -m tools.wheel --check   # exit 1 (saying why) if the wheel is missing or stale

The wheel is keyed on the *content* of what it packs: ``pyproject.toml``, ``README.md``
(its long description) and every file of ``bplib/`` and ``bpgrade/`` (not file names
or modification times, which a checkout, a ``touch`` or a revert changes without
changing the wheel, and which an edit can leave unchanged). The key of the wheel in
``_build/dist`` is kept beside it (``<wheel>.source-sha256``), written after the wheel;
a build interrupted between the two leaves an old key, so the next run builds again.

The build itself works on a copy of those files (setuptools writes ``build/`` and
``*.egg-info`` where it builds), and the wheel is moved into place with one rename, so
that a book build running alongside never sees a half-written file. ``make wheel``
and ``make book`` call :func:`ensure`; the student-path tests call it too, so they
always run a wheel built from the source they test (:func:`stale` says why not).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "_build" / "dist"
PACKAGES = ("bplib", "bpgrade")
FILES = ("pyproject.toml", "README.md")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def wheel_path(root: Path = ROOT, dist: Path | None = None) -> Path:
    """Where the wheel of the version in ``pyproject.toml`` is (or will be)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = project["name"].replace("-", "_")
    return (dist or root / "_build" / "dist") / f"{name}-{project['version']}-py3-none-any.whl"


def sources(root: Path = ROOT) -> list[Path]:
    """What the wheel is built from, relative to ``root``, sorted: the two files and
    every file of the two packages but caches and bytecode."""
    found = [Path(name) for name in FILES]
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            rel = path.relative_to(root)
            if (path.is_file() and not SKIP_DIRS.intersection(rel.parts)
                    and not path.name.endswith(SKIP_SUFFIXES)):
                found.append(rel)
    return sorted(found)


def content_key(root: Path, names) -> str:
    """SHA-256 over the names (relative to ``root``) and the bytes of the files ``names``
    (a rename changes it too); also the site's key (``tools/bookkey.py``)."""
    digest = hashlib.sha256()
    for rel in names:
        data = (root / rel).read_bytes()
        digest.update(f"{Path(rel).as_posix()}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
        digest.update(data)
    return digest.hexdigest()


def source_key(root: Path = ROOT) -> str:
    """The key of :func:`sources`."""
    return content_key(root, sources(root))


def _key_file(wheel: Path) -> Path:
    return wheel.with_name(wheel.name + ".source-sha256")


def stale(root: Path = ROOT, dist: Path | None = None) -> str | None:
    """Why the wheel in ``dist`` is not the one the current source builds; ``None`` if it is."""
    wheel = wheel_path(root, dist)
    if not wheel.is_file():
        return f"{wheel} is missing"
    key = _key_file(wheel)
    if not key.is_file():
        return f"{key} is missing (the wheel's source is unknown)"
    if key.read_text(encoding="ascii").strip() != source_key(root):
        return f"{wheel.name} was built from another source (bplib, bpgrade or pyproject.toml)"
    return None


def build(root: Path = ROOT, dist: Path | None = None) -> Path:
    """Build the wheel from a copy of :func:`sources`; move it into ``dist``, then its key."""
    wheel = wheel_path(root, dist)
    wheel.parent.mkdir(parents=True, exist_ok=True)
    key = source_key(root)
    with tempfile.TemporaryDirectory(prefix="wheel.", dir=wheel.parent.parent) as tmp:
        work = Path(tmp) / "src"
        for rel in sources(root):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, work / rel)
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet",
                        "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
                        "-w", str(out), str(work)], check=True)
        built = out / wheel.name
        if not built.is_file():
            raise RuntimeError(f"pip built {sorted(p.name for p in out.iterdir())}, "
                               f"not {wheel.name}")
        # the key would name the copy's content: check that it is the source's still
        if source_key(work) != key:
            raise RuntimeError("bplib, bpgrade or pyproject.toml changed during the build")
        _key_file(wheel).unlink(missing_ok=True)  # no key names a wheel half replaced
        built.replace(wheel)
        tmp_key = Path(tmp) / "key"
        tmp_key.write_text(key + "\n", encoding="ascii")
        tmp_key.replace(_key_file(wheel))
    return wheel


def ensure(root: Path = ROOT, dist: Path | None = None) -> tuple[Path, bool]:
    """The up-to-date wheel, and whether it had to be built."""
    if stale(root, dist) is None:
        return wheel_path(root, dist), False
    return build(root, dist), True


def differences(wheel: Path, root: Path = ROOT) -> list[str]:
    """The packed files of ``wheel`` that differ from the source at ``root``, and the
    source files of the packages that the wheel lacks (the test of what was built)."""
    packed = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.split("/")[0] in PACKAGES:
                packed[name] = zf.read(name)
    present = {rel.as_posix() for rel in sources(root) if rel.parts[0] in PACKAGES}
    found = [f"{name}: not in the source" for name in sorted(set(packed) - present)]
    for name in sorted(present):
        if name not in packed:
            if name.endswith(".py"):
                found.append(f"{name}: not in the wheel")
        elif packed[name] != (root / name).read_bytes():
            found.append(f"{name}: differs from the source")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.wheel", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only say whether the wheel is up to date (exit 1 if not)")
    args = parser.parse_args(argv)
    if args.check:
        why = stale()
        print(why or f"{wheel_path()} is up to date")
        return 1 if why else 0
    wheel, built = ensure()
    print(f"{wheel.relative_to(ROOT)} {'built' if built else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
