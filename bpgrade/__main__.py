"""``python -m bpgrade COMMAND``: the grading tools of the course.

=====================================  ==================================================
``autograde ASSIGNMENT [--jobs N]``    grade a whole class, in parallel, crash-safe
                                       (:mod:`bpgrade.pool`; run in the course root)
``check``                              say whether bubblewrap can sandbox kernels here
``install-kernel [--sys-prefix]``      install the ``bpgrade-sandbox`` kernel spec
``kernel -f CONNECTION_FILE``          the sandboxed kernel launcher (the kernel spec's
                                       ``argv``; not run by hand)
=====================================  ==================================================
"""

from __future__ import annotations

import sys

KERNEL_COMMANDS = {"kernel", "install-kernel", "check"}
POOL_COMMANDS = {"autograde", "_worker"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv else ""
    if command in KERNEL_COMMANDS:  # standard library only: the launcher starts here
        from bpgrade.kernel import main as kernel_main

        return kernel_main(argv)
    if command in POOL_COMMANDS:
        from bpgrade.pool import main as pool_main

        return pool_main(argv)
    print(__doc__.strip(), file=sys.stderr if command not in ("-h", "--help") else sys.stdout)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
