"""Answers a grading process keeps for the next submission (issue #24's fast path).

A worker grades a whole class against one release: most cells of every submission are
the release's, and the instructor's notebook is the same for every student. What the
grader derives from a cell's source alone (:func:`by_source`: its integrity analysis,
the problems of a markdown cell) or from the instructor's notebook alone
(:func:`bpgrade.nbgrader_plugins.from_source`) is kept and given again: the same
answer, without the work.

:data:`ON` is true by default; :func:`bpgrade.pool.nbgrader_reuse` sets it to its
``fast`` argument within its block, so that ``--classic`` (the path before issue #24,
which ``python -m bench grading_scale`` runs side by side with the fast one) derives
everything anew.
"""

from __future__ import annotations

import functools

#: Whether answers are kept (see the module's docstring).
ON = True
#: The longest source whose answer is kept: a longer one (a hostile submission's
#: megabytes) is worked on every time and never held in memory.
MAX_CHARS = 1 << 16
#: How many answers each function keeps (the least recently used go first).
SIZE = 1024


def by_source(function):
    """``function(source, *hashable)``, kept for the next call with the same arguments
    (while :data:`ON`, for a source of at most :data:`MAX_CHARS` characters);
    ``function`` must depend on nothing else. ``cache_info`` and ``cache_clear`` are
    those of the kept answers."""
    kept = functools.lru_cache(maxsize=SIZE)(function)

    @functools.wraps(function)
    def call(source: str, *args):
        if ON and len(source) <= MAX_CHARS:
            return kept(source, *args)
        return function(source, *args)

    call.cache_clear, call.cache_info = kept.cache_clear, kept.cache_info
    return call
