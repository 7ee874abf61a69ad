"""The assignment ex06_keras graded by the real nbgrader, as an instructor would run it.

In a temporary course (a copy of ``nbgrader_config.py`` and ``solutions/ex06_keras``)
``nbgrader generate_assignment`` makes the release, three students submit, one
batched ``nbgrader autograde`` grades them, and the gradebook is read back:

- ``correct``: the release with every stub replaced by the instructor's solution;
- ``blank``: the release as it is;
- ``no_freeze``: correct, except that ``freeze_pretrained`` returns the model untouched.

The course's pretrained network ``digits04_base.keras`` ships with the assignment;
``python tests/test_ex06_keras.py`` rewrites it (see :func:`make_pretrained_reference`).
"""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from bpgrade.course import make_course, run_nbgrader

ROOT = Path(__file__).resolve().parent.parent
NAME = "ex06_keras"
SOURCE = ROOT / "solutions" / NAME
RELEASE = ROOT / "exercises" / NAME
WEIGHTS_FILE = "digits04_base.keras"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
FORGOT_TO_FREEZE = "return model  # forgot to freeze hidden1"

pytestmark = [pytest.mark.slow, pytest.mark.keras]


# ---------------------------------------------------------------- the pretrained network


def make_pretrained_reference(path: Path = SOURCE / WEIGHTS_FILE, seed: int = 0):
    """Train the network of part 1 on the digits 0-4 and save it to ``path`` (a .keras file).

    64 -> hidden1 (64, ReLU) -> hidden2 (32, ReLU) -> head (5 logits); Adam (lr 1e-3),
    cross-entropy on logits, 30 epochs in batches of 32, from ``keras.utils.set_random_seed(seed)``.
    """
    os.environ["KERAS_BACKEND"] = "jax"
    import keras

    import bplib

    d = bplib.load_digits(seed=0)
    keep = d.y_train < 5
    keras.utils.set_random_seed(seed)

    def network():
        return keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", name="hidden1"),
            keras.layers.Dense(32, activation="relu", name="hidden2"),
            keras.layers.Dense(5, name="head"),
        ])

    model = network()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(d.X_train[keep].astype("float32"), d.y_train[keep], epochs=30, batch_size=32,
              verbose=0)
    plain = network()  # saved uncompiled: the file holds no optimiser state
    plain.set_weights(model.get_weights())
    plain.save(path)
    return plain


def test_the_shipped_pretrained_network_is_part_one_trained_on_digits_0_to_4():
    os.environ["KERAS_BACKEND"] = "jax"
    keras = pytest.importorskip("keras")
    import bplib

    model = keras.saving.load_model(SOURCE / WEIGHTS_FILE)
    layers = [(la.name, la.get_config()["units"], la.get_config()["activation"])
              for la in model.layers]
    assert layers == [("hidden1", 64, "relu"), ("hidden2", 32, "relu"), ("head", 5, "linear")]
    d = bplib.load_digits(seed=0)
    keep = d.y_test < 5
    pred = np.argmax(model.predict(d.X_test[keep].astype("float32"), verbose=0), axis=1)
    assert np.mean(pred == d.y_test[keep]) >= 0.95
    assert (RELEASE / WEIGHTS_FILE).read_bytes() == (SOURCE / WEIGHTS_FILE).read_bytes(), (
        f"exercises/{NAME}/{WEIGHTS_FILE} differs from solutions/: regenerate the release")


# ------------------------------------------------------------------------- submissions


def _nbgrader(course: Path, *args: str) -> str:
    proc = run_nbgrader(course, *args, timeout=600)
    return proc.stdout + proc.stderr


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_regions(nb) -> dict[str, str]:
    """The instructor's ``BEGIN/END SOLUTION`` region of each solution cell, dedented."""
    out = {}
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            body = cell.source.split("### BEGIN SOLUTION\n", 1)[1].split("### END SOLUTION")[0]
            out[_meta(cell)["grade_id"]] = textwrap.dedent(body).rstrip()
    return out


