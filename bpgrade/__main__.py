"""``python -m bpgrade COMMAND``: the grading tools of the course.

=====================================  ==================================================
``autograde ASSIGNMENT [--jobs N]``    grade a whole class on Dask, crash-safe
                                       (:mod:`bpgrade.pool`; run in the course root)
``report ASSIGNMENT [...]``            what the class got wrong: an offline HTML report,
                                       a CSV and a summary, from the gradebook and the
                                       autograded notebooks (:mod:`bpgrade.report`)
``check NOTEBOOK [--timeout S]``       the student's check: run the notebook from a fresh
                                       kernel as the grader does, one line per test cell,
                                       exit 1 unless every visible test passes
                                       (:mod:`bpgrade.student`; nbclient, no nbgrader)
``sandbox-check``                      say whether bubblewrap can sandbox kernels here
``install-kernel [--sys-prefix]``      install the ``bpgrade-sandbox`` kernel spec
``kernel -f CONNECTION_FILE``          the sandboxed kernel launcher (the kernel spec's
                                       ``argv``; not run by hand)
=====================================  ==================================================
"""

from __future__ import annotations

import sys

KERNEL_COMMANDS = {"kernel", "install-kernel", "sandbox-check"}
STUDENT_COMMANDS = {"check"}
POOL_COMMANDS = {"autograde"}
REPORT_COMMANDS = {"report"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv else ""
    if command in KERNEL_COMMANDS:  # standard library only: the launcher starts here
        from bpgrade.kernel import main as kernel_main

        return kernel_main(argv)
    if command in STUDENT_COMMANDS:
        from bpgrade.student import main as student_main

        return student_main(argv[1:])
    if command in POOL_COMMANDS:
        from bpgrade.pool import main as pool_main

        return pool_main(argv)
    if command in REPORT_COMMANDS:
        from bpgrade.report import main as report_main

        return report_main(argv[1:])
    print(__doc__.strip(), file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
