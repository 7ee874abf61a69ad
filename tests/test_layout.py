"""The shape of the house: two packages, imports that run one way, a distribution name
that does not clash, a lock file that ``make`` installs from.

* ``bplib`` is the reference library: numpy at import, nothing about grading.
* ``bpgrade`` grades: it imports ``bplib``, never the reverse; its student-facing and
  launcher modules stay light (``checks``: numpy; ``kernel`` and ``integrity``: the
  standard library), so a student's install and the sandbox launcher need nothing more.
* ``tools/`` never loads files from ``tests/``; neither package imports ``tools`` or
  ``tests``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRADING_STACK = ("nbgrader", "jupyter_client", "nbclient", "nbformat", "ipykernel",
                 "traitlets", "sqlalchemy", "bpgrade")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports of one file (relative imports left out)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and not node.args[0].value.startswith("."):
            names.add(node.args[0].value.split(".")[0])
    return names


def loaded_after(statement: str) -> set[str]:
    """Top-level names in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = (f"{statement}\nimport sys, json\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=120)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("path", sorted((ROOT / "bplib").glob("*.py")), ids=lambda p: p.name)
def test_bplib_imports_nothing_of_grading_tools_or_tests(path):
    bad = imported_modules(path) & {*GRADING_STACK, "tools", "tests"}
    assert not bad, f"bplib/{path.name} imports {sorted(bad)}: bplib must know nothing of grading"


@pytest.mark.parametrize("path", sorted((ROOT / "bpgrade").rglob("*.py")),
                         ids=lambda p: p.relative_to(ROOT / "bpgrade").as_posix())
def test_bpgrade_imports_no_tools_tests_or_chapters(path):
    bad = imported_modules(path) & {"tools", "tests", "chapters"}
    assert not bad, f"bpgrade/{path.name} imports {sorted(bad)}: imports run one way"


def test_every_bplib_module_loads_without_the_grading_stack():
    modules = sorted(p.stem for p in (ROOT / "bplib").glob("*.py") if p.stem != "__init__")
    loaded = loaded_after("import bplib\n" + "\n".join(f"import bplib.{m}" for m in modules))
    assert not loaded & set(GRADING_STACK), sorted(loaded & set(GRADING_STACK))


@pytest.mark.parametrize(("module", "allowed_extra"), [
    ("bpgrade", set()),
    ("bpgrade.__main__", set()),
    ("bpgrade.kernel", set()),
    ("bpgrade.zygote", set()),  # the worker imports it; the zygote imports the rest itself
    ("bpgrade.integrity", set()),
    ("bpgrade.course", set()),
    ("bpgrade.repair", set()),
    ("bpgrade.checks", {"numpy", "bplib"}),
    ("bpgrade.student", set()),  # nbclient, nbformat when the check runs; never nbgrader
])
def test_light_bpgrade_modules_load_only_what_they_promise(module, allowed_extra):
    """The launcher runs before any student code and students install ``checks`` with numpy
    only: neither may pull in the grading stack (or, for the launcher, numpy)."""
    baseline = loaded_after("pass")
    loaded = loaded_after(f"import {module}") - baseline - {"bpgrade", "__main__"}
    third_party = {m for m in loaded if m not in sys.stdlib_module_names and not m.startswith("_")}
    extra = sorted(third_party - allowed_extra)
    assert not extra, f"import {module} loads {extra}"


def test_tools_never_load_files_from_tests():
    for path in sorted((ROOT / "tools").rglob("*.py")):
        tree = ast.parse(path.read_text())
        assert "tests" not in imported_modules(path), f"{path} imports tests"
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith("tests/") and node.value != "tests", \
                    f"{path.relative_to(ROOT)}:{node.lineno} names the tests folder"


def test_the_distribution_is_not_called_bplib_and_ships_both_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # "bplib" on the public index is an unrelated (crypto) package.
    assert meta["project"]["name"] not in ("bplib", "bpgrade")
    assert set(meta["tool"]["setuptools"]["packages"]) == {"bplib", "bpgrade", "bpgrade.checks"}
    assert meta["project"]["dependencies"] == ["numpy>=2"], "the student install is numpy only"
    extras = meta["project"]["optional-dependencies"]
    assert {"students", "book", "grade", "keras", "dev", "course"} <= set(extras)
    assert any(d.startswith("nbgrader") for d in extras["grade"])
    assert not any(d.startswith("nbgrader") for d in extras["book"] + extras["students"])


def test_make_installs_from_the_lock_file_which_pins_every_package_exactly():
    lock = (ROOT / "requirements.lock").read_text()
    pins = [line for line in lock.splitlines() if line and line[0] not in "# "]
    assert pins and all("==" in p for p in pins), [p for p in pins if "==" not in p][:5]
    names = {p.split("==")[0].lower().replace("_", "-") for p in pins}
    for needed in ("numpy", "nbgrader", "jupyter-book", "keras", "jax", "pytest"):
        assert needed in names, f"{needed} is not in requirements.lock"
    assert "backprop-course" not in names and "bplib" not in names
    makefile = (ROOT / "Makefile").read_text()
    assert "-r $(LOCK)" in makefile and "LOCK := requirements.lock" in makefile