def fill(release_nb, bodies: dict[str, str]):
    """The release with the stub of each solution cell named in ``bodies`` replaced by it."""
    nb = nbformat.from_dict(release_nb)
    for cell in nb.cells:
        gid = _meta(cell).get("grade_id")
        if _meta(cell).get("solution") and gid in bodies:
            line = next(x for x in cell.source.split("\n") if x.strip() == "# YOUR CODE HERE")
            indent = line[: len(line) - len(line.lstrip())]
            stub = textwrap.indent(STUB, indent)
            assert stub in cell.source, f"the release cell {gid} has no stub"
            cell.source = cell.source.replace(stub, textwrap.indent(bodies[gid], indent))
    return nb


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def graded(tmp_path_factory):
    """``(course, {student: {test grade_id: (score, max)}})`` after one batched autograde."""
    from nbgrader.api import Gradebook

    course = make_course(tmp_path_factory.mktemp("course"), [NAME], ROOT).root
    _nbgrader(course, "generate_assignment", NAME, "--force")
    release = nbformat.read(course / "exercises" / NAME / f"{NAME}.ipynb", as_version=4)
    correct = solution_regions(nbformat.read(SOURCE / f"{NAME}.ipynb", as_version=4))
    students = {
        "correct": fill(release, correct),
        "blank": release,
        "no_freeze": fill(release, dict(correct, freeze_pretrained=FORGOT_TO_FREEZE)),
    }
    for student, nb in students.items():
        dest = course / "submitted" / student / NAME
        shutil.copytree(course / "exercises" / NAME, dest)
        nbformat.write(nb, dest / f"{NAME}.ipynb")
        (dest / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")
    _nbgrader(course, "autograde", NAME, "--force")
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:
            nb = gb.find_submission_notebook(NAME, NAME, student)
            scores[student] = {g.name: (g.score, g.max_score) for g in nb.grades
                               if g.cell.cell_type == "code"}
    return course, scores


def test_the_committed_release_is_what_nbgrader_generates(graded):
    course, _ = graded
    fresh = nbformat.read(course / "exercises" / NAME / f"{NAME}.ipynb", as_version=4)
    committed = nbformat.read(RELEASE / f"{NAME}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in fresh.cells], (
        f"exercises/{NAME} is stale: run `nbgrader generate_assignment {NAME} --force`")


def test_each_part_has_its_own_test_cell_and_points(graded):
    _, scores = graded
    assert {g: m for g, (_, m) in scores["correct"].items()} == {
        "test_build_base_model": 2, "test_build_finetune_model": 2,
        "test_freeze_pretrained": 2, "test_finetune": 3}


def test_the_solution_scores_full_marks(graded):
    _, scores = graded
    lost = {g: s for g, (s, m) in scores["correct"].items() if s != m}
    assert not lost, f"the instructor's solution loses points in {lost}"


def test_the_blank_release_scores_zero_in_every_part_with_only_not_implemented_errors(graded):
    course, scores = graded
    assert all(s == 0 for s, _ in scores["blank"].values()), scores["blank"]
    nb = nbformat.read(course / "autograded" / "blank" / NAME / f"{NAME}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and _meta(cell).get("grade"):
            errors = [o.ename for o in cell.outputs if o.output_type == "error"]
            assert errors == ["NotImplementedError"], f"{_meta(cell)['grade_id']}: {errors}"


def test_forgetting_to_freeze_loses_exactly_the_freezing_points(graded):
    _, scores = graded
    lost = {g for g, (s, m) in scores["no_freeze"].items() if s != m}
    assert lost == {"test_freeze_pretrained"}
    assert scores["no_freeze"]["test_freeze_pretrained"][0] == 0


if __name__ == "__main__":
    make_pretrained_reference()
    print(f"wrote {SOURCE / WEIGHTS_FILE}")
