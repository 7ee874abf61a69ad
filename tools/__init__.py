"""The course's tooling, run from the repository root as modules (``python -m
tools.grade_demo``, ``python -m tools.build_exercises``); tests and benchmarks import it as
``tools.<module>``. Nothing here is imported by ``bplib`` or ``bpgrade``, and nothing here
loads files from ``tests/``."""
