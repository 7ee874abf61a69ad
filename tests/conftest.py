"""Shared by the test modules: where the repository and the built site are, and
:func:`require` for what a test needs from the machine."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = REPO_ROOT / "_build" / "html"


def require(problem: str | None, what: str) -> None:
    """What a test needs from the machine: nothing happens when ``problem`` is ``None``.

    Otherwise ``problem`` says why ``what`` is missing (with the command that installs
    it); the test fails in CI (the environment variable ``CI`` is ``true``, in any case)
    and is skipped elsewhere.
    """
    if problem is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI must run the tests that need {what}: {problem}", pytrace=False)
    pytest.skip(f"needs {what}: {problem}")


# What `make test-fast` leaves out (-m "not slow"): a test that reads the built site,
# drives the browser or builds the book's messages (tests/test_i18n.py's `fresh_pot`, a
# Sphinx build of every page) is slow whatever its own marks say.
NEEDS_THE_BOOK = {"built_site", "site_url", "browser", "fresh_pot"}


def pytest_configure(config) -> None:
    """With xdist (not under ``-p no:xdist``), ``--dist loadfile`` hands out the files that
    hold a worker longest first (tests/scheduling.py)."""
    if config.pluginmanager.hasplugin("xdist"):
        import scheduling

        config.pluginmanager.register(scheduling, "scheduling")


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if NEEDS_THE_BOOK.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder with ``_config.yml`` and ``pyproject.toml``)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def built_site() -> Path:
    """``_build/html``, as ``make book`` leaves it; fails with the command to run if missing."""
    if not (SITE_DIR / "index.html").is_file():
        pytest.fail(
            f"the book has not been built: {SITE_DIR} has no index.html. "
            "Run `make book` first (`make test` does it for you).",
            pytrace=False,
        )
    return SITE_DIR


def toc_docnames() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as docnames (``"chapters/04_gradients"``)."""
    from tools.build_notebooks import toc_pages

    return toc_pages(REPO_ROOT)


# ------------------------------------------------------------------ the browser tests' fixtures
# One Playwright (sync API) per worker process: two alive at once in one process fail
# ("Playwright Sync API inside the asyncio loop"), so every module that drives Chromium
# uses these session fixtures, never its own.

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        pass


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def site_url(built_site: Path) -> Iterator[str]:
    """``_build/html`` served on 127.0.0.1 at a free port, in a thread, for this module."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def browser():
    require(None if CHROMIUM.is_file() else
            f"{CHROMIUM} is missing: install it with `apt-get install chromium`", "Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def value_class(nb) -> type:
    """The ``Value`` of an exercise 7 notebook: its setup and solution cells run in a
    namespace (test_autodiff, test_tamper)."""
    ns: dict = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade_id") == "setup" or meta.get("solution")):
            exec(compile(cell.source, meta["grade_id"], "exec"), ns)  # noqa: S102
    return ns["Value"]
