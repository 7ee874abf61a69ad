"""Build the exercises from their text sources.

Each exercise is written once, as text: ``solutions/exNN_name/exNN_name.md``, a MyST
Markdown notebook whose cell options carry nbgrader's cell metadata. That file is
what an instructor edits. From it this tool builds

1. ``solutions/<a>/<a>.ipynb``, nbgrader's source notebook (jupytext), the same bytes
   every time: cell ids ``<a>-00``, ``<a>-01`` ..., no outputs, the ``.md``'s kernelspec
   and ``language_info`` ``{"name": "python"}``;
2. ``exercises/<a>/``, the student release, with the real ``nbgrader
   generate_assignment`` in a throw-away course (:func:`bpgrade.course.make_course`),
   so the repository never gets a gradebook. The ``.md`` (which holds the solutions
   and the hidden tests) is never copied into a release.

Run from the repository root (``make exercises`` does the first line)::

    python -m tools.build_exercises                  # both steps, every exercise
    python -m tools.build_exercises ex04_backward    # only the exercises named
    python -m tools.build_exercises --check          # exit 1 if anything committed is stale

``--check`` writes nothing: it prints one line per stale file, naming the file and
its first differing cell. A source notebook must be byte for byte what its ``.md``
builds; a release is compared cell by cell (type, source, metadata, nbgrader's
checksums aside) with what nbgrader generates from the ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat

from bpgrade.course import make_course, run_nbgrader

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FORMAT = "md:myst"
LANGUAGE_INFO = {"name": "python"}
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
VOLATILE_NBGRADER_KEYS = {"checksum"}
CELL_FIELDS = ("cell_type", "source", "metadata", "id", "outputs", "execution_count")


# --------------------------------------------------------------------------- the source notebooks


def assignments(root: Path = ROOT) -> list[str]:
    """The exercise folders of ``root/solutions`` (ex01_perceptron, ...), sorted."""
    return sorted(p.name for p in (root / "solutions").glob("ex[0-9][0-9]_*") if p.is_dir())


def source_path(name: str, root: Path = ROOT) -> Path:
    """``solutions/<name>/<name>.md``: the text an instructor edits."""
    return root / "solutions" / name / f"{name}.md"


def notebook_path(name: str, root: Path = ROOT) -> Path:
    """``solutions/<name>/<name>.ipynb``: nbgrader's source notebook, built from the ``.md``."""
    return root / "solutions" / name / f"{name}.ipynb"


def build_notebook(source: Path, first_cell: str | None = None) -> nbformat.NotebookNode:
    """The notebook that ``source`` (a MyST ``.md``) describes, deterministically: cell ids
    ``<stem>-NN``, no outputs; ``first_cell``, if given, is a code cell put first."""
    name = source.stem
    nb = jupytext.reads(source.read_text(encoding="utf-8"), fmt=SOURCE_FORMAT)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({
        "kernelspec": dict(nb.metadata.get("kernelspec") or DEFAULT_KERNELSPEC),
        "language_info": dict(LANGUAGE_INFO),
    })
    if first_cell is not None:
        nb.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The file's text, as ``nbformat.write`` lays it out (sorted keys, one trailing newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def build_solutions(root: Path = ROOT, names: list[str] | None = None) -> list[Path]:
    """Write ``solutions/<a>/<a>.ipynb`` from ``<a>.md``; return the files that changed."""
    written = []
    for name in names or assignments(root):
        source, target = source_path(name, root), notebook_path(name, root)
        if not source.is_file():
            raise FileNotFoundError(f"{source.relative_to(root)}: no such file (each "
                                    "exercise is written as solutions/<a>/<a>.md)")
        text = notebook_text(build_notebook(source))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8", newline="\n")
            written.append(target)
    return written


def _label(cell: dict) -> str:
    """`` (grade_id)`` of a cell nbgrader knows, to find it in the ``.md``; else empty."""
    grade_id = (cell.get("metadata") or {}).get("nbgrader", {}).get("grade_id")
    return f" ({grade_id})" if grade_id else ""


def _first_difference(built: dict, committed: dict) -> str:
    """Where two notebooks (as JSON) first differ, in words."""
    want, have = built.get("cells", []), committed.get("cells", [])
    for i, (w, h) in enumerate(zip(want, have, strict=False)):
        if w != h:
            field = next((f for f in CELL_FIELDS if w.get(f) != h.get(f)), "fields")
            return f"cell {i}{_label(w)} differs in its {field}"
    if len(want) != len(have):
        return f"{len(have)} cells, its .md builds {len(want)}"
    if built.get("metadata") != committed.get("metadata"):
        return "the notebook's metadata differs"
    return "the same cells, laid out differently"


