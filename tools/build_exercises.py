"""Build the exercises from their text sources.

Each exercise is written once, as text: ``solutions/exNN_name/exNN_name.md``, a MyST
Markdown notebook whose cell options carry nbgrader's cell metadata. That file is
what an instructor edits. From it this tool builds

1. ``solutions/<a>/<a>.ipynb``, nbgrader's source notebook (jupytext), the same bytes
   every time: cell ids ``<a>-00``, ``<a>-01`` ..., no outputs, the ``.md``'s kernelspec
   and ``language_info`` ``{"name": "python"}``;
   and of each translation, the sibling assignment ``solutions/<a>_zh/<a>_zh.ipynb``:
   the same notebook through the catalog ``locales/zh_CN/LC_MESSAGES/solutions/<a>/<a>.po``
   (:func:`tools.i18n.translate_notebook`: the text translated, the test cells and the
   code the English ones, one ``language`` cell added), with the files beside the ``.md``;
2. ``exercises/<a>/`` (and ``exercises/<a>_zh/``), the student releases, with the real
   ``nbgrader generate_assignment`` in a throw-away course
   (:func:`bpgrade.course.make_course`), so the repository never gets a gradebook. The
   ``.md`` (which holds the solutions and the hidden tests) is never copied into a release.

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

from bpgrade import language
from bpgrade.course import make_course, run_nbgrader
from tools import i18n

ROOT = Path(__file__).resolve().parent.parent
SOURCE_FORMAT = "md:myst"
LANGUAGE_INFO = {"name": "python"}
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
VOLATILE_NBGRADER_KEYS = {"checksum"}
CELL_FIELDS = ("cell_type", "source", "metadata", "id", "outputs", "execution_count")


# --------------------------------------------------------------------------- the source notebooks


def assignments(root: Path = ROOT) -> list[str]:
    """The exercise folders of ``root/solutions`` (ex01_perceptron, ...), sorted; not the
    translations' siblings (``ex04_backward_zh``), which are built from them."""
    return sorted(p.name for p in (root / "solutions").glob("ex[0-9][0-9]_*")
                  if p.is_dir() and language.of_assignment(p.name) == language.ENGLISH)


def catalog_path(name: str, lang: str, root: Path = ROOT) -> Path:
    """The catalog that translates the exercise ``name`` into ``lang``:
    ``locales/zh_CN/LC_MESSAGES/solutions/<name>/<name>.po``."""
    return root / "locales" / lang / "LC_MESSAGES" / "solutions" / name / f"{name}.po"


def translations(name: str, root: Path = ROOT) -> list[str]:
    """The sibling assignments of the exercise ``name``, one per language that has a
    catalog of it (``python -m tools.i18n gettext`` makes it): ``["ex04_backward_zh"]``."""
    return [language.sibling(name, lang) for lang in language.SUFFIXES
            if catalog_path(name, lang, root).is_file()]


def with_translations(names: list[str], root: Path = ROOT) -> list[str]:
    """``names`` and their siblings, each English name followed by its translations."""
    return [n for name in names for n in (name, *translations(name, root))]


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


def build_translation(name: str, sibling: str, root: Path = ROOT) -> nbformat.NotebookNode:
    """The source notebook of ``sibling`` (``ex04_backward_zh``): the notebook of ``name``
    through its catalog (:func:`tools.i18n.translate_notebook`; a message not yet
    translated stays English), cell ids ``<sibling>-NN``. Raises :class:`ValueError` if
    the translation changed anything but text (:func:`tools.i18n.code_problems`)."""
    source = source_path(name, root)
    english = build_notebook(source)
    docname = source.relative_to(root).with_suffix("").as_posix()
    lang = language.of_assignment(sibling)
    nb = i18n.translate_notebook(english, docname, lang,
                                 catalog_dir=root / "locales" / lang / "LC_MESSAGES")
    problems = i18n.code_problems(english, nb)
    if problems:
        raise ValueError(f"{docname}.po changes more than text: " + "; ".join(problems))
    for i, cell in enumerate(nb.cells):
        cell.id = f"{sibling}-{i:02d}"
    nbformat.validate(nb)
    return nb


