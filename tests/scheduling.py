"""How ``pytest -n N --dist loadfile`` hands the test files to its workers (``make test``).

xdist's ``loadfile`` keeps each file on one worker (a module's course is built once)
and hands the files out in order of their number of tests, most first. That puts the
files that hold a worker longest, which have few tests behind one expensive fixture
(the pipeline's course, the Binder install, the class report), near the end of the
queue: the last of them starts when the other worker has nothing left, and the run waits
for it alone. :class:`HeaviestFirst` hands them out by the time they hold a worker
(:data:`SECONDS`, measured with ``--durations=0``), longest first; a worker that becomes
free takes the next one (Graham's longest-processing-time rule), so the short files fill
in around the long ones at the end. Files not in the table come after, most tests first,
as before. A worker gets its next file when one test of its current file is left (xdist:
two), so that a long test near the end of a file does not hold the next file back.

:data:`TOGETHER` sends files that read the same expensive course to the worker of the
file that builds it (the course is built once per worker process).
"""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

# Seconds a file holds one worker of `make test`: its fixtures' set-up and its tests,
# summed by file from `CI=true pytest -n 2 --dist loadfile --durations=0` (2026-12-08, on
# the shared 2-core machine under load, so about twice a quiet run's; only the order
# matters). Files under 30 s are left to xdist's order. Refresh with
# `python tests/scheduling.py LOG` when a file's time changes a lot.
SECONDS = {
    "tests/test_pipeline.py": 680,
    "tests/test_launch.py": 510,
    "tests/test_report.py": 390,  # 530 measured, before its class went from 124 to 79 students
    "tests/test_accessibility.py": 310,
    "tests/test_parallel_grading.py": 280,
    "tests/test_dask_grading.py": 270,
    "tests/test_sandbox.py": 260,
    "tests/test_lms.py": 260,
    "tests/test_zh_site.py": 170,
    "tests/test_exercise_sources.py": 170,
    "tests/test_assignments.py": 150,
    "tests/test_ex06_keras.py": 150,
    "tests/test_i18n.py": 140,
    "tests/test_not_numerical.py": 130,
    "tests/test_tamper.py": 130,
    "tests/test_zh_exercises.py": 100,
    "tests/test_student_path.py": 100,
    "tests/test_repair.py": 90,
    "tests/test_safe_feedback.py": 70,
    "tests/test_export_injection.py": 70,
    "tests/test_limits.py": 70,
    "tests/test_submission_files.py": 50,
    "tests/test_diagnoses.py": 40,
    "tests/test_keras_agreement.py": 30,
}

# file -> the file whose worker runs it too, because it reads the course that file builds
TOGETHER = {
    "tests/test_feedback_offline.py": "tests/test_lms.py",  # test_lms.graded_course
}


def file_of(nodeid: str) -> str:
    """The scope of a test: its file, or the file it must share a worker with."""
    path = nodeid.split("::", 1)[0]
    return TOGETHER.get(path, path)


def order(workqueue: dict[str, dict]) -> list[str]:
    """The scopes in the order they are handed out: known cost, longest first; then the
    rest, most tests first (xdist's own order)."""
    return sorted(workqueue, key=lambda scope: (-SECONDS.get(scope, 0), -len(workqueue[scope])))


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` is :class:`HeaviestFirst` (a hook: conftest.py registers this
    module as a plugin when xdist is there)."""
    if config.getvalue("dist") != "loadfile":
        return None
    return HeaviestFirst(config, log)


class HeaviestFirst(LoadFileScheduling):
    """``--dist loadfile``, with the files ordered by :func:`order` and grouped by
    :func:`file_of`."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return file_of(nodeid)

    def _reschedule(self, node) -> None:
        # xdist sends a worker its next file when two of its tests are left. A worker runs
        # every test but its last before it knows what comes next, so one is enough, and a
        # long test second to last (the Binder install, minutes) no longer ties the next
        # file to a worker that is busy for minutes while another one has nothing to do.
        if (node.shutting_down or not self.workqueue
                or self._pending_of(self.assigned_work[node]) <= 1):
            super()._reschedule(node)

    def _assign_work_unit(self, node) -> None:
        if not self._ordered:  # the queue is complete before the first unit is handed out
            for scope in order(self.workqueue):
                self.workqueue.move_to_end(scope)
            self._ordered = True
        super()._assign_work_unit(node)


def seconds_by_file(log: str) -> dict[str, float]:
    """Per file (:func:`file_of`), the sum of the set-up, call and teardown times that
    ``pytest --durations=0`` printed (``-vv`` also prints those under 5 ms)."""
    import re

    total: dict[str, float] = {}
    for seconds, nodeid in re.findall(r"^([0-9.]+)s (?:setup|call|teardown) +(\S+)", log,
                                      re.MULTILINE):
        scope = file_of(nodeid)
        total[scope] = total.get(scope, 0.0) + float(seconds)
    return dict(sorted(total.items(), key=lambda item: -item[1]))


if __name__ == "__main__":  # python tests/scheduling.py LOG: the table, from a run's log
    import sys

    for scope, seconds in seconds_by_file(open(sys.argv[1]).read()).items():
        print(f"    {scope!r}: {seconds:.0f},")
