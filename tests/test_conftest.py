"""The helpers of conftest.py: ``require`` fails in CI and skips elsewhere."""

from __future__ import annotations

import pytest
from conftest import require

FAILED, SKIPPED = pytest.fail.Exception, pytest.skip.Exception


def _outcome(monkeypatch, ci: str | None, problem: str | None):
    """What ``require(problem, "Chromium")`` does with ``CI=ci`` (unset for ``None``):
    the exception it raises (caught, also a skip, which would skip this test), or None."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    try:
        require(problem, "Chromium")
    except (FAILED, SKIPPED) as outcome:
        return outcome
    return None


@pytest.mark.parametrize("ci", [None, "", "false", "0", "true", "TRUE"])
def test_require_does_nothing_when_nothing_is_missing(monkeypatch, ci):
    assert _outcome(monkeypatch, ci, None) is None


@pytest.mark.parametrize("ci", ["true", "True", "TRUE"])
def test_require_fails_in_ci(monkeypatch, ci):
    outcome = _outcome(monkeypatch, ci, "/usr/bin/chromium is missing")
    assert type(outcome) is FAILED, outcome
    assert str(outcome) == "CI must run the tests that need Chromium: /usr/bin/chromium is missing"


@pytest.mark.parametrize("ci", [None, "", "false", "0", "1"])
def test_require_skips_elsewhere(monkeypatch, ci):
    outcome = _outcome(monkeypatch, ci, "/usr/bin/chromium is missing")
    assert type(outcome) is SKIPPED, outcome
    assert str(outcome) == "needs Chromium: /usr/bin/chromium is missing"
