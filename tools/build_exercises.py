"""Regenerate the student notebooks exercises/ from the instructor notebooks solutions/.

    python tools/build_exercises.py           # rewrite exercises/ with nbgrader
    python tools/build_exercises.py --check   # exit 1 if exercises/ is stale

It runs the real ``nbgrader generate_assignment`` in a temporary copy of the
course (``nbgrader_config.py`` and ``solutions/``), so the repository gets no
gradebook database, and copies the release notebooks back. ``--check`` compares
cell types, sources and metadata, ignoring nbgrader's checksums and any outputs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
VOLATILE_NBGRADER_KEYS = {"checksum"}


def assignments(solutions: Path = ROOT / "solutions") -> list[str]:
    """The assignment folders of ``solutions/`` (ex01_perceptron, ...), sorted."""
    return sorted(p.name for p in solutions.glob("ex*") if p.is_dir())


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: the venv's bin first on PATH (nbgrader runs ``alembic``)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def make_course_copy(dest: Path) -> Path:
    """Copy ``nbgrader_config.py`` and ``solutions/`` into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", dest / "solutions", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return dest


def generate_in(course: Path) -> Path:
    """Run ``nbgrader generate_assignment`` on every assignment of a course copy.

    Returns the course's release folder, ``course / "exercises"``.
    """
    proc = subprocess.run(
        [str(VENV_BIN / "nbgrader"), "generate_assignment", "ex*", "--force"],
        cwd=course, env=nbgrader_env(), capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0 or "ERROR" in proc.stderr:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{proc.stderr[-4000:]}")
    return course / "exercises"


def generate(out: Path = ROOT / "exercises") -> list[Path]:
    """Generate every release in a temporary course copy and copy it into ``out``."""
    with tempfile.TemporaryDirectory(prefix="bp-course-") as tmp:
        release = generate_in(make_course_copy(Path(tmp)))
        written = []
        for name in assignments(release.parent / "solutions"):
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / name, target)
            written.extend(sorted(target.glob("*.ipynb")))
        return written


def normalised(path: Path) -> list[tuple]:
    """A notebook's cells as (type, source, metadata) with nbgrader's volatile fields removed."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        meta = {k: v for k, v in cell.metadata.items() if k not in ("execution", "collapsed")}
        if "nbgrader" in meta:
            meta["nbgrader"] = {k: v for k, v in meta["nbgrader"].items()
                                if k not in VOLATILE_NBGRADER_KEYS}
        cells.append((cell.cell_type, cell.source, repr(sorted(meta.items()))))
    return cells


def differences(expected_dir: Path, actual_dir: Path) -> list[str]:
    """What differs between two release trees, one line per notebook (empty if none)."""
    problems = []
    want = {p.relative_to(expected_dir) for p in expected_dir.glob("*/*.ipynb")}
    have = {p.relative_to(actual_dir) for p in actual_dir.glob("*/*.ipynb")}
    problems += [f"{p}: missing from {actual_dir}" for p in sorted(want - have)]
    problems += [f"{p}: not generated from solutions/" for p in sorted(have - want)]
    for rel in sorted(want & have):
        a, b = normalised(expected_dir / rel), normalised(actual_dir / rel)
        if len(a) != len(b):
            problems.append(f"{rel}: {len(b)} cells, regenerated has {len(a)}")
            continue
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                field = "type" if x[0] != y[0] else "source" if x[1] != y[1] else "metadata"
                problems.append(f"{rel}: cell {i} differs in its {field}")
                break
    return problems


def check(exercises: Path = ROOT / "exercises") -> list[str]:
    """Regenerate into a temporary folder and compare with ``exercises``."""
    with tempfile.TemporaryDirectory(prefix="bp-release-") as tmp:
        generate(Path(tmp))
        return differences(Path(tmp), exercises)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(p)
        print("exercises/ is stale: run python tools/build_exercises.py" if problems
              else "exercises/ is up to date")
        return 1 if problems else 0
    for path in generate():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
