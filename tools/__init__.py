"""The course's tooling: each module runs as a script (``python tools/grade_demo.py``) and
imports as ``tools.<module>`` from the repository root (tests and benchmarks do)."""
