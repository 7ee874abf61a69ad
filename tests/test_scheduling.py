"""The order in which ``make test`` (``pytest -n N --dist loadfile``) hands out the test
files: tests/scheduling.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import scheduling

TESTS = Path(__file__).resolve().parent


def test_every_file_the_schedule_names_exists():
    """A renamed file would silently fall back to xdist's order (or lose its partner)."""
    named = {*scheduling.SECONDS, *scheduling.TOGETHER, *scheduling.TOGETHER.values()}
    missing = [name for name in sorted(named) if not (TESTS.parent / name).is_file()]
    assert missing == []


def test_the_files_that_read_a_course_go_where_it_is_built():
    for reader, builder in scheduling.TOGETHER.items():
        assert scheduling.file_of(f"{reader}::test_x[a::b]") == builder
        assert scheduling.file_of(f"{builder}::test_y") == builder
    assert scheduling.file_of("tests/test_stats.py::TestX::test_y") == "tests/test_stats.py"


def test_the_table_is_read_from_a_durations_report():
    log = ("============ slowest durations ============\n"
           "383.59s setup    tests/test_lms.py::test_a[x]\n"
           "10.00s call     tests/test_feedback_offline.py::test_b\n"
           "2.50s teardown tests/test_lms.py::test_a[x]\n"
           "1.00s call     tests/test_stats.py::TestX::test_c\n"
           "(12 durations < 0.005s hidden.  Use -vv to show these durations.)\n")
    assert scheduling.seconds_by_file(log) == pytest.approx({"tests/test_lms.py": 396.09,
                                                            "tests/test_stats.py": 1.0})


def test_known_costs_come_first_longest_first_then_most_tests_first(monkeypatch):
    monkeypatch.setattr(scheduling, "SECONDS", {"long.py": 300, "longer.py": 400})
    queue = {"many.py": dict.fromkeys("abcdef"), "long.py": {"a": 0}, "few.py": {"a": 0},
             "longer.py": {"a": 0}, "some.py": dict.fromkeys("abc")}
    assert scheduling.order(queue) == ["longer.py", "long.py", "many.py", "some.py", "few.py"]


CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import pytest
import scheduling
pytest_plugins = ["scheduling"]
scheduling.SECONDS = {{"test_b.py": 100}}
scheduling.TOGETHER = {{"test_c.py": "test_b.py"}}
"""
RECORD = """
import os
def _log(name):
    with open({log!r}, "a") as fh:
        fh.write(f"{{name}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


def test_xdist_runs_the_longest_file_first_and_a_reader_after_its_builder(tmp_path):
    """A real ``pytest -n 1 --dist loadfile`` of three files: xdist alone would run the
    file with the most tests (test_a) first; the schedule runs test_b (its measured
    cost), then test_c, which goes with it, then test_a."""
    log = tmp_path / "order.log"
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name, n in [("a", 3), ("b", 1), ("c", 1)]:
        tests = "".join(f"def test_{name}{i}():\n    _log('{name}{i}')\n" for i in range(n))
        (tmp_path / f"test_{name}.py").write_text(RECORD.format(log=str(log)) + tests)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "1", "--dist", "loadfile",
                           "-p", "no:cacheprovider", "-q", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [line.split()[0] for line in log.read_text().splitlines()]
    assert ran == ["b0", "c0", "a0", "a1", "a2"], ran


def _run_files(tmp_path: Path, conftest: str, files: dict[str, list[float]],
               workers: int) -> dict[str, str]:
    """``pytest -n WORKERS --dist loadfile`` of files whose tests sleep the given seconds;
    return the worker each test ran on, by test name (``a0``, ``a1`` ...)."""
    log = tmp_path / "order.log"
    (tmp_path / "conftest.py").write_text(conftest)
    for name, sleeps in files.items():
        tests = "".join(f"def test_{name}{i}():\n    time.sleep({s})\n    _log('{name}{i}')\n"
                        for i, s in enumerate(sleeps))
        (tmp_path / f"test_{name}.py").write_text(
            "import time\n" + RECORD.format(log=str(log)) + tests)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", str(workers), "--dist",
                           "loadfile", "-p", "no:cacheprovider", "-q", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(line.split() for line in log.read_text().splitlines())


@pytest.mark.slow
def test_a_long_test_second_to_last_does_not_tie_the_next_file_to_its_worker(tmp_path):
    """Two workers: one runs test_a, whose second test sleeps 6 s, the other test_b (two
    tests of 2 s), then test_c. test_d must go to the worker that is free first, test_b's
    (xdist would send it to test_a's worker as soon as a0 is done, behind the 6 s)."""
    conftest = CONFTEST.replace('{"test_b.py": 100}', '{"test_a.py": 100, "test_b.py": 90, '
                                '"test_c.py": 80, "test_d.py": 70}').replace(
        '{"test_c.py": "test_b.py"}', "{}")
    ran = _run_files(tmp_path, conftest, {"a": [0, 6, 0], "b": [2, 2], "c": [0], "d": [0]}, 2)
    assert ran["a0"] == ran["a1"] == ran["a2"] != ran["b0"] == ran["b1"], ran
    assert ran["d0"] == ran["b0"], ran