def solution_problems(root: Path = ROOT, names: list[str] | None = None) -> list[str]:
    """One line per source notebook that is not what its ``.md`` builds (empty if none)."""
    problems = []
    for name in names or assignments(root):
        source, target = source_path(name, root), notebook_path(name, root)
        rel = target.relative_to(root).as_posix()
        if not source.is_file():
            problems.append(f"{rel}: no {source.name} beside it to build it from")
            continue
        try:
            text = notebook_text(build_notebook(source))
        except Exception as exc:  # a broken .md is a problem to report, not a crash
            problems.append(f"{source.relative_to(root).as_posix()}: cannot be built: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        if not target.is_file():
            problems.append(f"{rel}: missing, {source.name} builds it")
        elif target.read_text(encoding="utf-8") != text:
            try:
                committed = json.loads(target.read_text(encoding="utf-8"))
            except ValueError:
                committed = {}
            problems.append(f"{rel}: {_first_difference(json.loads(text), committed)} "
                            f"from what {source.name} builds")
    return problems


# --------------------------------------------------------------------------- the releases


def make_course_copy(dest: Path, root: Path = ROOT, names: list[str] | None = None) -> Path:
    """A throw-away course in ``dest``: the configuration of ``root`` and the exercises
    ``names`` (default: all), their source notebooks built afresh from their ``.md``."""
    names = names or assignments(root)
    make_course(dest, names, root)
    for name in names:
        target = notebook_path(name, dest)
        target.write_text(notebook_text(build_notebook(source_path(name, root))),
                          encoding="utf-8", newline="\n")
    return dest


def generate_in(course: Path) -> Path:
    """Run ``nbgrader generate_assignment`` on every exercise of a course copy.

    Returns the course's release folder, ``course / "exercises"``.
    """
    proc = run_nbgrader(course, "generate_assignment", "*", "--force")
    log = proc.stdout + proc.stderr
    if "| ERROR]" in log:
        raise RuntimeError(f"nbgrader generate_assignment reported errors in {course}:\n"
                           + log[-4000:])
    release = course / "exercises"
    leaked = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.md"))
    if leaked:  # nbgrader_config.py's CourseDirectory.ignore keeps the sources out
        raise RuntimeError(f"a release contains a text source (solutions!): {leaked}")
    return release


def generate(root: Path = ROOT, names: list[str] | None = None,
             out: Path | None = None) -> list[Path]:
    """Generate the releases of ``names`` (default: all) from their ``.md`` and copy them
    into ``out`` (default ``root/exercises``), replacing what was there; return the files."""
    all_names = assignments(root)
    names = names or all_names
    out = root / "exercises" if out is None else out
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bp-course-") as tmp:
        release = generate_in(make_course_copy(Path(tmp), root, names))
        for name in names:
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / name, target)
            written += sorted(p for p in target.rglob("*") if p.is_file())
    if names == all_names:  # a release whose exercise is gone goes too
        for stale in out.glob("ex[0-9][0-9]_*"):
            if stale.is_dir() and stale.name not in all_names:
                shutil.rmtree(stale)
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
    """What differs between two release trees, one line per file (empty if none):
    notebooks cell by cell (the first differing cell), other files byte for byte."""
    problems = []
    want = {p.relative_to(expected_dir) for p in expected_dir.glob("*/*") if p.is_file()}
    have = {p.relative_to(actual_dir) for p in actual_dir.glob("*/*") if p.is_file()}
    problems += [f"{p}: missing from {actual_dir}" for p in sorted(want - have)]
    problems += [f"{p}: not generated from solutions/" for p in sorted(have - want)]
    for rel in sorted(want & have):
        if rel.suffix != ".ipynb":
            if (expected_dir / rel).read_bytes() != (actual_dir / rel).read_bytes():
                problems.append(f"{rel}: differs from the file in solutions/")
            continue
        a, b = normalised(expected_dir / rel), normalised(actual_dir / rel)
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                field = "type" if x[0] != y[0] else "source" if x[1] != y[1] else "metadata"
                cell = nbformat.read(expected_dir / rel, 4).cells[i]
                problems.append(f"{rel}: cell {i}{_label(cell)} differs in its {field}")
                break
        else:
            if len(a) != len(b):
                problems.append(f"{rel}: {len(b)} cells, regenerated has {len(a)}")
            elif nbformat.read(expected_dir / rel, 4).metadata != \
                    nbformat.read(actual_dir / rel, 4).metadata:
                problems.append(f"{rel}: the notebook's metadata differs")
    return problems


def check(root: Path = ROOT) -> list[str]:
    """Everything committed that is stale, one line each: source notebooks that are not
    what their ``.md`` builds, release files that are not what nbgrader generates."""
    problems = solution_problems(root)
    broken = {p.split("/")[1] for p in problems if "cannot be built" in p}
    names = [n for n in assignments(root) if source_path(n, root).is_file() and n not in broken]
    if names:
        with tempfile.TemporaryDirectory(prefix="bp-release-") as tmp:
            fresh = Path(tmp) / "exercises"
            generate(root, names, out=fresh)
            problems += [f"exercises/{p}" for p in differences(fresh, root / "exercises")
                         if p.split("/")[0] not in broken]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="exercises to build (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if solutions/ or exercises/ is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for line in problems:
            print(line)
        print("stale: run make exercises (python -m tools.build_exercises)" if problems
              else "solutions/*.ipynb and exercises/ are up to date")
        return 1 if problems else 0
    for path in build_solutions(ROOT, args.names or None):
        print(f"built {path.relative_to(ROOT)}")
    for path in generate(ROOT, args.names or None):
        print(f"generated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