def extra_files(name: str, root: Path = ROOT) -> list[Path]:
    """The files an exercise ships beside its notebook (``digits04_base.keras``): every
    file of ``solutions/<name>/`` but its ``.md`` and ``.ipynb``."""
    folder = root / "solutions" / name
    return sorted(p for p in folder.iterdir() if p.is_file()
                  and p.name not in (f"{name}.md", f"{name}.ipynb") and p.suffix != ".pyc")


def built(name: str, root: Path = ROOT) -> dict[Path, bytes]:
    """What ``solutions/`` holds for the exercise ``name`` once built, ``{path: bytes}``:
    its source notebook, and each translation's notebook and copies of the extra files."""
    out = {notebook_path(name, root): notebook_text(build_notebook(source_path(name, root)))
           .encode()}
    for sibling in translations(name, root):
        out[notebook_path(sibling, root)] = notebook_text(
            build_translation(name, sibling, root)).encode()
        for extra in extra_files(name, root):
            out[root / "solutions" / sibling / extra.name] = extra.read_bytes()
    return out


def build_solutions(root: Path = ROOT, names: list[str] | None = None) -> list[Path]:
    """Write ``solutions/<a>/<a>.ipynb`` from ``<a>.md``, and each translation's sibling
    folder (:func:`built`); return the files that changed."""
    written = []
    for name in names or assignments(root):
        source = source_path(name, root)
        if not source.is_file():
            raise FileNotFoundError(f"{source.relative_to(root)}: no such file (each "
                                    "exercise is written as solutions/<a>/<a>.md)")
        for target, data in built(name, root).items():
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
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
    """One line per file of ``solutions/`` that is not what its ``.md`` (and, for a
    translation's sibling, its catalog) builds (empty if none)."""
    problems = []
    for name in names or assignments(root):
        source, target = source_path(name, root), notebook_path(name, root)
        rel = target.relative_to(root).as_posix()
        if not source.is_file():
            problems.append(f"{rel}: no {source.name} beside it to build it from")
            continue
        try:
            files = built(name, root)
        except Exception as exc:  # a broken .md is a problem to report, not a crash
            problems.append(f"{source.relative_to(root).as_posix()}: cannot be built: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        for path, data in files.items():
            rel = path.relative_to(root).as_posix()
            if not path.is_file():
                problems.append(f"{rel}: missing, {source.name} builds it")
            elif path.read_bytes() != data and path.suffix != ".ipynb":
                problems.append(f"{rel}: differs from the file beside {source.name}")
            elif path.read_bytes() != data:
                try:
                    committed = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    committed = {}
                problems.append(f"{rel}: {_first_difference(json.loads(data), committed)} "
                                f"from what {source.name} builds")
    return problems


# --------------------------------------------------------------------------- the releases


def make_course_copy(dest: Path, root: Path = ROOT, names: list[str] | None = None) -> Path:
    """A throw-away course in ``dest``: the configuration of ``root`` and the exercises
    ``names`` (default: all) with their translations' siblings, every source notebook
    built afresh from its ``.md`` (and catalog)."""
    names = names or assignments(root)
    make_course(dest, names, root)
    for name in names:
        for path, data in built(name, root).items():
            target = dest / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
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
    """Generate the releases of ``names`` (default: all) and of their translations from
    their ``.md`` and copy them into ``out`` (default ``root/exercises``), replacing what
    was there; return the files."""
    all_names = assignments(root)
    names = names or all_names
    out = root / "exercises" if out is None else out
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bp-course-") as tmp:
        release = generate_in(make_course_copy(Path(tmp), root, names))
        for name in with_translations(names, root):
            target = out / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release / name, target)
            written += sorted(p for p in target.rglob("*") if p.is_file())
    if names == all_names:  # a release whose exercise is gone goes too
        for stale in out.glob("ex[0-9][0-9]_*"):
            if stale.is_dir() and stale.name not in with_translations(all_names, root):
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
    broken = set(with_translations([p.split("/")[1] for p in problems
                                     if "cannot be built" in p], root))
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
