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

import re
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
    print(plain_text(__doc__), file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


def plain_text(rst: str) -> str:
    """The reST of a docstring as a terminal shows it: no ````literal```` or ``:role:``
    markup, and a simple table's columns aligned again without its rules."""
    lines = rst.strip().splitlines()
    rules = [i for i, line in enumerate(lines) if _is_rule(line)]
    if len(rules) >= 2:
        first, last = rules[0], rules[-1]
        starts = [m.start() for m in re.finditer(r"=+", lines[first])]
        rows = [[_unmark(line[a:b]).strip()
                 for a, b in zip(starts, [*starts[1:], None], strict=True)]
                for line in lines[first + 1:last] if line.strip() and not _is_rule(line)]
        widths = [max(len(row[k]) for row in rows) for k in range(len(starts) - 1)]
        table = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
                 + "  " + row[-1] for row in rows]
        lines = lines[:first] + [t.rstrip() for t in table] + lines[last + 1:]
    return "\n".join(_unmark(line).rstrip() for line in lines)


def _is_rule(line: str) -> bool:
    return bool(re.fullmatch(r"=+( +=+)+", line.strip()))


def _unmark(text: str) -> str:
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


if __name__ == "__main__":
    sys.exit(main())
