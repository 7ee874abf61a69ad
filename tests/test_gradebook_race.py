"""Two graders of one gradebook (two assignments of a class, graded at once): both look
up a student who is not there yet, both insert it, and the second insert fails on the
gradebook's unique key. The client saves that student's grades again, and the look-up
then finds the student the other grader added."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbgrader.api import Gradebook, MissingEntry

from bpgrade import pool


def _racing_find_student(db_url: str, monkeypatch) -> list[str]:
    """``Gradebook.find_student`` that, the first time, lets another grader (its own
    connection) add the student just after it looked and found nobody."""
    real = Gradebook.find_student
    raced: list[str] = []

    def find_student(self, student_id):
        if not raced:
            raced.append(student_id)
            with Gradebook(db_url) as other:
                other.add_student(student_id)
            raise MissingEntry()
        return real(self, student_id)

    monkeypatch.setattr(Gradebook, "find_student", find_student)
    return raced


@pytest.mark.parametrize("fast", [False, True], ids=["classic", "fast"])
def test_a_student_added_by_a_concurrent_grader_is_saved_not_failed(
        tmp_path: Path, monkeypatch, fast: bool) -> None:
    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    pool._new_gradebook(db_url)
    with Gradebook(db_url) as gb:
        gb.add_assignment("ex01")
    importer = pool.Importer(tmp_path, "ex01", db_url, "default_course")
    importer.one_transaction = fast
    raced = _racing_find_student(db_url, monkeypatch)
    result = {"files": {}, "timestamp": None, "scores": {}}
    with pool.nbgrader_reuse({}, keep=False, fast=fast):
        importer.save("blank", result)
    assert raced == ["blank"]
    monkeypatch.undo()
    with Gradebook(db_url) as gb:
        assert [s.id for s in gb.students] == ["blank"]
        assert gb.find_submission("ex01", "blank").student_id == "blank"
